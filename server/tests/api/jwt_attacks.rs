//! CONTRACT §2: every forged, altered or misdirected access token is a 401.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// Signs `header.claims` with the server's real signing key.
fn sign_with_server_key(app: &TestApp, header: &Value, claims: &Value) -> String {
    let key = app.keys.active().unwrap();
    let message = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign(message.as_bytes());
    format!("{message}.{sig}")
}

fn server_kid(app: &TestApp) -> String {
    app.keys.active().unwrap().kid
}

fn good_header(app: &TestApp) -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": server_kid(app)})
}

async fn setup() -> Option<(Harness, Value)> {
    let app = spawn_app(Backend::Sqlite).await?;
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let claims = claims(&tokens.access_token);
    Some((app, claims))
}

async fn assert_refused(app: &TestApp, token: &str) {
    let r = app.me(token).await;
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.starts_with(r#"Bearer error="invalid_token""#)),
        "challenge: {challenge:?}"
    );
    assert_problem(r, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_token_signed_by_the_server_key_with_good_claims_is_accepted() {
    // The control for every test below: the forging helper itself works.
    let Some((app, claims)) = setup().await else {
        return;
    };
    let token = sign_with_server_key(&app, &good_header(&app), &claims);
    assert_eq!(app.me(&token).await.status(), 200);
}

/// A good token the server has accepted once, and so remembers.
async fn remembered_token(app: &TestApp, claims: &Value) -> String {
    let token = sign_with_server_key(app, &good_header(app), claims);
    assert_eq!(
        app.me(&token).await.status(),
        200,
        "verified and remembered"
    );
    token
}

#[tokio::test]
async fn a_token_accepted_once_vouches_for_no_altered_copy_of_itself() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    let token = remembered_token(&app, &claims).await;
    let (message, sig) = token.rsplit_once('.').unwrap();
    let (header, _) = message.split_once('.').unwrap();
    let mut evil = claims.clone();
    evil["sub"] = json!("someone-else");
    assert_refused(&app, &format!("{header}.{}.{sig}", b64(&evil))).await;
    assert_refused(&app, &format!("{message}.{sig}x")).await;
    assert_eq!(
        app.me(&token).await.status(),
        200,
        "the original still works"
    );
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_its_key_leaves_the_jwks() {
    use sea_orm::ConnectionTrait as _;
    let Some((app, claims)) = setup().await else {
        return;
    };
    let token = remembered_token(&app, &claims).await;
    // An operator pulls a compromised key out of the database.
    app.db
        .execute_unprepared("DELETE FROM signing_keys")
        .await
        .unwrap();
    app.keys.reload().await.unwrap();
    assert_refused(&app, &token).await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": server_kid(&app)});
        assert_refused(&app, &format!("{}.{}.", b64(&header), b64(&claims))).await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let raw = URL_SAFE_NO_PAD.decode(&x).unwrap();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": server_kid(&app)});
    let message = format!("{}.{}", b64(&header), b64(&claims));
    for secret in [raw.as_slice(), x.as_bytes()] {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_refused(&app, &format!("{message}.{sig}")).await;
    }
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    let token = sign_with_server_key(&app, &good_header(&app), &claims);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut evil = claims.clone();
    evil["sub"] = json!("someone-else");
    parts[1] = b64(&evil);
    assert_refused(&app, &parts.join(".")).await;
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    let token = sign_with_server_key(&app, &good_header(&app), &claims);
    let (message, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[0] ^= 1;
    assert_refused(
        &app,
        &format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes)),
    )
    .await;
    assert_refused(&app, &format!("{message}.")).await;
}

#[tokio::test]
async fn an_unknown_kid_or_a_foreign_key_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    use ed25519_dalek::Signer as _;
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    for kid in [json!("unknown-kid"), json!(server_kid(&app)), Value::Null] {
        let mut header = json!({"alg": "EdDSA", "typ": "at+jwt"});
        if !kid.is_null() {
            header["kid"] = kid;
        }
        let message = format!("{}.{}", b64(&header), b64(&claims));
        let sig = URL_SAFE_NO_PAD.encode(attacker.sign(message.as_bytes()).to_bytes());
        assert_refused(&app, &format!("{message}.{sig}")).await;
    }
}

#[tokio::test]
async fn jku_x5u_and_jwk_headers_are_never_followed() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let injected = [
        ("jku", json!("http://127.0.0.1:1/jwks.json")),
        ("x5u", json!("http://127.0.0.1:1/cert.pem")),
        ("jwk", jwks["keys"][0].clone()),
    ];
    for (name, value) in injected {
        let mut header = good_header(&app);
        header[name] = value;
        // Even with the server's own valid signature, such a header is refused.
        let token = sign_with_server_key(&app, &header, &claims);
        assert_refused(&app, &token).await;
    }
}

#[tokio::test]
async fn a_typ_other_than_at_jwt_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    for typ in [json!("JWT"), json!("id_token+jwt"), Value::Null] {
        let mut header = good_header(&app);
        if typ.is_null() {
            header.as_object_mut().unwrap().remove("typ");
        } else {
            header["typ"] = typ;
        }
        assert_refused(&app, &sign_with_server_key(&app, &header, &claims)).await;
    }
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    for (claim, value) in [
        ("iss", json!("http://evil.test")),
        ("aud", json!("another-api")),
        ("aud", json!(["baton", "x"])),
    ] {
        let mut c = claims.clone();
        c[claim] = value;
        assert_refused(&app, &sign_with_server_key(&app, &good_header(&app), &c)).await;
    }
}

#[tokio::test]
async fn missing_claims_are_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    for claim in ["iss", "aud", "sub", "iat", "exp", "jti", "sid"] {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(claim);
        assert_refused(&app, &sign_with_server_key(&app, &good_header(&app), &c)).await;
    }
}

#[tokio::test]
async fn iat_or_nbf_in_the_future_beyond_the_leeway_is_refused() {
    let Some((app, claims)) = setup().await else {
        return;
    };
    let now = claims["iat"].as_i64().unwrap();
    for (claim, offset, accepted) in [
        ("iat", 4, true),
        ("iat", 30, false),
        ("nbf", 4, true),
        ("nbf", 30, false),
    ] {
        let mut c = claims.clone();
        c[claim] = json!(now + offset);
        let token = sign_with_server_key(&app, &good_header(&app), &c);
        if accepted {
            assert_eq!(
                app.me(&token).await.status(),
                200,
                "{claim} +{offset}s is within the leeway"
            );
        } else {
            assert_refused(&app, &token).await;
        }
    }
}

#[tokio::test]
async fn a_token_whose_iat_is_ahead_of_the_server_clock_is_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    app.clock.rewind(Duration::from_secs(60));
    assert_refused(&app, &tokens.access_token).await;
}

#[tokio::test]
async fn an_oversized_token_is_refused() {
    let Some((app, mut claims)) = setup().await else {
        return;
    };
    claims["padding"] = json!("x".repeat(9000));
    let token = sign_with_server_key(&app, &good_header(&app), &claims);
    assert!(token.len() > 8192);
    assert_refused(&app, &token).await;
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    for token in ["abc", "a.b.c", "....", "eyJ.eyJ.sig", "🔐.🔐.🔐"] {
        assert_refused(&app, token).await;
    }
}

#[tokio::test]
async fn www_authenticate_has_no_error_when_no_token_was_sent() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    for authorization in [None, Some("Basic dXNlcjpwYXNz")] {
        let mut req = app.client.get(app.url("/auth/me"));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        assert_problem(r, 401, "missing_token").await;
    }
}

#[tokio::test]
async fn an_empty_bearer_credential_is_a_malformed_token() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    for value in ["Bearer ", "Bearer", "bearer  "] {
        let r = app.me_with_authorization(value).await;
        assert_eq!(r.status(), 401, "{value:?}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{value:?}: {challenge}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_name_is_case_insensitive() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = app
            .me_with_authorization(&format!("{scheme} {}", tokens.access_token))
            .await;
        assert_eq!(r.status(), 200, "{scheme}");
    }
}
