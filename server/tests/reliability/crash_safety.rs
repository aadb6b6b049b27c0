//! Issue 7 "Crash safety": the real binary is killed with SIGKILL while
//! refreshes run in many families, restarted on the same database, and the
//! invariants are checked straight from the tables and over HTTP:
//! - no family has two live tokens, none forked, no rotation is torn;
//! - the newest token each family got is still good, or (when the refresh
//!   in flight at the kill had committed) the family answers consistently;
//! - a token rotated before the crash is refused after it, outside the grace,
//!   and that reuse revokes its family;
//! - no user is lost.

use std::time::{Duration, Instant};

use baton::storage::sessions::{count_live_tokens, find_session, find_token};
use futures::future::join_all;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::{
    ProcessConfig, ServerProcess, count, now_ms, refresh_token_invariants, token_hash,
};

const USERS: usize = 3;
const FAMILIES_PER_USER: usize = 3;
const ROUNDS: usize = 3;

struct Family {
    session_id: String,
    /// The newest refresh token a 200 handed out.
    newest: String,
    /// The latest token whose rotation a 200 confirmed before the crash.
    rotated: Option<String>,
    /// A refresh of `newest` was in flight when the server died.
    in_doubt: bool,
    refreshes: usize,
    /// Answers other than 200 before the kill (there must be none).
    unexpected: Vec<String>,
}

async fn refresh(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<(u16, Value), String> {
    let r = client
        .post(format!("{base}/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.map_err(|e| format!("{e:?}"))?;
    Ok((status, body))
}

fn token_of(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("refresh_token in the body")
        .to_owned()
}

/// Refreshes one family in a loop until the server goes away. With a grace,
/// every third step sends the same token twice at once (two tabs).
async fn churn(client: reqwest::Client, base: String, mut family: Family, twins: bool) -> Family {
    loop {
        let old = family.newest.clone();
        let outcome = if twins && family.refreshes % 3 == 2 {
            let (a, b) = tokio::join!(refresh(&client, &base, &old), refresh(&client, &base, &old));
            match (a, b) {
                (Ok((200, x)), Ok((200, y))) => {
                    if token_of(&x) != token_of(&y) {
                        family
                            .unexpected
                            .push("two concurrent refreshes forked the family".to_owned());
                    }
                    Ok(Some(token_of(&x)))
                }
                // One answer came back: its successor is the family's newest
                // token (the other request could only have converged on it).
                (Ok((200, x)), Err(_)) | (Err(_), Ok((200, x))) => Err(Some(token_of(&x))),
                (Err(_), Err(_)) => Err(None),
                (Ok((s, body)), _) | (_, Ok((s, body))) => {
                    family.unexpected.push(format!("{s}: {body}"));
                    Ok(None)
                }
            }
        } else {
            match refresh(&client, &base, &old).await {
                Ok((200, body)) => Ok(Some(token_of(&body))),
                Ok((s, body)) => {
                    family.unexpected.push(format!("{s}: {body}"));
                    Ok(None)
                }
                Err(_) => Err(None),
            }
        };
        match outcome {
            Ok(Some(new)) => {
                family.rotated = Some(old);
                family.newest = new;
                family.refreshes += 1;
            }
            Ok(None) => return family,
            Err(Some(new)) => {
                family.rotated = Some(old);
                family.newest = new;
                family.refreshes += 1;
                return family;
            }
            Err(None) => {
                family.in_doubt = true;
                return family;
            }
        }
    }
}

async fn login(client: &reqwest::Client, base: &str, user: &TestUser) -> Family {
    let r = client
        .post(format!("{base}/auth/login"))
        .json(
            &json!({"email": user.email, "password": user.password, "refresh_token_in_body": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login");
    let body: Value = r.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    Family {
        session_id: claims(access)["sid"].as_str().unwrap().to_owned(),
        newest: token_of(&body),
        rotated: None,
        in_doubt: false,
        refreshes: 0,
        unexpected: Vec::new(),
    }
}

async fn check_tables(db: &DatabaseConnection, users: &[TestUser], when: &str) {
    let violations = refresh_token_invariants(db, now_ms()).await;
    assert!(violations.is_empty(), "{when}: {violations:#?}");
    for user in users {
        let n = count(
            db,
            &format!(
                "SELECT COUNT(*) FROM users WHERE email_normalized = '{}'",
                user.email.to_lowercase()
            ),
        )
        .await;
        assert_eq!(n, 1, "{when}: user {} lost", user.email);
    }
}

async fn live_tokens(db: &DatabaseConnection, sid: &str) -> usize {
    count_live_tokens(db, sid, now_ms()).await.unwrap()
}

async fn session_revoked(db: &DatabaseConnection, sid: &str) -> bool {
    find_session(db, sid)
        .await
        .unwrap()
        .expect("the session exists")
        .revoked_at
        .is_some()
}

fn refusal_code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

async fn kill_9_during_refreshes(backend: Backend, grace: Duration, rounds: usize) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let config = ProcessConfig::new(&database.url).with(
        "BATON_REFRESH_REUSE_GRACE",
        &format!("{}s", grace.as_secs()),
    );
    let mut server = ServerProcess::start(&config).await;
    let client = reqwest::Client::new();
    let mut users = Vec::new();
    for _ in 0..USERS {
        let user = TestUser::random();
        let r = client
            .post(server.url("/auth/register"))
            .json(&json!({"email": user.email, "password": user.password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        users.push(user);
    }
    let db = sea_orm::Database::connect(&database.url).await.unwrap();
    let mut total_refreshes = 0;
    for round in 0..rounds {
        let mut families = Vec::new();
        for user in &users {
            for _ in 0..FAMILIES_PER_USER {
                families.push(login(&client, &server.address, user).await);
            }
        }
        let workers: Vec<_> = families
            .into_iter()
            .map(|f| {
                tokio::spawn(churn(
                    client.clone(),
                    server.address.clone(),
                    f,
                    !grace.is_zero(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(250 + 170 * round as u64)).await;
        server.kill_9();
        let killed_at = Instant::now();
        let mut families: Vec<Family> = join_all(workers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for f in &families {
            assert!(
                f.unexpected.is_empty(),
                "answers before the kill: {:?}",
                f.unexpected
            );
        }
        let refreshes: usize = families.iter().map(|f| f.refreshes).sum();
        assert!(
            refreshes > 0,
            "round {round}: no refresh ran before the kill"
        );
        total_refreshes += refreshes;

        // 1. The tables as the crash left them.
        check_tables(&db, &users, &format!("round {round}, after kill -9")).await;

        // 2. Restart on the same database; the newest token of each family.
        server = ServerProcess::start(&config).await;
        let mut lost_responses = 0;
        for f in &mut families {
            let row = find_token(&db, &token_hash(&f.newest))
                .await
                .unwrap()
                .expect("every token a 200 handed out is stored");
            let (status, body) = refresh(&client, &server.address, &f.newest).await.unwrap();
            if row.rotated_at.is_none() && row.revoked_at.is_none() {
                assert_eq!(
                    status, 200,
                    "round {round}: an unrotated newest token: {body}"
                );
            } else {
                // The refresh in flight at the kill committed; its answer was lost.
                assert!(f.in_doubt, "round {round}: rotated behind our back");
                assert!(row.rotated_at.is_some(), "round {round}: {row:?}");
                lost_responses += 1;
                if grace.is_zero() {
                    assert_eq!(status, 401, "round {round}: strict reuse: {body}");
                }
            }
            let live = live_tokens(&db, &f.session_id).await;
            if status == 200 {
                assert_eq!(live, 1, "round {round}: one live token after a refresh");
                // Not counted as `rotated`: this rotation may still be inside the grace.
                f.newest = token_of(&body);
            } else {
                assert_eq!(status, 401, "{body}");
                assert!(
                    ["refresh_token_reused", "session_revoked"].contains(&refusal_code(&body)),
                    "{body}"
                );
                assert_eq!(live, 0, "round {round}: a refused family has no live token");
                assert!(session_revoked(&db, &f.session_id).await);
            }
        }

        // 3. A token rotated before the crash, presented outside the grace.
        let outside_grace = killed_at + grace + Duration::from_millis(500);
        tokio::time::sleep_until(outside_grace.into()).await;
        for f in &families {
            let Some(rotated) = &f.rotated else { continue };
            let (status, body) = refresh(&client, &server.address, rotated).await.unwrap();
            assert_eq!(
                status, 401,
                "round {round}: a rotated token outside the grace: {body}"
            );
            assert!(
                ["refresh_token_reused", "session_revoked"].contains(&refusal_code(&body)),
                "{body}"
            );
            let (status, _) = refresh(&client, &server.address, &f.newest).await.unwrap();
            assert_eq!(status, 401, "round {round}: reuse revoked the whole family");
            assert_eq!(live_tokens(&db, &f.session_id).await, 0);
        }

        // 4. The tables again, and every user can still log in.
        check_tables(&db, &users, &format!("round {round}, after the checks")).await;
        for user in &users {
            let r = client
                .post(server.url("/auth/login"))
                .json(&json!({"email": user.email, "password": user.password}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "round {round}: {} can log in", user.email);
        }
        eprintln!(
            "{backend:?} grace {grace:?} round {round}: {refreshes} refreshes before kill -9, \
             {} in flight, {lost_responses} committed with the answer lost",
            families.iter().filter(|f| f.in_doubt).count()
        );
    }
    eprintln!(
        "{backend:?} grace {grace:?}: {rounds} kills, {total_refreshes} refreshes; invariants held"
    );
    let _ = db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_kill_9_during_refreshes_keeps_every_invariant_with_no_grace() {
    kill_9_during_refreshes(Backend::Sqlite, Duration::ZERO, ROUNDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_kill_9_during_refreshes_keeps_every_invariant_with_a_grace() {
    kill_9_during_refreshes(Backend::Sqlite, Duration::from_secs(2), ROUNDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_kill_9_during_refreshes_keeps_every_invariant_with_no_grace() {
    kill_9_during_refreshes(Backend::Postgres, Duration::ZERO, ROUNDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_kill_9_during_refreshes_keeps_every_invariant_with_a_grace() {
    kill_9_during_refreshes(Backend::Postgres, Duration::from_secs(2), ROUNDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_kill_9_during_refreshes_keeps_every_invariant_with_no_grace() {
    kill_9_during_refreshes(Backend::MariaDb, Duration::ZERO, ROUNDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_kill_9_during_refreshes_keeps_every_invariant_with_a_grace() {
    kill_9_during_refreshes(Backend::MariaDb, Duration::from_secs(2), ROUNDS).await;
}

/// The default grace (10 s): one round, since it waits out the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_kill_9_during_refreshes_keeps_every_invariant_with_the_default_grace() {
    kill_9_during_refreshes(Backend::Sqlite, Duration::from_secs(10), 1).await;
}
