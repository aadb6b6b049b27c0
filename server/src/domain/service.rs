//! The service's settings: what every instance on one database must agree on
//! (CONTRACT §1: the same issuer, audience, lifetimes, grace and cookie), so
//! that a client cannot tell which instance answered. The first instance to
//! start on a database records them; an instance started with other values
//! says so and refuses to serve, unless told to adopt its values (a planned
//! change).

use std::collections::BTreeMap;
use std::time::Duration;

use super::SessionPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    pub issuer: String,
    pub audience: String,
    pub policy: SessionPolicy,
    pub cookie_name: String,
    pub cookie_path: String,
}

/// One setting whose recorded value differs from this instance's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub name: &'static str,
    pub recorded: Option<String>,
    pub ours: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.recorded {
            Some(recorded) => write!(
                f,
                "{}: the service has {recorded}, this instance {}",
                self.name, self.ours
            ),
            None => write!(
                f,
                "{}: not recorded yet, this instance {}",
                self.name, self.ours
            ),
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

impl ServiceSettings {
    /// The settings as name/value pairs, the form they are recorded in.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let p = &self.policy;
        vec![
            ("issuer", self.issuer.clone()),
            ("audience", self.audience.clone()),
            ("access_token_ttl", seconds(p.access_ttl)),
            ("access_token_leeway", seconds(p.leeway)),
            ("refresh_token_ttl", seconds(p.refresh_ttl)),
            ("session_max_lifetime", seconds(p.session_max_lifetime)),
            ("refresh_reuse_grace", seconds(p.reuse_grace)),
            ("refresh_cookie_name", self.cookie_name.clone()),
            ("refresh_cookie_path", self.cookie_path.clone()),
        ]
    }

    /// Where this instance's settings differ from the recorded ones. A
    /// setting this version knows but the record lacks counts as different,
    /// so that adding a setting later still makes instances agree on it.
    pub fn differences(&self, recorded: &BTreeMap<String, String>) -> Vec<Difference> {
        self.entries()
            .into_iter()
            .filter(|(name, ours)| recorded.get(*name) != Some(ours))
            .map(|(name, ours)| Difference {
                name,
                recorded: recorded.get(name).cloned(),
                ours,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ServiceSettings {
        ServiceSettings {
            issuer: "https://auth.example".into(),
            audience: "baton".into(),
            policy: SessionPolicy {
                access_ttl: Duration::from_secs(900),
                leeway: Duration::from_secs(5),
                refresh_ttl: Duration::from_secs(3600),
                session_max_lifetime: Duration::from_secs(7200),
                reuse_grace: Duration::from_secs(10),
            },
            cookie_name: "__Secure-baton_refresh".into(),
            cookie_path: "/auth".into(),
        }
    }

    fn recorded(s: &ServiceSettings) -> BTreeMap<String, String> {
        s.entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    #[test]
    fn identical_settings_have_no_differences() {
        let s = settings();
        assert!(s.differences(&recorded(&s)).is_empty());
    }

    #[test]
    fn each_changed_setting_is_named_with_both_values() {
        let s = settings();
        let mut other = s.clone();
        other.issuer = "http://127.0.0.1:8081".into();
        other.policy.reuse_grace = Duration::ZERO;
        let differences = other.differences(&recorded(&s));
        let names: Vec<_> = differences.iter().map(|d| d.name).collect();
        assert_eq!(names, ["issuer", "refresh_reuse_grace"]);
        assert_eq!(
            differences[0].to_string(),
            "issuer: the service has https://auth.example, this instance http://127.0.0.1:8081"
        );
    }

    #[test]
    fn a_setting_missing_from_the_record_is_a_difference() {
        let s = settings();
        let mut record = recorded(&s);
        record.remove("refresh_cookie_path");
        assert_eq!(s.differences(&record)[0].recorded, None);
    }
}
