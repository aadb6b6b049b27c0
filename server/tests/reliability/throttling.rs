//! Issue 7 "Throttling": refresh and register per client address, the
//! trusted client-address header, per-account login limits that do not lock
//! out other accounts, and the warning when limits are off.

use std::time::Duration;

use baton::config::Switch;
use reqwest::Response;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::helpers::*;
use crate::support::{ProcessConfig, ServerProcess};

/// A 429 with `Retry-After` (whole seconds within the window) and a
/// `rate_limited` problem body whose `retry_after` agrees with the header.
async fn assert_throttled(r: Response, window_secs: u64) -> u64 {
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(
        (1..=window_secs).contains(&retry_after),
        "Retry-After {retry_after} outside 1..={window_secs}"
    );
    let body = assert_problem(r, 429, "rate_limited").await;
    if let Some(field) = body.get("retry_after") {
        assert_eq!(field, &json!(retry_after), "body and header agree: {body}");
    }
    retry_after
}

fn forwarded_for(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
    headers
}

async fn refresh_from(app: &TestApp, token: &str, forwarded: Option<&str>) -> Response {
    let headers = forwarded.map(forwarded_for).unwrap_or_default();
    app.post_json_with("/auth/refresh", json!({"refresh_token": token}), headers)
        .await
}

#[tokio::test]
async fn refresh_is_limited_per_client_address_with_retry_after_and_a_problem_body() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 3;
    })
    .await
    else {
        return;
    };
    // Rate limits count attempts, valid or not.
    for i in 0..3 {
        let r = app.refresh_body("not-a-token").await;
        assert_eq!(r.status(), 401, "attempt {i} is under the limit");
    }
    let r = app.refresh_body("not-a-token").await;
    assert_throttled(r, 60).await;

    // A throttled refresh spends nothing: a valid token refused with 429
    // still works once the window has passed.
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let r = app.refresh_body(&tokens.refresh_token).await;
    assert_throttled(r, 60).await;
    let r = app.refresh_cookie(&tokens.refresh_token).await;
    assert_throttled(r, 60).await;
    app.clock.advance(Duration::from_secs(61));
    let r = app.refresh_body(&tokens.refresh_token).await;
    assert_eq!(r.status(), 200, "the new window admits the same token");
}

#[tokio::test]
async fn register_is_limited_per_client_address_per_hour() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_registrations_per_address = 2;
    })
    .await
    else {
        return;
    };
    for _ in 0..2 {
        let u = TestUser::random();
        assert_eq!(app.register(&u.email, &u.password).await.status(), 201);
    }
    let refused = TestUser::random();
    let r = app.register(&refused.email, &refused.password).await;
    let retry_after = assert_throttled(r, 3600).await;
    assert!(
        retry_after > 60,
        "the register window is an hour: {retry_after}"
    );
    // The throttled registration did not happen.
    app.clock.advance(Duration::from_secs(30 * 60));
    let r = app.register(&refused.email, &refused.password).await;
    assert_throttled(r, 3600).await;
    app.clock.advance(Duration::from_secs(31 * 60));
    let r = app.register(&refused.email, &refused.password).await;
    assert_eq!(
        r.status(),
        201,
        "the account was not created by the throttled call"
    );
}

#[tokio::test]
async fn the_trusted_client_address_header_separates_clients_and_only_its_last_entry_counts() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
        s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
    })
    .await
    else {
        return;
    };
    let a = Some("203.0.113.1");
    for _ in 0..2 {
        assert_eq!(refresh_from(&app, "x", a).await.status(), 401);
    }
    assert_throttled(refresh_from(&app, "x", a).await, 60).await;
    // Another client behind the same proxy (same peer address) is not throttled.
    let b = Some("203.0.113.2");
    assert_eq!(refresh_from(&app, "x", b).await.status(), 401);
    // A client cannot escape by prepending entries: the proxy's own (last)
    // entry is the address.
    let spoofed = Some("198.51.100.7, 203.0.113.1");
    assert_throttled(refresh_from(&app, "x", spoofed).await, 60).await;
    // And cannot frame someone else by prepending theirs.
    let framed = Some("203.0.113.1, 203.0.113.3");
    assert_eq!(refresh_from(&app, "x", framed).await.status(), 401);
}

#[tokio::test]
async fn without_a_trusted_header_x_forwarded_for_is_ignored() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
    })
    .await
    else {
        return;
    };
    for i in 0..2 {
        let ip = format!("203.0.113.{i}");
        assert_eq!(refresh_from(&app, "x", Some(&ip)).await.status(), 401);
    }
    // A third forged address does not buy a fresh allowance: the peer counts.
    let r = refresh_from(&app, "x", Some("203.0.113.99")).await;
    assert_throttled(r, 60).await;
}

#[tokio::test]
async fn a_failed_login_burst_on_one_account_does_not_lock_out_another() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
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
        let r = app.login(&victim.email, "wrong-password").await;
        assert_eq!(r.status(), 401);
    }
    // Even the right password waits from the address that guessed wrong;
    // the limit key ignores case, like the account itself.
    let r = app
        .login(&victim.email.to_uppercase(), &victim.password)
        .await;
    assert_throttled(r, 60).await;
    let r = app.login(&other.email, &other.password).await;
    assert_eq!(r.status(), 200, "another account is not locked out");
    app.clock.advance(Duration::from_secs(61));
    let r = app.login(&victim.email, &victim.password).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn login_is_limited_per_client_address_across_accounts() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_login_failures_per_account_and_address = 100;
        s.rate_limit_login_attempts_per_address = 3;
    })
    .await
    else {
        return;
    };
    for _ in 0..3 {
        let u = TestUser::random();
        assert_eq!(app.login(&u.email, &u.password).await.status(), 401);
    }
    let u = TestUser::random();
    assert_throttled(app.login(&u.email, &u.password).await, 60).await;
}

#[tokio::test]
async fn rate_limits_off_is_announced_with_a_warning_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/baton.db", dir.path().display());
    let config = ProcessConfig::new(&url);
    let off = ServerProcess::start(&config).await;
    let log = off.log();
    let line = log
        .lines()
        .find(|l| l.contains("BATON_RATE_LIMITS=off"))
        .unwrap_or_else(|| panic!("no warning about BATON_RATE_LIMITS=off in:\n{log}"));
    assert!(line.contains("WARN"), "logged as a warning: {line}");
    drop(off);

    let on = ServerProcess::start(&config.with("BATON_RATE_LIMITS", "on")).await;
    assert!(
        !on.log().contains("BATON_RATE_LIMITS=off"),
        "no such warning when limits are on:\n{}",
        on.log()
    );
    // And the limits are on in the binary's defaults: 120 refreshes per
    // minute per address, then 429.
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..121 {
        let r = client
            .post(on.url("/auth/refresh"))
            .json(&json!({"refresh_token": "x"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..120].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[120], 429);
}
