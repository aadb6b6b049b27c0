//! Issue 16: limits that hold across instances (PostgreSQL, MariaDB, Redis),
//! a store that fails degrading to memory, and memory that stays bounded
//! under hostile keys.

use std::time::{Duration, Instant};

use baton::config::Switch;
use futures::StreamExt as _;
use reqwest::Response;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::helpers::*;
use crate::support::{ProcessConfig, Proxy, ProxyMode, ServerProcess};

fn from(address: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
    headers
}

async fn refresh(app: &TestApp, address: &str) -> Response {
    app.post_json_with(
        "/auth/refresh",
        json!({"refresh_token": "x"}),
        from(address),
    )
    .await
}

async fn wrong_login(app: &TestApp, email: &str, address: &str) -> Response {
    app.post_json_with(
        "/auth/login",
        json!({"email": email, "password": "wrong-password"}),
        from(address),
    )
    .await
}

/// The attempt (1-based) that first got 429, sending from `apps` in turn.
async fn first_429<'a, F, Fut>(apps: &[&'a TestApp], max: usize, send: F) -> Option<usize>
where
    F: Fn(&'a TestApp) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    for attempt in 1..=max {
        let status = send(apps[(attempt - 1) % apps.len()]).await.status();
        assert!(!status.is_server_error(), "attempt {attempt}: {status}");
        if status == 429 {
            return Some(attempt);
        }
    }
    None
}

fn shared_settings(s: &mut baton::config::Settings) {
    s.rate_limits = Switch::On;
    s.trusted_client_ip_header = Some("X-Forwarded-For".to_owned());
    s.rate_limit_refreshes_per_address = 6;
    s.rate_limit_login_attempts_per_address = 100;
    s.rate_limit_login_failures_per_account_and_address = 4;
    s.rate_limit_login_failures_per_account = 6;
}

async fn limits_hold_across_two_instances(backend: Backend) {
    let Some(a) = spawn_app_with(backend, shared_settings).await else {
        return;
    };
    let b = a.second_instance().await;
    let (a, b) = (&a.app, &b);

    let one = first_429(&[a], 20, |app| refresh(app, "203.0.113.1")).await;
    let two = first_429(&[a, b], 20, |app| refresh(app, "203.0.113.2")).await;
    eprintln!(
        "{backend:?}: refresh per address, first 429 at attempt {one:?} on one instance, {two:?} alternating two"
    );
    assert_eq!(one, Some(7));
    assert_eq!(two, Some(7), "the per-address limit holds across instances");
    // The contrast: counted in each instance's memory, two instances allow
    // twice the limit.
    let mut settings = a.settings.clone();
    settings.rate_limit_store = "memory".to_owned();
    let (c, d) = (
        TestApp::start(
            settings.clone(),
            backend,
            baton::domain::ManualClock::starting_now(),
        )
        .await,
        TestApp::start(
            settings,
            backend,
            baton::domain::ManualClock::starting_now(),
        )
        .await,
    );
    let apart = first_429(&[&c, &d], 20, |app| refresh(app, "203.0.113.2")).await;
    eprintln!(
        "{backend:?}: with BATON_RATE_LIMIT_STORE=memory, first 429 at attempt {apart:?} alternating two"
    );
    assert_eq!(apart, Some(13));

    let email = TestUser::random().email;
    let one = first_429(&[a], 20, |app| wrong_login(app, &email, "203.0.113.3")).await;
    let email = TestUser::random().email;
    let two = first_429(&[a, b], 20, |app| wrong_login(app, &email, "203.0.113.4")).await;
    eprintln!(
        "{backend:?}: failed logins per account and address, first 429 at attempt {one:?} on one instance, {two:?} alternating two"
    );
    assert_eq!(one, Some(5));
    assert_eq!(
        two,
        Some(5),
        "the per-(account, address) limit holds across instances"
    );

    // Failures per account from all addresses add up across instances too:
    // six addresses fail once each, alternating; then one that failed waits
    // on either instance, while a clean address is admitted.
    let victim = a.new_user().await;
    for i in 0..6 {
        let app = if i % 2 == 0 { a } else { b };
        let r = wrong_login(app, &victim.email, &format!("198.51.100.{i}")).await;
        assert_eq!(r.status(), 401);
    }
    for app in [a, b] {
        let r = wrong_login(app, &victim.email, "198.51.100.1").await;
        assert_eq!(r.status(), 429, "the account's failures are shared");
    }
    let r = b
        .post_json_with(
            "/auth/login",
            json!({"email": victim.email, "password": victim.password}),
            from("203.0.113.99"),
        )
        .await;
    assert_eq!(r.status(), 200, "a clean address is admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_two_instances_on_one_postgres_database() {
    limits_hold_across_two_instances(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_two_instances_on_one_mariadb_database() {
    limits_hold_across_two_instances(Backend::MariaDb).await;
}

async fn redis_reachable() -> bool {
    let reachable = matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect("127.0.0.1:6379"),
        )
        .await,
        Ok(Ok(_))
    );
    if !reachable {
        if std::env::var_os("CI").is_some() {
            panic!("Redis is unreachable in CI at 127.0.0.1:6379");
        }
        eprintln!("SKIPPED: Redis is unreachable at 127.0.0.1:6379");
    }
    reachable
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_shares_limits_between_instances_on_different_databases() {
    if !redis_reachable().await {
        return;
    }
    let configure = |s: &mut baton::config::Settings| {
        shared_settings(s);
        s.rate_limit_store = "redis://127.0.0.1:6379/".to_owned();
    };
    // Two SQLite databases: only Redis connects them.
    let Some(a) = spawn_app_with(Backend::Sqlite, configure).await else {
        return;
    };
    let Some(b) = spawn_app_with(Backend::Sqlite, configure).await else {
        return;
    };
    // A fresh address per run: Redis outlives the test.
    let id = uuid::Uuid::new_v4().as_bytes().to_owned();
    let address = format!("10.{}.{}.{}", id[0], id[1], id[2]);
    let two = first_429(&[&a.app, &b.app], 20, |app| refresh(app, &address)).await;
    eprintln!("Redis: refresh per address, first 429 at attempt {two:?} alternating two instances");
    assert_eq!(two, Some(7));
    let email = TestUser::random().email;
    let two = first_429(&[&a.app, &b.app], 20, |app| {
        wrong_login(app, &email, &address)
    })
    .await;
    assert_eq!(two, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_store_degrades_to_memory_with_a_warning_and_never_a_5xx() {
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let store = database.url.replace(":5432/", &format!(":{}/", proxy.port));
    let config = ProcessConfig::new(&database.url)
        .with("BATON_RATE_LIMITS", "on")
        .with("BATON_RATE_LIMIT_STORE", &store)
        .with("BATON_RATE_LIMIT_REFRESHES_PER_ADDRESS", "4");
    let server = ServerProcess::start(&config).await;
    let client = reqwest::Client::new();
    let refresh = || async {
        let started = Instant::now();
        let r = client
            .post(server.url("/auth/refresh"))
            .json(&json!({"refresh_token": "x"}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("an answer");
        (r.status().as_u16(), started.elapsed())
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(refresh().await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429], "the store counts");
    assert!(!server.log().contains("rate_limit_store_degraded"));

    for mode in [ProxyMode::Refuse, ProxyMode::Stall] {
        proxy.set(mode);
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let (status, took) = refresh().await;
            assert!(
                took < Duration::from_secs(3),
                "{mode:?}: answered in {took:?}"
            );
            statuses.push(status);
        }
        eprintln!("store {mode:?}: {statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == 401 || *s == 429),
            "{mode:?}: never a 5xx: {statuses:?}"
        );
        // Memory took over and still limits.
        assert_eq!(statuses.last(), Some(&429), "{mode:?}: {statuses:?}");
    }
    let log = server.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("rate_limit_store_degraded"))
        .count();
    assert!(warnings >= 1, "a warning is logged:\n{log}");
    assert!(
        warnings <= 2,
        "at most once a minute (per instance):\n{log}"
    );
    assert!(log.contains("WARN"));

    proxy.set(ProxyMode::Up);
    let (status, _) = refresh().await;
    assert!(status == 401 || status == 429, "{status}");
}

/// Resident memory of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_logins_with_60_kb_emails_from_distinct_addresses_grow_rss_by_less_than_16_mib()
{
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("SKIPPED: no /proc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/baton.db", dir.path().display());
    let config = ProcessConfig::new(&url)
        .with("BATON_RATE_LIMITS", "on")
        .with("BATON_TRUSTED_CLIENT_IP_HEADER", "X-Forwarded-For");
    let server = ServerProcess::start(&config).await;
    let client = reqwest::Client::new();
    let padding = "a".repeat(60 * 1024);
    let login = |i: usize| {
        let client = client.clone();
        let url = server.url("/auth/login");
        let email = format!("{i}-{padding}@example.test");
        let address = format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256);
        async move {
            client
                .post(url)
                .header("x-forwarded-for", address)
                .json(&json!({"email": email, "password": "wrong-password"}))
                .send()
                .await
                .expect("an answer")
                .status()
                .as_u16()
        }
    };
    let run = |range: std::ops::Range<usize>| {
        futures::stream::iter(range)
            .map(login)
            .buffer_unordered(8)
            .collect::<Vec<u16>>()
    };
    // Warm up: the allocator's and the hasher's high-water marks.
    let warm = run(0..64).await;
    assert!(warm.iter().all(|s| *s == 401), "{warm:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid());
    let started = Instant::now();
    let statuses = run(1_000..2_000).await;
    let took = started.elapsed();
    assert!(
        statuses.iter().all(|s| *s == 401),
        "every login was counted, none refused"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib(server.pid());
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS {before} KiB -> {after} KiB (+{growth} KiB) over 1,000 logins with 60 KB emails in {took:?}"
    );
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB");
}
