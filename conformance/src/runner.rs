//! Running the selected checks against the instances: discovery, account set-up, bounded
//! parallelism, a progress line per check, and the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::checks::{self, Check};
use crate::discovery::AuthConfiguration;
use crate::http::{self, Instances, Recorder, Req};
use crate::probe::{Accounts, Env, Probe, Stop};
use crate::report::{CheckResult, Report, Verdict};

#[derive(Debug, Clone)]
pub struct Options {
    pub base_urls: Vec<String>,
    /// Id prefixes; empty selects every check.
    pub filters: Vec<String>,
    pub cases: u32,
    pub seed: u64,
    pub jobs: usize,
    pub account: Option<(String, String)>,
    pub regressions: Vec<Vec<crate::machine::Op>>,
    pub profile: Profile,
    pub restart_cmd: Option<String>,
}

/// How much to run: `full` everything; `quick` skips the checks that wait for a TTL or the
/// grace to pass (and the caller lowers `--cases`), for a smoke test in about a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Quick,
    Full,
}

/// The longest a check may run before it counts as hung.
fn time_limit(id: &str) -> Duration {
    if id.starts_with("model/") {
        Duration::from_secs(420)
    } else {
        Duration::from_secs(120)
    }
}

pub fn select<'a>(all: &'a [Check], filters: &[String]) -> Vec<&'a Check> {
    all.iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.id.starts_with(f.as_str())))
        .collect()
}

async fn discover(instances: &Instances) -> (Result<AuthConfiguration, String>, Value) {
    let recorder = Recorder::default();
    let config = match http::send(
        instances,
        &recorder,
        Req::get("/.well-known/auth-configuration").on_instance(0),
    )
    .await
    {
        Ok(reply) if reply.status == 200 => match reply.json() {
            Some(body) => AuthConfiguration::parse(&body),
            None => Err(format!(
                "GET /.well-known/auth-configuration is not JSON: {}",
                reply.summary()
            )),
        },
        Ok(reply) => Err(format!(
            "GET /.well-known/auth-configuration: {}",
            reply.summary()
        )),
        Err(e) => Err(e),
    };
    let jwks = match http::send(
        instances,
        &recorder,
        Req::get("/.well-known/jwks.json").on_instance(0),
    )
    .await
    {
        Ok(reply) => reply.json().unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    (config, jwks)
}

/// Finds out whether checks can register their own users.
async fn accounts(instances: &Instances, account: &Option<(String, String)>) -> Accounts {
    if let Some((email, password)) = account {
        return Accounts::Given {
            email: email.clone(),
            password: password.clone(),
        };
    }
    let recorder = Recorder::default();
    let email = format!("conf-probe-{}@example.com", uuid::Uuid::new_v4().simple());
    let req = Req::post("/auth/register")
        .json(&json!({"email": email, "password": "conformance probe password"}));
    match http::send(instances, &recorder, req).await {
        Ok(reply) if reply.status == 403 => Accounts::Unavailable(
            "registration is closed on this instance: pass --email and --password of a test account".into(),
        ),
        _ => Accounts::Register,
    }
}

pub async fn run(options: Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let instances = Instances::new(&options.base_urls)?;
    let (config, jwks) = discover(&instances).await;
    match &config {
        Ok(c) => println!(
            "instance: access_token_ttl {} s (leeway {} s), refresh_token_ttl {} s, session_max_lifetime {} s, refresh_reuse_grace {} s, cookie {} (Path={})",
            c.access_token_ttl,
            c.access_token_leeway,
            c.refresh_token_ttl,
            c.session_max_lifetime,
            c.refresh_reuse_grace,
            c.refresh_cookie.name,
            c.refresh_cookie.path
        ),
        Err(e) => println!("the auth configuration is unusable: {e}"),
    }
    let accounts = accounts(&instances, &options.account).await;
    let env = Arc::new(Env {
        instances,
        config,
        jwks,
        accounts,
        cases: options.cases,
        seed: options.seed,
        regressions: options.regressions.clone(),
        restart_cmd: options.restart_cmd.clone(),
    });
    let all = checks::all();
    let selected = select(&all, &options.filters);
    anyhow::ensure!(
        !selected.is_empty(),
        "no check id starts with any of {:?}",
        options.filters
    );
    println!(
        "running {} checks against {} (seed {}, {} property cases)",
        selected.len(),
        options.base_urls.join(", "),
        options.seed,
        options.cases
    );

    let total = selected.len();
    let permits = Arc::new(Semaphore::new(options.jobs.max(1)));
    let mut running = FuturesUnordered::new();
    for (index, check) in selected.iter().enumerate() {
        let probe = Probe::new(env.clone());
        let permits = permits.clone();
        let (id, run) = (check.id, check.run);
        let quick_skip = match options.profile {
            Profile::Full => None,
            Profile::Quick if checks::WAITING.contains(&id) => {
                Some("waits for a TTL or the grace: skipped by --profile quick")
            }
            Profile::Quick if checks::HEAVY.contains(&id) => {
                Some("sends hundreds of requests: skipped by --profile quick")
            }
            Profile::Quick => None,
        };
        running.push(async move {
            if let Some(reason) = quick_skip {
                return (index, Verdict::Skipped, reason.to_string(), vec![], 0.0);
            }
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let begun = Instant::now();
            let recorder = probe.recorder.clone();
            let task = tokio::spawn(tokio::time::timeout(time_limit(id), run(probe)));
            let (verdict, message, steps) = match task.await {
                Ok(Ok(Ok(()))) => (Verdict::Passed, String::new(), vec![]),
                Ok(Ok(Err(Stop::Skip(reason)))) => (Verdict::Skipped, reason, vec![]),
                Ok(Ok(Err(Stop::Fail(failure)))) => (
                    Verdict::Failed,
                    failure.message,
                    failure.steps.unwrap_or_else(|| recorder.steps()),
                ),
                Ok(Err(_)) => (
                    Verdict::Failed,
                    format!(
                        "did not finish within {} s: the server hung or was far too slow",
                        time_limit(id).as_secs()
                    ),
                    recorder.steps(),
                ),
                Err(join_error) => (
                    Verdict::Failed,
                    format!("the check panicked (a suite bug): {join_error}"),
                    recorder.steps(),
                ),
            };
            (
                index,
                verdict,
                message,
                steps,
                begun.elapsed().as_secs_f64(),
            )
        });
    }
    let mut results: Vec<Option<CheckResult>> = vec![None; total];
    let mut done = 0;
    while let Some((index, verdict, message, steps, seconds)) = running.next().await {
        done += 1;
        let check = selected[index];
        // A SHOULD that is not met is a warning, never a failure (contract "Words").
        let verdict = match (verdict, check.level) {
            (Verdict::Failed, checks::Level::Should) => Verdict::Warned,
            (v, _) => v,
        };
        let result = CheckResult {
            id: check.id.to_string(),
            section: check.section.to_string(),
            level: check.level,
            description: check.description.to_string(),
            requirement: check.requirement.to_string(),
            verdict,
            message,
            seconds,
            steps: trim_steps(steps),
        };
        println!("{}", result.progress_line(done, total));
        if matches!(verdict, Verdict::Failed | Verdict::Warned) {
            println!("      {}", result.message.lines().next().unwrap_or(""));
        }
        results[index] = Some(result);
    }
    Ok(Report {
        base_urls: options.base_urls.clone(),
        seed: options.seed,
        cases: options.cases,
        seconds: started.elapsed().as_secs_f64(),
        results: results.into_iter().flatten().collect(),
    })
}

/// Keeps a failure's reproduction readable: the last 25 requests.
fn trim_steps(mut steps: Vec<http::Exchange>) -> Vec<http::Exchange> {
    const KEEP: usize = 25;
    if steps.len() > KEEP {
        steps.drain(..steps.len() - KEEP);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_by_id_prefix() {
        let all = checks::all();
        let jwt = select(&all, &["jwt/".to_string()]);
        assert!(!jwt.is_empty() && jwt.iter().all(|c| c.id.starts_with("jwt/")));
        let two = select(&all, &["jwt/alg-none".to_string(), "csrf/".to_string()]);
        assert_eq!(
            two.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec!["jwt/alg-none", "csrf/origin"]
        );
        assert_eq!(select(&all, &[]).len(), all.len());
        assert!(select(&all, &["nothing/".to_string()]).is_empty());
    }
}
