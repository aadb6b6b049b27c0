//! The HTTP side of the suite: requests spread round-robin over the instances, every exchange
//! recorded so that a failure can be replayed with curl.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::cookie::{self, SetCookie};

/// Seconds since the Unix epoch, as a float (the suite's one clock).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The instances under test and one connection pool for all of them.
pub struct Instances {
    client: reqwest::Client,
    base_urls: Vec<String>,
    next: AtomicUsize,
}

impl Instances {
    pub fn new(base_urls: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(!base_urls.is_empty(), "at least one --base-url is needed");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .user_agent("baton-conformance/0.1")
            .build()?;
        Ok(Instances {
            client,
            base_urls: base_urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            next: AtomicUsize::new(0),
        })
    }

    pub fn base_urls(&self) -> &[String] {
        &self.base_urls
    }

    /// The next instance in round-robin order.
    fn pick(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.base_urls.len();
        &self.base_urls[i]
    }
}

/// A request about to be sent. Built with [`Req::new`] and the builder methods.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Which instance: `None` means round-robin.
    pub instance: Option<usize>,
    /// What the caller expects, shown next to the step in a failure report.
    pub expectation: Option<String>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Req {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
            instance: None,
            expectation: None,
        }
    }
    pub fn get(path: &str) -> Self {
        Req::new("GET", path)
    }
    pub fn post(path: &str) -> Self {
        Req::new("POST", path)
    }
    pub fn delete(path: &str) -> Self {
        Req::new("DELETE", path)
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }
    pub fn cookie(self, name: &str, value: &str) -> Self {
        self.header("Cookie", &format!("{name}={value}"))
    }
    pub fn json(self, body: &Value) -> Self {
        self.raw(
            "application/json",
            serde_json::to_vec(body).unwrap_or_default(),
        )
    }
    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push(("Content-Type".to_string(), content_type.to_string()));
        self.body = Some(body);
        self
    }
    pub fn on_instance(mut self, index: usize) -> Self {
        self.instance = Some(index);
        self
    }
    pub fn expect(mut self, what: impl Into<String>) -> Self {
        self.expectation = Some(what.into());
        self
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Local clock when the request was sent and when the response was complete: the server
    /// handled the request somewhere in between.
    pub sent_at: f64,
    pub received_at: f64,
}

impl Reply {
    /// The first value of a header (name compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    /// A string field of the JSON body.
    pub fn str_field(&self, field: &str) -> Option<String> {
        self.json()?.get(field)?.as_str().map(str::to_string)
    }
    /// The problem `code` of an error body.
    pub fn code(&self) -> Option<String> {
        self.str_field("code")
    }
    /// The target of the `Link` header's `rel="next"` (RFC 8288), resolved against `base` (the
    /// path and query this reply answered, RFC 3986 §5.2) into a path and query to send to an
    /// instance: how a paged list says there is more. The target may be absolute (any host: the
    /// instances form one service), an absolute path, or relative (`?cursor=x`, `sessions?…`).
    pub fn next_link_from(&self, base: &str) -> Option<String> {
        self.header_values("link")
            .flat_map(link_values)
            .find(|(_, params)| {
                params.split(';').any(|p| {
                    p.trim().split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("rel")
                            && v.trim()
                                .trim_matches('"')
                                .split_whitespace()
                                .any(|r| r.eq_ignore_ascii_case("next"))
                    })
                })
            })
            .map(|(target, _)| resolve_reference(base, &target))
    }
    pub fn set_cookie(&self, name: &str) -> Option<SetCookie> {
        cookie::find(self.header_values("set-cookie"), name)
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A short description: status, code and the start of the body.
    pub fn summary(&self) -> String {
        let mut text = self.body_text();
        if text.chars().count() > 300 {
            text = text.chars().take(300).collect::<String>() + "…";
        }
        format!("{} {}", self.status, text)
    }
}

/// The link-values of one `Link` header value: each target (between `<` and `>`, so a comma
/// inside a URI does not split it) with the parameters that follow it.
fn link_values(value: &str) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|i| open + i) else {
            break;
        };
        let target = rest[open + 1..close].trim().to_string();
        let after = &rest[close + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let params = after[..params_end].trim_end().trim_end_matches(',');
        links.push((target, params.to_string()));
        rest = &after[params_end..];
    }
    links
}

/// Resolves a URI reference against `base` (a path with an optional query) as RFC 3986 §5.2
/// does, keeping only the path and query: an absolute URI or a network-path reference names an
/// instance of the service, whose path is what the suite sends to its own instances.
pub fn resolve_reference(base: &str, reference: &str) -> String {
    let reference = reference.split('#').next().unwrap_or("");
    let has_scheme = reference.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let without_authority = |r: &str| -> String {
        let after = r.trim_start_matches('/');
        match after.find(['/', '?']) {
            Some(i) if after[i..].starts_with('/') => after[i..].to_string(),
            Some(i) => format!("/{}", &after[i..]),
            None => "/".to_string(),
        }
    };
    let (base_path, _) = base.split_once('?').unwrap_or((base, ""));
    let target = if has_scheme {
        let rest = &reference[reference.find(':').unwrap_or(0) + 1..];
        match rest.strip_prefix("//") {
            Some(authority_and_path) => without_authority(authority_and_path),
            None => rest.to_string(),
        }
    } else if let Some(rest) = reference.strip_prefix("//") {
        without_authority(rest)
    } else if reference.starts_with('/') {
        reference.to_string()
    } else if reference.is_empty() {
        base.to_string()
    } else if reference.starts_with('?') {
        format!("{base_path}{reference}")
    } else {
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        format!("{}{reference}", if dir.is_empty() { "/" } else { dir })
    };
    remove_dot_segments(&target)
}

/// RFC 3986 §5.2.4 on the path part (the query is kept as it is).
fn remove_dot_segments(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut resolved = format!("/{}", out.join("/"));
    if let Some(q) = query {
        resolved.push('?');
        resolved.push_str(q);
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_link(value: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("link".into(), value.into())],
            body: vec![],
            sent_at: 0.0,
            received_at: 0.0,
        }
    }

    #[test]
    fn the_next_link_is_found_in_any_form() {
        let base = "/auth/sessions";
        assert_eq!(
            with_link(r#"</auth/sessions?cursor=abc&limit=2>; rel="next""#).next_link_from(base),
            Some("/auth/sessions?cursor=abc&limit=2".into())
        );
        assert_eq!(
            with_link(r#"<http://10.0.0.5:8080/auth/sessions?cursor=x>; REL=next, </auth/sessions>; rel="first""#)
                .next_link_from(base),
            Some("/auth/sessions?cursor=x".into())
        );
        assert_eq!(
            with_link(r#"</auth/sessions>; rel="prev""#).next_link_from(base),
            None
        );
        assert_eq!(
            with_link(r#"</auth/sessions>; rel="first", <?after=a,b>; rel="next""#)
                .next_link_from("/auth/sessions?after=z"),
            Some("/auth/sessions?after=a,b".into())
        );
        assert_eq!(
            with_link(r#"<sessions?page=2>; rel="prefetch next""#).next_link_from(base),
            Some("/auth/sessions?page=2".into())
        );
    }

    #[test]
    fn references_resolve_as_rfc_3986_says() {
        let base = "/auth/sessions/page/2?x=1";
        for (reference, resolved) in [
            ("3", "/auth/sessions/page/3"),
            ("./3?y", "/auth/sessions/page/3?y"),
            ("../../sessions?c=9", "/auth/sessions?c=9"),
            ("?c=9", "/auth/sessions/page/2?c=9"),
            ("/auth/sessions?c=9", "/auth/sessions?c=9"),
            ("//other:8080/auth/sessions?c=9", "/auth/sessions?c=9"),
            ("https://other/auth/sessions?c=9#top", "/auth/sessions?c=9"),
            ("http://other", "/"),
            ("http://other?c=1", "/?c=1"),
        ] {
            assert_eq!(resolve_reference(base, reference), resolved, "{reference}");
        }
    }
}

/// One recorded request and its outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    #[serde(skip)]
    pub request_body: Option<Vec<u8>>,
    pub expectation: Option<String>,
    /// The status, or the transport error.
    pub outcome: Result<u16, String>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
}

/// The `method` of a recorded pause (the `url` then holds the seconds).
pub const WAIT: &str = "WAIT";

impl Exchange {
    /// A pause between requests, recorded so that a reproduction keeps the timing.
    pub fn wait(seconds: f64) -> Exchange {
        Exchange {
            method: WAIT.to_string(),
            url: format!("{seconds:.1}"),
            request_headers: Vec::new(),
            request_body: None,
            expectation: None,
            outcome: Ok(0),
            response_headers: Vec::new(),
            response_body: String::new(),
        }
    }

    /// A curl command line that replays this request (or `sleep` for a pause).
    pub fn curl(&self) -> String {
        if self.method == WAIT {
            return format!("sleep {}", self.url);
        }
        crate::curl::command(
            &self.method,
            &self.url,
            &self.request_headers,
            self.request_body.as_deref(),
        )
    }
}

/// The requests of one check (or of one property case), in order.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Exchange>>>);

impl Recorder {
    pub fn push(&self, exchange: Exchange) {
        if let Ok(mut steps) = self.0.lock() {
            steps.push(exchange);
        }
    }
    pub fn steps(&self) -> Vec<Exchange> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
    pub fn clear(&self) {
        if let Ok(mut steps) = self.0.lock() {
            steps.clear();
        }
    }
}

/// Sends `req` to an instance, records it, and returns the fully read response.
pub async fn send(instances: &Instances, recorder: &Recorder, req: Req) -> Result<Reply, String> {
    let base = match req.instance {
        Some(i) => instances.base_urls[i % instances.base_urls.len()].as_str(),
        None => instances.pick(),
    };
    let url = format!("{base}{}", req.path);
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = instances.client.request(method, &url);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let sent_at = now();
    let result = async {
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.bytes().await?.to_vec();
        Ok::<_, reqwest::Error>((status, headers, body))
    }
    .await;
    let received_at = now();
    let mut exchange = Exchange {
        method: req.method.clone(),
        url,
        request_headers: req.headers.clone(),
        request_body: req.body.clone(),
        expectation: req.expectation.clone(),
        outcome: Err(String::new()),
        response_headers: Vec::new(),
        response_body: String::new(),
    };
    match result {
        Ok((status, headers, body)) => {
            exchange.outcome = Ok(status);
            exchange.response_headers = headers.clone();
            exchange.response_body = String::from_utf8_lossy(&body).chars().take(2000).collect();
            recorder.push(exchange);
            Ok(Reply {
                status,
                headers,
                body,
                sent_at,
                received_at,
            })
        }
        Err(error) => {
            let message = format!("{} {}: {}", req.method, req.path, error_chain(&error));
            exchange.outcome = Err(message.clone());
            recorder.push(exchange);
            Err(message)
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
