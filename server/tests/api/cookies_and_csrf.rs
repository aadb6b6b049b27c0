use reqwest::header::{HeaderMap, HeaderValue};

use crate::helpers::*;

fn origin(value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("origin", HeaderValue::from_static(value));
    h
}

#[tokio::test]
async fn the_refresh_cookie_carries_every_required_attribute() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_cookie(&user).await;
    let cookie = tokens.set_cookie.unwrap();
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect();
    for required in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/auth"] {
        assert!(
            attrs.iter().any(|a| a == required),
            "{required} missing: {cookie}"
        );
    }
    assert!(
        !attrs
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "{cookie}"
    );
    let max_age = attrs
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap();
    assert_eq!(max_age, tokens.body["refresh_expires_in"].to_string());
}

#[tokio::test]
async fn a_cookie_refresh_from_a_foreign_origin_is_refused_and_changes_nothing() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_cookie(&user).await;
    for bad in ["http://evil.test", "null", "http://app.test.evil.test"] {
        let r = app
            .refresh_cookie_with(&tokens.refresh_token, origin(bad))
            .await;
        assert!(set_cookie(&r).is_none(), "the cookie is left alone");
        assert_problem(r, 403, "origin_not_allowed").await;
    }
    assert_eq!(
        app.refresh_cookie(&tokens.refresh_token).await.status(),
        200,
        "still live"
    );
}

#[tokio::test]
async fn a_cookie_refresh_from_an_allowed_origin_works() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_cookie(&user).await;
    let r = app
        .refresh_cookie_with(&tokens.refresh_token, origin("http://app.test"))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_origin_check_applies_to_the_cookie_channel_only() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let r = app
        .post_json_with(
            "/auth/refresh",
            serde_json::json!({"refresh_token": tokens.refresh_token}),
            origin("http://other-app.test"),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn every_token_response_is_marked_no_store() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let r = app.login(&user.email, &user.password).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tokens = Tokens::from_cookie_response(r, app.cookie_name()).await;
    let r = app.refresh_cookie(&tokens.refresh_token).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = app.me(&tokens.access_token).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
}

/// A POST to `path` whose Cookie header carries these refresh cookies, in order.
async fn post_with_cookies(app: &TestApp, path: &str, values: &[&str]) -> reqwest::Response {
    let name = app.cookie_name();
    let cookie: Vec<String> = values.iter().map(|v| format!("{name}={v}")).collect();
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(&cookie.join("; ")).unwrap());
    app.post_json_with(path, serde_json::json!({}), headers)
        .await
}

#[tokio::test]
async fn a_planted_cookie_sent_first_neither_blocks_nor_clears_the_real_session() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let real = app.login_cookie(&user).await;
    // A sibling subdomain planted a cookie of the same name with a more
    // specific path: the browser sends it first.
    let r = post_with_cookies(
        &app,
        "/auth/refresh",
        &["planted-by-a-sibling", &real.refresh_token],
    )
    .await;
    assert_eq!(r.status(), 200);
    let set = set_cookie(&r).expect("the real session's new cookie");
    assert!(
        !set.contains("Max-Age=0"),
        "the real cookie is not cleared: {set}"
    );
    let next = cookie_value(&set, app.cookie_name()).unwrap();
    assert_ne!(next, real.refresh_token, "the real token rotated");
    assert_eq!(
        app.refresh_cookie(&next).await.status(),
        200,
        "and its successor works"
    );
}

#[tokio::test]
async fn when_every_cookie_candidate_is_refused_the_cookie_is_cleared() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = post_with_cookies(&app, "/auth/refresh", &["planted", "also-unknown"]).await;
    let set = set_cookie(&r).expect("a clearing cookie");
    assert!(set.contains("Max-Age=0"), "{set}");
    assert_problem(r, 401, "refresh_token_invalid").await;
}

#[tokio::test]
async fn a_cookie_logout_with_a_planted_cookie_still_ends_the_real_session() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let real = app.login_cookie(&user).await;
    let r = post_with_cookies(&app, "/auth/logout", &["planted", &real.refresh_token]).await;
    assert_eq!(r.status(), 204);
    assert_problem(
        app.refresh_cookie(&real.refresh_token).await,
        401,
        "session_revoked",
    )
    .await;
}
