use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::backend_test;
use crate::helpers::*;

backend_test!(logout_revokes_the_family_and_clears_the_cookie, |app| {
    let user = app.new_user().await;
    let tokens = app.login_cookie(&user).await;
    let r = app
        .logout_cookie_with(&tokens.refresh_token, HeaderMap::new())
        .await;
    assert_eq!(r.status(), 204);
    let cleared = set_cookie(&r).expect("the cookie is cleared");
    assert!(cleared.starts_with(&format!("{}=;", app.cookie_name())));
    assert!(cleared.contains("Max-Age=0") && cleared.contains("Path=/auth"));
    assert_problem(
        app.refresh_cookie(&tokens.refresh_token).await,
        401,
        "session_revoked",
    )
    .await;
    assert_eq!(app.live_tokens_in(&tokens.session_id()).await, 0);
});

backend_test!(
    logout_with_an_already_rotated_token_revokes_the_family,
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        let second = Tokens::from_body_response(app.refresh_body(&first.refresh_token).await).await;
        assert_eq!(app.logout_body(&first.refresh_token).await.status(), 204);
        assert_problem(
            app.refresh_body(&second.refresh_token).await,
            401,
            "session_revoked",
        )
        .await;
    }
);

#[tokio::test]
async fn logout_is_idempotent() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    assert_eq!(app.logout_body(&tokens.refresh_token).await.status(), 204);
    assert_eq!(
        app.logout_body(&tokens.refresh_token).await.status(),
        204,
        "already revoked"
    );
    assert_eq!(app.logout_body("unknown").await.status(), 204, "unknown");
    assert_eq!(
        app.post_json("/auth/logout", json!({})).await.status(),
        204,
        "missing"
    );
    let bare = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 204, "no body at all");
    assert!(
        set_cookie(&bare).unwrap().contains("Max-Age=0"),
        "always clears the cookie"
    );
}

#[tokio::test]
async fn logout_leaves_other_sessions_alone() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let laptop = app.login_body(&user).await;
    let phone = app.login_body(&user).await;
    app.logout_body(&laptop.refresh_token).await;
    assert_eq!(app.refresh_body(&phone.refresh_token).await.status(), 200);
}

#[tokio::test]
async fn an_access_token_stays_valid_until_it_expires_after_logout() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    app.logout_body(&tokens.refresh_token).await;
    // Stateless by design (CONTRACT §4); the short ttl bounds the exposure.
    assert_eq!(app.me(&tokens.access_token).await.status(), 200);
}

#[tokio::test]
async fn a_cookie_logout_from_a_foreign_origin_is_refused_and_revokes_nothing() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_cookie(&user).await;
    let mut headers = HeaderMap::new();
    headers.insert("origin", HeaderValue::from_static("http://evil.test"));
    let r = app.logout_cookie_with(&tokens.refresh_token, headers).await;
    assert!(set_cookie(&r).is_none());
    assert_problem(r, 403, "origin_not_allowed").await;
    assert_eq!(
        app.refresh_cookie(&tokens.refresh_token).await.status(),
        200
    );
}

#[tokio::test]
async fn a_malformed_logout_body_is_a_4xx() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "validation_failed").await;
}
