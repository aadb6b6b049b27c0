use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::backend_test;
use crate::helpers::*;

fn strict(s: &mut baton::config::Settings) {
    s.refresh_reuse_grace = Duration::ZERO;
}

backend_test!(
    a_refresh_rotates_and_the_old_token_stops_working,
    strict,
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        let r = app.refresh_body(&first.refresh_token).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let second = Tokens::from_body_response(r).await;
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_ne!(second.access_token, first.access_token);
        assert_eq!(second.session_id(), first.session_id(), "same family");
        assert_eq!(app.me(&second.access_token).await.status(), 200);
        assert_problem(
            app.refresh_body(&first.refresh_token).await,
            401,
            "refresh_token_reused",
        )
        .await;
    }
);

backend_test!(
    reuse_of_a_rotated_token_revokes_the_whole_family,
    strict,
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        let second = Tokens::from_body_response(app.refresh_body(&first.refresh_token).await).await;
        // An attacker replays the stolen first token: the family dies...
        assert_problem(
            app.refresh_body(&first.refresh_token).await,
            401,
            "refresh_token_reused",
        )
        .await;
        // ...so the legitimate holder of the newest token is out too.
        assert_problem(
            app.refresh_body(&second.refresh_token).await,
            401,
            "session_revoked",
        )
        .await;
        assert_eq!(app.live_tokens_in(&first.session_id()).await, 0);
        // And a family revoked for reuse never comes back.
        assert_problem(
            app.refresh_body(&first.refresh_token).await,
            401,
            "session_revoked",
        )
        .await;
    }
);

backend_test!(
    reuse_is_detected_even_after_the_rotated_token_has_expired,
    |s| {
        s.refresh_reuse_grace = Duration::ZERO;
        s.refresh_ttl = Duration::from_secs(3600);
    },
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        app.clock.advance(Duration::from_secs(1800));
        let second = Tokens::from_body_response(app.refresh_body(&first.refresh_token).await).await;
        app.clock.advance(Duration::from_secs(1801)); // the first token is now past its expiry
        assert_problem(
            app.refresh_body(&first.refresh_token).await,
            401,
            "refresh_token_reused",
        )
        .await;
        assert_problem(
            app.refresh_body(&second.refresh_token).await,
            401,
            "session_revoked",
        )
        .await;
    }
);

backend_test!(
    within_the_grace_a_repeat_returns_the_same_successor,
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        let a = Tokens::from_body_response(app.refresh_body(&first.refresh_token).await).await;
        app.clock.advance(Duration::from_secs(5));
        let b = Tokens::from_body_response(app.refresh_body(&first.refresh_token).await).await;
        assert_eq!(a.refresh_token, b.refresh_token, "the family does not fork");
        assert_eq!(app.me(&b.access_token).await.status(), 200);
        assert_eq!(app.live_tokens_in(&first.session_id()).await, 1);
        // The successor carries on normally.
        assert_eq!(app.refresh_body(&a.refresh_token).await.status(), 200);
    }
);

backend_test!(after_the_grace_a_repeat_is_reuse, |app| {
    let user = app.new_user().await;
    let first = app.login_body(&user).await;
    let second = Tokens::from_body_response(app.refresh_body(&first.refresh_token).await).await;
    app.clock.advance(Duration::from_secs(11));
    assert_problem(
        app.refresh_body(&first.refresh_token).await,
        401,
        "refresh_token_reused",
    )
    .await;
    assert_problem(
        app.refresh_body(&second.refresh_token).await,
        401,
        "session_revoked",
    )
    .await;
});

backend_test!(
    within_the_grace_a_repeat_after_the_successor_was_used_is_reuse,
    |app| {
        let user = app.new_user().await;
        let first = app.login_body(&user).await;
        let second = Tokens::from_body_response(app.refresh_body(&first.refresh_token).await).await;
        let third = Tokens::from_body_response(app.refresh_body(&second.refresh_token).await).await;
        assert_problem(
            app.refresh_body(&first.refresh_token).await,
            401,
            "refresh_token_reused",
        )
        .await;
        assert_problem(
            app.refresh_body(&third.refresh_token).await,
            401,
            "session_revoked",
        )
        .await;
    }
);

backend_test!(
    a_refresh_token_issued_before_a_restart_works_after_it,
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        app.stop().await;
        let restarted = TestApp::start(app.settings.clone(), app.backend, app.clock.clone()).await;
        assert_eq!(
            restarted.me(&tokens.access_token).await.status(),
            200,
            "keys persist"
        );
        assert_eq!(
            restarted.refresh_body(&tokens.refresh_token).await.status(),
            200
        );
    }
);

#[tokio::test]
async fn the_answer_goes_back_on_the_channel_the_token_came_in_on() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let cookie_login = app.login_cookie(&user).await;
    let r = app.refresh_cookie(&cookie_login.refresh_token).await;
    assert_eq!(r.status(), 200);
    let via_cookie = Tokens::from_cookie_response(r, app.cookie_name()).await;
    assert!(via_cookie.body.get("refresh_token").is_none());

    let body_login = app.login_body(&user).await;
    let r = app.refresh_body(&body_login.refresh_token).await;
    assert!(set_cookie(&r).is_none());
    assert!(Tokens::from_body_response(r).await.refresh_token.len() >= 43);
}

#[tokio::test]
async fn the_body_token_wins_over_the_cookie() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let a = app.login_body(&user).await;
    let b = app.login_cookie(&user).await;
    let r = app
        .client
        .post(app.url("/auth/refresh"))
        .header(
            "cookie",
            format!("{}={}", app.cookie_name(), b.refresh_token),
        )
        .json(&json!({"refresh_token": a.refresh_token}))
        .send()
        .await
        .unwrap();
    let tokens = Tokens::from_body_response(r).await;
    assert_eq!(tokens.session_id(), a.session_id());
}

#[tokio::test]
async fn unknown_and_missing_refresh_tokens_are_invalid() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    assert_problem(
        app.refresh_body("not-a-token").await,
        401,
        "refresh_token_invalid",
    )
    .await;
    assert_problem(app.refresh_body("").await, 401, "refresh_token_invalid").await;
    assert_problem(
        app.post_json("/auth/refresh", json!({})).await,
        401,
        "refresh_token_invalid",
    )
    .await;
    let bare = app
        .client
        .post(app.url("/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_problem(bare, 401, "refresh_token_invalid").await;
}

#[tokio::test]
async fn a_misspelt_refresh_token_field_is_refused_not_ignored() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_cookie(&user).await;
    let r = app
        .client
        .post(app.url("/auth/refresh"))
        .header(
            "cookie",
            format!("{}={}", app.cookie_name(), tokens.refresh_token),
        )
        .json(&json!({"refresh_tokn": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "validation_failed").await;
    assert_eq!(
        app.refresh_cookie(&tokens.refresh_token).await.status(),
        200,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_failed_cookie_refresh_clears_the_cookie() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = app.refresh_cookie("unknown-token").await;
    let cookie = set_cookie(&r).expect("the cookie is cleared");
    assert!(cookie.starts_with(&format!("{}=;", app.cookie_name())));
    assert!(cookie.contains("Max-Age=0") && cookie.contains("Path=/auth"));
    assert_problem(r, 401, "refresh_token_invalid").await;
}

#[tokio::test]
async fn a_failed_body_refresh_sets_no_cookie() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = app.refresh_body("unknown-token").await;
    assert!(set_cookie(&r).is_none());
}
