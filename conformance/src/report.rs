//! Results of a run: the console table, failure reproductions, JUnit XML and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::checks::Level;
use crate::http::Exchange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    /// A SHOULD requirement was not met: reported, but the run still passes.
    Warned,
    Skipped,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "PASS",
            Verdict::Failed => "FAIL",
            Verdict::Warned => "WARN",
            Verdict::Skipped => "SKIP",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    /// The contract section the check enforces.
    pub section: String,
    pub level: Level,
    pub description: String,
    pub requirement: String,
    pub verdict: Verdict,
    /// Why it failed or was skipped (empty when it passed).
    pub message: String,
    pub seconds: f64,
    pub steps: Vec<Exchange>,
}

impl CheckResult {
    /// One progress line: `[ 3/45] PASS refresh/rotation/new-token (0.12 s)`.
    pub fn progress_line(&self, done: usize, total: usize) -> String {
        let width = total.to_string().len();
        let mut line = format!(
            "[{done:>width$}/{total}] {} {} ({:.2} s)",
            self.verdict.label(),
            self.id,
            self.seconds
        );
        if self.verdict == Verdict::Skipped {
            let _ = write!(line, ": {}", self.message);
        }
        line
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub base_urls: Vec<String>,
    pub seed: u64,
    pub cases: u32,
    pub seconds: f64,
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
}

impl Report {
    pub fn totals(&self) -> Totals {
        let count = |v| self.results.iter().filter(|r| r.verdict == v).count();
        Totals {
            passed: count(Verdict::Passed),
            failed: count(Verdict::Failed),
            warned: count(Verdict::Warned),
            skipped: count(Verdict::Skipped),
        }
    }

    pub fn failed_ids(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.verdict == Verdict::Failed)
            .map(|r| r.id.as_str())
            .collect()
    }

    /// The summary table, the failure reproductions and the totals line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let id_width = self
            .results
            .iter()
            .map(|r| r.id.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(out, "\n{:<id_width$}  result  seconds  note", "check");
        let _ = writeln!(out, "{}", "-".repeat(id_width + 24));
        for r in &self.results {
            let note = first_line(&r.message, 90);
            let row = format!(
                "{:<id_width$}  {:<6}  {:>7.2}  {}",
                r.id,
                r.verdict.label(),
                r.seconds,
                note
            );
            let _ = writeln!(out, "{}", row.trim_end());
        }
        for (n, r) in self
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::Failed)
            .enumerate()
        {
            let _ = writeln!(out, "\n=== failure {}: {} ===", n + 1, r.id);
            let _ = writeln!(out, "what is sent: {}", r.description);
            let _ = writeln!(out, "requirement ({}, MUST): {}", r.section, r.requirement);
            let _ = writeln!(out, "failed: {}", r.message);
            out.push_str(&render_steps(&r.steps));
        }
        for r in self.results.iter().filter(|r| r.verdict == Verdict::Warned) {
            let _ = writeln!(out, "\n--- warning: {} ({}, SHOULD) ---", r.id, r.section);
            let _ = writeln!(out, "requirement: {}", r.requirement);
            let _ = writeln!(out, "not met: {}", r.message);
        }
        let t = self.totals();
        let _ = writeln!(
            out,
            "\n{} checks against {} in {:.1} s (seed {}, {} property cases)",
            self.results.len(),
            self.base_urls.join(", "),
            self.seconds,
            self.seed,
            self.cases
        );
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} warnings, {} skipped",
            t.passed, t.failed, t.warned, t.skipped
        );
        out
    }

    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct JsonReport<'a> {
            #[serde(flatten)]
            report: &'a Report,
            totals: Totals,
        }
        serde_json::to_string_pretty(&JsonReport {
            report: self,
            totals: self.totals(),
        })
        .unwrap_or_default()
    }

    /// JUnit XML: one test suite, one test case per check, classname = the contract section.
    pub fn to_junit(&self) -> String {
        let t = self.totals();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"baton-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.results.len(),
            t.failed,
            t.skipped,
            self.seconds
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml_escape(&self.base_urls.join(" ")),
            self.results.len(),
            t.failed,
            t.skipped,
            self.seconds
        );
        for r in &self.results {
            let section = r.id.split('/').next().unwrap_or("");
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                xml_escape(section),
                xml_escape(&r.id),
                r.seconds
            );
            let _ = writeln!(
                out,
                "      <properties><property name=\"contract_section\" value=\"{}\"/><property name=\"level\" value=\"{}\"/></properties>",
                xml_escape(&r.section),
                r.level.label()
            );
            match r.verdict {
                Verdict::Passed => out.push_str("    </testcase>\n"),
                Verdict::Skipped => {
                    let _ = writeln!(
                        out,
                        "      <skipped message=\"{}\"/>\n    </testcase>",
                        xml_escape(&r.message)
                    );
                }
                // JUnit has no warning state: the test case passes and says why in its output.
                Verdict::Warned => {
                    let _ = writeln!(
                        out,
                        "      <system-out>WARNING (SHOULD, {}): {}</system-out>\n    </testcase>",
                        xml_escape(&r.section),
                        xml_escape(&r.message)
                    );
                }
                Verdict::Failed => {
                    let detail = format!(
                        "{}\n\nrequirement ({}): {}\n{}",
                        r.message,
                        r.section,
                        r.requirement,
                        render_steps(&r.steps)
                    );
                    let _ = writeln!(
                        out,
                        "      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(&first_line(&r.message, 200)),
                        xml_escape(&detail)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// Numbered HTTP steps with the expectation, the outcome and a curl line for each.
pub fn render_steps(steps: &[Exchange]) -> String {
    let mut out = String::new();
    if steps.is_empty() {
        return out;
    }
    let _ = writeln!(out, "steps to reproduce:");
    for (i, step) in steps.iter().enumerate() {
        let path = step
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or(&step.url);
        if step.method == crate::http::WAIT {
            let _ = writeln!(out, "  {:>2}. wait {} s", i + 1, step.url);
            let _ = writeln!(out, "      $ {}", step.curl());
            continue;
        }
        let got = match &step.outcome {
            Ok(status) => status.to_string(),
            Err(error) => format!("error: {error}"),
        };
        let expected = step
            .expectation
            .as_deref()
            .map(|e| format!(" expected {e},"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>2}. {} {} ->{expected} got {got}",
            i + 1,
            step.method,
            path
        );
        let _ = writeln!(out, "      $ {}", step.curl());
        if !step.response_body.is_empty() && step.outcome.as_ref().is_ok_and(|s| *s >= 300) {
            let _ = writeln!(out, "      < {}", first_line(&step.response_body, 160));
        }
    }
    out
}

fn first_line(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max_chars {
        line.chars().take(max_chars).collect::<String>() + "…"
    } else {
        line.to_string()
    }
}

pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push_str("&#xFFFD;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, verdict: Verdict, message: &str) -> CheckResult {
        CheckResult {
            id: id.into(),
            section: "§2 MUST reject: alg".into(),
            level: if verdict == Verdict::Warned {
                Level::Should
            } else {
                Level::Must
            },
            description: "sends a thing".into(),
            requirement: "the server MUST <do> it".into(),
            verdict,
            message: message.into(),
            seconds: 0.5,
            steps: vec![],
        }
    }

    fn report() -> Report {
        let mut failed = result("jwt/alg-none", Verdict::Failed, "accepted alg \"none\"");
        failed.steps.push(Exchange {
            method: "GET".into(),
            url: "http://127.0.0.1:9/auth/me".into(),
            request_headers: vec![("Authorization".into(), "Bearer x.y.".into())],
            request_body: None,
            expectation: Some("401".into()),
            outcome: Ok(200),
            response_headers: vec![],
            response_body: "{}".into(),
        });
        Report {
            base_urls: vec!["http://127.0.0.1:9".into()],
            seed: 7,
            cases: 16,
            seconds: 3.25,
            results: vec![
                result("access/expiry", Verdict::Passed, ""),
                failed,
                result(
                    "refresh/grace/same-successor",
                    Verdict::Skipped,
                    "needs BATON_REFRESH_REUSE_GRACE > 0",
                ),
                result(
                    "refresh/grace/same-access-token",
                    Verdict::Warned,
                    "a fresh access token",
                ),
            ],
        }
    }

    #[test]
    fn totals_count_each_verdict() {
        assert_eq!(
            report().totals(),
            Totals {
                passed: 1,
                failed: 1,
                warned: 1,
                skipped: 1
            }
        );
        assert_eq!(report().failed_ids(), vec!["jwt/alg-none"]);
    }

    #[test]
    fn render_has_table_reproduction_and_totals_line() {
        let text = report().render();
        assert!(text.contains("jwt/alg-none"));
        assert!(text.contains("=== failure 1: jwt/alg-none ==="));
        assert!(
            text.contains("1. GET /auth/me -> expected 401, got 200"),
            "{text}"
        );
        assert!(text.contains(
            "$ curl -sS -i 'http://127.0.0.1:9/auth/me' -H 'Authorization: Bearer x.y.'"
        ));
        assert!(
            text.trim_end()
                .ends_with("1 passed, 1 failed, 1 warnings, 1 skipped")
        );
        assert!(text.contains("--- warning: refresh/grace/same-access-token"));
    }

    #[test]
    fn waits_render_as_sleep_steps() {
        let text = render_steps(&[Exchange::wait(3.25)]);
        assert!(
            text.contains("1. wait 3.2 s") || text.contains("1. wait 3.3 s"),
            "{text}"
        );
        assert!(text.contains("$ sleep 3."), "{text}");
    }

    #[test]
    fn progress_line_shows_position_verdict_and_skip_reason() {
        let r = result(
            "refresh/grace/same-successor",
            Verdict::Skipped,
            "needs grace",
        );
        assert_eq!(
            r.progress_line(3, 12),
            "[ 3/12] SKIP refresh/grace/same-successor (0.50 s): needs grace"
        );
    }

    #[test]
    fn junit_marks_failures_and_skips_and_escapes() {
        let xml = report().to_junit();
        assert!(xml.contains("tests=\"4\" failures=\"1\" skipped=\"1\""));
        assert!(
            xml.contains("<property name=\"contract_section\" value=\"§2 MUST reject: alg\"/>")
        );
        assert!(xml.contains("<system-out>WARNING (SHOULD"));
        assert!(xml.contains("<testcase classname=\"jwt\" name=\"jwt/alg-none\""));
        assert!(xml.contains("<failure message=\"accepted alg &quot;none&quot;\">"));
        assert!(xml.contains("MUST &lt;do&gt; it"));
        assert!(xml.contains("<skipped message=\"needs BATON_REFRESH_REUSE_GRACE &gt; 0\"/>"));
        assert!(!xml.contains("<do>"));
    }

    #[test]
    fn json_has_results_and_totals() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(json["totals"]["failed"], 1);
        assert_eq!(json["results"][1]["verdict"], "failed");
        assert_eq!(json["results"][1]["section"], "§2 MUST reject: alg");
        assert_eq!(json["results"][3]["verdict"], "warned");
        assert_eq!(json["results"][3]["level"], "SHOULD");
        assert_eq!(json["totals"]["warned"], 1);
        assert_eq!(json["results"][1]["steps"][0]["outcome"]["Ok"], 200);
    }

    #[test]
    fn xml_escape_drops_control_characters() {
        assert_eq!(xml_escape("a\u{1}b"), "a&#xFFFD;b");
    }
}
