use std::time::Duration;

use serde_json::Value;

use crate::backend_test;
use crate::helpers::*;

async fn list(app: &TestApp, access_token: &str) -> Vec<Value> {
    let r = app.sessions(access_token).await;
    assert_eq!(r.status(), 200);
    r.json::<Vec<Value>>().await.unwrap()
}

backend_test!(
    the_session_list_shows_live_sessions_and_marks_the_current_one,
    |app| {
        let user = app.new_user().await;
        let laptop = app.login_body(&user).await;
        app.clock.advance(Duration::from_secs(1));
        let phone = app.login_body(&user).await;
        let sessions = list(&app, &phone.access_token).await;
        assert_eq!(sessions.len(), 2);
        let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["id"], phone.session_id());
        assert!(sessions.iter().any(|s| s["id"] == laptop.session_id()));
        for s in &sessions {
            for field in ["created_at", "last_used_at", "expires_at"] {
                let t = s[field].as_str().unwrap();
                assert!(
                    chrono::DateTime::parse_from_rfc3339(t).is_ok(),
                    "{field}: {t}"
                );
            }
            assert!(s.get("user_agent").is_some());
        }
    }
);

#[tokio::test]
async fn a_refresh_updates_last_used_and_the_user_agent() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    app.clock.advance(Duration::from_secs(120));
    let r = app
        .client
        .post(app.url("/auth/refresh"))
        .header("user-agent", "Phone/2.0")
        .json(&serde_json::json!({"refresh_token": tokens.refresh_token}))
        .send()
        .await
        .unwrap();
    let tokens = Tokens::from_body_response(r).await;
    let s = &list(&app, &tokens.access_token).await[0];
    assert_eq!(s["user_agent"], "Phone/2.0");
    let created = chrono::DateTime::parse_from_rfc3339(s["created_at"].as_str().unwrap()).unwrap();
    let used = chrono::DateTime::parse_from_rfc3339(s["last_used_at"].as_str().unwrap()).unwrap();
    assert_eq!((used - created).num_seconds(), 120);
}

backend_test!(revoking_a_session_ends_it_and_only_it, |app| {
    let user = app.new_user().await;
    let laptop = app.login_body(&user).await;
    let phone = app.login_body(&user).await;
    let r = app
        .revoke_session(&phone.access_token, &laptop.session_id())
        .await;
    assert_eq!(r.status(), 204);
    assert_problem(
        app.refresh_body(&laptop.refresh_token).await,
        401,
        "session_revoked",
    )
    .await;
    assert_eq!(app.refresh_body(&phone.refresh_token).await.status(), 200);
    let remaining = list(&app, &phone.access_token).await;
    assert_eq!(remaining.len(), 1);
});

backend_test!(another_users_session_is_not_found_and_left_alone, |app| {
    let alice = app.new_user().await;
    let mallory = app.new_user().await;
    let a = app.login_body(&alice).await;
    let m = app.login_body(&mallory).await;
    let r = app.revoke_session(&m.access_token, &a.session_id()).await;
    assert_problem(r, 404, "session_not_found").await;
    assert_eq!(app.refresh_body(&a.refresh_token).await.status(), 200);
});

#[tokio::test]
async fn unknown_and_already_revoked_sessions_are_not_found() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let a = app.login_body(&user).await;
    let b = app.login_body(&user).await;
    assert_problem(
        app.revoke_session(&a.access_token, "no-such-session").await,
        404,
        "session_not_found",
    )
    .await;
    assert_eq!(
        app.revoke_session(&a.access_token, &b.session_id())
            .await
            .status(),
        204
    );
    assert_problem(
        app.revoke_session(&a.access_token, &b.session_id()).await,
        404,
        "session_not_found",
    )
    .await;
}

backend_test!(logging_out_everywhere_revokes_every_session, |app| {
    let user = app.new_user().await;
    let sessions: Vec<Tokens> = vec![
        app.login_body(&user).await,
        app.login_body(&user).await,
        app.login_body(&user).await,
    ];
    let other = app.new_user().await;
    let bystander = app.login_body(&other).await;
    assert_eq!(
        app.revoke_all_sessions(&sessions[0].access_token)
            .await
            .status(),
        204
    );
    for s in &sessions {
        assert_problem(
            app.refresh_body(&s.refresh_token).await,
            401,
            "session_revoked",
        )
        .await;
    }
    assert_eq!(
        app.refresh_body(&bystander.refresh_token).await.status(),
        200
    );
    assert!(list(&app, &sessions[0].access_token).await.is_empty());
});

#[tokio::test]
async fn session_endpoints_need_an_access_token() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    assert_problem(app.get("/auth/sessions").await, 401, "missing_token").await;
    let r = app
        .client
        .delete(app.url("/auth/sessions"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "missing_token").await;
    let r = app
        .client
        .delete(app.url("/auth/sessions/x"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "missing_token").await;
}

/// Gives the user `count` more live sessions, written straight to the
/// database (logging in thousands of times would take minutes of hashing),
/// each with its own login time, oldest first.
async fn add_sessions(app: &TestApp, user_id: &str, count: usize) {
    use baton::storage::entities::{refresh_token, session};
    use sea_orm::{ActiveValue::Set, EntityTrait as _, TransactionTrait as _};
    let now = app.clock_now_millis();
    let txn = app.db.begin().await.unwrap();
    let ids: Vec<String> = (0..count)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    for chunk in ids.chunks(200).enumerate() {
        let (chunk_index, chunk) = chunk;
        let login = |i: usize| now - 1_000_000 + (chunk_index * 200 + i) as i64;
        session::Entity::insert_many(chunk.iter().enumerate().map(|(i, id)| {
            session::ActiveModel {
                id: Set(id.clone()),
                user_id: Set(user_id.to_owned()),
                created_at: Set(login(i)),
                last_used_at: Set(login(i)),
                absolute_expires_at: Set(now + 86_400_000),
                revoked_at: Set(None),
                revoke_reason: Set(None),
                user_agent: Set(Some("Bulk/1.0".to_owned())),
            }
        }))
        .exec_without_returning(&txn)
        .await
        .unwrap();
        refresh_token::Entity::insert_many(chunk.iter().map(|id| refresh_token::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            session_id: Set(id.clone()),
            parent_id: Set(None),
            token_hash: Set(uuid::Uuid::new_v4().as_bytes().repeat(2)),
            issued_at: Set(now),
            expires_at: Set(now + 3_600_000),
            rotated_at: Set(None),
            revoked_at: Set(None),
            revoke_reason: Set(None),
            user_agent: Set(None),
        }))
        .exec_without_returning(&txn)
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
}

/// A new user, logged in (body delivery), with `extra` more live sessions.
async fn logged_in_with_more_sessions(app: &TestApp, extra: usize) -> Tokens {
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let user_id = claims(&tokens.access_token)["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    add_sessions(app, &user_id, extra).await;
    tokens
}

/// The `Link: <…>; rel="next"` target of a list reply, if any.
fn next_page(r: &reqwest::Response) -> Option<String> {
    let link = r.headers().get("link")?.to_str().unwrap();
    let target = link.strip_prefix('<')?.split_once(">; rel=\"next\"")?.0;
    Some(target.to_owned())
}

backend_test!(
    a_user_with_thousands_of_sessions_gets_bounded_pages_that_cover_every_session_once,
    |app| {
        let tokens = logged_in_with_more_sessions(&app, 2_499).await;

        let first = app.sessions(&tokens.access_token).await;
        assert_eq!(first.status(), 200);
        assert!(next_page(&first).is_some(), "more pages follow");
        let page: Vec<Value> = first.json().await.unwrap();
        assert_eq!(page.len(), 50, "the default page");
        assert_eq!(page[0]["id"], tokens.session_id(), "newest login first");
        assert_eq!(page[0]["current"], true);

        let mut seen = std::collections::HashSet::new();
        let mut last_login = None;
        let mut path = Some("/auth/sessions?limit=100".to_owned());
        let mut pages = 0;
        while let Some(p) = path {
            let r = app.get_authed(&p, &tokens.access_token).await;
            assert_eq!(r.status(), 200, "{p}");
            path = next_page(&r);
            let page: Vec<Value> = r.json().await.unwrap();
            assert!(page.len() <= 100);
            for s in page {
                let login = s["created_at"].as_str().unwrap().to_owned();
                assert!(last_login.as_ref().is_none_or(|l: &String| *l >= login));
                last_login = Some(login);
                assert!(
                    seen.insert(s["id"].as_str().unwrap().to_owned()),
                    "listed twice: {s}"
                );
            }
            pages += 1;
        }
        assert_eq!(seen.len(), 2_500, "every live session, once");
        assert_eq!(pages, 25);
    }
);

#[tokio::test]
async fn the_list_stays_one_query_beyond_the_sqlite_variable_limit() {
    // Above 32,766 sessions, binding every session id was a 500.
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let tokens = logged_in_with_more_sessions(&app, 33_000).await;
    let r = app.sessions(&tokens.access_token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 50);
}

#[tokio::test]
async fn a_page_size_out_of_range_or_a_forged_cursor_is_a_422() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    for query in ["limit=0", "limit=101", "limit=ten", "cursor=not-a-cursor"] {
        let r = app
            .get_authed(&format!("/auth/sessions?{query}"), &tokens.access_token)
            .await;
        assert_problem(r, 422, "validation_failed").await;
    }
}
