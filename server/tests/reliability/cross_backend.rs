//! Issue 13: one rotation contract, three implementations (a writer thread
//! on SQLite, one statement on PostgreSQL, a short transaction on MariaDB).
//! The same random history of logins, refreshes, replays of older tokens,
//! logouts and clock steps is played against a server on each backend, and
//! every backend must answer every step the same way.
//!
//! 24 histories of up to 14 steps by default (about 20 s with all three
//! backends); more with `PROPTEST_CASES`.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use crate::helpers::*;

#[derive(Debug, Clone)]
enum Step {
    Login,
    /// Refresh family `family` with its newest token (`back` 0) or an older one.
    Refresh {
        family: usize,
        back: usize,
    },
    Logout {
        family: usize,
    },
    Advance(Duration),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Login),
        5 => (0..4usize, prop_oneof![3 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)])
            .prop_map(|(family, back)| Step::Refresh { family, back }),
        1 => (0..4usize).prop_map(|family| Step::Logout { family }),
        // Around the grace (10 s), the sliding life (60 s) and the session's
        // absolute life (100 s).
        2 => prop::sample::select(vec![1u64, 5, 10, 11, 30, 60])
            .prop_map(|s| Step::Advance(Duration::from_secs(s))),
    ]
}

fn history() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..14).prop_map(|mut steps| {
        steps.insert(0, Step::Login);
        steps
    })
}

fn configure(s: &mut baton::config::Settings) {
    s.refresh_reuse_grace = Duration::from_secs(10);
    s.refresh_ttl = Duration::from_secs(60);
    s.session_max_lifetime = Duration::from_secs(100);
}

/// Plays `steps`, describing each answer without anything backend- or
/// run-specific: a new token is "new", a token seen before is named by its
/// place in its family.
async fn play(app: &TestApp, user: &TestUser, steps: &[Step]) -> Vec<String> {
    let mut families: Vec<Vec<String>> = Vec::new();
    let mut log = Vec::new();
    for step in steps {
        let entry = match step {
            Step::Login => {
                let tokens = app.login_body(user).await;
                families.push(vec![tokens.refresh_token]);
                "login".to_owned()
            }
            Step::Refresh { family, back } => {
                let n = families.len();
                let tokens = &mut families[family % n];
                let presented = tokens[tokens.len().saturating_sub(1 + back)].clone();
                let r = app.refresh_body(&presented).await;
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                if status == 200 {
                    let token = body["refresh_token"].as_str().unwrap().to_owned();
                    match tokens.iter().position(|t| *t == token) {
                        Some(k) => format!("200 again #{k}"),
                        None => {
                            tokens.push(token);
                            "200 new".to_owned()
                        }
                    }
                } else {
                    format!("{status} {}", body["code"])
                }
            }
            Step::Logout { family } => {
                let n = families.len();
                let newest = families[family % n].last().unwrap().clone();
                format!(
                    "logout {}",
                    app.logout_body(&newest).await.status().as_u16()
                )
            }
            Step::Advance(by) => {
                app.clock.advance(*by);
                format!("+{}s", by.as_secs())
            }
        };
        log.push(entry);
    }
    log
}

#[test]
fn every_backend_answers_the_same_history_of_refreshes_replays_logouts_and_clock_steps_alike() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let apps: Vec<Harness> = rt.block_on(async {
        let mut apps = Vec::new();
        for backend in [Backend::Sqlite, Backend::Postgres, Backend::MariaDb] {
            if let Some(app) = spawn_app_with(backend, configure).await {
                apps.push(app);
            }
        }
        apps
    });
    if apps.len() < 2 {
        eprintln!("SKIPPED: fewer than two backends are reachable");
        return;
    }
    let users: Vec<TestUser> = rt.block_on(async {
        let mut users = Vec::new();
        for app in &apps {
            users.push(app.new_user().await);
        }
        users
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    });
    let result = runner.run(&history(), |steps| {
        let logs: Vec<Vec<String>> = rt.block_on(async {
            let mut logs = Vec::new();
            for (app, user) in apps.iter().zip(&users) {
                logs.push(play(app, user, &steps).await);
            }
            logs
        });
        for (app, log) in apps.iter().zip(&logs).skip(1) {
            if *log != logs[0] {
                return Err(TestCaseError::fail(format!(
                    "{:?} answered {log:?}, SQLite {:?}",
                    app.backend, logs[0]
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
