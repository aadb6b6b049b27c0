//! Several stateless instances on one database act as one.

use std::time::Duration;

use crate::helpers::*;

async fn two_instances() -> Option<(Harness, TestApp)> {
    let a = spawn_app_with(Backend::Postgres, |s| {
        s.refresh_reuse_grace = Duration::ZERO
    })
    .await?;
    let b = a.second_instance().await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_by_one_instance_verifies_on_the_other() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let user = a.new_user().await;
    let tokens = a.login_body(&user).await;
    assert_eq!(b.me(&tokens.access_token).await.status(), 200);
    let jwks_a = a.get("/.well-known/jwks.json").await.text().await.unwrap();
    let jwks_b = b.get("/.well-known/jwks.json").await.text().await.unwrap();
    assert_eq!(jwks_a, jwks_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_on_one_instance_and_replaying_on_the_other_revokes_the_family() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let user = a.new_user().await;
    let first = a.login_body(&user).await;
    let second = Tokens::from_body_response(a.refresh_body(&first.refresh_token).await).await;
    assert_problem(
        b.refresh_body(&first.refresh_token).await,
        401,
        "refresh_token_reused",
    )
    .await;
    assert_problem(
        a.refresh_body(&second.refresh_token).await,
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_across_instances_have_exactly_one_winner() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let user = a.new_user().await;
    let tokens = a.login_body(&user).await;
    let requests = (0..20).map(|i| {
        let app = if i % 2 == 0 { &*a } else { &b };
        let token = tokens.refresh_token.clone();
        async move { app.refresh_body(&token).await.status().as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(a.live_tokens_in(&tokens.session_id()).await <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reaches_every_instance_and_old_tokens_keep_verifying() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let user = a.new_user().await;
    let before = a.login_body(&user).await;
    let kid = baton::domain::keys::rotate_signing_key(
        &a.db,
        &a.master_key,
        baton::domain::Timestamp::from_millis(a.clock_now_millis()),
        a.settings.access_ttl,
        a.settings.jwt_leeway,
    )
    .await
    .unwrap();
    a.keys.reload().await.unwrap();
    let after = a.login_body(&user).await;
    let header = jsonwebtoken::decode_header(&after.access_token).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some(kid.as_str()),
        "the new key signs"
    );
    // b has not reloaded yet: an unknown kid makes it reread the keys (at
    // most every few seconds, so forged kids cannot hammer the database).
    b.clock.advance(Duration::from_secs(6));
    assert_eq!(b.me(&after.access_token).await.status(), 200);
    assert_eq!(
        b.me(&before.access_token).await.status(),
        200,
        "the retired key still verifies"
    );
    let jwks: serde_json::Value = b.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_master_key_that_cannot_open_the_signing_key_stops_start_up() {
    let Some(a) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut settings = a.settings.clone();
    settings.master_key = Some(baton::domain::keys::MasterKey::generate().to_hex());
    let result = baton::startup::Application::build(
        settings,
        std::sync::Arc::new(baton::domain::ManualClock::starting_now()),
    )
    .await;
    let message = format!("{:#}", result.err().expect("start-up fails"));
    assert!(message.contains("master key"), "{message}");
}
