//! CONTRACT §5: bad input is a 4xx problem and changes nothing.

use serde_json::{Value, json};

use crate::helpers::*;

async fn send_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_422_everywhere() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"string\"".to_vec(),
        br#"{"email": 1, "password": true}"#.to_vec(),
        br#"{"email": "a@x.test"}"#.to_vec(),
        br#"{"refresh_token": 12}"#.to_vec(),
        br#"{"email": "a@x.test", "password": "password-1", "extra": 1}"#.to_vec(),
        vec![0xff, 0xfe, 0x00],
    ];
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
    ] {
        for body in &bodies {
            let r = send_raw(&app, path, Some("application/json"), body.clone()).await;
            let status = r.status().as_u16();
            if path == "/auth/logout" && body.as_slice() == b"{\"email\": \"a@x.test\"}" {
                // `email` is an unknown field for logout: still refused.
            }
            assert!(
                (400..500).contains(&status),
                "{path} {:?}: {status}",
                String::from_utf8_lossy(body)
            );
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(ct, "application/problem+json", "{path}");
            let problem: Value = r.json().await.unwrap();
            assert!(problem["code"].is_string());
        }
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_with_or_without_content_length() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let big = json!({"email": "a@x.test", "password": "x".repeat(70_000)}).to_string();
    let r = send_raw(
        &app,
        "/auth/register",
        Some("application/json"),
        big.clone().into_bytes(),
    )
    .await;
    assert_problem(r, 413, "payload_too_large").await;
    // Chunked: no Content-Length, the limit still holds.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_problem(r, 413, "payload_too_large").await;
    assert_problem(app.login("a@x.test", "x").await, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = send_raw(&app, "/auth/login", Some("text/plain"), b"email=a".to_vec()).await;
    assert_problem(r, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_problem_bodies() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    assert_problem(app.get("/auth/nope").await, 404, "not_found").await;
    let r = app.client.put(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(
        r.headers()["allow"],
        "POST",
        "RFC 9110: a 405 lists the methods"
    );
    assert_problem(r, 405, "method_not_allowed").await;
    let r = app
        .client
        .patch(app.url("/auth/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["allow"], "DELETE, GET");
}

#[tokio::test]
async fn huge_and_odd_strings_inside_valid_fields_are_data() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let odd = [
        "\u{0}",
        "' OR '1'='1",
        "\u{202e}evil",
        "😀".repeat(200).as_str().to_owned().leak(),
        "%00%27",
        "<script>",
    ];
    for s in odd {
        let r = app.login(s, s).await;
        assert!(r.status().is_client_error(), "{s:?}: {}", r.status());
        let r = app.refresh_body(s).await;
        assert_problem(r, 401, "refresh_token_invalid").await;
    }
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let r = send_raw(
        &app,
        "/auth/refresh",
        Some("application/json"),
        format!(r#"{{"refresh_token": "{}", "x": 1}}"#, tokens.refresh_token).into_bytes(),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    let r = send_raw(
        &app,
        "/auth/logout",
        Some("application/json"),
        format!(r#"{{"refresh_token": "{}", "x": 1}}"#, tokens.refresh_token).into_bytes(),
    )
    .await;
    assert_problem(r, 422, "validation_failed").await;
    assert_eq!(
        app.refresh_body(&tokens.refresh_token).await.status(),
        200,
        "the token was not spent"
    );
}
