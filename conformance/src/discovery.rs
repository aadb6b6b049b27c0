//! What an instance says about itself: `/.well-known/auth-configuration` and the JWKS.

use serde::Deserialize;
use serde_json::Value;

/// `GET /.well-known/auth-configuration`, durations in whole seconds.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct AuthConfiguration {
    pub issuer: String,
    pub audience: String,
    pub jwks_uri: String,
    pub access_token_ttl: u64,
    pub access_token_leeway: u64,
    pub refresh_token_ttl: u64,
    pub session_max_lifetime: u64,
    pub refresh_reuse_grace: u64,
    pub refresh_cookie: RefreshCookie,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct RefreshCookie {
    pub name: String,
    pub path: String,
    pub same_site: String,
}

impl AuthConfiguration {
    /// Parses the document and lists what is wrong with it against the contract (§1).
    pub fn parse(body: &Value) -> Result<AuthConfiguration, String> {
        let config: AuthConfiguration = serde_json::from_value(body.clone()).map_err(|e| {
            format!("the auth configuration does not have the contract's shape: {e}")
        })?;
        let mut problems = Vec::new();
        if !(config.jwks_uri.starts_with("http://") || config.jwks_uri.starts_with("https://")) {
            problems.push(format!(
                "jwks_uri {:?} is not an absolute URL",
                config.jwks_uri
            ));
        }
        if config.access_token_leeway > 5 {
            problems.push(format!(
                "access_token_leeway is {} s; the contract allows at most 5 s",
                config.access_token_leeway
            ));
        }
        // Any path under the auth prefix will do, as long as the browser sends the cookie to
        // both endpoints that read it.
        let path = &config.refresh_cookie.path;
        if path == "/"
            || !["/auth/refresh", "/auth/logout"]
                .iter()
                .all(|p| path_matches(path, p))
        {
            problems.push(format!(
                "refresh_cookie.path {path:?} must be the auth prefix, not /, and cover /auth/refresh and /auth/logout"
            ));
        }
        if !config
            .refresh_cookie
            .same_site
            .eq_ignore_ascii_case("strict")
        {
            problems.push(format!(
                "refresh_cookie.same_site is {:?}, expected Strict",
                config.refresh_cookie.same_site
            ));
        }
        if config.access_token_ttl == 0 || config.refresh_token_ttl == 0 {
            problems.push("a token TTL is 0".into());
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("; "))
        }
    }

    /// Seconds after its `exp` until an access token is surely refused.
    pub fn access_expiry_wait(&self) -> u64 {
        self.access_token_ttl + self.access_token_leeway + 1
    }
}

/// RFC 6265 §5.1.4: whether a cookie with `cookie_path` is sent with a request for `request_path`.
pub fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

/// The most a check waits for a TTL to pass.
pub const MAX_WAIT_SECS: u64 = 15;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "issuer": "http://127.0.0.1:1", "audience": "baton", "jwks_uri": "http://127.0.0.1:1/.well-known/jwks.json",
            "access_token_ttl": 2, "access_token_leeway": 0, "refresh_token_ttl": 6,
            "session_max_lifetime": 12, "refresh_reuse_grace": 0,
            "refresh_cookie": {"name": "__Secure-baton_refresh", "path": "/auth", "same_site": "Strict"}
        })
    }

    #[test]
    fn a_conformant_document_parses() {
        let config = AuthConfiguration::parse(&sample()).unwrap();
        assert_eq!(config.refresh_cookie.path, "/auth");
        assert_eq!(config.access_expiry_wait(), 3);
    }

    #[test]
    fn contract_violations_are_named() {
        let mut doc = sample();
        doc["jwks_uri"] = json!("/.well-known/jwks.json");
        doc["access_token_leeway"] = json!(60);
        doc["refresh_cookie"]["path"] = json!("/");
        let err = AuthConfiguration::parse(&doc).unwrap_err();
        assert!(
            err.contains("absolute URL") && err.contains("at most 5 s") && err.contains("not /"),
            "{err}"
        );
    }

    #[test]
    fn any_cookie_path_under_the_auth_prefix_is_accepted() {
        for path in ["/auth", "/auth/"] {
            let mut doc = sample();
            doc["refresh_cookie"]["path"] = json!(path);
            assert!(AuthConfiguration::parse(&doc).is_ok(), "{path}");
        }
        for path in ["/", "/authx", "/auth/refresh", "auth"] {
            let mut doc = sample();
            doc["refresh_cookie"]["path"] = json!(path);
            assert!(AuthConfiguration::parse(&doc).is_err(), "{path}");
        }
        let mut doc = sample();
        doc["extra_member"] = json!({"any": "thing"});
        assert!(AuthConfiguration::parse(&doc).is_ok());
    }

    #[test]
    fn a_missing_field_or_wrong_type_is_an_error() {
        let mut doc = sample();
        doc["audience"] = json!(["baton"]);
        assert!(AuthConfiguration::parse(&doc).is_err());
        let mut doc = sample();
        doc.as_object_mut().unwrap().remove("refresh_reuse_grace");
        assert!(AuthConfiguration::parse(&doc).is_err());
    }
}
