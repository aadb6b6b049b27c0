//! Running a proptest property against a live instance: generated inputs, async requests,
//! shrinking, and the minimal failing input reported with the HTTP steps of its run.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Mutex;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use sha2::{Digest, Sha256};

use crate::http::Exchange;
use crate::probe::{Failure, Outcome, Probe, Stop, fail};

/// A reproducible random stream for `check_id` under the run's `--seed`.
pub fn rng_for(seed: u64, check_id: &str) -> TestRng {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(check_id.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    TestRng::from_seed(RngAlgorithm::ChaCha, &digest)
}

/// Shrinking re-runs requests against the instance, so it is bounded: the model's sequences
/// (which may sleep) get a smaller budget than single-request properties.
fn shrink_budget(check_id: &str) -> (u32, u32) {
    if check_id.starts_with("model/") {
        (24, 30_000)
    } else {
        (64, 30_000)
    }
}

pub fn runner(seed: u64, check_id: &str, cases: u32) -> TestRunner {
    let (max_shrink_iters, max_shrink_time) = shrink_budget(check_id);
    let config = Config {
        cases,
        max_shrink_iters,
        max_shrink_time,
        failure_persistence: None,
        max_global_rejects: cases * 4,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, rng_for(seed, check_id))
}

/// Runs `test` on `cases` inputs drawn from the strategy (built on the blocking thread, since
/// proptest strategies are not `Send`). Each input gets a fresh recorder; when one fails,
/// proptest shrinks it and the check fails with the minimal input and the requests of its run.
pub async fn check<S, MakeS, F, Fut>(
    probe: &Probe,
    check_id: &'static str,
    cases: u32,
    make_strategy: MakeS,
    test: F,
) -> Outcome
where
    S: Strategy + 'static,
    S::Value: Debug,
    MakeS: FnOnce() -> S + Send + 'static,
    F: Fn(Probe, S::Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Stop>> + Send,
{
    let probe = probe.clone();
    let handle = tokio::runtime::Handle::current();
    let seed = probe.env.seed;
    tokio::task::spawn_blocking(move || {
        let failures: Mutex<HashMap<String, (String, Vec<Exchange>)>> = Mutex::new(HashMap::new());
        let skipped: Mutex<Option<String>> = Mutex::new(None);
        let mut runner = runner(seed, check_id, cases);
        let result = runner.run(&make_strategy(), |value| {
            let key = format!("{value:?}");
            let case_probe = probe.fresh();
            match handle.block_on(test(case_probe.clone(), value)) {
                Ok(()) => Ok(()),
                Err(Stop::Skip(reason)) => {
                    *skipped.lock().expect("not poisoned") = Some(reason.clone());
                    Err(TestCaseError::fail(format!("skipped: {reason}")))
                }
                Err(Stop::Fail(failure)) => {
                    let steps = failure.steps.unwrap_or_else(|| case_probe.recorder.steps());
                    failures
                        .lock()
                        .expect("not poisoned")
                        .insert(key, (failure.message.clone(), steps));
                    Err(TestCaseError::fail(failure.message))
                }
            }
        });
        if let Some(reason) = skipped.into_inner().expect("not poisoned") {
            return Err(Stop::Skip(reason));
        }
        match result {
            Ok(()) => Ok(()),
            Err(TestError::Fail(_, minimal)) => {
                let key = format!("{minimal:?}");
                let (message, steps) = failures
                    .into_inner()
                    .expect("not poisoned")
                    .remove(&key)
                    .unwrap_or_else(|| ("(no record)".into(), vec![]));
                Err(Stop::Fail(Failure {
                    message: format!("{message}\nminimal failing input (after shrinking): {key}"),
                    steps: Some(steps),
                }))
            }
            Err(TestError::Abort(reason)) => {
                Err(fail(format!("the property run aborted: {reason}")))
            }
        }
    })
    .await
    .map_err(|e| fail(format!("the property run panicked: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;

    fn first_value(seed: u64, id: &str) -> u64 {
        let mut runner = runner(seed, id, 1);
        (0u64..u64::MAX).new_tree(&mut runner).unwrap().current()
    }

    #[test]
    fn the_same_seed_and_check_give_the_same_inputs() {
        assert_eq!(
            first_value(7, "jwt/bad-signature"),
            first_value(7, "jwt/bad-signature")
        );
        assert_ne!(
            first_value(7, "jwt/bad-signature"),
            first_value(8, "jwt/bad-signature")
        );
        assert_ne!(
            first_value(7, "jwt/bad-signature"),
            first_value(7, "model/sessions")
        );
    }
}
