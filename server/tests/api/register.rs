use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::*;

backend_test!(registering_returns_201_with_the_account, |app| {
    let r = app.register("Ada@Example.test", "correct horse").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "Ada@Example.test");
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
    let created = body["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
});

backend_test!(an_email_that_differs_only_in_case_is_taken, |app| {
    assert_eq!(
        app.register("ada@example.test", "password-1")
            .await
            .status(),
        201
    );
    let r = app.register("ADA@example.TEST", "password-2").await;
    assert_problem(r, 409, "email_taken").await;
});

backend_test!(
    odd_unicode_and_injection_strings_are_stored_and_compared_exactly,
    |app| {
        let email = "o'brien\";DROP-TABLE-users;--@exämple.test";
        let password = "🔐 pass'word\" OR 1=1; --\u{0}\u{202e}";
        assert_eq!(app.register(email, password).await.status(), 201);
        assert_eq!(app.login(email, password).await.status(), 200);
        let almost = password.replace('1', "2");
        assert_problem(app.login(email, &almost).await, 401, "invalid_credentials").await;
    }
);

#[tokio::test]
async fn passwords_outside_8_to_128_characters_are_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    assert_problem(
        app.register("a@x.test", "short").await,
        422,
        "validation_failed",
    )
    .await;
    let long = "x".repeat(129);
    assert_problem(
        app.register("a@x.test", &long).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        app.register("a@x.test", &"x".repeat(128)).await.status(),
        201
    );
}

#[tokio::test]
async fn password_length_counts_unicode_scalar_values_not_bytes() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    // 7 characters, 28 bytes: too short.
    assert_problem(
        app.register("a@x.test", "🔐🔐🔐🔐🔐🔐🔐").await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        app.register("a@x.test", "🔐🔐🔐🔐🔐🔐🔐🔐").await.status(),
        201
    );
}

#[tokio::test]
async fn malformed_emails_are_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    for email in ["", "no-at-sign", "@x.test", "a@", "a b@x.test"] {
        assert_problem(
            app.register(email, "password-1").await,
            422,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn registration_can_be_closed() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.registration = baton::config::RegistrationSetting::Closed;
    })
    .await
    else {
        return;
    };
    assert_problem(
        app.register("a@x.test", "password-1").await,
        403,
        "registration_closed",
    )
    .await;
}

#[tokio::test]
async fn registration_sets_no_cookie_and_issues_no_token() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let r = app
        .post_json(
            "/auth/register",
            json!({"email": "a@x.test", "password": "password-1"}),
        )
        .await;
    assert!(set_cookie(&r).is_none());
    let body: Value = r.json().await.unwrap();
    assert!(body.get("access_token").is_none());
}
