//! §5: when throttling is on, every limit holds across all instances of the service.

use serde_json::json;

use crate::ensure;
use crate::http::{Reply, Req};
use crate::probe::{Channel, Outcome, Probe, fail, skip};

/// Checks whose limits the suite can learn larger than this are skipped: the check sends up to
/// twice the limit, and must stay bounded.
const MAX_LIMIT: u64 = 200;

/// The smallest quota `q` in a `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers:
/// a list of items such as `"refresh";q=10;w=60`).
pub(crate) fn smallest_quota(policy: &str) -> Option<u64> {
    policy
        .split(',')
        .filter_map(|item| {
            item.split(';')
                .skip(1)
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse().ok())
        })
        .min()
}

async fn refresh_with_unknown_token(probe: &Probe, instance: usize) -> Result<Reply, String> {
    crate::http::send(
        &probe.env.instances,
        &probe.recorder,
        Req::post("/auth/refresh")
            .json(&json!({"refresh_token": "conformance-limits-probe-unknown-token"}))
            .on_instance(instance),
    )
    .await
}

/// Refreshes from this address, alternating over every instance, must meet the per-address
/// limit the service publishes: instances that each keep their own counters would allow the
/// limit once per instance.
pub async fn global(probe: Probe) -> Outcome {
    let instances = probe.env.instances.base_urls().len();
    if instances < 2 {
        return Err(skip("needs two or more --base-url of one service"));
    }
    // A successful refresh publishes the policy (and counts as the first attempt).
    let user = probe.user().await?;
    let tokens = probe.login(&user, Channel::Body).await?;
    let first = crate::http::send(
        &probe.env.instances,
        &probe.recorder,
        Req::post("/auth/refresh")
            .json(&json!({"refresh_token": tokens.refresh_token}))
            .on_instance(0),
    )
    .await
    .map_err(|e| fail(format!("request failed: {e}")))?;
    if first.status == 429 {
        return Err(skip(
            "this address is throttled already: run this check alone (--filter limits/) after the window ends",
        ));
    }
    let Some(limit) = first.header("ratelimit-policy").and_then(smallest_quota) else {
        return Err(skip(
            "the refresh answer has no RateLimit-Policy: throttling is off, or its limit is not published",
        ));
    };
    if limit > MAX_LIMIT {
        return Err(skip(format!(
            "the refresh limit is {limit} per window; relax it to at most {MAX_LIMIT} for this check"
        )));
    }
    // The first attempt counted; one instance alone would refuse attempt limit + 1.
    for attempt in 2..=(2 * limit + 2) {
        let instance = usize::try_from(attempt).unwrap_or(0) % instances;
        let reply = refresh_with_unknown_token(&probe, instance)
            .await
            .map_err(|e| fail(format!("request failed: {e}")))?;
        if reply.status == 429 {
            ensure!(
                reply.header("retry-after").is_some(),
                "the 429 carries no Retry-After"
            );
            ensure!(
                attempt <= limit + 1,
                "the first 429 came at attempt {attempt}, past the published limit of {limit} per window: the instances do not share their counters"
            );
            return Ok(());
        }
        ensure!(
            reply.status == 401,
            "a refresh with an unknown token got {} (expected 401 until the limit)",
            reply.status
        );
    }
    Err(fail(format!(
        "{} refreshes spread over {instances} instances were never throttled, with a published limit of {limit}: each instance keeps its own counters",
        2 * limit + 2
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_quota_of_a_policy_list_is_found() {
        assert_eq!(smallest_quota(r#""refresh";q=10;w=60"#), Some(10));
        assert_eq!(
            smallest_quota(r#""login";q=30;w=60, "login-failures";q=5;w=60"#),
            Some(5)
        );
        assert_eq!(smallest_quota("nonsense"), None);
    }
}
