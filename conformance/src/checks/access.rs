//! §2 and §4: access tokens as issued and as accepted.

use serde_json::Value;

use super::endpoints::{access_token, is_rfc3339_utc};
use super::wait;
use crate::discovery::MAX_WAIT_SECS;
use crate::ensure;
use crate::http::{Req, now};
use crate::jwt::Jws;
use crate::probe::{Channel, Outcome, Probe, expect_problem, fail, skip, www_authenticate_problem};

pub async fn token_claims(probe: Probe) -> Outcome {
    let config = probe.config()?.clone();
    let user = probe.user().await?;
    let first = probe.login(&user, Channel::Body).await?;
    let second = probe.login(&user, Channel::Body).await?;
    let jws = Jws::parse(&first.access_token).map_err(fail)?;
    let other = Jws::parse(&second.access_token).map_err(fail)?;
    let alg = jws.header_str("alg").unwrap_or_default();
    ensure!(
        !alg.is_empty() && !alg.starts_with("HS") && !alg.eq_ignore_ascii_case("none"),
        "alg {alg:?} is not an asymmetric algorithm"
    );
    // RFC 9068 §2.1 / RFC 7515 §4.1.9: "at+jwt", compared without case, and the full media
    // type "application/at+jwt" means the same.
    let typ = jws
        .header_str("typ")
        .unwrap_or_default()
        .to_ascii_lowercase();
    ensure!(
        typ == "at+jwt" || typ == "application/at+jwt",
        "typ is {:?}, expected \"at+jwt\"",
        jws.header.get("typ")
    );
    ensure!(
        jws.header_str("kid").is_some(),
        "the header has no kid: {}",
        jws.header
    );
    for claim in ["iss", "aud", "sub", "iat", "exp", "jti", "sid"] {
        ensure!(
            jws.claims.get(claim).is_some(),
            "claim {claim} is missing: {}",
            jws.claims
        );
    }
    ensure!(
        jws.claim_str("iss") == Some(config.issuer.as_str()),
        "iss {:?} is not the configured issuer {:?}",
        jws.claims["iss"],
        config.issuer
    );
    let aud_ok = match &jws.claims["aud"] {
        Value::String(a) => *a == config.audience,
        Value::Array(list) => list
            .iter()
            .any(|a| a.as_str() == Some(config.audience.as_str())),
        _ => false,
    };
    ensure!(
        aud_ok,
        "aud {} does not name the configured audience {:?}",
        jws.claims["aud"],
        config.audience
    );
    if let Some(id) = &user.id {
        ensure!(
            jws.claim_str("sub") == Some(id.as_str()),
            "sub {:?} is not the user id {id}",
            jws.claims["sub"]
        );
    }
    let (iat, exp) = (
        jws.claim_i64("iat").unwrap_or(0),
        jws.claim_i64("exp").unwrap_or(0),
    );
    ensure!(
        (exp - iat - config.access_token_ttl as i64).abs() <= 1,
        "exp - iat = {} s, expected access_token_ttl {}",
        exp - iat,
        config.access_token_ttl
    );
    ensure!(
        (iat as f64 - now()).abs() < 60.0,
        "iat {iat} is more than a minute away from this machine's clock"
    );
    ensure!(
        jws.claim_str("jti") != other.claim_str("jti"),
        "two tokens share the jti {:?}",
        jws.claims["jti"]
    );
    ensure!(
        jws.claim_str("sid") != other.claim_str("sid"),
        "two logins share the sid {:?}",
        jws.claims["sid"]
    );
    Ok(())
}

pub async fn me(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    let jws = Jws::parse(&tokens.access_token).map_err(fail)?;
    let reply = probe.me(&tokens.access_token).await?;
    ensure!(reply.status == 200, "expected 200, got {}", reply.summary());
    let body = reply.json().unwrap_or(Value::Null);
    ensure!(
        body.get("id").and_then(Value::as_str) == jws.claim_str("sub"),
        "id {:?} is not the token's sub {:?}",
        body.get("id"),
        jws.claims.get("sub")
    );
    ensure!(
        body.get("email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case(&user.email)),
        "email is not the user's: {body}"
    );
    ensure!(
        is_rfc3339_utc(body.get("created_at")),
        "created_at is not RFC 3339 UTC: {body}"
    );
    Ok(())
}

pub async fn bearer_any_case(probe: Probe) -> Outcome {
    let (token, _) = access_token(&probe).await?;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let reply = probe
            .send(
                Req::get("/auth/me")
                    .header("Authorization", &format!("{scheme} {token}"))
                    .expect("200"),
            )
            .await?;
        ensure!(
            reply.status == 200,
            "scheme {scheme:?}: expected 200, got {}",
            reply.summary()
        );
    }
    Ok(())
}

pub async fn missing_token(probe: Probe) -> Outcome {
    for req in [
        Req::get("/auth/me"),
        Req::get("/auth/sessions"),
        Req::delete("/auth/sessions"),
    ] {
        let what = format!("{} {} without a token", req.method, req.path);
        let reply = probe.send(req.expect("401")).await?;
        expect_problem(&reply, 401, &[], &what)?;
        if let Some(problem) = www_authenticate_problem(&reply, false) {
            return Err(fail(format!("{what}: {problem}")));
        }
    }
    Ok(())
}

pub async fn malformed_token(probe: Probe) -> Outcome {
    let (token, _) = access_token(&probe).await?;
    let mut broken_middle = token.split('.').map(str::to_string).collect::<Vec<_>>();
    broken_middle[1] = "!!not-base64!!".into();
    let candidates = [
        ("an empty credential", "Bearer ".to_string()),
        ("a non-JWT string", "Bearer not-a-jwt".to_string()),
        ("two parts", "Bearer abc.def".to_string()),
        ("four parts", format!("Bearer {token}.extra")),
        (
            "a payload that is not base64url",
            format!("Bearer {}", broken_middle.join(".")),
        ),
        ("a token with spaces", format!("Bearer {} {}", token, token)),
    ];
    for (what, header) in candidates {
        let reply = probe
            .send(
                Req::get("/auth/me")
                    .header("Authorization", &header)
                    .expect("401 invalid_token"),
            )
            .await?;
        expect_problem(&reply, 401, &["invalid_token"], what)?;
        if let Some(problem) = www_authenticate_problem(&reply, true) {
            return Err(fail(format!("{what}: {problem}")));
        }
    }
    Ok(())
}

pub async fn expiry(probe: Probe) -> Outcome {
    let config = probe.config()?.clone();
    let wait_secs = config.access_expiry_wait();
    if wait_secs > MAX_WAIT_SECS {
        return Err(skip(format!(
            "needs access_token_ttl + leeway ≤ {} s (e.g. BATON_ACCESS_TTL={}s with BATON_JWT_LEEWAY=0s); this instance has {} s + {} s",
            MAX_WAIT_SECS - 1,
            (MAX_WAIT_SECS - 1).saturating_sub(config.access_token_leeway),
            config.access_token_ttl,
            config.access_token_leeway
        )));
    }
    let (token, jws) = access_token(&probe).await?;
    let reply = probe.me(&token).await?;
    ensure!(
        reply.status == 200,
        "a fresh token: expected 200, got {}",
        reply.summary()
    );
    let exp = jws.claim_i64("exp").ok_or_else(|| fail("no exp claim"))? as f64;
    let deadline = exp + config.access_token_leeway as f64 + 1.5;
    let remaining = deadline - now();
    if remaining > 0.0 {
        wait(remaining.min(MAX_WAIT_SECS as f64)).await;
    }
    let reply = probe
        .send(
            Req::get("/auth/me")
                .bearer(&token)
                .expect("401 token_expired"),
        )
        .await?;
    expect_problem(
        &reply,
        401,
        &["token_expired", "invalid_token"],
        "a token past exp + leeway",
    )?;
    if let Some(problem) = www_authenticate_problem(&reply, true) {
        return Err(fail(format!("an expired token: {problem}")));
    }
    Ok(())
}

pub async fn stateless_after_logout(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    let config = probe.config()?;
    if config.access_token_ttl < 2 {
        return Err(skip(
            "needs access_token_ttl ≥ 2 s to use a token after a logout",
        ));
    }
    let logout = probe
        .send(
            Req::post("/auth/logout")
                .json(&serde_json::json!({"refresh_token": tokens.refresh_token}))
                .expect("204"),
        )
        .await?;
    ensure!(
        logout.status == 204,
        "logout: expected 204, got {}",
        logout.summary()
    );
    let jws = Jws::parse(&tokens.access_token).map_err(fail)?;
    let exp = jws.claim_i64("exp").unwrap_or(0) as f64;
    let reply = probe
        .send(
            Req::get("/auth/me")
                .bearer(&tokens.access_token)
                .expect("200"),
        )
        .await?;
    if reply.received_at < exp - 0.5 {
        ensure!(
            reply.status == 200,
            "an access token issued before the logout, before its exp: expected 200, got {}",
            reply.summary()
        );
    }
    Ok(())
}
