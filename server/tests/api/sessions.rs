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
