use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::*;

backend_test!(
    cookie_login_puts_the_refresh_token_only_in_the_cookie,
    |app| {
        let user = app.new_user().await;
        let r = app.login(&user.email, &user.password).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let tokens = Tokens::from_cookie_response(r, app.cookie_name()).await;
        assert!(tokens.body.get("refresh_token").is_none());
        assert_eq!(tokens.body["token_type"], "Bearer");
        let expires_in = tokens.body["expires_in"].as_u64().unwrap();
        assert!((899..=900).contains(&expires_in), "{expires_in}");
        assert!(tokens.refresh_token.len() >= 43, "256 bits in base64url");
        assert_eq!(app.me(&tokens.access_token).await.status(), 200);
    }
);

backend_test!(
    body_login_returns_the_refresh_token_and_sets_no_cookie,
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        assert!(tokens.refresh_token.len() >= 43);
        assert!(tokens.body["refresh_expires_in"].as_u64().unwrap() > 0);
        let me: Value = app.me(&tokens.access_token).await.json().await.unwrap();
        assert_eq!(me["email"], user.email);
    }
);

backend_test!(login_ignores_the_case_of_the_email, |app| {
    let user = app.new_user().await;
    let r = app.login(&user.email.to_uppercase(), &user.password).await;
    assert_eq!(r.status(), StatusCode::OK);
});

backend_test!(
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    |app| {
        let user = app.new_user().await;
        let wrong = assert_problem(
            app.login(&user.email, "not-the-password").await,
            401,
            "invalid_credentials",
        )
        .await;
        let unknown = assert_problem(
            app.login("nobody@example.test", "not-the-password").await,
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(wrong, unknown);
    }
);

#[tokio::test]
async fn an_unknown_email_costs_a_password_verification_too() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    // Warm both paths, then compare medians; only the order of magnitude
    // matters (a skipped Argon2 verification would be ~100x faster).
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        app.login(&user.email, "wrong-password").await;
        known.push(t.elapsed());
        let t = Instant::now();
        app.login("nobody@example.test", "wrong-password").await;
        unknown.push(t.elapsed());
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[2], unknown[2]);
    assert!(u * 4 > k && k * 4 > u, "known {k:?} vs unknown {u:?}");
}

backend_test!(the_access_token_follows_rfc_9068, |app| {
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let kid = header.kid.unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid)
    );
    let c = claims(&tokens.access_token);
    assert_eq!(c["iss"], "http://baton.test");
    assert_eq!(c["aud"], "baton");
    let me: Value = app.me(&tokens.access_token).await.json().await.unwrap();
    assert_eq!(c["sub"], me["id"]);
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(c["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
});

#[tokio::test]
async fn logins_are_throttled_per_account_without_locking_out_others() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = baton::config::Switch::On;
        s.rate_limit_login_failures_per_account_and_address = 3;
        s.rate_limit_login_attempts_per_address = 100;
    })
    .await
    else {
        return;
    };
    let victim = app.new_user().await;
    let other = app.new_user().await;
    for _ in 0..3 {
        assert_eq!(
            app.login(&victim.email, "wrong-password").await.status(),
            401
        );
    }
    let r = app.login(&victim.email, &victim.password).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let body = assert_problem(r, 429, "rate_limited").await;
    assert_eq!(body["retry_after"], retry_after);
    assert_eq!(app.login(&other.email, &other.password).await.status(), 200);
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(
        app.login(&victim.email, &victim.password).await.status(),
        200
    );
}

#[tokio::test]
async fn login_with_an_unknown_field_is_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let r = app
        .post_json(
            "/auth/login",
            json!({"email": user.email, "password": user.password, "remember": true}),
        )
        .await;
    assert_problem(r, 422, "validation_failed").await;
}
