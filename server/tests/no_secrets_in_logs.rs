//! The real `baton` binary at debug log level, driven through a whole session
//! lifecycle: no password, token or cookie value may appear in its logs.

mod common;

use std::time::Duration;

use common::BatonProcess;

use serde_json::{Value, json};

#[tokio::test]
async fn no_password_token_or_cookie_value_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = BatonProcess::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let url = |p: &str| server.url(p);
    let (email, password) = ("logcheck@example.test", "s3cret-Passw0rd-for-logs");

    let r = http
        .post(url("/auth/register"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    http.post(url("/auth/login"))
        .json(&json!({"email": email, "password": "wrong-Passw0rd-for-logs"}))
        .send()
        .await
        .unwrap();
    let r = http
        .post(url("/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie_token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let access: Value = r.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_owned();
    let r = http
        .post(url("/auth/login"))
        .json(&json!({"email": email, "password": password, "refresh_token_in_body": true}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let body_token = body["refresh_token"].as_str().unwrap().to_owned();
    let r = http
        .post(url("/auth/refresh"))
        .header("cookie", format!("__Secure-baton_refresh={cookie_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rotated: Value = http
        .post(url("/auth/refresh"))
        .json(&json!({"refresh_token": body_token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.get(url("/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    http.get(url("/auth/me"))
        .bearer_auth("forged.token.value")
        .send()
        .await
        .unwrap();
    // A logout with the rotated token (a security event naming the session).
    http.post(url("/auth/logout"))
        .json(&json!({"refresh_token": body_token}))
        .send()
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = server.logs.lock().unwrap().clone();
    assert!(
        logs.contains("\"path\":\"/auth/refresh\""),
        "request logs are there:\n{logs}"
    );
    let secrets = [
        password.to_owned(),
        "wrong-Passw0rd-for-logs".to_owned(),
        cookie_token,
        body_token,
        rotated["access_token"].as_str().unwrap().to_owned(),
        access.clone(),
        access.split('.').nth(2).unwrap().to_owned(),
        "forged.token.value".to_owned(),
        std::fs::read_to_string(dir.path().join("master.key"))
            .unwrap()
            .trim()
            .to_owned(),
    ];
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs: {secret}\n{logs}"
        );
    }
    assert!(
        logs.contains("master key"),
        "the generated key file is announced"
    );
}
