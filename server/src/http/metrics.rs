//! `GET /metrics`: counters and latency histograms in the Prometheus text
//! format. Labels are bounded: routes are templates, outcomes are problem codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Registry {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<(&'static str, &'static str), Histogram>,
    logins: BTreeMap<&'static str, u64>,
    refreshes: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

/// The route template of a path, so that ids never become labels (the
/// templates come from the one route table).
pub fn route_of(path: &str) -> &'static str {
    super::routes::table().label(path)
}

/// The method label: the standard ones, `other` for anything else (a
/// client-chosen token must not grow the registry).
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    pub fn observe_request(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        let route = route_of(path);
        let method = method_label(method);
        let mut r = self.registry.lock().expect("metrics lock");
        *r.requests.entry((method, route, status)).or_default() += 1;
        r.latency
            .entry((method, route))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// `outcome` is `ok` or a problem code.
    pub fn observe_login(&self, outcome: &'static str) {
        *self
            .registry
            .lock()
            .expect("metrics lock")
            .logins
            .entry(outcome)
            .or_default() += 1;
    }

    /// `outcome` is `ok` or a problem code (`refresh_token_reused` = a detected replay).
    pub fn observe_refresh(&self, outcome: &'static str) {
        *self
            .registry
            .lock()
            .expect("metrics lock")
            .refreshes
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let r = self.registry.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP baton_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE baton_http_requests_total counter\n");
        for ((method, route, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "baton_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP baton_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE baton_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &r.latency {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "baton_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "baton_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "baton_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "baton_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str("# HELP baton_logins_total Login attempts by outcome (ok or problem code).\n");
        out.push_str("# TYPE baton_logins_total counter\n");
        for (outcome, n) in &r.logins {
            let _ = writeln!(out, "baton_logins_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP baton_refreshes_total Refreshes by outcome (ok or problem code).\n");
        out.push_str("# TYPE baton_refreshes_total counter\n");
        for (outcome, n) in &r.refreshes {
            let _ = writeln!(out, "baton_refreshes_total{{outcome=\"{outcome}\"}} {n}");
        }
        let failures = r.logins.get("invalid_credentials").copied().unwrap_or(0);
        let reuse = r
            .refreshes
            .get("refresh_token_reused")
            .copied()
            .unwrap_or(0);
        out.push_str("# HELP baton_login_failures_total Logins refused for wrong credentials.\n");
        out.push_str("# TYPE baton_login_failures_total counter\n");
        let _ = writeln!(out, "baton_login_failures_total {failures}");
        out.push_str(
            "# HELP baton_refresh_reuse_detected_total Rotated refresh tokens presented again (each revoked its session).\n",
        );
        out.push_str("# TYPE baton_refresh_reuse_detected_total counter\n");
        let _ = writeln!(out, "baton_refresh_reuse_detected_total {reuse}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_become_labels() {
        assert_eq!(route_of("/auth/sessions/6a1f0e2d"), "/auth/sessions/{id}");
        assert_eq!(route_of("/anything/else"), "other");
        assert_eq!(route_of("/auth/login"), "/auth/login");
        assert_eq!(method_label("BREW"), "other");
    }

    #[test]
    fn the_text_format_has_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_request("GET", "/auth/me", 200, Duration::from_millis(3));
        m.observe_request("GET", "/auth/me", 401, Duration::from_millis(300));
        m.observe_refresh("refresh_token_reused");
        m.observe_login("invalid_credentials");
        let text = m.render();
        assert!(text.contains(
            "baton_http_requests_total{method=\"GET\",route=\"/auth/me\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "baton_http_request_duration_seconds_bucket{method=\"GET\",route=\"/auth/me\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "baton_http_request_duration_seconds_bucket{method=\"GET\",route=\"/auth/me\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("baton_refresh_reuse_detected_total 1"));
        assert!(text.contains("baton_login_failures_total 1"));
    }
}
