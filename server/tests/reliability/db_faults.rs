//! Issue 7 "Database faults": a TCP proxy of the test's own sits between the
//! server and the database; cutting it must turn every endpoint that needs
//! the database into a prompt 503 `service_unavailable`, `/readyz` into 503
//! while `/healthz` (and what needs no database) stays 200, and restoring it
//! must bring the service back without a restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::Response;
use serde_json::json;

use crate::helpers::*;
use crate::support::{Proxy, ProxyMode};

/// BATON_DB_TIMEOUT of the server under test (the smallest it accepts).
const DB_TIMEOUT: Duration = Duration::from_secs(1);
/// Every answer during an outage must come within this bound (the pool's
/// acquire timeout is 2 × DB_TIMEOUT); a bound, not a performance figure.
const ANSWER_BOUND: Duration = Duration::from_secs(5);
/// Cut/restore cycles per test.
const CYCLES: usize = 3;

fn upstream(backend: Backend) -> SocketAddr {
    match backend {
        Backend::Postgres => "127.0.0.1:5432".parse().unwrap(),
        Backend::MariaDb => "127.0.0.1:3306".parse().unwrap(),
        Backend::Sqlite => unreachable!("SQLite has no network to cut"),
    }
}

/// Starts the app with its database behind a fresh proxy.
async fn app_behind_proxy(backend: Backend) -> Option<(TestApp, Proxy, TestDatabase)> {
    let database = TestDatabase::create(backend).await?;
    let proxy = Proxy::start(upstream(backend)).await;
    let direct = upstream(backend).to_string();
    let url = database
        .url
        .replace(&direct, &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(url, database.url, "the URL goes through the proxy");
    let master = baton::domain::keys::MasterKey::generate();
    let mut settings = test_settings(&url, &master);
    settings.db_timeout = DB_TIMEOUT;
    let app = TestApp::start(
        settings,
        backend,
        baton::domain::ManualClock::starting_now(),
    )
    .await;
    Some((app, proxy, database))
}

/// One request during the outage: its name, and how long it took.
async fn timed(
    name: &'static str,
    request: impl Future<Output = Response>,
) -> (&'static str, Duration, Response) {
    let start = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer at all within 30 s during the outage"));
    (name, start.elapsed(), response)
}

async fn database_fault_cycle(backend: Backend, mode: ProxyMode) {
    let Some((app, proxy, _database)) = app_behind_proxy(backend).await else {
        return;
    };
    let user = app.new_user().await;
    for cycle in 0..CYCLES {
        let tokens = app.login_body(&user).await;
        let sid = tokens.session_id();
        assert_eq!(
            app.get("/readyz").await.status(),
            200,
            "ready before the cut"
        );

        proxy.set(mode);
        let newcomer = TestUser::random();
        let at = tokens.access_token.as_str();
        let results = join_all(vec![
            Box::pin(timed(
                "register",
                app.register(&newcomer.email, &newcomer.password),
            )) as std::pin::Pin<Box<dyn Future<Output = _> + Send>>,
            Box::pin(timed("login", app.login(&user.email, &user.password))),
            Box::pin(timed(
                "refresh (body)",
                app.refresh_body(&tokens.refresh_token),
            )),
            Box::pin(timed(
                "refresh (cookie)",
                app.refresh_cookie(&tokens.refresh_token),
            )),
            Box::pin(timed("logout", app.logout_body(&tokens.refresh_token))),
            Box::pin(timed("list sessions", app.sessions(at))),
            Box::pin(timed("revoke one session", app.revoke_session(at, &sid))),
            Box::pin(timed("revoke all sessions", app.revoke_all_sessions(at))),
            Box::pin(timed("readyz", app.get("/readyz"))),
        ])
        .await;
        for (name, took, response) in results {
            assert!(
                took < ANSWER_BOUND,
                "cycle {cycle} {mode:?}: {name} took {took:?} (bound {ANSWER_BOUND:?})"
            );
            let status = response.status().as_u16();
            assert_eq!(
                status, 503,
                "cycle {cycle} {mode:?}: {name} answered {status} while the database was cut"
            );
            assert_service_unavailable(response, &format!("cycle {cycle} {mode:?}: {name}")).await;
        }
        // What needs no database keeps working.
        assert_eq!(
            app.get("/healthz").await.status(),
            200,
            "liveness is not readiness"
        );
        assert_eq!(app.get("/.well-known/jwks.json").await.status(), 200);
        assert_eq!(
            app.get("/.well-known/auth-configuration").await.status(),
            200
        );
        // Access tokens are stateless and accounts never change: an account
        // this instance has seen (at login) is answered from memory.
        let me = app.me(at).await;
        assert_eq!(me.status(), 200, "cycle {cycle} {mode:?}: /auth/me");
        let me: serde_json::Value = me.json().await.unwrap();
        assert_eq!(me["email"], user.email.as_str());

        proxy.set(ProxyMode::Up);
        let recovered = recover(&app, &user).await;
        assert!(
            recovered.is_some(),
            "cycle {cycle} {mode:?}: no successful login within 40 attempts after the database returned"
        );
        assert_eq!(app.get("/readyz").await.status(), 200, "ready again");
        // Nothing that failed with 503 changed state: the refresh token
        // presented during the outage was not spent, the session not revoked.
        let r = app.refresh_body(&tokens.refresh_token).await;
        assert_eq!(
            r.status(),
            200,
            "cycle {cycle}: the token presented during the outage still refreshes"
        );
        assert_eq!(app.me(at).await.status(), 200);
        assert_eq!(app.sessions(at).await.status(), 200);
        let r = app.register(&newcomer.email, &newcomer.password).await;
        assert_eq!(
            r.status(),
            201,
            "the registration that got 503 did not happen"
        );
    }
}

/// Logs in until it works: at most 40 attempts, 250 ms apart.
async fn recover(app: &TestApp, user: &TestUser) -> Option<usize> {
    for attempt in 1..=40 {
        let r = tokio::time::timeout(
            ANSWER_BOUND,
            app.post_json(
                "/auth/login",
                json!({"email": user.email, "password": user.password}),
            ),
        )
        .await
        .expect("an answer within the bound while recovering");
        match r.status().as_u16() {
            200 => return Some(attempt),
            503 => tokio::time::sleep(Duration::from_millis(250)).await,
            other => panic!("while recovering, login answered {other}"),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_refused_gives_503_within_bounds_and_recovers_without_restart() {
    database_fault_cycle(Backend::Postgres, ProxyMode::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_partitioned_gives_503_within_bounds_and_recovers_without_restart() {
    database_fault_cycle(Backend::Postgres, ProxyMode::Stall).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_refused_gives_503_within_bounds_and_recovers_without_restart() {
    database_fault_cycle(Backend::MariaDb, ProxyMode::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_partitioned_gives_503_within_bounds_and_recovers_without_restart() {
    database_fault_cycle(Backend::MariaDb, ProxyMode::Stall).await;
}

/// BATON_DB_TIMEOUT bounds every statement on every pooled connection, not
/// only on the one that happened to run the session setup: several slow
/// statements at once (so on several connections) must all be cut.
async fn every_pooled_connection_has_the_statement_timeout(backend: Backend, sleep_sql: &str) {
    use sea_orm::ConnectionTrait as _;
    let Some(app) = spawn_app_with(backend, |s| s.db_timeout = DB_TIMEOUT).await else {
        return;
    };
    let slow = (0..4).map(|_| async {
        let start = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(40),
            app.db.execute_unprepared(sleep_sql),
        )
        .await;
        let outcome = match result {
            Ok(Ok(_)) => "completed".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer in 40 s".to_owned(),
        };
        (start.elapsed(), outcome)
    });
    let runs = join_all(slow).await;
    // Each statement must have been cut by the database's own limit: an error,
    // well before the 30 s it asked for. (How long it waited for a connection
    // first is the pool's bound, checked over HTTP by the tests above.)
    let sleep = Duration::from_secs(30);
    assert!(
        runs.iter()
            .all(|(took, outcome)| *took < sleep && outcome != "completed"),
        "{backend:?}: 4 concurrent slow statements (BATON_DB_TIMEOUT {DB_TIMEOUT:?}) ran: {runs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_statements_are_cut_at_the_db_timeout_on_every_connection() {
    every_pooled_connection_has_the_statement_timeout(Backend::Postgres, "SELECT pg_sleep(30)")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_statements_are_cut_at_the_db_timeout_on_every_connection() {
    every_pooled_connection_has_the_statement_timeout(Backend::MariaDb, "SELECT SLEEP(30)").await;
}

/// What one family saw while the database was cut under it.
struct Interrupted {
    session_id: String,
    /// The token of the refresh that got no 200 (503, or no answer in time).
    pending: String,
    /// How long that last answer took, and its status (None: none in 30 s).
    last: (Duration, Option<u16>),
    refreshes: usize,
}

/// Families refresh in a loop while the database is cut under them: every
/// request in flight at the cut must still be answered within the bound, and
/// a refresh that failed with 503 must be safe to retry with the same token
/// once the database is back (within the grace it converges on the same
/// successor even if its commit went through and only the answer was lost).
async fn refreshes_cut_mid_flight(backend: Backend, mode: ProxyMode) {
    const FAMILIES: usize = 12;
    let Some((app, proxy, _database)) = app_behind_proxy(backend).await else {
        return;
    };
    let user = app.new_user().await;
    let mut workers = Vec::new();
    for _ in 0..FAMILIES {
        let tokens = app.login_body(&user).await;
        let client = app.client.clone();
        let url = app.url("/auth/refresh");
        workers.push(tokio::spawn(async move {
            let mut family = Interrupted {
                session_id: tokens.session_id(),
                pending: tokens.refresh_token,
                last: (Duration::ZERO, None),
                refreshes: 0,
            };
            loop {
                let start = Instant::now();
                let sent = client
                    .post(&url)
                    .json(&json!({"refresh_token": family.pending}))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let took = start.elapsed();
                let Ok(r) = sent else {
                    family.last = (took, None);
                    return family;
                };
                let status = r.status().as_u16();
                if status != 200 {
                    family.last = (took, Some(status));
                    return family;
                }
                let body: serde_json::Value = r.json().await.unwrap();
                family.pending = body["refresh_token"].as_str().unwrap().to_owned();
                family.refreshes += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    proxy.set(mode);
    let families: Vec<Interrupted> = join_all(workers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    proxy.set(ProxyMode::Up);
    for f in &families {
        let (took, status) = f.last;
        assert_eq!(
            status,
            Some(503),
            "{mode:?}: a refresh in flight at the cut answered {status:?} after {took:?}"
        );
        assert!(took < ANSWER_BOUND, "{mode:?}: answered after {took:?}");
    }
    assert!(recover(&app, &user).await.is_some(), "recovers");
    let now = app.clock_now_millis();
    let db = &app.db;
    let violations = crate::support::refresh_token_invariants(db, now).await;
    assert!(violations.is_empty(), "{violations:#?}");
    for f in &families {
        let r = app.refresh_body(&f.pending).await;
        assert_eq!(
            r.status(),
            200,
            "{mode:?}: retrying the refresh that got 503 (after {} good ones)",
            f.refreshes
        );
        assert_eq!(app.live_tokens_in(&f.session_id).await, 1);
    }
    let total: usize = families.iter().map(|f| f.refreshes).sum();
    eprintln!("{backend:?} {mode:?}: {total} refreshes before the cut, {FAMILIES} interrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_refused_mid_refresh_answers_503_in_bounds_and_the_refresh_can_be_retried() {
    refreshes_cut_mid_flight(Backend::Postgres, ProxyMode::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_partitioned_mid_refresh_answers_503_in_bounds_and_the_refresh_can_be_retried() {
    refreshes_cut_mid_flight(Backend::Postgres, ProxyMode::Stall).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_partitioned_mid_refresh_answers_503_in_bounds_and_the_refresh_can_be_retried() {
    refreshes_cut_mid_flight(Backend::MariaDb, ProxyMode::Stall).await;
}
