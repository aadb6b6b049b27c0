//! Issue 7 "Fuzzing", as proptest properties (cargo-fuzz needs a nightly
//! toolchain that CI does not have): the access-token verifier and the
//! refresh/logout body and cookie parsing take arbitrary input without a
//! panic, a 5xx or a non-problem answer.
//!
//! Each property runs 256 cases by default; run longer with
//! `PROPTEST_CASES=20000 cargo test -p baton-server --test reliability properties`.

use std::sync::Arc;

use baton::domain::access_token::AccessTokens;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::helpers::*;

const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        // No regression files in the source tree; a failure prints its input.
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Bytes a header value may hold (visible ASCII, space, tab, obs-text).
fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|b| {
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    b'~'
                } else {
                    b
                }
            })
            .collect()
    })
}

fn b64_string(max: usize) -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = B64URL.chars().collect();
    prop::collection::vec(prop::sample::select(alphabet), 0..max)
        .prop_map(|chars| chars.into_iter().collect())
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Bearer ", "bearer ", "BEARER ", "Bearer  ", "Bearer", "Bearer\t", "Basic ", "Token ", "",
    ])
}

/// Authorization values that must all be refused: noise, JWT-shaped noise,
/// one-character mutations and truncations of a valid token, headers forged
/// onto its payload, and oversized tokens.
fn bad_authorization(valid: String, kid: String) -> impl Strategy<Value = Vec<u8>> {
    let parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let (payload, signature) = (parts[1].clone(), parts[2].clone());
    let mutate_from = valid.clone();
    let truncate_from = valid.clone();
    let len = valid.len();
    prop_oneof![
        (scheme(), header_bytes(300)).prop_map(|(s, b)| [s.as_bytes(), &b].concat()),
        (scheme(), b64_string(60), b64_string(200), b64_string(90))
            .prop_map(|(s, h, p, g)| format!("{s}{h}.{p}.{g}").into_bytes()),
        (
            0..len,
            prop::sample::select(format!("{B64URL}.=+/ ").chars().collect::<Vec<_>>())
        )
            .prop_map(move |(i, c)| {
                let mut chars: Vec<char> = mutate_from.chars().collect();
                chars[i] = if chars[i] == c {
                    if c == 'A' { 'B' } else { 'A' }
                } else {
                    c
                };
                format!("Bearer {}", chars.into_iter().collect::<String>()).into_bytes()
            }),
        (0..len).prop_map(move |n| format!("Bearer {}", &truncate_from[..n]).into_bytes()),
        (0..7usize, ".{0,40}", 0..3usize).prop_map(move |(variant, random_kid, sig)| {
            let kid = if variant == 6 {
                random_kid
            } else {
                kid.clone()
            };
            let header = match variant {
                0 => json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
                1 => json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
                2 => json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid,
                            "jku": "http://127.0.0.1:9/jwks.json"}),
                3 => json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
                4 => json!({"alg": "EdDSA", "typ": "at+jwt"}),
                5 => json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}),
                _ => json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}),
            };
            let signature = match sig {
                0 => String::new(),
                1 => signature.clone(),
                _ => b64(&[7u8; 64]),
            };
            format!(
                "Bearer {}.{payload}.{signature}",
                b64(header.to_string().as_bytes())
            )
            .into_bytes()
        }),
        (8193usize..16_000).prop_map(|n| format!("Bearer {}", "A".repeat(n)).into_bytes()),
    ]
}

#[test]
fn arbitrary_authorization_headers_get_a_401_problem_with_www_authenticate() {
    let rt = runtime();
    let Some(app) = rt.block_on(spawn_app(Backend::Sqlite)) else {
        return;
    };
    let valid = rt.block_on(async {
        let user = app.new_user().await;
        app.login_body(&user).await.access_token
    });
    let kid = {
        use base64::Engine as _;
        let header = valid.split('.').next().unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        rt.block_on(app.me(&valid)).status(),
        200,
        "the unmutated token works"
    );
    let result = runner(cases()).run(&bad_authorization(valid, kid), |value| {
        let header = HeaderValue::from_bytes(&value).expect("a valid header value");
        let (status, content_type, www, body) = rt.block_on(async {
            let r = app
                .client
                .get(app.url("/auth/me"))
                .header("authorization", header)
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e:?}")))?;
            let status = r.status().as_u16();
            let get = |name: &str| {
                r.headers()
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_default()
            };
            let (content_type, www) = (get("content-type"), get("www-authenticate"));
            let body = r.text().await.unwrap_or_default();
            Ok::<_, TestCaseError>((status, content_type, www, body))
        })?;
        prop_assert_eq!(status, 401, "body: {}", body);
        prop_assert_eq!(content_type.as_str(), "application/problem+json");
        prop_assert!(
            www.to_ascii_lowercase().starts_with("bearer"),
            "WWW-Authenticate: {:?}",
            www
        );
        let problem: Value = serde_json::from_str(&body)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {body}")))?;
        prop_assert!(problem["code"].is_string(), "{}", problem);
        prop_assert_eq!(&problem["status"], &json!(401));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_access_token_verifier_refuses_arbitrary_strings_without_panicking() {
    let rt = runtime();
    let Some(app) = rt.block_on(spawn_app(Backend::Sqlite)) else {
        return;
    };
    let tokens = AccessTokens::new(
        app.keys.clone(),
        Arc::new(app.clock.clone()),
        app.settings.policy(),
        app.settings.issuer(),
        app.settings.audience.clone(),
    );
    let valid = tokens.issue("user", "session").unwrap().token;
    assert!(rt.block_on(tokens.verify(&valid)).is_ok());
    let parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let strategy = prop_oneof![
        any::<String>(),
        ".{0,200}".prop_map(|s| s),
        (b64_string(80), b64_string(300), b64_string(100))
            .prop_map(|(h, p, s)| format!("{h}.{p}.{s}")),
        (any::<String>(), 0..3usize).prop_map(move |(noise, at)| {
            let mut p = parts.clone();
            p[at] = b64(noise.as_bytes());
            p.join(".")
        }),
    ];
    // The verifier is cheap: many more cases than the HTTP properties.
    let result = runner(cases().saturating_mul(8)).run(&strategy, |s| {
        let verdict = rt.block_on(tokens.verify(&s));
        prop_assert!(verdict.is_err(), "accepted {:?}", s);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A refresh or logout request made of arbitrary parts.
#[derive(Debug, Clone)]
struct RawRequest {
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    cookie: Option<Vec<u8>>,
    origin: Option<&'static str>,
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let json_value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::from),
        prop::collection::vec(any::<String>(), 0..4).prop_map(|v| json!(v)),
    ];
    prop_oneof![
        // Raw bytes.
        prop::collection::vec(any::<u8>(), 0..600),
        // Well-formed JSON, arbitrary token text.
        any::<String>().prop_map(|t| json!({"refresh_token": t}).to_string().into_bytes()),
        b64_string(120).prop_map(|t| json!({"refresh_token": t}).to_string().into_bytes()),
        // The right field with the wrong type, unknown fields.
        json_value
            .clone()
            .prop_map(|v| json!({"refresh_token": v}).to_string().into_bytes()),
        (".{0,20}", json_value).prop_map(|(k, v)| {
            let mut o = serde_json::Map::new();
            o.insert(k, v);
            Value::Object(o).to_string().into_bytes()
        }),
        // Deep nesting and bodies around the 64 KiB limit.
        (1usize..3000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes()),
        (65_000usize..67_000)
            .prop_map(|n| { format!("{{\"refresh_token\":\"{}\"}}", "a".repeat(n)).into_bytes() }),
    ]
}

fn cookie_strategy() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        header_bytes(400).prop_map(Some),
        header_bytes(300).prop_map(|v| Some([b"__Secure-baton_refresh=".as_slice(), &v].concat())),
        b64_string(100).prop_map(|v| Some(format!("__Secure-baton_refresh={v}").into_bytes())),
        (b64_string(50), b64_string(50)).prop_map(|(a, b)| {
            Some(format!("__Secure-baton_refresh={a}; __Secure-baton_refresh={b}").into_bytes())
        }),
        (9_000usize..12_000)
            .prop_map(|n| Some(format!("__Secure-baton_refresh={}", "x".repeat(n)).into_bytes())),
    ]
}

fn request_strategy() -> impl Strategy<Value = RawRequest> {
    (
        prop::sample::select(vec!["/auth/refresh", "/auth/logout"]),
        prop::sample::select(vec![
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/json; charset=latin1"),
            None,
        ]),
        body_strategy(),
        cookie_strategy(),
        prop::sample::select(vec![None, None, Some("http://app.test"), Some("null")]),
    )
        .prop_map(|(path, content_type, body, cookie, origin)| RawRequest {
            path,
            content_type,
            body,
            cookie,
            origin,
        })
}

#[test]
fn arbitrary_refresh_and_logout_bodies_and_cookies_never_get_a_5xx() {
    let rt = runtime();
    let Some(app) = rt.block_on(spawn_app(Backend::Sqlite)) else {
        return;
    };
    // A connection per case, so that each case is judged on its own: a case
    // that ends a connection (a 413 for a declared body over 64 KiB is
    // answered without reading it) must not be blamed on the next one.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let result = runner(cases()).run(&request_strategy(), |req| {
        let (status, content_type, body) = rt.block_on(async {
            let mut builder = client.post(app.url(req.path)).body(req.body.clone());
            if let Some(ct) = req.content_type {
                builder = builder.header("content-type", ct);
            }
            if let Some(cookie) = &req.cookie {
                builder = builder.header("cookie", HeaderValue::from_bytes(cookie).unwrap());
            }
            if let Some(origin) = req.origin {
                builder = builder.header("origin", origin);
            }
            let r = builder
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e:?}")))?;
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            let body = r.text().await.unwrap_or_default();
            Ok::<_, TestCaseError>((status, content_type, body))
        })?;
        prop_assert!(status < 500, "{} answered {}: {}", req.path, status, body);
        let success = if req.path == "/auth/logout" { 204 } else { 200 };
        prop_assert!(
            status == success || (400..500).contains(&status),
            "{} answered {}",
            req.path,
            status
        );
        if status >= 400 {
            prop_assert_eq!(
                content_type.as_str(),
                "application/problem+json",
                "{}",
                body
            );
            let problem: Value = serde_json::from_str(&body)
                .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {body}")))?;
            prop_assert!(problem["code"].is_string(), "{}", problem);
        }
        prop_assert!(
            req.path == "/auth/logout" || status != 200,
            "an arbitrary refresh token was accepted"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // And the service is intact afterwards.
    rt.block_on(async {
        let user = app.new_user().await;
        let tokens = app.login_body(&user).await;
        assert_eq!(app.refresh_body(&tokens.refresh_token).await.status(), 200);
    });
}

/// A 413 must not leave a keep-alive client (reqwest's pool, browsers) with a
/// silently dead connection: either the server reads the rest of the body and
/// the connection stays usable, or it says `Connection: close` (RFC 9112
/// §9.6). A body just over the 64 KiB limit, as clients really send.
#[test]
fn after_a_413_the_connection_stays_usable_or_its_close_is_announced() {
    use std::io::{Read as _, Write as _};
    let rt = runtime();
    let Some(app) = rt.block_on(spawn_app(Backend::Sqlite)) else {
        return;
    };
    // Just over the limit and far over it: both are refused unread, so the
    // close must be announced.
    for size in [66_000, 2 * 1024 * 1024] {
        let body = format!("{{\"refresh_token\":\"{}\"}}", "a".repeat(size));
        let request = format!(
            "POST /auth/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = stream.write_all(request.as_bytes());
        let mut head = vec![0u8; 4096];
        let n = stream.read(&mut head).unwrap_or(0);
        let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 413"), "{size} bytes: {head:?}");
        // Does the connection stay usable, or is its closing announced?
        let announced = head.contains("connection: close");
        let second = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .and_then(|()| {
                let mut buf = vec![0u8; 1024];
                stream.read(&mut buf).map(|n| n > 0)
            })
            .unwrap_or(false);
        assert!(
            announced || second,
            "{size} bytes: the connection closed after a 413 without `Connection: close`:\n{head}"
        );
    }
}
