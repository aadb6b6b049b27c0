//! Throttling outcomes as HTTP: the `RateLimit-Policy` and `RateLimit`
//! fields of draft-ietf-httpapi-ratelimit-headers (structured-field lists,
//! one item per policy that applied), beside `Retry-After` on 429.

use crate::domain::throttle::Quota;

/// The two fields, rendered; both empty when throttling is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `"login";q=30;w=60, "login-failures";q=5;w=60`
    pub policy: Option<String>,
    /// `"login";r=29;t=60, "login-failures";r=5;t=60`
    pub current: Option<String>,
}

impl RateLimitHeaders {
    pub fn from_quotas(quotas: &[Quota]) -> Self {
        if quotas.is_empty() {
            return Self::default();
        }
        let policy = quotas
            .iter()
            .map(|q| {
                format!(
                    "\"{}\";q={};w={}",
                    q.policy.name(),
                    q.limit.max,
                    q.limit.window.as_secs()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let current = quotas
            .iter()
            .map(|q| {
                format!(
                    "\"{}\";r={};t={}",
                    q.policy.name(),
                    q.remaining,
                    q.reset_secs
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            policy: Some(policy),
            current: Some(current),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::throttle::{Limit, Policy};

    #[test]
    fn quotas_render_as_structured_field_lists() {
        let limit = |max| Limit {
            max,
            window: Duration::from_secs(60),
        };
        let h = RateLimitHeaders::from_quotas(&[
            Quota {
                policy: Policy::LoginAttempts,
                limit: limit(30),
                remaining: 29,
                reset_secs: 60,
            },
            Quota {
                policy: Policy::LoginFailures,
                limit: limit(5),
                remaining: 0,
                reset_secs: 12,
            },
        ]);
        assert_eq!(
            h.policy.as_deref(),
            Some(r#""login";q=30;w=60, "login-failures";q=5;w=60"#)
        );
        assert_eq!(
            h.current.as_deref(),
            Some(r#""login";r=29;t=60, "login-failures";r=0;t=12"#)
        );
        assert_eq!(
            RateLimitHeaders::from_quotas(&[]),
            RateLimitHeaders::default()
        );
    }
}
