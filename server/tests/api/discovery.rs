use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

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

fn jwks_caching_headers(r: &reqwest::Response) -> (String, String) {
    let header = |name: &str| {
        r.headers()
            .get(name)
            .unwrap_or_else(|| panic!("a {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    (header("cache-control"), header("etag"))
}

async fn get_jwks_if_none_match(app: &TestApp, if_none_match: &str) -> reqwest::Response {
    app.client
        .get(app.url("/.well-known/jwks.json"))
        .header("if-none-match", if_none_match)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_jwks_is_cacheable_for_max_age_with_the_bodys_hash_as_a_strong_etag() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status(), 200);
    let (cache_control, etag) = jwks_caching_headers(&r);
    // The value the OpenAPI document and docs/RESOURCE_SERVERS.md state.
    assert_eq!(cache_control, "public, max-age=30");
    assert_eq!(
        Duration::from_secs(30),
        baton::http::discovery::JWKS_MAX_AGE
    );
    let body = r.bytes().await.unwrap();
    let expected = format!("\"{}\"", URL_SAFE_NO_PAD.encode(Sha256::digest(&body)));
    assert_eq!(etag, expected, "strong (no W/), the SHA-256 of the body");
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_with_the_same_caching_headers_and_no_body() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let first = app.get("/.well-known/jwks.json").await;
    let (cache_control, etag) = jwks_caching_headers(&first);
    for if_none_match in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"stale\", {etag}"),
        "*".to_owned(),
    ] {
        let r = get_jwks_if_none_match(&app, &if_none_match).await;
        assert_eq!(r.status(), 304, "{if_none_match}");
        assert_eq!(
            jwks_caching_headers(&r),
            (cache_control.clone(), etag.clone())
        );
        assert!(r.bytes().await.unwrap().is_empty());
    }
    for if_none_match in ["\"stale\"", "garbage", &etag[1..]] {
        let r = get_jwks_if_none_match(&app, if_none_match).await;
        assert_eq!(r.status(), 200, "{if_none_match}");
        assert_eq!(jwks_caching_headers(&r).1, etag);
    }
}

#[tokio::test]
async fn a_key_rotation_changes_the_etag_so_a_revalidating_verifier_gets_the_new_key() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (_, old_etag) = jwks_caching_headers(&app.get("/.well-known/jwks.json").await);
    let kid = baton::domain::keys::rotate_signing_key(
        &app.db,
        &app.master_key,
        baton::domain::Timestamp::from_millis(app.clock_now_millis()),
        app.settings.access_ttl,
        app.settings.jwt_leeway,
    )
    .await
    .unwrap();
    app.keys.reload().await.unwrap();
    let r = get_jwks_if_none_match(&app, &old_etag).await;
    assert_eq!(r.status(), 200, "the old copy is stale");
    let (_, new_etag) = jwks_caching_headers(&r);
    assert_ne!(new_etag, old_etag);
    let jwks: Value = r.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "the retired key stays published");
    assert!(kids.contains(&kid.as_str()));
    assert_eq!(get_jwks_if_none_match(&app, &new_etag).await.status(), 304);
}
