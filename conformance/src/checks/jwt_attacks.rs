//! §2: the attacks on access tokens. Each forged token must get 401 `invalid_token` with
//! `WWW-Authenticate: Bearer error="invalid_token"`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::endpoints::access_token;
use crate::http::Req;
use crate::jwt::{self, Jws};
use crate::probe::{Outcome, Probe, Stop, expect_problem, fail, www_authenticate_problem};

/// Sends `token` to `/auth/me` and requires the rejection the contract prescribes.
async fn expect_rejected(probe: &Probe, token: &str, what: &str, codes: &[&str]) -> Outcome {
    let reply = probe
        .send(
            Req::get("/auth/me")
                .bearer(token)
                .expect("401 invalid_token"),
        )
        .await?;
    if reply.status == 200 {
        return Err(fail(format!("{what}: the server ACCEPTED it (200)")));
    }
    expect_problem(&reply, 401, codes, what)?;
    if let Some(problem) = www_authenticate_problem(&reply, true) {
        return Err(fail(format!("{what}: {problem}")));
    }
    Ok(())
}

/// The baseline: the unmodified token is accepted (so a rejection below means something).
async fn genuine(probe: &Probe) -> Result<(String, Jws), Stop> {
    let (token, jws) = access_token(probe).await?;
    let reply = probe.me(&token).await?;
    if reply.status != 200 {
        return Err(fail(format!(
            "the genuine token is refused, so the attacks prove nothing: {}",
            reply.summary()
        )));
    }
    Ok((token, jws))
}

pub async fn alg_none(probe: Probe) -> Outcome {
    let (_, jws) = genuine(&probe).await?;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let mut header = jws.header.clone();
        header["alg"] = json!(alg);
        let empty = jwt::unsigned(&header, &jws.claims);
        expect_rejected(
            &probe,
            &empty,
            &format!("alg {alg:?} with an empty signature"),
            &["invalid_token"],
        )
        .await?;
        let with_original = format!("{}{}", empty, jws.signature_b64);
        expect_rejected(
            &probe,
            &with_original,
            &format!("alg {alg:?} with the original signature"),
            &["invalid_token"],
        )
        .await?;
    }
    Ok(())
}

pub async fn hs256_public_key(probe: Probe) -> Outcome {
    let (_, jws) = genuine(&probe).await?;
    let kid = jws.header_str("kid").unwrap_or_default().to_string();
    let jwks = probe
        .send(Req::get("/.well-known/jwks.json"))
        .await?
        .json()
        .unwrap_or(Value::Null);
    let key = jwks
        .get("keys")
        .and_then(Value::as_array)
        .and_then(|keys| {
            keys.iter()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
                .cloned()
        })
        .ok_or_else(|| fail(format!("kid {kid:?} is not in the JWKS")))?;
    for (encoding, secret) in jwt::public_key_encodings(&key) {
        for alg in ["HS256", "HS384", "HS512"] {
            let mut header = jws.header.clone();
            header["alg"] = json!(alg);
            // Only HS256 is computed for real; HS384/HS512 labels with an HS256 MAC catch servers
            // that pick the algorithm from the header without checking it.
            let token = jwt::hs256(&header, &jws.claims, &secret);
            expect_rejected(
                &probe,
                &token,
                &format!("{alg} keyed with {encoding}"),
                &["invalid_token"],
            )
            .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Tamper {
    SetString(&'static str, String),
    ShiftNumber(&'static str, i64),
    Remove(&'static str),
}

fn tamper_strategy() -> impl Strategy<Value = Tamper> {
    let string_claim = prop_oneof![
        Just("sub"),
        Just("sid"),
        Just("iss"),
        Just("aud"),
        Just("jti"),
        Just("typ")
    ];
    let number_claim = prop_oneof![Just("exp"), Just("iat"), Just("nbf")];
    prop_oneof![
        (string_claim, "[a-zA-Z0-9-]{1,40}").prop_map(|(c, v)| Tamper::SetString(c, v)),
        (number_claim, prop_oneof![1i64..100_000, -100_000i64..-1])
            .prop_map(|(c, d)| Tamper::ShiftNumber(c, d)),
        prop_oneof![
            Just("exp"),
            Just("sub"),
            Just("sid"),
            Just("aud"),
            Just("iss")
        ]
        .prop_map(Tamper::Remove),
    ]
}

pub async fn tampered_payload(probe: Probe) -> Outcome {
    let (_, jws) = genuine(&probe).await?;
    let cases = probe.env.cases.clamp(8, 64);
    crate::property::check(
        &probe,
        "jwt/tampered-payload",
        cases,
        tamper_strategy,
        move |case_probe, tamper| {
            let jws = jws.clone();
            async move {
                let mut claims = jws.claims.clone();
                match &tamper {
                    Tamper::SetString(c, v) => claims[*c] = json!(v),
                    Tamper::ShiftNumber(c, d) => {
                        let base = claims
                            .get(*c)
                            .and_then(Value::as_i64)
                            .or_else(|| jws.claim_i64("iat"))
                            .unwrap_or(0);
                        claims[*c] = json!(base + d);
                    }
                    Tamper::Remove(c) => {
                        if let Some(o) = claims.as_object_mut() {
                            o.remove(*c);
                        }
                    }
                }
                if claims == jws.claims {
                    return Ok(());
                }
                let token = format!(
                    "{}.{}.{}",
                    jws.header_b64,
                    jwt::b64(&serde_json::to_vec(&claims).unwrap_or_default()),
                    jws.signature_b64
                );
                expect_rejected(
                    &case_probe,
                    &token,
                    &format!("the payload changed by {tamper:?}"),
                    &["invalid_token", "token_expired"],
                )
                .await
            }
        },
    )
    .await
}

pub async fn bad_signature(probe: Probe) -> Outcome {
    let (token, _) = genuine(&probe).await?;
    let cases = probe.env.cases.clamp(8, 64);
    let (input, signature) = token
        .rsplit_once('.')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_default();
    let signature_bytes = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &signature,
    )
    .unwrap_or_default();
    let length = signature_bytes.len().max(1);
    let strategy = move || {
        (
            0..length,
            0u8..8,
            prop_oneof![3 => Just(None), 1 => (0..length).prop_map(Some)],
        )
    };
    crate::property::check(
        &probe,
        "jwt/bad-signature",
        cases,
        strategy,
        move |case_probe, (byte, bit, truncate)| {
            let mut bytes = signature_bytes.clone();
            let input = input.clone();
            async move {
                if let Some(i) = bytes.get_mut(byte) {
                    *i ^= 1 << bit;
                }
                if let Some(len) = truncate {
                    bytes.truncate(len);
                }
                let forged = format!("{input}.{}", jwt::b64(&bytes));
                let what = format!(
                    "the signature with bit {bit} of byte {byte} flipped{}",
                    truncate
                        .map(|l| format!(", cut to {l} bytes"))
                        .unwrap_or_default()
                );
                expect_rejected(&case_probe, &forged, &what, &["invalid_token"]).await
            }
        },
    )
    .await
}

pub async fn foreign_key(probe: Probe) -> Outcome {
    let (_, jws) = genuine(&probe).await?;
    let mut header = jws.header.clone();
    header["alg"] = json!("EdDSA");
    let token = jwt::ed25519_signed(&header, &jws.claims, &jwt::attacker_key());
    expect_rejected(
        &probe,
        &token,
        "the real claims and kid signed with another Ed25519 key",
        &["invalid_token"],
    )
    .await
}

pub async fn unknown_kid(probe: Probe) -> Outcome {
    let (_, jws) = genuine(&probe).await?;
    let mut header = jws.header.clone();
    header["alg"] = json!("EdDSA");
    header["kid"] = json!(format!("unknown-{}", uuid::Uuid::new_v4()));
    let token = jwt::ed25519_signed(&header, &jws.claims, &jwt::attacker_key());
    expect_rejected(&probe, &token, "an unknown kid", &["invalid_token"]).await?;
    if let Some(o) = header.as_object_mut() {
        o.remove("kid");
    }
    let token = jwt::ed25519_signed(&header, &jws.claims, &jwt::attacker_key());
    expect_rejected(&probe, &token, "no kid at all", &["invalid_token"]).await?;
    // The original header with only the kid changed: the signature is then also wrong, but a
    // server that looks the kid up first must still answer 401, not 500.
    let mut header = jws.header.clone();
    header["kid"] = json!("../../../../etc/passwd");
    let token = format!(
        "{}.{}.{}",
        jwt::b64(&serde_json::to_vec(&header).unwrap_or_default()),
        jws.claims_b64,
        jws.signature_b64
    );
    expect_rejected(&probe, &token, "a path-traversal kid", &["invalid_token"]).await
}

/// A local HTTP listener that serves the attacker's JWKS and counts every connection.
async fn jwks_bait() -> std::io::Result<(String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/jwks.json", listener.local_addr()?);
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let body = json!({"keys": [jwt::attacker_jwk("attacker")]}).to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buffer = [0u8; 2048];
            let _ = socket.read(&mut buffer).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    Ok((url, hits, task))
}

pub async fn jku_x5u_jwk(probe: Probe) -> Outcome {
    let (_, jws) = genuine(&probe).await?;
    let (url, hits, task) = jwks_bait()
        .await
        .map_err(|e| fail(format!("cannot open the local bait listener: {e}")))?;
    let real_kid = jws.header_str("kid").unwrap_or_default().to_string();
    let variants: Vec<(String, Value)> = vec![
        (
            "jku to the attacker's JWKS, attacker kid".into(),
            json!({"jku": url, "kid": "attacker"}),
        ),
        (
            "jku to the attacker's JWKS, the server's kid".into(),
            json!({"jku": url, "kid": real_kid}),
        ),
        (
            "x5u to the attacker's URL".into(),
            json!({"x5u": url, "kid": "attacker"}),
        ),
        (
            "an embedded jwk, attacker kid".into(),
            json!({"jwk": jwt::attacker_jwk("attacker"), "kid": "attacker"}),
        ),
        (
            "an embedded jwk, the server's kid".into(),
            json!({"jwk": jwt::attacker_jwk(&real_kid), "kid": real_kid}),
        ),
    ];
    let mut result = Ok(());
    for (what, extra) in variants {
        let mut header = jws.header.clone();
        header["alg"] = json!("EdDSA");
        if let (Some(h), Some(e)) = (header.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                h.insert(k.clone(), v.clone());
            }
        }
        let token = jwt::ed25519_signed(&header, &jws.claims, &jwt::attacker_key());
        result = expect_rejected(
            &probe,
            &token,
            &format!("a token signed by the attacker with {what}"),
            &["invalid_token"],
        )
        .await;
        if result.is_err() {
            break;
        }
    }
    task.abort();
    result?;
    let fetched = hits.load(Ordering::SeqCst);
    if fetched > 0 {
        return Err(fail(format!(
            "the server fetched the attacker's URL {url} ({fetched} connections): jku/x5u must never be followed"
        )));
    }
    Ok(())
}

pub async fn oversized(probe: Probe) -> Outcome {
    let (_, jws) = genuine(&probe).await?;
    for size in [8 * 1024 + 1, 12 * 1024_usize] {
        let mut claims = jws.claims.clone();
        claims["pad"] = json!("");
        let base = format!(
            "{}.{}.{}",
            jws.header_b64,
            jwt::b64(&serde_json::to_vec(&claims).unwrap_or_default()),
            jws.signature_b64
        );
        let padding = "A".repeat(size.saturating_sub(base.len()) * 3 / 4 + 4);
        claims["pad"] = json!(padding);
        let mut token = format!(
            "{}.{}.{}",
            jws.header_b64,
            jwt::b64(&serde_json::to_vec(&claims).unwrap_or_default()),
            jws.signature_b64
        );
        while token.len() < size {
            claims["pad"] = json!(format!(
                "{}AAAA",
                claims["pad"].as_str().unwrap_or_default()
            ));
            token = format!(
                "{}.{}.{}",
                jws.header_b64,
                jwt::b64(&serde_json::to_vec(&claims).unwrap_or_default()),
                jws.signature_b64
            );
        }
        expect_rejected(
            &probe,
            &token,
            &format!("a token of {} bytes", token.len()),
            &["invalid_token"],
        )
        .await?;
    }
    Ok(())
}

pub async fn www_authenticate(probe: Probe) -> Outcome {
    let (token, jws) = genuine(&probe).await?;
    let mut header = jws.header.clone();
    header["alg"] = json!("none");
    let forged = [
        ("a garbage token", "garbage".to_string()),
        ("an unsigned token", jwt::unsigned(&header, &jws.claims)),
        (
            "a truncated signature",
            token[..token.len() - 4].to_string(),
        ),
    ];
    for (what, t) in forged {
        let reply = probe
            .send(
                Req::get("/auth/sessions")
                    .bearer(&t)
                    .expect("401 with WWW-Authenticate"),
            )
            .await?;
        if reply.status != 401 {
            return Err(fail(format!(
                "{what}: expected 401, got {}",
                reply.summary()
            )));
        }
        if let Some(problem) = www_authenticate_problem(&reply, true) {
            return Err(fail(format!("{what}: {problem}")));
        }
    }
    let reply = probe
        .send(Req::get("/auth/sessions").expect("401 with WWW-Authenticate: Bearer"))
        .await?;
    if let Some(problem) = www_authenticate_problem(&reply, false) {
        return Err(fail(format!("no token: {problem}")));
    }
    Ok(())
}
