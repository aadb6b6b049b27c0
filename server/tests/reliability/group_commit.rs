//! Issue 13 "Group commit under fire": on SQLite concurrent rotations share
//! one transaction, a savepoint each (storage::rotation). Fifty at once, of
//! one token and of many, with one that fails inside the batch: exactly the
//! contract's outcomes, at most one live token per family, no lost rotation.
//! The same tests run on PostgreSQL and MariaDB, which rotate one by one.

use std::time::Duration;

use baton::domain::rotation::RotationOutcome;
use baton::storage::StorageError;
use baton::storage::sessions::{count_live_tokens, find_token};
use futures::future::join_all;
use sea_orm::sqlx::{self, Connection as _};

use crate::backend_test;
use crate::helpers::*;
use crate::rotation_failures::{fresh_hash, hash_of, rotation, rotations};

const N: usize = 50;

/// On SQLite, holds the database's write lock from another connection for a
/// moment, as another process would: the rotations submitted meanwhile
/// queue up and then commit as one batch. A no-op elsewhere.
async fn hold_the_write_lock(app: &TestApp) -> Option<tokio::task::JoinHandle<()>> {
    if app.backend != Backend::Sqlite {
        return None;
    }
    let mut conn = sqlx::SqliteConnection::connect(&app.settings.database_url())
        .await
        .expect("a second SQLite connection");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("the write lock");
    Some(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
    }))
}

backend_test!(
    fifty_concurrent_rotations_of_one_token_rotate_it_once_and_report_the_rest_with_its_unused_successor,
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        let rotations = rotations(&app.db);
        let now = app.clock_now_millis() + 1;
        let successor = fresh_hash();
        let held = hold_the_write_lock(&app).await;
        let outcomes = join_all((0..N).map(|_| {
            rotations.rotate(rotation(&tokens.refresh_token, successor.clone(), now))
        }))
        .await;
        if let Some(held) = held {
            held.await.unwrap();
        }
        let mut rotated = 0;
        for outcome in outcomes {
            match outcome.expect("no rotation fails") {
                RotationOutcome::Rotated { family, .. } => {
                    assert_eq!(family.session_id, tokens.session_id());
                    rotated += 1;
                }
                RotationOutcome::AlreadyRotated(earlier) => {
                    assert_eq!(earlier.rotated_at.as_millis(), now);
                    let next = earlier.successor.expect("the successor is reported");
                    assert!(next.unused, "nobody used the successor yet");
                }
                other => panic!("only rotated or already rotated: {other:?}"),
            }
        }
        assert_eq!(rotated, 1, "exactly one of {N} rotates the token");
        assert_eq!(
            count_live_tokens(&app.db, &tokens.session_id(), now)
                .await
                .unwrap(),
            1
        );
        let stored = find_token(&app.db, &successor.0).await.unwrap();
        assert!(stored.is_some(), "the rotation that won was committed");
    }
);

backend_test!(
    fifty_concurrent_rotations_of_many_tokens_all_commit_but_the_one_that_fails,
    |app| {
        let user = app.new_user().await;
        let families = join_all((0..N).map(|_| app.login_body(&user))).await;
        let rotations = rotations(&app.db);
        let now = app.clock_now_millis() + 1;
        // The last rotation's successor hash is taken (by the first family's
        // token): a unique violation in the middle of the batch.
        let failing = N - 1;
        let successors: Vec<_> = (0..N)
            .map(|i| {
                if i == failing {
                    hash_of(&families[0].refresh_token)
                } else {
                    fresh_hash()
                }
            })
            .collect();
        let held = hold_the_write_lock(&app).await;
        let outcomes = join_all(families.iter().zip(&successors).map(|(tokens, successor)| {
            rotations.rotate(rotation(&tokens.refresh_token, successor.clone(), now))
        }))
        .await;
        if let Some(held) = held {
            held.await.unwrap();
        }
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let tokens = &families[i];
            let presented = find_token(&app.db, &hash_of(&tokens.refresh_token).0)
                .await
                .unwrap()
                .expect("the presented token is stored");
            if i == failing {
                assert!(
                    matches!(outcome, Err(StorageError::UniqueViolation(_))),
                    "the rotation whose successor is taken fails: {outcome:?}"
                );
                assert_eq!(presented.rotated_at, None, "and claims nothing");
            } else {
                match outcome {
                    Ok(RotationOutcome::Rotated { family, .. }) => {
                        assert_eq!(family.session_id, tokens.session_id());
                    }
                    other => panic!("family {i} rotates: {other:?}"),
                }
                assert_eq!(presented.rotated_at, Some(now), "family {i} was claimed");
                let successor = find_token(&app.db, &successors[i].0)
                    .await
                    .unwrap()
                    .expect("no rotation is lost");
                assert_eq!(successor.parent_id.as_deref(), Some(presented.id.as_str()));
            }
            assert_eq!(
                count_live_tokens(&app.db, &tokens.session_id(), now)
                    .await
                    .unwrap(),
                1,
                "family {i} has one live token"
            );
        }
    }
);

/// Two refreshes of each of 25 families at once, over HTTP.
async fn refresh_pairs(app: &TestApp, families: &[Tokens]) -> Vec<[(u16, serde_json::Value); 2]> {
    join_all(families.iter().map(|tokens| async {
        let one = async {
            let r = app.refresh_body(&tokens.refresh_token).await;
            (r.status().as_u16(), r.json().await.unwrap())
        };
        let (a, b) = futures::join!(one, async {
            let r = app.refresh_body(&tokens.refresh_token).await;
            (r.status().as_u16(), r.json().await.unwrap())
        });
        [a, b]
    }))
    .await
}

backend_test!(
    with_no_grace_fifty_concurrent_refreshes_of_25_families_give_one_winner_each_and_revoke_the_rest,
    |s| {
        s.refresh_reuse_grace = Duration::ZERO;
    },
    |app| {
        let user = app.new_user().await;
        let families = join_all((0..N / 2).map(|_| app.login_body(&user))).await;
        let answers = refresh_pairs(&app, &families).await;
        for (tokens, pair) in families.iter().zip(&answers) {
            let statuses = [pair[0].0, pair[1].0];
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "one winner per family: {statuses:?}"
            );
            let loser = pair.iter().find(|(s, _)| *s != 200).unwrap();
            assert_eq!(loser.0, 401);
            let code = loser.1["code"].as_str().unwrap();
            assert!(["refresh_token_reused", "session_revoked"].contains(&code), "{code}");
            assert!(app.live_tokens_in(&tokens.session_id()).await <= 1);
        }
    }
);

backend_test!(
    with_a_grace_fifty_concurrent_refreshes_of_25_families_converge_on_one_token_each,
    |app| {
        let user = app.new_user().await;
        let families = join_all((0..N / 2).map(|_| app.login_body(&user))).await;
        let answers = refresh_pairs(&app, &families).await;
        for (tokens, pair) in families.iter().zip(&answers) {
            assert_eq!([pair[0].0, pair[1].0], [200, 200]);
            assert_eq!(
                pair[0].1["refresh_token"], pair[1].1["refresh_token"],
                "the family must not fork"
            );
            assert_eq!(app.live_tokens_in(&tokens.session_id()).await, 1);
            let successor = pair[0].1["refresh_token"].as_str().unwrap();
            assert_eq!(app.refresh_body(successor).await.status(), 200);
        }
    }
);
