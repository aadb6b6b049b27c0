//! §1: discovery documents, the plain endpoints, registration and login.

use serde_json::{Value, json};

use crate::discovery::AuthConfiguration;
use crate::ensure;
use crate::http::Req;
use crate::jwt::{self, Jws};
use crate::probe::{Channel, Outcome, Probe, expect_problem, fail, skip};

pub(crate) fn is_rfc3339_utc(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|t| t.offset().local_minus_utc() == 0)
}

pub async fn auth_configuration(probe: Probe) -> Outcome {
    let reply = probe
        .send(Req::get("/.well-known/auth-configuration"))
        .await?;
    ensure!(reply.status == 200, "expected 200, got {}", reply.summary());
    let body = reply
        .json()
        .ok_or_else(|| fail(format!("not JSON: {}", reply.summary())))?;
    AuthConfiguration::parse(&body).map_err(fail)?;
    Ok(())
}

pub async fn jwks(probe: Probe) -> Outcome {
    let reply = probe.send(Req::get("/.well-known/jwks.json")).await?;
    ensure!(reply.status == 200, "expected 200, got {}", reply.summary());
    let set = reply.json().ok_or_else(|| fail("the JWKS is not JSON"))?;
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("the JWKS has no keys array"))?;
    ensure!(!keys.is_empty(), "the JWKS has no key");
    // Private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1) must never be published.
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            ensure!(
                key.get(private).is_none(),
                "a JWK contains the private or symmetric member {private:?}: the JWKS leaks a signing key"
            );
        }
    }
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    jwt::verify_with_jwks(&tokens.access_token, &set).map_err(fail)
}

/// The members of the auth configuration that the instances of one service must agree on
/// (§1 "Several instances on one database form one service"). `jwks_uri` is not among them: it
/// may name each instance's own host.
fn agreed_members(config: &AuthConfiguration) -> Value {
    json!({
        "issuer": config.issuer,
        "audience": config.audience,
        "access_token_ttl": config.access_token_ttl,
        "access_token_leeway": config.access_token_leeway,
        "refresh_token_ttl": config.refresh_token_ttl,
        "session_max_lifetime": config.session_max_lifetime,
        "refresh_reuse_grace": config.refresh_reuse_grace,
        "refresh_cookie": {
            "name": config.refresh_cookie.name,
            "path": config.refresh_cookie.path,
            "same_site": config.refresh_cookie.same_site.to_ascii_lowercase(),
        },
    })
}

/// The public keys of a JWK Set, as a set: each key by its `kid` and its public parameters
/// (RFC 7518 §6), whatever the order of the keys, of their members, or other members.
pub(crate) fn published_keys(set: &Value) -> Result<std::collections::BTreeSet<String>, String> {
    const PUBLIC: [&str; 7] = ["kid", "kty", "crv", "x", "y", "n", "e"];
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    Ok(keys
        .iter()
        .map(|key| {
            PUBLIC
                .iter()
                .map(|m| format!("{m}={}", key.get(*m).and_then(Value::as_str).unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect())
}

pub async fn instances_agree(probe: Probe) -> Outcome {
    let count = probe.env.instances.base_urls().len();
    if count < 2 {
        return Err(skip(
            "needs two or more --base-url values (instances sharing one database)",
        ));
    }
    let mut configs = Vec::new();
    let mut key_sets = Vec::new();
    for i in 0..count {
        let c = probe
            .send(Req::get("/.well-known/auth-configuration").on_instance(i))
            .await?;
        let config = c
            .json()
            .ok_or_else(|| format!("not JSON: {}", c.summary()))
            .and_then(|body| AuthConfiguration::parse(&body))
            .map_err(|e| fail(format!("instance {}: {e}", i + 1)))?;
        configs.push(agreed_members(&config));
        let k = probe
            .send(Req::get("/.well-known/jwks.json").on_instance(i))
            .await?;
        let keys = published_keys(&k.json().unwrap_or(Value::Null))
            .map_err(|e| fail(format!("instance {}: {e}", i + 1)))?;
        key_sets.push(keys);
    }
    for i in 1..count {
        ensure!(
            configs[i] == configs[0],
            "instance {} publishes other values of the members every instance must share (issuer, audience, lifetimes, leeway, grace, cookie): {} vs {}",
            i + 1,
            configs[i],
            configs[0]
        );
        ensure!(
            key_sets[i] == key_sets[0],
            "instance {} publishes other keys in its JWKS: {:?} vs {:?}",
            i + 1,
            key_sets[i],
            key_sets[0]
        );
    }
    // A token from one instance is accepted by every other.
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    for i in 0..count {
        let reply = probe
            .send(
                Req::get("/auth/me")
                    .bearer(&tokens.access_token)
                    .on_instance(i),
            )
            .await?;
        ensure!(
            reply.status == 200,
            "instance {} refuses an access token issued by another: {}",
            i + 1,
            reply.summary()
        );
    }
    Ok(())
}

pub async fn openapi(probe: Probe) -> Outcome {
    let reply = probe.send(Req::get("/openapi.json")).await?;
    ensure!(reply.status == 200, "expected 200, got {}", reply.summary());
    let doc = reply
        .json()
        .ok_or_else(|| fail("/openapi.json is not JSON"))?;
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ensure!(
        version.starts_with("3."),
        "the openapi member is {version:?}, expected 3.x"
    );
    ensure!(
        doc.get("paths")
            .and_then(|p| p.get("/auth/refresh"))
            .is_some(),
        "the document has no /auth/refresh path"
    );
    Ok(())
}

pub async fn docs(probe: Probe) -> Outcome {
    let reply = probe.send(Req::get("/docs")).await?;
    ensure!(reply.status == 200, "expected 200, got {}", reply.summary());
    ensure!(!reply.body.is_empty(), "/docs is empty");
    Ok(())
}

pub async fn health(probe: Probe) -> Outcome {
    for path in ["/healthz", "/readyz"] {
        let reply = probe.send(Req::get(path)).await?;
        ensure!(
            reply.status == 200,
            "GET {path}: expected 200, got {}",
            reply.summary()
        );
    }
    Ok(())
}

fn fresh_email() -> String {
    format!("conf-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn register(email: &str, password: &str) -> Req {
    Req::post("/auth/register").json(&json!({"email": email, "password": password}))
}

fn registration_open(probe: &Probe) -> Outcome {
    match &probe.env.accounts {
        crate::probe::Accounts::Register => Ok(()),
        _ => Err(skip("needs open registration on the instance")),
    }
}

pub async fn register_created(probe: Probe) -> Outcome {
    registration_open(&probe)?;
    let email = fresh_email();
    let reply = probe
        .send(register(&email, "correct horse battery").expect("201"))
        .await?;
    ensure!(reply.status == 201, "expected 201, got {}", reply.summary());
    let body = reply.json().unwrap_or(Value::Null);
    ensure!(
        body.get("id")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty()),
        "no id: {body}"
    );
    ensure!(
        body.get("email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case(&email)),
        "email is not the one registered: {body}"
    );
    ensure!(
        is_rfc3339_utc(body.get("created_at")),
        "created_at is not RFC 3339 UTC: {body}"
    );
    ensure!(
        body.get("password").is_none() && body.get("password_hash").is_none(),
        "the response exposes the password: {body}"
    );
    Ok(())
}

pub async fn register_email_taken(probe: Probe) -> Outcome {
    registration_open(&probe)?;
    let email = fresh_email();
    let first = probe
        .send(register(&email, "correct horse battery"))
        .await?;
    ensure!(
        first.status == 201,
        "first registration: expected 201, got {}",
        first.summary()
    );
    let again = probe
        .send(register(&email, "another password").expect("409 email_taken"))
        .await?;
    expect_problem(
        &again,
        409,
        &["email_taken"],
        "registering the same email again",
    )?;
    let upper = probe
        .send(register(&email.to_uppercase(), "another password").expect("409 email_taken"))
        .await?;
    expect_problem(
        &upper,
        409,
        &["email_taken"],
        "registering the same email in upper case",
    )
}

pub async fn register_password_length(probe: Probe) -> Outcome {
    registration_open(&probe)?;
    let cases: [(String, u16, &str); 5] = [
        ("a".repeat(7), 422, "7 ASCII characters"),
        ("é".repeat(7), 422, "7 two-byte characters (14 bytes)"),
        ("é".repeat(8), 201, "8 two-byte characters"),
        (
            "😀".repeat(128),
            201,
            "128 four-byte characters (512 bytes)",
        ),
        ("a".repeat(129), 422, "129 characters"),
    ];
    for (password, status, what) in cases {
        let reply = probe
            .send(register(&fresh_email(), &password).expect(status.to_string()))
            .await?;
        if status == 422 {
            expect_problem(
                &reply,
                422,
                &["validation_failed"],
                &format!("a password of {what}"),
            )?;
        } else {
            ensure!(
                reply.status == status,
                "a password of {what}: expected {status}, got {}",
                reply.summary()
            );
        }
    }
    Ok(())
}

pub async fn register_invalid_email(probe: Probe) -> Outcome {
    registration_open(&probe)?;
    for email in ["not-an-email", "", "a@", "@example.com", "two@@example.com"] {
        let reply = probe
            .send(register(email, "correct horse battery").expect("422"))
            .await?;
        expect_problem(
            &reply,
            422,
            &["validation_failed"],
            &format!("registering email {email:?}"),
        )?;
    }
    Ok(())
}

/// §1 "403 when registration is turned off": the refusal is a problem body (any snake_case
/// `code`, any wording), and it creates nothing: that email and password cannot log in, and
/// registering them again is still 403, not 409 (taken).
pub async fn register_closed(probe: Probe) -> Outcome {
    // Without --email the suite's own first registration found out: 403 means closed.
    let known_closed = match &probe.env.accounts {
        crate::probe::Accounts::Register => {
            return Err(skip(
                "registration is open on this instance: run against one with registration turned off (BATON_REGISTRATION=closed), with --email/--password of a test account for the other checks",
            ));
        }
        crate::probe::Accounts::Unavailable(_) => true,
        crate::probe::Accounts::Given { .. } => false,
    };
    let email = fresh_email();
    let password = format!("Conformance-{}", uuid::Uuid::new_v4().simple());
    let reply = probe
        .send(register(&email, &password).expect("403 (registration is off)"))
        .await?;
    if reply.status == 201 {
        ensure!(
            !known_closed,
            "a fresh registration got 201 although the suite's first registration got 403 (registration turned off): {}",
            reply.summary()
        );
        return Err(skip(
            "registration is open on this instance (a fresh registration got 201): run against one with registration turned off (BATON_REGISTRATION=closed)",
        ));
    }
    expect_problem(
        &reply,
        403,
        &[],
        "a registration while registration is turned off",
    )?;
    let login = probe
        .send(
            Req::post("/auth/login")
                .json(&json!({"email": email, "password": password}))
                .expect("401 (nothing was created)"),
        )
        .await?;
    ensure!(
        login.status != 200,
        "the refused registration created the account anyway: logging in with its email and password got 200"
    );
    expect_problem(
        &login,
        401,
        &[],
        "logging in with the email and password of a refused registration (nothing may have been created)",
    )?;
    let again = probe
        .send(register(&email, &password).expect("403 again (not 409: nothing was created)"))
        .await?;
    ensure!(
        again.status != 409,
        "registering the refused email again got 409 (email taken): the refused registration created the account"
    );
    expect_problem(&again, 403, &[], "the same registration again")
}

/// Checks the token-pair members every login and refresh response must have.
pub(crate) fn check_token_pair(
    probe: &Probe,
    body: &Value,
    body_delivery: bool,
    what: &str,
) -> Outcome {
    let config = probe.config()?;
    ensure!(
        body.get("access_token").and_then(Value::as_str).is_some(),
        "{what}: no access_token: {body}"
    );
    ensure!(
        body.get("token_type").and_then(Value::as_str) == Some("Bearer"),
        "{what}: token_type is not \"Bearer\": {body}"
    );
    let expires_in = body.get("expires_in").and_then(Value::as_i64);
    ensure!(
        expires_in.is_some_and(|e| (e - config.access_token_ttl as i64).abs() <= 1),
        "{what}: expires_in {expires_in:?} is not access_token_ttl {} (whole seconds)",
        config.access_token_ttl
    );
    let refresh_expires_in = body.get("refresh_expires_in").and_then(Value::as_i64);
    ensure!(
        refresh_expires_in.is_some_and(|e| e > 0 && e <= config.refresh_token_ttl as i64 + 1),
        "{what}: refresh_expires_in {refresh_expires_in:?} is not in 1..=refresh_token_ttl ({})",
        config.refresh_token_ttl
    );
    let has_refresh = body.get("refresh_token").is_some_and(|v| !v.is_null());
    ensure!(
        has_refresh == body_delivery,
        "{what}: refresh_token in the body is {} on {} delivery",
        if has_refresh { "present" } else { "absent" },
        if body_delivery { "body" } else { "cookie" }
    );
    Ok(())
}

pub async fn login_cookie_channel(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Cookie).await?;
    check_token_pair(
        &probe,
        &tokens.reply.json().unwrap_or(Value::Null),
        false,
        "a cookie login",
    )
}

pub async fn login_body_channel(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    check_token_pair(
        &probe,
        &tokens.reply.json().unwrap_or(Value::Null),
        true,
        "a body login",
    )?;
    let name = probe.cookie_name()?;
    ensure!(
        tokens
            .reply
            .set_cookie(&name)
            .is_none_or(|c| c.is_clearing()),
        "a body login also sets the refresh cookie: the token must come back on one channel"
    );
    Ok(())
}

pub async fn login_wrong_credentials(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let unknown = probe
        .send(
            Req::post("/auth/login")
                .json(&json!({"email": fresh_email(), "password": user.password}))
                .expect("401"),
        )
        .await?;
    expect_problem(&unknown, 401, &["invalid_credentials"], "an unknown email")?;
    let wrong = probe
        .send(
            Req::post("/auth/login")
                .json(&json!({"email": user.email, "password": format!("{}x", user.password)}))
                .expect("401"),
        )
        .await?;
    expect_problem(&wrong, 401, &["invalid_credentials"], "a wrong password")?;
    let strip = |v: Value| {
        let mut v = v;
        if let Some(o) = v.as_object_mut() {
            // Members that name the request, not the answer, may differ between two requests.
            for per_request in [
                "instance",
                "trace_id",
                "traceId",
                "request_id",
                "requestId",
                "correlation_id",
                "timestamp",
            ] {
                o.remove(per_request);
            }
        }
        v
    };
    let (a, b) = (
        strip(unknown.json().unwrap_or(Value::Null)),
        strip(wrong.json().unwrap_or(Value::Null)),
    );
    ensure!(
        a == b,
        "the bodies differ, revealing which emails exist: unknown email {a} vs wrong password {b}"
    );
    Ok(())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Whether an unknown email is answered so much faster than a wrong password that the time
/// tells which emails exist: under a quarter of the time and more than 20 ms quicker.
pub(crate) fn timing_reveals_accounts(unknown_email: f64, wrong_password: f64) -> bool {
    unknown_email < wrong_password * 0.25 && wrong_password - unknown_email > 0.020
}

pub async fn login_timing(probe: Probe) -> Outcome {
    let user = probe.user().await?;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let reply = probe
            .send(
                Req::post("/auth/login")
                    .json(&json!({"email": fresh_email(), "password": user.password})),
            )
            .await?;
        ensure!(
            reply.status == 401,
            "an unknown email: expected 401, got {}",
            reply.summary()
        );
        unknown.push(reply.received_at - reply.sent_at);
        let reply = probe
            .send(
                Req::post("/auth/login")
                    .json(&json!({"email": user.email, "password": format!("{}x", user.password)})),
            )
            .await?;
        ensure!(
            reply.status == 401,
            "a wrong password: expected 401, got {}",
            reply.summary()
        );
        wrong.push(reply.received_at - reply.sent_at);
    }
    let (unknown, wrong) = (median(unknown), median(wrong));
    ensure!(
        !timing_reveals_accounts(unknown, wrong),
        "an unknown email is answered in {:.0} ms, a wrong password in {:.0} ms (medians of 5): the time tells which emails exist (verify a dummy hash for unknown emails)",
        unknown * 1000.0,
        wrong * 1000.0
    );
    Ok(())
}

pub async fn login_email_any_case(probe: Probe) -> Outcome {
    let mut user = probe.user().await?;
    user.email = user.email.to_uppercase();
    probe.login(&user, Channel::Body).await.map(|_| ())
}

/// A fresh access token and its decoded form.
pub(crate) async fn access_token(probe: &Probe) -> Result<(String, Jws), crate::probe::Stop> {
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    let jws = Jws::parse(&tokens.access_token).map_err(fail)?;
    Ok((tokens.access_token, jws))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clearly_faster_unknown_email_is_flagged() {
        assert!(timing_reveals_accounts(0.002, 0.080));
        assert!(!timing_reveals_accounts(0.060, 0.080));
        // Both fast (a cheap hash): a big ratio but no useful difference.
        assert!(!timing_reveals_accounts(0.001, 0.010));
        assert!(!timing_reveals_accounts(0.090, 0.080));
    }

    #[test]
    fn median_takes_the_middle_sample() {
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn rfc3339_utc_is_required() {
        assert!(is_rfc3339_utc(Some(&json!(
            "2026-11-27T13:53:01.530+00:00"
        ))));
        assert!(is_rfc3339_utc(Some(&json!("2026-11-27T13:53:01Z"))));
        assert!(!is_rfc3339_utc(Some(&json!("2026-11-27T14:53:01+01:00"))));
        assert!(!is_rfc3339_utc(Some(&json!("27/11/2026"))));
        assert!(!is_rfc3339_utc(None));
    }
}
