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
    /// The target of the `Link` header's `rel="next"` (RFC 8288), as a path and query to send to
    /// the same instance: how a paged list says there is more.
    pub fn next_link(&self) -> Option<String> {
        for value in self.header_values("link") {
            for link in value.split(',') {
                let mut parts = link.split(';');
                let target = parts.next()?.trim();
                let Some(uri) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
                    continue;
                };
                let is_next = parts.any(|p| {
                    p.trim().split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("rel")
                            && v.trim()
                                .trim_matches('"')
                                .split_whitespace()
                                .any(|r| r.eq_ignore_ascii_case("next"))
                    })
                });
                if is_next {
                    // An absolute URI names this or another instance of the service: keep its path.
                    let path = match uri.split_once("://") {
                        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
                        None => uri,
                    };
                    return Some(path.to_string());
                }
            }
        }
        None
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
        assert_eq!(
            with_link(r#"</auth/sessions?cursor=abc&limit=2>; rel="next""#).next_link(),
            Some("/auth/sessions?cursor=abc&limit=2".into())
        );
        assert_eq!(
            with_link(r#"<http://10.0.0.5:8080/auth/sessions?cursor=x>; REL=next, </auth/sessions>; rel="first""#)
                .next_link(),
            Some("/auth/sessions?cursor=x".into())
        );
        assert_eq!(
            with_link(r#"</auth/sessions>; rel="prev""#).next_link(),
            None
        );
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
