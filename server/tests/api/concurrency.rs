//! CONTRACT §3 "Atomicity": N concurrent refreshes with one token.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;

use crate::backend_test;
use crate::helpers::*;

const N: usize = 50;

async fn refresh_concurrently(app: &TestApp, token: &str) -> Vec<(u16, Value)> {
    let requests = (0..N).map(|_| async {
        let r = app.refresh_body(token).await;
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    });
    join_all(requests).await
}

backend_test!(
    with_no_grace_exactly_one_of_50_concurrent_refreshes_wins,
    |s| {
        s.refresh_reuse_grace = Duration::ZERO;
    },
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        let results = refresh_concurrently(&app, &tokens.refresh_token).await;
        let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(
            winners.len(),
            1,
            "statuses: {:?}",
            results.iter().map(|r| r.0).collect::<Vec<_>>()
        );
        for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(*status, 401);
            let code = body["code"].as_str().unwrap();
            assert!(
                ["refresh_token_reused", "session_revoked"].contains(&code),
                "{code}"
            );
        }
        assert!(app.live_tokens_in(&tokens.session_id()).await <= 1);
    }
);

backend_test!(
    with_a_grace_all_50_concurrent_refreshes_get_the_same_new_token,
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        let results = refresh_concurrently(&app, &tokens.refresh_token).await;
        let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
        assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
        let successors: HashSet<&str> = results
            .iter()
            .map(|(_, b)| b["refresh_token"].as_str().unwrap())
            .collect();
        assert_eq!(successors.len(), 1, "the family must not fork");
        assert_eq!(app.live_tokens_in(&tokens.session_id()).await, 1);
        let successor = successors.into_iter().next().unwrap().to_owned();
        assert_eq!(app.refresh_body(&successor).await.status(), 200);
    }
);

backend_test!(concurrent_writes_of_one_user_never_fail_with_5xx, |app| {
    let user = app.new_user().await;
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(app.login_body(&user).await);
    }
    let refreshes = sessions
        .iter()
        .map(|s| async { app.refresh_body(&s.refresh_token).await.status().as_u16() });
    let revocations = (0..3).map(|_| async {
        app.revoke_all_sessions(&sessions[0].access_token)
            .await
            .status()
            .as_u16()
    });
    let logouts = sessions
        .iter()
        .map(|s| async { app.logout_body(&s.refresh_token).await.status().as_u16() });
    let (a, b, c) = futures::join!(
        join_all(refreshes),
        join_all(revocations),
        join_all(logouts)
    );
    let statuses: Vec<u16> = a.into_iter().chain(b).chain(c).collect();
    assert!(statuses.iter().all(|s| *s < 500), "{statuses:?}");
    for s in &sessions {
        assert_eq!(
            app.live_tokens_in(&s.session_id()).await,
            0,
            "everything revoked"
        );
    }
});

backend_test!(
    within_the_grace_20_concurrent_refreshes_with_one_token_get_byte_identical_answers,
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        let answers = join_all((0..20).map(|_| async {
            let r = app.refresh_body(&tokens.refresh_token).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }))
        .await;
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
        let bodies: HashSet<&str> = answers.iter().map(|(_, b)| b.as_str()).collect();
        assert_eq!(
            bodies.len(),
            1,
            "one token pair, byte for byte, not {}",
            bodies.len()
        );
        let body: Value = serde_json::from_str(answers[0].1.as_str()).unwrap();
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(app.me(access).await.status(), 200, "and it works");
    }
);

backend_test!(
    a_replay_later_within_the_grace_repeats_the_first_answer_byte_for_byte,
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        let first = app.refresh_body(&tokens.refresh_token).await;
        assert_eq!(first.status(), 200);
        let first = first.text().await.unwrap();
        app.clock.advance(Duration::from_millis(4_500));
        let again = app.refresh_body(&tokens.refresh_token).await;
        assert_eq!(again.status(), 200);
        assert_eq!(again.text().await.unwrap(), first);
    }
);
