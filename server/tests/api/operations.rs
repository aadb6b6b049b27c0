//! Housekeeping and metrics.

use std::time::Duration;

use baton::domain::housekeeping::Housekeeping;
use baton::storage::entities::{refresh_token, session};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::*;

async fn token_rows(app: &TestApp, session_id: &str) -> u64 {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::SessionId.eq(session_id))
        .count(&app.db)
        .await
        .unwrap()
}

async fn session_rows(app: &TestApp, session_id: &str) -> u64 {
    session::Entity::find_by_id(session_id.to_owned())
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn housekeeping_deletes_long_dead_rows_and_nothing_live() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.refresh_ttl = Duration::from_secs(3600);
        s.refresh_reuse_grace = Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let user = app.new_user().await;
    let logged_out = app.login_body(&user).await;
    let expired = app.login_body(&user).await;
    app.logout_body(&logged_out.refresh_token).await;
    app.clock.advance(Duration::from_secs(2 * 86400));
    let live = app.login_body(&user).await;
    let rotated = Tokens::from_body_response(app.refresh_body(&live.refresh_token).await).await;

    let purged = Housekeeping {
        retention: Duration::from_secs(86400),
        batch: 1, // several batches
        interval: Duration::from_secs(600),
    }
    .purge(&app.db, &app.clock)
    .await
    .unwrap();

    assert_eq!((purged.tokens, purged.sessions), (2, 2));
    for dead in [&logged_out, &expired] {
        assert_eq!(token_rows(&app, &dead.session_id()).await, 0);
        assert_eq!(session_rows(&app, &dead.session_id()).await, 0);
    }
    assert_eq!(
        token_rows(&app, &live.session_id()).await,
        2,
        "the rotated token is kept"
    );
    // The live session carries on, and the kept record still detects reuse.
    assert_eq!(app.refresh_body(&rotated.refresh_token).await.status(), 200);
    assert_problem(
        app.refresh_body(&live.refresh_token).await,
        401,
        "refresh_token_reused",
    )
    .await;
}

#[tokio::test]
async fn housekeeping_keeps_rows_within_the_retention() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    app.logout_body(&tokens.refresh_token).await;
    app.clock.advance(Duration::from_secs(3600));
    let purged = Housekeeping {
        retention: Duration::from_secs(86400),
        batch: 100,
        interval: Duration::from_secs(600),
    }
    .purge(&app.db, &app.clock)
    .await
    .unwrap();
    assert_eq!((purged.tokens, purged.sessions), (0, 0));
    assert_eq!(token_rows(&app, &tokens.session_id()).await, 1);
}

#[tokio::test]
async fn metrics_count_requests_login_failures_and_reuse() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.refresh_reuse_grace = Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let user = app.new_user().await;
    app.login(&user.email, "wrong-password").await;
    let first = app.login_body(&user).await;
    app.refresh_body(&first.refresh_token).await;
    app.refresh_body(&first.refresh_token).await; // reuse
    app.client
        .delete(app.url("/auth/sessions/some-id"))
        .send()
        .await
        .unwrap();
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for line in [
        "baton_login_failures_total 1",
        "baton_refresh_reuse_detected_total 1",
        "baton_logins_total{outcome=\"ok\"} 1",
        "baton_refreshes_total{outcome=\"ok\"} 1",
        "baton_http_requests_total{method=\"POST\",route=\"/auth/login\",status=\"401\"} 1",
        "baton_http_requests_total{method=\"DELETE\",route=\"/auth/sessions/{id}\",status=\"401\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains(&first.refresh_token), "no token values");
}
