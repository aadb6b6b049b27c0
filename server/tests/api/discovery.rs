use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_auth_configuration_publishes_this_instances_settings() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.access_ttl = std::time::Duration::from_secs(120);
        s.refresh_reuse_grace = std::time::Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let c: Value = app
        .get("/.well-known/auth-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["issuer"], "http://baton.test");
    assert_eq!(c["audience"], "baton");
    assert_eq!(c["jwks_uri"], "http://baton.test/.well-known/jwks.json");
    assert_eq!(c["access_token_ttl"], 120);
    assert_eq!(c["access_token_leeway"], 5);
    assert_eq!(c["refresh_token_ttl"], 7 * 86400);
    assert_eq!(c["session_max_lifetime"], 30 * 86400);
    assert_eq!(c["refresh_reuse_grace"], 0);
    assert_eq!(c["refresh_cookie"]["name"], "__Secure-baton_refresh");
    assert_eq!(c["refresh_cookie"]["path"], "/auth");
    assert_eq!(c["refresh_cookie"]["same_site"], "Strict");
}

#[tokio::test]
async fn the_jwks_holds_ed25519_public_keys_only() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(
        (k["kty"].as_str(), k["crv"].as_str(), k["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(k.get("d").is_none(), "no private part");
}

#[tokio::test]
async fn health_readiness_docs_and_the_openapi_document_are_served() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/auth/refresh"]["post"].is_object());
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/auth/login"));
    assert!(
        html.contains(r#"{"withDefaultFonts":false}"#),
        "no fonts from another host"
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let committed = include_str!("../../../openapi/openapi.json");
    assert!(
        committed == baton::http::openapi_document(),
        "openapi/openapi.json is stale: run scripts/gen-openapi"
    );
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.db.clone().close().await.unwrap();
    assert_problem(app.get("/readyz").await, 503, "service_unavailable").await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}
