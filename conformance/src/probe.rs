//! What a check works with: the instances, what they said about themselves, an account source,
//! and a recorder of every request the check sends. Plus the contract's client operations.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::discovery::AuthConfiguration;
use crate::http::{self, Exchange, Instances, Recorder, Reply, Req};

/// Why a check stopped before passing.
#[derive(Debug, Clone)]
pub enum Stop {
    /// The instance broke the contract (or could not be reached).
    Fail(Failure),
    /// The check does not apply to this instance; the text says why and what setting enables it.
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    /// The HTTP steps that show the failure. `None`: use every request the check sent.
    pub steps: Option<Vec<Exchange>>,
}

pub type Outcome = Result<(), Stop>;

pub fn fail(message: impl Into<String>) -> Stop {
    Stop::Fail(Failure {
        message: message.into(),
        steps: None,
    })
}

pub fn skip(reason: impl Into<String>) -> Stop {
    Stop::Skip(reason.into())
}

/// `ensure!(condition, "format", args)`: fails the check with the message when false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err($crate::probe::fail(format!($($arg)+)));
        }
    };
}

/// Where checks get their users from.
#[derive(Debug, Clone)]
pub enum Accounts {
    /// Registration is open: each check registers throw-away users.
    Register,
    /// The operator gave one account (`--email`/`--password`); checks that need two users skip.
    Given { email: String, password: String },
    /// Neither: checks that need a user skip with this reason.
    Unavailable(String),
}

/// Everything shared by all checks of one run.
pub struct Env {
    pub instances: Instances,
    pub config: Result<AuthConfiguration, String>,
    pub jwks: Value,
    pub accounts: Accounts,
    pub cases: u32,
    pub seed: u64,
    /// Operation sequences the model replays before its random ones (`--replay`).
    pub regressions: Vec<Vec<crate::machine::Op>>,
    /// A shell command that restarts the instances (`--restart-cmd`), for the checks that need
    /// state to survive a restart.
    pub restart_cmd: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Channel {
    Cookie,
    Body,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Cookie => "cookie",
            Channel::Body => "body",
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub password: String,
    pub id: Option<String>,
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub expires_in: i64,
    pub reply: Reply,
}

/// One check's handle on the run.
#[derive(Clone)]
pub struct Probe {
    pub env: Arc<Env>,
    pub recorder: Recorder,
}

impl Probe {
    pub fn new(env: Arc<Env>) -> Self {
        Probe {
            env,
            recorder: Recorder::default(),
        }
    }

    /// The same run with a fresh, empty recorder (for one property case).
    pub fn fresh(&self) -> Self {
        Probe::new(self.env.clone())
    }

    pub fn config(&self) -> Result<&AuthConfiguration, Stop> {
        self.env.config.as_ref().map_err(|e| {
            fail(format!(
                "the auth configuration is unusable, so this check cannot run: {e}"
            ))
        })
    }

    pub fn cookie_name(&self) -> Result<String, Stop> {
        Ok(self.config()?.refresh_cookie.name.clone())
    }

    /// Sends a request. A 429 stops the check: throttling is a deployment policy that a test
    /// rig must turn off or relax, and no check expects it.
    pub async fn send(&self, req: Req) -> Result<Reply, Stop> {
        let what = format!("{} {}", req.method, req.path);
        let reply = http::send(&self.env.instances, &self.recorder, req)
            .await
            .map_err(|e| fail(format!("request failed: {e}")))?;
        if reply.status == 429 {
            return Err(fail(format!(
                "{what} was throttled (429): turn rate limiting off or relax it for the test rig (BATON_RATE_LIMITS=off)"
            )));
        }
        Ok(reply)
    }

    /// A fresh user: registered when registration is open, else the given account.
    pub async fn user(&self) -> Result<User, Stop> {
        match &self.env.accounts {
            Accounts::Register => {
                let user = User {
                    email: format!("conf-{}@example.com", uuid::Uuid::new_v4().simple()),
                    password: format!("Conformance-{}", uuid::Uuid::new_v4().simple()),
                    id: None,
                };
                let reply = self
                    .send(
                        Req::post("/auth/register")
                            .json(&json!({"email": user.email, "password": user.password})),
                    )
                    .await?;
                ensure!(
                    reply.status == 201,
                    "registering a fresh user: expected 201, got {}",
                    reply.summary()
                );
                Ok(User {
                    id: reply.str_field("id"),
                    ..user
                })
            }
            Accounts::Given { email, password } => Ok(User {
                email: email.clone(),
                password: password.clone(),
                id: None,
            }),
            Accounts::Unavailable(reason) => Err(skip(reason.clone())),
        }
    }

    /// A second, different user (skips when only one account was given).
    pub async fn other_user(&self) -> Result<User, Stop> {
        match &self.env.accounts {
            Accounts::Given { .. } => Err(skip(
                "needs a second user: run against an instance with open registration instead of giving --email/--password",
            )),
            _ => self.user().await,
        }
    }

    pub async fn login_reply(&self, user: &User, channel: Channel) -> Result<Reply, Stop> {
        let mut body = json!({"email": user.email, "password": user.password});
        if channel == Channel::Body {
            body["refresh_token_in_body"] = json!(true);
        }
        self.send(Req::post("/auth/login").json(&body)).await
    }

    pub async fn login(&self, user: &User, channel: Channel) -> Result<Tokens, Stop> {
        let reply = self.login_reply(user, channel).await?;
        ensure!(
            reply.status == 200,
            "logging in ({} channel): expected 200, got {}",
            channel.name(),
            reply.summary()
        );
        self.tokens(reply, channel)
    }

    /// Reads a 200 token response delivered on `channel`.
    pub fn tokens(&self, reply: Reply, channel: Channel) -> Result<Tokens, Stop> {
        let body = reply
            .json()
            .ok_or_else(|| fail(format!("a token response is not JSON: {}", reply.summary())))?;
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                fail(format!(
                    "a token response has no access_token: {}",
                    reply.summary()
                ))
            })?
            .to_string();
        let refresh_token = match channel {
            Channel::Body => body
                .get("refresh_token")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    fail(format!(
                        "body delivery was asked for, but the response has no refresh_token: {}",
                        reply.summary()
                    ))
                })?,
            Channel::Cookie => {
                let name = self.cookie_name()?;
                reply
                    .set_cookie(&name)
                    .filter(|c| !c.is_clearing())
                    .map(|c| c.value)
                    .ok_or_else(|| {
                        fail(format!(
                            "cookie delivery: the response sets no {name} cookie"
                        ))
                    })?
            }
        };
        Ok(Tokens {
            access_token,
            refresh_token,
            refresh_expires_in: body
                .get("refresh_expires_in")
                .and_then(Value::as_i64)
                .unwrap_or(-1),
            expires_in: body.get("expires_in").and_then(Value::as_i64).unwrap_or(-1),
            reply,
        })
    }

    /// `POST /auth/refresh` presenting `token` on `channel`.
    pub fn refresh_req(&self, token: &str, channel: Channel) -> Result<Req, Stop> {
        Ok(match channel {
            Channel::Body => Req::post("/auth/refresh").json(&json!({"refresh_token": token})),
            Channel::Cookie => Req::post("/auth/refresh").cookie(&self.cookie_name()?, token),
        })
    }

    pub async fn refresh_reply(&self, token: &str, channel: Channel) -> Result<Reply, Stop> {
        self.send(self.refresh_req(token, channel)?).await
    }

    pub async fn refresh(&self, token: &str, channel: Channel) -> Result<Tokens, Stop> {
        let reply = self.refresh_reply(token, channel).await?;
        ensure!(
            reply.status == 200,
            "refreshing a live token ({} channel): expected 200, got {}",
            channel.name(),
            reply.summary()
        );
        self.tokens(reply, channel)
    }

    pub async fn me(&self, access_token: &str) -> Result<Reply, Stop> {
        self.send(Req::get("/auth/me").bearer(access_token)).await
    }
}

/// Checks that `reply` is the problem body the contract requires for an error: the status,
/// `application/problem+json`, the RFC 9457 members and `code` (any code when `code` is None).
pub fn expect_problem(reply: &Reply, status: u16, codes: &[&str], context: &str) -> Outcome {
    ensure!(
        reply.status == status,
        "{context}: expected {status}, got {}",
        reply.summary()
    );
    problem_shape(reply, codes).map_err(|e| fail(format!("{context}: {e}")))
}

/// The problem-body rules alone (no status check): returns what is wrong.
pub fn problem_shape(reply: &Reply, codes: &[&str]) -> Result<(), String> {
    let content_type = reply.header("content-type").unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/problem+json")
    {
        return Err(format!(
            "status {} with Content-Type {content_type:?}, expected application/problem+json; body {}",
            reply.status,
            reply.summary()
        ));
    }
    let body = reply
        .json()
        .ok_or_else(|| format!("the problem body is not JSON: {}", reply.summary()))?;
    for member in ["type", "title", "detail", "code"] {
        if !body.get(member).is_some_and(Value::is_string) {
            return Err(format!(
                "the problem body lacks the string member {member:?}: {body}"
            ));
        }
    }
    if body.get("status").and_then(Value::as_u64) != Some(u64::from(reply.status)) {
        return Err(format!(
            "the problem body's status is not the HTTP status {}: {body}",
            reply.status
        ));
    }
    let code = body["code"].as_str().unwrap_or_default();
    let snake_case = !code.is_empty()
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake_case {
        return Err(format!("code {code:?} is not a snake_case string"));
    }
    if !codes.is_empty() && !codes.contains(&code) {
        return Err(format!("code is {code:?}, expected {}", codes.join(" or ")));
    }
    Ok(())
}

/// The auth-params of the first `Bearer` challenge in `WWW-Authenticate` header values
/// (RFC 7235 §4.1: names without case, values a token or a quoted-string, optional whitespace
/// around `=`, several challenges per header or several headers). `None`: no Bearer challenge.
pub fn bearer_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Option<Vec<(String, String)>> {
    for value in values {
        let mut current: Option<Vec<(String, String)>> = None;
        for item in auth_items(value) {
            match (item, current.as_mut()) {
                (AuthItem::Scheme(_), Some(_)) => break,
                (AuthItem::Scheme(s), None) if s.eq_ignore_ascii_case("bearer") => {
                    current = Some(Vec::new())
                }
                (AuthItem::Param(n, v), Some(params)) => params.push((n.to_ascii_lowercase(), v)),
                _ => {}
            }
        }
        if current.is_some() {
            return current;
        }
    }
    None
}

enum AuthItem {
    /// A token not followed by `=`: a challenge's scheme (or a token68, which no check needs).
    Scheme(String),
    Param(String, String),
}

/// Splits a `WWW-Authenticate` value into schemes and `name=value` parameters.
fn auth_items(value: &str) -> Vec<AuthItem> {
    let chars: Vec<char> = value.chars().collect();
    let separator = |c: char| c.is_whitespace() || c == ',' || c == '=';
    let skip_space = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',' || chars[i] == '=') {
            i += 1;
        }
        let start = i;
        while i < chars.len() && !separator(chars[i]) {
            i += 1;
        }
        if start == i {
            break;
        }
        let name: String = chars[start..i].iter().collect();
        let j = skip_space(i);
        if j >= chars.len() || chars[j] != '=' {
            items.push(AuthItem::Scheme(name));
            continue;
        }
        let mut j = skip_space(j + 1);
        let mut param = String::new();
        if j < chars.len() && chars[j] == '"' {
            j += 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    j += 1;
                }
                param.push(chars[j]);
                j += 1;
            }
            j += 1;
        } else {
            while j < chars.len() && !chars[j].is_whitespace() && chars[j] != ',' {
                param.push(chars[j]);
                j += 1;
            }
        }
        items.push(AuthItem::Param(name, param));
        i = j;
    }
    items
}

/// The `WWW-Authenticate` rules of RFC 6750 for a 401 from an access-token check.
pub fn www_authenticate_problem(reply: &Reply, token_was_sent: bool) -> Option<String> {
    let values: Vec<&str> = reply.header_values("www-authenticate").collect();
    if values.is_empty() {
        return Some("the 401 has no WWW-Authenticate header".into());
    }
    let Some(params) = bearer_challenge(values.iter().copied()) else {
        return Some(format!(
            "WWW-Authenticate is {values:?}, expected the Bearer scheme"
        ));
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if token_was_sent && param("error") != Some("invalid_token") {
        return Some(format!(
            "a token was sent, so WWW-Authenticate needs error=\"invalid_token\"; got {values:?}"
        ));
    }
    if token_was_sent && param("error_description").is_none() {
        return Some(format!(
            "WWW-Authenticate has no error_description: {values:?}"
        ));
    }
    if !token_was_sent && param("error").is_some() {
        return Some(format!(
            "no token was sent, so WWW-Authenticate must carry no error; got {values:?}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            sent_at: 0.0,
            received_at: 0.0,
        }
    }

    const PROBLEM: &str = r#"{"type":"urn:baton:problem:invalid_token","title":"Invalid token","status":401,"detail":"bad","code":"invalid_token"}"#;

    #[test]
    fn a_complete_problem_body_passes() {
        let r = reply(
            401,
            &[("Content-Type", "application/problem+json")],
            PROBLEM,
        );
        assert_eq!(problem_shape(&r, &["invalid_token"]), Ok(()));
        assert!(expect_problem(&r, 401, &[], "x").is_ok());
    }

    #[test]
    fn problem_rules_each_fail() {
        let json_type = reply(401, &[("content-type", "application/json")], PROBLEM);
        assert!(
            problem_shape(&json_type, &[])
                .unwrap_err()
                .contains("application/problem+json")
        );
        let wrong_code = reply(
            401,
            &[("content-type", "application/problem+json")],
            PROBLEM,
        );
        assert!(
            problem_shape(&wrong_code, &["token_expired"])
                .unwrap_err()
                .contains("code is \"invalid_token\"")
        );
        let status_mismatch = reply(
            403,
            &[("content-type", "application/problem+json")],
            PROBLEM,
        );
        assert!(
            problem_shape(&status_mismatch, &[])
                .unwrap_err()
                .contains("not the HTTP status 403")
        );
        let no_detail = reply(
            401,
            &[("content-type", "application/problem+json")],
            r#"{"type":"t","title":"t","status":401,"code":"c"}"#,
        );
        assert!(
            problem_shape(&no_detail, &[])
                .unwrap_err()
                .contains("\"detail\"")
        );
        let html = reply(500, &[("content-type", "text/html")], "<html>");
        assert!(expect_problem(&html, 401, &[], "x").is_err());
    }

    #[test]
    fn www_authenticate_follows_rfc_6750() {
        let with_error = [(
            "WWW-Authenticate",
            r#"Bearer error="invalid_token", error_description="expired""#,
        )];
        assert_eq!(
            www_authenticate_problem(&reply(401, &with_error, ""), true),
            None
        );
        assert!(
            www_authenticate_problem(&reply(401, &with_error, ""), false)
                .unwrap()
                .contains("must carry no error")
        );
        let bare = [("www-authenticate", "Bearer")];
        assert_eq!(
            www_authenticate_problem(&reply(401, &bare, ""), false),
            None
        );
        assert!(
            www_authenticate_problem(&reply(401, &bare, ""), true)
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        let no_description = [("www-authenticate", r#"Bearer error="invalid_token""#)];
        assert!(
            www_authenticate_problem(&reply(401, &no_description, ""), true)
                .unwrap()
                .contains("error_description")
        );
        assert!(
            www_authenticate_problem(&reply(401, &[], ""), false)
                .unwrap()
                .contains("no WWW-Authenticate")
        );
        let unquoted = [(
            "www-authenticate",
            r#"DPoP algs="ES256", bearer realm="baton" , ERROR = invalid_token, error_description="a \"bad\" one""#,
        )];
        assert_eq!(
            www_authenticate_problem(&reply(401, &unquoted, ""), true),
            None
        );
        let two_headers = [
            ("www-authenticate", "Basic realm=x"),
            ("WWW-Authenticate", "Bearer realm=\"baton\""),
        ];
        assert_eq!(
            www_authenticate_problem(&reply(401, &two_headers, ""), false),
            None
        );
        let basic = [("www-authenticate", "Basic realm=x")];
        assert!(
            www_authenticate_problem(&reply(401, &basic, ""), false)
                .unwrap()
                .contains("Bearer scheme")
        );
    }
}
