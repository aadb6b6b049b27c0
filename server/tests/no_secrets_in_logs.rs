//! The real `baton` binary at debug log level, driven through a whole session
//! lifecycle: no password, token or cookie value may appear in its logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server {
    child: std::process::Child,
    logs: Arc<Mutex<String>>,
    address: String,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .arg("serve")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/baton.db", dir.display()),
            )
            .env("BATON_BIND", "127.0.0.1:0")
            .env("BATON_MASTER_KEY_FILE", dir.join("master.key"))
            .env("BATON_RATE_LIMITS", "off")
            .env("BATON_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .env_remove("BATON_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the baton binary starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            let found = logs.lock().unwrap().lines().find_map(|l| {
                let start = l.find("listening on http://")? + "listening on ".len();
                let rest = &l[start..];
                Some(
                    rest[..rest
                        .find([' ', '"'])
                        .unwrap_or(rest.len())]
                        .to_owned(),
                )
            });
            if let Some(a) = found {
                break a;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{}",
                logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server {
            child,
            logs,
            address,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn no_password_token_or_cookie_value_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.address);
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
