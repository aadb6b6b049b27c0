//! CONTRACT §3 "a family revoked for any reason never comes back", under
//! load: logouts and "log out everywhere" land while the same families are
//! being refreshed in a loop. After the revocation answers, no token of the
//! family refreshes, and the tables hold no live token in a revoked family.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::refresh_token_invariants;

const FAMILIES: usize = 8;

/// Refreshes in a loop until refused; returns (successful refreshes, the last
/// token it held, the code that stopped it).
async fn refresh_until_refused(app: &TestApp, first: String) -> (usize, String, String) {
    let mut token = first;
    let mut ok = 0;
    loop {
        let r = app.refresh_body(&token).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        match status {
            200 => {
                token = body["refresh_token"].as_str().unwrap().to_owned();
                ok += 1;
            }
            401 => {
                return (
                    ok,
                    token,
                    body["code"].as_str().unwrap_or_default().to_owned(),
                );
            }
            other => panic!("a refresh answered {other}: {body}"),
        }
    }
}

async fn revocations_race_refreshes(app: Harness, everywhere: bool) {
    let user = app.new_user().await;
    let mut logins = Vec::new();
    for _ in 0..FAMILIES {
        logins.push(app.login_body(&user).await);
    }
    let refreshers = logins
        .iter()
        .map(|t| refresh_until_refused(&app, t.refresh_token.clone()));
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if everywhere {
            let r = app.revoke_all_sessions(&logins[0].access_token).await;
            assert_eq!(r.status(), 204);
        } else {
            // Each family logged out with its first (long rotated) token.
            for t in &logins {
                assert_eq!(app.logout_body(&t.refresh_token).await.status(), 204);
            }
        }
    };
    let (results, ()) = tokio::join!(join_all(refreshers), revoke);
    for (ok, last, code) in &results {
        assert!(
            [
                "session_revoked",
                "refresh_token_reused",
                "refresh_token_invalid"
            ]
            .contains(&code.as_str()),
            "stopped by {code} after {ok} refreshes"
        );
        let r = app.refresh_body(last).await;
        assert_eq!(r.status(), 401, "the family stays revoked");
    }
    for t in &logins {
        assert_eq!(
            app.live_tokens_in(&t.session_id()).await,
            0,
            "a token that is neither rotated nor revoked remains in a revoked family: the \
             revocation did not see the successor a racing refresh inserted"
        );
    }
    let r = app.sessions(&logins[0].access_token).await;
    let sessions: Value = r.json().await.unwrap();
    assert_eq!(sessions, json!([]), "no revoked session is listed");
    let violations = refresh_token_invariants(&app.db, app.clock_now_millis()).await;
    assert!(violations.is_empty(), "{violations:#?}");
    let total: usize = results.iter().map(|r| r.0).sum();
    eprintln!(
        "{:?} {}: {total} refreshes raced the revocation",
        app.backend,
        if everywhere {
            "log out everywhere"
        } else {
            "logouts"
        }
    );
}

crate::backend_test!(
    logouts_racing_refreshes_leave_no_live_token_in_a_revoked_family,
    |app| {
        revocations_race_refreshes(app, false).await;
    }
);

crate::backend_test!(
    logging_out_everywhere_while_refreshing_leaves_no_live_token_in_a_revoked_family,
    |app| {
        revocations_race_refreshes(app, true).await;
    }
);
