//! §5: bad input. Every malformed request gets a 4xx problem body, never a 5xx or a hang, and
//! odd strings inside valid fields are data.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::ensure;
use crate::http::Req;
use crate::probe::{Accounts, Outcome, Probe, Stop, expect_problem, fail, problem_shape, skip};

const POST_ENDPOINTS: [&str; 4] = [
    "/auth/register",
    "/auth/login",
    "/auth/refresh",
    "/auth/logout",
];

/// A request that must get a 4xx problem body.
async fn expect_4xx_problem(probe: &Probe, req: Req, what: &str) -> Result<(), Stop> {
    let reply = probe.send(req.expect("4xx problem")).await?;
    ensure!(
        (400..500).contains(&reply.status),
        "{what}: expected a 4xx problem, got {}",
        reply.summary()
    );
    problem_shape(&reply, &[]).map_err(|e| fail(format!("{what}: {e}")))
}

#[derive(Debug, Clone)]
enum Garbage {
    Bytes(Vec<u8>),
    Truncated(usize),
    Nested(usize),
    Text(String),
}

/// A well-formed body for `path`. Register bodies get a fresh email each time, so that a
/// wrongly accepted request cannot turn later identical ones into 409s (which would hide the
/// failure from shrinking).
fn valid_body(path: &str) -> Value {
    match path {
        "/auth/refresh" | "/auth/logout" => {
            json!({"refresh_token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
        }
        _ => json!({
            "email": format!("conf-{}@example.com", uuid::Uuid::new_v4().simple()),
            "password": "correct horse battery"
        }),
    }
}

fn garbage_strategy() -> impl Strategy<Value = (usize, Garbage)> {
    let garbage = prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(Garbage::Bytes),
        (1usize..60).prop_map(Garbage::Truncated),
        (1usize..3000).prop_map(Garbage::Nested),
        prop_oneof![
            Just("{\"email\": }".to_string()),
            Just("{'email': 'a@b.c'}".to_string()),
            Just("{\"email\": \"a@b.c\",}".to_string()),
            Just("{\"email\": \"\\ud800\", \"password\": \"x\"}".to_string()),
            Just("NaN".to_string()),
            Just("{\"a\":1}{\"b\":2}".to_string()),
            "[a-z{}\\[\\]\":,]{1,30}",
        ]
        .prop_map(Garbage::Text),
    ];
    (0..POST_ENDPOINTS.len(), garbage)
}

pub async fn malformed_json(probe: Probe) -> Outcome {
    let cases = probe.env.cases.clamp(16, 128);
    crate::property::check(
        &probe,
        "input/malformed-json",
        cases,
        garbage_strategy,
        |case_probe, (endpoint, garbage)| async move {
            let path = POST_ENDPOINTS[endpoint];
            let body = match &garbage {
                Garbage::Bytes(b) => b.clone(),
                Garbage::Truncated(n) => {
                    let full = serde_json::to_vec(&valid_body(path)).unwrap_or_default();
                    full[..(*n).min(full.len() - 1)].to_vec()
                }
                Garbage::Nested(depth) => {
                    format!("{}{}", "[".repeat(*depth), "]".repeat(*depth)).into_bytes()
                }
                Garbage::Text(t) => t.clone().into_bytes(),
            };
            // A body that is empty, whitespace or happens to be a valid body is not malformed.
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            if body.iter().all(u8::is_ascii_whitespace)
                || parsed.as_ref().is_some_and(Value::is_object)
            {
                return Ok(());
            }
            expect_4xx_problem(
                &case_probe,
                Req::post(path).raw("application/json", body),
                &format!("POST {path} with a malformed body {garbage:?}"),
            )
            .await
        },
    )
    .await
}

fn wrong_value_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(json!(1.5)),
        Just(json!(["a@example.com"])),
        Just(json!({"nested": "object"})),
    ]
}

pub async fn wrong_types(probe: Probe) -> Outcome {
    let cases = probe.env.cases.clamp(16, 96);
    // (endpoint, field): each field of each POST body.
    let fields: Vec<(&'static str, &'static str)> = vec![
        ("/auth/register", "email"),
        ("/auth/register", "password"),
        ("/auth/login", "email"),
        ("/auth/login", "password"),
        ("/auth/login", "refresh_token_in_body"),
        ("/auth/refresh", "refresh_token"),
        ("/auth/logout", "refresh_token"),
    ];
    let count = fields.len();
    crate::property::check(
        &probe,
        "input/wrong-types",
        cases,
        move || (0..count, wrong_value_strategy()),
        move |case_probe, (index, value)| {
            let (path, field) = fields[index];
            async move {
                let mut body = valid_body(path);
                if field == "refresh_token_in_body" && value.is_boolean() {
                    return Ok(());
                }
                body[field] = value;
                expect_4xx_problem(
                    &case_probe,
                    Req::post(path).json(&body),
                    &format!("POST {path} with {field} = {}", body[field]),
                )
                .await
            }
        },
    )
    .await
}

pub async fn missing_fields(probe: Probe) -> Outcome {
    for (path, body) in [
        ("/auth/register", json!({})),
        (
            "/auth/register",
            json!({"email": "conf-missing@example.com"}),
        ),
        (
            "/auth/register",
            json!({"password": "correct horse battery"}),
        ),
        ("/auth/login", json!({})),
        ("/auth/login", json!({"email": "conf-missing@example.com"})),
    ] {
        let reply = probe
            .send(Req::post(path).json(&body).expect("422 validation_failed"))
            .await?;
        expect_problem(
            &reply,
            422,
            &["validation_failed"],
            &format!("POST {path} with {body}"),
        )?;
    }
    Ok(())
}

pub async fn unknown_fields(probe: Probe) -> Outcome {
    for path in POST_ENDPOINTS {
        let mut body = valid_body(path);
        body["is_admin"] = json!(true);
        let reply = probe
            .send(Req::post(path).json(&body).expect("422 validation_failed"))
            .await?;
        expect_problem(
            &reply,
            422,
            &["validation_failed"],
            &format!("POST {path} with an unknown field"),
        )?;
    }
    Ok(())
}

pub async fn oversized_body(probe: Probe) -> Outcome {
    let mut json_body =
        serde_json::to_vec(&json!({"email": "conf-big@example.com", "password": ""}))
            .unwrap_or_default();
    let padding = 65_537 - json_body.len();
    json_body = serde_json::to_vec(
        &json!({"email": "conf-big@example.com", "password": "a".repeat(padding)}),
    )
    .unwrap_or_default();
    let bodies = [
        (json_body, "a JSON body of 65,537 bytes"),
        (vec![b'a'; 200_000], "200,000 bytes"),
    ];
    for path in ["/auth/login", "/auth/register", "/auth/refresh"] {
        for (body, what) in &bodies {
            let req = Req::post(path)
                .raw("application/json", body.clone())
                .expect("413 payload_too_large");
            let reply = match crate::http::send(&probe.env.instances, &probe.recorder, req).await {
                Ok(reply) => reply,
                // A server may answer 413 and close before reading a body far over the limit;
                // the client then sees its write fail. That is a refusal, not a hang or a 5xx.
                Err(error) if body.len() > 65_536 && is_early_close(&error) => continue,
                Err(error) => return Err(fail(format!("POST {path} with {what}: {error}"))),
            };
            expect_problem(
                &reply,
                413,
                &["payload_too_large"],
                &format!("POST {path} with {what}"),
            )?;
        }
    }
    Ok(())
}

fn is_early_close(error: &str) -> bool {
    [
        "Broken pipe",
        "connection reset",
        "Connection reset",
        "connection closed",
    ]
    .iter()
    .any(|m| error.contains(m))
}

const ODD: &[&str] = &[
    "' OR '1'='1' --",
    "\"; DROP TABLE users; --",
    "Ω≈ç√∫˜µ≤≥÷",
    "𝕿𝖍𝖊 𝖖𝖚𝖎𝖈𝖐",
    "e\u{301}",
    "\u{202e}reversed",
    "\u{0}nul",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "\\\\server\\share",
    "%00%27",
    "  spaces  ",
    "👨‍👩‍👧‍👦",
    "\u{feff}bom",
    "\t\r\n",
];

#[derive(Debug, Clone)]
struct OddAccount {
    password: String,
    email_local: Option<String>,
}

fn odd_strategy() -> impl Strategy<Value = OddAccount> {
    let piece =
        prop_oneof![3 => proptest::sample::select(ODD).prop_map(str::to_string), 1 => "\\PC{1,12}"];
    let password = proptest::collection::vec(piece, 1..4).prop_map(|parts| {
        let mut p = parts.concat();
        while p.chars().count() < 8 {
            p.push('✓');
        }
        p.chars().take(128).collect::<String>()
    });
    let email_local = proptest::option::of(prop_oneof![
        Just("o'hara".to_string()),
        Just("a+tag".to_string()),
        Just("x\"; --".to_string()),
        Just("<b>".to_string()),
        Just("ünï".to_string()),
        Just("a\u{0}b".to_string()),
    ]);
    (password, email_local).prop_map(|(password, email_local)| OddAccount {
        password,
        email_local,
    })
}

pub async fn odd_strings(probe: Probe) -> Outcome {
    if !matches!(probe.env.accounts, Accounts::Register) {
        return Err(skip("needs open registration on the instance"));
    }
    let cases = probe.env.cases.clamp(4, 24);
    crate::property::check(
        &probe,
        "input/odd-strings",
        cases,
        odd_strategy,
        |case_probe, account| async move {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let email = match &account.email_local {
                Some(local) => format!("{local}.{id}@example.com"),
                None => format!("conf-{id}@example.com"),
            };
            let register = case_probe
                .send(
                    Req::post("/auth/register")
                        .json(&json!({"email": email, "password": account.password})),
                )
                .await?;
            if account.email_local.is_some() {
                // An odd email may be refused as invalid, but only with a 422 problem.
                if register.status == 422 {
                    return problem_shape(&register, &["validation_failed"])
                        .map_err(|e| fail(format!("odd email {email:?}: {e}")));
                }
            }
            ensure!(
                register.status == 201,
                "registering {email:?} with password {:?}: expected 201, got {}",
                account.password,
                register.summary()
            );
            let login = |password: &str| {
                Req::post("/auth/login").json(&json!({"email": email, "password": password}))
            };
            let exact = case_probe
                .send(login(&account.password).expect("200"))
                .await?;
            ensure!(
                exact.status == 200,
                "logging in with the exact odd password {:?}: expected 200, got {}",
                account.password,
                exact.summary()
            );
            let mut altered = account.password.clone();
            let last = altered.pop();
            altered.push(if last == Some('x') { 'y' } else { 'x' });
            let wrong = case_probe.send(login(&altered).expect("401")).await?;
            expect_problem(
                &wrong,
                401,
                &["invalid_credentials"],
                &format!("logging in with the altered password {altered:?}"),
            )
        },
    )
    .await
}

pub async fn wrong_content_type(probe: Probe) -> Outcome {
    let body = serde_json::to_vec(&valid_body("/auth/login")).unwrap_or_default();
    expect_4xx_problem(
        &probe,
        Req::post("/auth/login").raw("text/plain", body.clone()),
        "a JSON body sent as text/plain",
    )
    .await?;
    let mut no_type = Req::post("/auth/login");
    no_type.body = Some(body);
    expect_4xx_problem(&probe, no_type, "a JSON body with no Content-Type").await
}

pub async fn unknown_route(probe: Probe) -> Outcome {
    let reply = probe
        .send(Req::get("/auth/no-such-endpoint").expect("404 problem"))
        .await?;
    expect_problem(&reply, 404, &[], "an unknown path under /auth")?;
    let reply = probe
        .send(Req::delete("/auth/login").expect("405 problem"))
        .await?;
    ensure!(
        reply.status == 405 || reply.status == 404,
        "DELETE /auth/login: expected 405, got {}",
        reply.summary()
    );
    problem_shape(&reply, &[]).map_err(|e| fail(format!("DELETE /auth/login: {e}")))
}
