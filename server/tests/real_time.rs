//! A few behaviours end to end in real time, against the real binary: the
//! API tests move a manual clock instead, so these prove the wiring to the
//! system clock (expiry with zero leeway, the grace window closing).

mod common;

use std::time::Duration;

use common::BatonProcess;
use serde_json::{Value, json};

async fn login(http: &reqwest::Client, server: &BatonProcess) -> Value {
    let (email, password) = ("realtime@example.test", "real-time-password");
    http.post(server.url("/auth/register"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let r = http
        .post(server.url("/auth/login"))
        .json(&json!({"email": email, "password": password, "refresh_token_in_body": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn code(r: reqwest::Response) -> String {
    let body: Value = r.json().await.unwrap();
    body["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_access_token_dies_at_its_exp_and_a_refresh_revives_the_session() {
    let dir = tempfile::tempdir().unwrap();
    // Two seconds: `iat` and `exp` are whole seconds, so a token lives
    // between ttl − 1 and ttl seconds. A 1 s token issued late in a second
    // could expire before the next request; a 2 s one lives at least 1 s
    // and is dead 2.1 s after its issue.
    let server = BatonProcess::start(
        dir.path(),
        &[("BATON_ACCESS_TTL", "2s"), ("BATON_JWT_LEEWAY", "0s")],
    );
    let http = reqwest::Client::new();
    let pair = login(&http, &server).await;
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(pair["expires_in"], 2);
    let me = |token: String| http.get(server.url("/auth/me")).bearer_auth(token).send();
    assert_eq!(me(access.to_owned()).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = me(access.to_owned()).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "token_expired");
    let r = http
        .post(server.url("/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    let fresh: Value = r.json().await.unwrap();
    let fresh_access = fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(fresh_access).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_reuse_grace_closes_after_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let server = BatonProcess::start(dir.path(), &[("BATON_REFRESH_REUSE_GRACE", "1s")]);
    let http = reqwest::Client::new();
    let pair = login(&http, &server).await;
    let refresh = |token: Value| {
        http.post(server.url("/auth/refresh"))
            .json(&json!({"refresh_token": token}))
            .send()
    };
    let first: Value = refresh(pair["refresh_token"].clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = refresh(pair["refresh_token"].clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["refresh_token"], again["refresh_token"],
        "same successor within the grace"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = refresh(pair["refresh_token"].clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "refresh_token_reused");
    let r = refresh(first["refresh_token"].clone()).await.unwrap();
    assert_eq!(code(r).await, "session_revoked");
}
