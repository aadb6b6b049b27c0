use std::time::Duration;

use crate::backend_test;
use crate::helpers::*;

backend_test!(
    an_access_token_expires_after_its_ttl_plus_the_leeway,
    |s| {
        s.access_ttl = Duration::from_secs(60);
        s.jwt_leeway = Duration::from_secs(5);
    },
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        app.clock.advance(Duration::from_secs(63));
        assert_eq!(
            app.me(&tokens.access_token).await.status(),
            200,
            "within the leeway"
        );
        app.clock.advance(Duration::from_secs(3));
        let r = app.me(&tokens.access_token).await;
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with(r#"Bearer error="invalid_token""#),
            "{challenge}"
        );
        assert!(challenge.contains("error_description="));
        assert_problem(r, 401, "token_expired").await;
    }
);

#[tokio::test]
async fn a_zero_leeway_rejects_a_token_the_moment_it_expires() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.access_ttl = Duration::from_secs(60);
        s.jwt_leeway = Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    app.clock.advance(Duration::from_secs(61));
    assert_problem(app.me(&tokens.access_token).await, 401, "token_expired").await;
}

backend_test!(
    a_refresh_token_expires_after_its_ttl,
    |s| {
        s.refresh_ttl = Duration::from_secs(3600);
    },
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        assert_eq!(tokens.body["refresh_expires_in"].as_u64().unwrap(), 3600);
        app.clock.advance(Duration::from_secs(3601));
        assert_problem(
            app.refresh_body(&tokens.refresh_token).await,
            401,
            "refresh_token_expired",
        )
        .await;
    }
);

#[tokio::test]
async fn each_refresh_slides_the_expiry_forward() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.refresh_ttl = Duration::from_secs(3600);
    })
    .await
    else {
        return;
    };
    let user = app.new_user().await;
    let mut tokens = app.login_body(&user).await;
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(3000));
        let r = app.refresh_body(&tokens.refresh_token).await;
        assert_eq!(r.status(), 200);
        tokens = Tokens::from_body_response(r).await;
        assert_eq!(tokens.body["refresh_expires_in"].as_u64().unwrap(), 3600);
    }
}

backend_test!(
    the_absolute_lifetime_caps_sliding_expiry,
    |s| {
        s.refresh_ttl = Duration::from_secs(3600);
        s.session_max_lifetime = Duration::from_secs(5400);
    },
    |app| {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        app.clock.advance(Duration::from_secs(3000));
        let r = app.refresh_body(&tokens.refresh_token).await;
        let tokens = Tokens::from_body_response(r).await;
        // 2400 s remain of the 5400 s session, less than the 3600 s sliding ttl.
        assert_eq!(tokens.body["refresh_expires_in"].as_u64().unwrap(), 2400);
        let cookie_user_tokens = app.login_cookie(&user).await;
        assert!(
            cookie_user_tokens
                .set_cookie
                .unwrap()
                .contains("Max-Age=3600")
        );
        app.clock.advance(Duration::from_secs(2401));
        assert_problem(
            app.refresh_body(&tokens.refresh_token).await,
            401,
            "refresh_token_expired",
        )
        .await;
    }
);

#[tokio::test]
async fn the_cookie_max_age_is_the_remaining_life_capped_by_the_session() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| {
        s.refresh_ttl = Duration::from_secs(3600);
        s.session_max_lifetime = Duration::from_secs(5400);
    })
    .await
    else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_cookie(&user).await;
    app.clock.advance(Duration::from_secs(3000));
    let r = app.refresh_cookie(&tokens.refresh_token).await;
    let cookie = set_cookie(&r).unwrap();
    assert!(cookie.contains("Max-Age=2400;"), "{cookie}");
}
