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

/// One header with several lines, in this order (as proxies append them).
fn header_lines(name: &'static str, lines: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        headers.append(name, HeaderValue::from_str(line).unwrap());
    }
    headers
}

async fn refresh_with(app: &TestApp, headers: HeaderMap) -> Response {
    app.post_json_with("/auth/refresh", json!({"refresh_token": "x"}), headers)
        .await
}

async fn login_from(app: &TestApp, email: &str, password: &str, address: &str) -> Response {
    app.post_json_with(
        "/auth/login",
        json!({"email": email, "password": password}),
        forwarded_for(address),
    )
    .await
}

#[tokio::test]
async fn a_forged_first_line_of_the_trusted_header_loses_to_the_proxys_own_line() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
        s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
    })
    .await
    else {
        return;
    };
    // The client sends its own X-Forwarded-For line, a new one each time;
    // the proxy (HAProxy does this) appends a second line with the real address.
    for i in 0..2 {
        let forged = format!("192.0.2.{i}");
        let r = refresh_with(
            &app,
            header_lines("x-forwarded-for", &[&forged, "198.51.100.9"]),
        )
        .await;
        assert_eq!(r.status(), 401, "attempt {i} is under the limit");
    }
    let r = refresh_with(
        &app,
        header_lines("x-forwarded-for", &["192.0.2.77", "198.51.100.9"]),
    )
    .await;
    assert_throttled(r, 60).await;
}

#[tokio::test]
async fn with_two_proxy_hops_the_client_is_the_second_entry_from_the_end() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
        s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
        s.trusted_proxy_hops = 2;
    })
    .await
    else {
        return;
    };
    // The outer proxy (a CDN edge, a different one each time) is the last
    // entry; the client it saw is the one before it.
    for i in 0..2 {
        let value = format!("203.0.113.50, 10.0.0.{i}");
        assert_eq!(
            refresh_with(&app, forwarded_for(&value)).await.status(),
            401
        );
    }
    let r = refresh_with(&app, forwarded_for("6.6.6.6, 203.0.113.50, 10.0.0.9")).await;
    assert_throttled(r, 60).await;
    // Fewer entries than hops: unusable, the peer counts (127.0.0.1, fresh).
    let r = refresh_with(&app, forwarded_for("203.0.113.50")).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn with_trusted_proxy_blocks_the_client_is_the_rightmost_untrusted_entry() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
        s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
        s.trusted_proxies = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
    })
    .await
    else {
        return;
    };
    // Any number of trusted proxies in between are skipped.
    for value in ["203.0.113.60, 10.1.1.1", "203.0.113.60, 10.2.2.2, 10.3.3.3"] {
        assert_eq!(refresh_with(&app, forwarded_for(value)).await.status(), 401);
    }
    let r = refresh_with(&app, forwarded_for("192.0.2.1, 203.0.113.60")).await;
    assert_throttled(r, 60).await;
}

#[tokio::test]
async fn the_trusted_header_is_ignored_when_the_peer_is_not_a_trusted_proxy() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
        s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
        // The test client connects from 127.0.0.1, which is not in here.
        s.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    for i in 0..2 {
        let value = format!("203.0.113.{i}");
        assert_eq!(
            refresh_with(&app, forwarded_for(&value)).await.status(),
            401
        );
    }
    let r = refresh_with(&app, forwarded_for("203.0.113.99")).await;
    assert_throttled(r, 60).await;
}

#[tokio::test]
async fn ipv6_clients_in_one_64_share_their_limit() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
        s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
    })
    .await
    else {
        return;
    };
    for host in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::2"] {
        assert_eq!(refresh_from(&app, "x", Some(host)).await.status(), 401);
    }
    let r = refresh_from(&app, "x", Some("2001:db8:1:2:abcd:ef01:2345:6789")).await;
    assert_throttled(r, 60).await;
    // The next /64 is another subscriber; IPv4-mapped IPv6 is its IPv4.
    let r = refresh_from(&app, "x", Some("2001:db8:1:3::1")).await;
    assert_eq!(r.status(), 401);
    for mapped in ["192.0.2.5", "::ffff:192.0.2.5"] {
        assert_eq!(refresh_from(&app, "x", Some(mapped)).await.status(), 401);
    }
    assert_throttled(refresh_from(&app, "x", Some("192.0.2.5")).await, 60).await;
}

#[tokio::test]
async fn an_attacker_hammering_an_account_cannot_lock_its_owner_out() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
        // The defaults: 30 attempts per address, 5 failures per account and
        // address, 20 failures per account, per minute.
    })
    .await
    else {
        return;
    };
    let victim = app.new_user().await;
    let attacker = "198.51.100.66";
    let mut statuses = Vec::new();
    for i in 0..30 {
        let guess = format!("guess-{i}-wrong");
        statuses.push(
            login_from(&app, &victim.email, &guess, attacker)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // The owner, from their own address, with the right password.
    let r = login_from(&app, &victim.email, &victim.password, "203.0.113.5").await;
    assert_eq!(r.status(), 200, "the owner is not locked out");

    // A distributed attack: 25 addresses fail once each, past the account's
    // threshold of 20. An address that failed now waits at once...
    for i in 0..25 {
        let r = login_from(
            &app,
            &victim.email,
            "wrong-password",
            &format!("192.0.2.{i}"),
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    let r = login_from(&app, &victim.email, &victim.password, "192.0.2.3").await;
    assert_throttled(r, 60).await;
    // ...and a clean address still gets its attempt.
    let r = login_from(&app, &victim.email, &victim.password, "203.0.113.200").await;
    assert_eq!(
        r.status(),
        200,
        "a clean address is admitted under attack too"
    );
}

fn field(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} on a {}", r.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `"name";r=R;t=T` items of a `RateLimit` field, as (name, r, t).
fn parse_ratelimit(value: &str) -> Vec<(String, u64, u64)> {
    value
        .split(',')
        .map(|item| {
            let mut parts = item.trim().split(';');
            let name = parts.next().unwrap().trim_matches('"').to_owned();
            let mut r = None;
            let mut t = None;
            for p in parts {
                let (k, v) = p.split_once('=').unwrap();
                match k {
                    "r" => r = Some(v.parse().unwrap()),
                    "t" => t = Some(v.parse().unwrap()),
                    other => panic!("unexpected parameter {other} in {value}"),
                }
            }
            (name, r.unwrap(), t.unwrap())
        })
        .collect()
}

#[tokio::test]
async fn rate_limit_headers_describe_the_policy_and_count_down_to_the_429() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_login_attempts_per_address = 3;
        s.rate_limit_login_failures_per_account_and_address = 5;
        s.rate_limit_registrations_per_address = 4;
    })
    .await
    else {
        return;
    };
    let user = TestUser::random();
    let r = app.register(&user.email, &user.password).await;
    assert_eq!(r.status(), 201);
    assert_eq!(field(&r, "ratelimit-policy"), r#""register";q=4;w=3600"#);
    let current = parse_ratelimit(&field(&r, "ratelimit"));
    assert_eq!(current[0].0, "register");
    assert_eq!(current[0].1, 3, "one of four registrations used");
    assert!((3590..=3600).contains(&current[0].2), "{current:?}");

    let expected_policy = r#""login";q=3;w=60, "login-failures";q=5;w=60"#;
    let r = app.login(&user.email, &user.password).await;
    assert_eq!(r.status(), 200);
    assert_eq!(field(&r, "ratelimit-policy"), expected_policy);
    let current = parse_ratelimit(&field(&r, "ratelimit"));
    assert_eq!(current[0].0, "login");
    assert_eq!(current[0].1, 2, "{current:?}");
    assert_eq!(current[1].0, "login-failures");
    assert_eq!(current[1].1, 5, "a success spends no failure: {current:?}");
    let r = app.login(&user.email, "wrong-password").await;
    assert_eq!(r.status(), 401);
    let r = app.login(&user.email, &user.password).await;
    let current = parse_ratelimit(&field(&r, "ratelimit"));
    assert_eq!(current[0].1, 0, "{current:?}");
    assert_eq!(current[1].1, 4, "one failure counted: {current:?}");
    let r = app.login(&user.email, &user.password).await;
    assert_eq!(field(&r, "ratelimit-policy"), expected_policy);
    let current = parse_ratelimit(&field(&r, "ratelimit"));
    assert_eq!(current[0].1, 0);
    let retry_after = assert_throttled(r, 60).await;
    assert_eq!(
        current[0].2, retry_after,
        "t of the exhausted policy = Retry-After"
    );
}

#[tokio::test]
async fn without_throttling_no_rate_limit_headers_are_sent() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = TestUser::random();
    let r = app.register(&user.email, &user.password).await;
    assert!(r.headers().get("ratelimit").is_none());
    let r = app.login(&user.email, &user.password).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("ratelimit-policy").is_none());
}

#[tokio::test]
async fn the_database_store_counts_on_sqlite_too_when_asked() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits = Switch::On;
        s.rate_limit_refreshes_per_address = 2;
        s.rate_limit_store = "database".to_owned();
    })
    .await
    else {
        return;
    };
    for _ in 0..2 {
        assert_eq!(app.refresh_body("x").await.status(), 401);
    }
    assert_throttled(app.refresh_body("x").await, 60).await;
    let rows = crate::support::count(&app.db, "SELECT COUNT(*) FROM rate_limits").await;
    assert_eq!(rows, 1, "one row per key, in the database");
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(app.refresh_body("x").await.status(), 401, "a new window");
}

#[tokio::test]
async fn rows_of_ended_windows_are_purged_by_the_database_store() {
    use baton::domain::throttle::{LimitKey, Policy};
    use baton::storage::limits::DatabaseStore;
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let store = DatabaseStore::shared(app.db.clone());
    let t0 = baton::domain::Timestamp::from_millis(app.clock_now_millis());
    let minute = Duration::from_secs(60);
    for i in 0..3 {
        let key = LimitKey::new(Policy::Refresh, &[&format!("192.0.2.{i}")]);
        store.hit(&key, minute, t0).await.unwrap();
    }
    let count = || crate::support::count(&app.db, "SELECT COUNT(*) FROM rate_limits");
    assert_eq!(count().await, 3);
    // Two minutes on, the next counted event has the ended windows deleted.
    let later = t0.saturating_add(Duration::from_secs(120));
    let key = LimitKey::new(Policy::Refresh, &["192.0.2.99"]);
    store.hit(&key, minute, later).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count().await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "expired rows were not purged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_renamed_limit_variable_is_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/baton.db", dir.path().display());
    let config = ProcessConfig::new(&url).with("BATON_RATE_LIMIT_LOGIN_PER_ACCOUNT", "3");
    let server = ServerProcess::start(&config).await;
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("BATON_RATE_LIMIT_LOGIN_PER_ACCOUNT is no longer read"))
        .unwrap_or_else(|| panic!("no warning about the old name in:\n{log}"));
    assert!(
        line.contains("WARN")
            && line.contains("BATON_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS"),
        "{line}"
    );
}
