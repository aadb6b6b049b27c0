//! Parsing of `Set-Cookie` header values (RFC 6265 §5.2), just enough to check every attribute
//! the contract fixes for the refresh cookie.

/// One `Set-Cookie` header value, split into its name, value and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub http_only: bool,
    pub secure: bool,
    /// `SameSite` as sent (case kept), if present.
    pub same_site: Option<String>,
    pub path: Option<String>,
    pub domain: Option<String>,
    /// `Max-Age` in seconds. `None` when absent; a value that is not an integer is kept as `Err`.
    pub max_age: Option<Result<i64, String>>,
    pub expires: Option<String>,
}

impl SetCookie {
    /// Parses one header value. Returns `None` when there is no `name=value` pair at the start.
    pub fn parse(header: &str) -> Option<SetCookie> {
        let mut parts = header.split(';');
        let pair = parts.next()?.trim();
        let (name, value) = pair.split_once('=')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let mut cookie = SetCookie {
            name: name.to_string(),
            value: value.trim().trim_matches('"').to_string(),
            http_only: false,
            secure: false,
            same_site: None,
            path: None,
            domain: None,
            max_age: None,
            expires: None,
        };
        for attribute in parts {
            let attribute = attribute.trim();
            let (key, val) = match attribute.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (attribute, None),
            };
            match key.to_ascii_lowercase().as_str() {
                "httponly" => cookie.http_only = true,
                "secure" => cookie.secure = true,
                "samesite" => cookie.same_site = val.map(str::to_string),
                "path" => cookie.path = val.map(str::to_string),
                "domain" => cookie.domain = val.map(str::to_string),
                "max-age" => {
                    cookie.max_age = val.map(|v| v.parse::<i64>().map_err(|_| v.to_string()))
                }
                "expires" => cookie.expires = val.map(str::to_string),
                _ => {}
            }
        }
        Some(cookie)
    }

    /// True when this header tells the browser to drop the cookie now (`Max-Age` ≤ 0).
    pub fn is_clearing(&self) -> bool {
        matches!(self.max_age, Some(Ok(age)) if age <= 0)
    }

    /// The attribute problems of a cookie that SETS a refresh token, against the contract
    /// (§3 "Cookie"): empty when the cookie is conformant.
    pub fn set_violations(
        &self,
        expected_path: &str,
        expected_max_age: Option<i64>,
    ) -> Vec<String> {
        let mut problems = self.common_violations(expected_path);
        if !self.http_only {
            problems.push("HttpOnly is missing".into());
        }
        if !self.secure {
            problems.push("Secure is missing".into());
        }
        match self.same_site.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("strict") => {}
            Some(other) => problems.push(format!("SameSite is {other:?}, expected Strict")),
            None => problems.push("SameSite is missing (expected Strict)".into()),
        }
        if self.value.is_empty() {
            problems.push("the cookie value is empty".into());
        }
        match (&self.max_age, expected_max_age) {
            (None, _) => problems.push("Max-Age is missing".into()),
            (Some(Err(raw)), _) => problems.push(format!("Max-Age {raw:?} is not an integer")),
            (Some(Ok(age)), Some(expected)) if (age - expected).abs() > 1 => problems.push(
                format!("Max-Age is {age}, expected the token's remaining life {expected} (±1)"),
            ),
            (Some(Ok(age)), _) if *age <= 0 => {
                problems.push(format!("Max-Age is {age} on a cookie that sets a token"))
            }
            _ => {}
        }
        problems
    }

    /// The attribute problems of a cookie that CLEARS the refresh cookie: same name and path,
    /// `Max-Age=0`.
    pub fn clear_violations(&self, expected_path: &str) -> Vec<String> {
        let mut problems = self.common_violations(expected_path);
        match &self.max_age {
            Some(Ok(0)) => {}
            Some(Ok(age)) => problems.push(format!("Max-Age is {age}, expected 0")),
            Some(Err(raw)) => problems.push(format!("Max-Age {raw:?} is not an integer")),
            None => problems.push("Max-Age is missing (expected Max-Age=0)".into()),
        }
        problems
    }

    fn common_violations(&self, expected_path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        match self.path.as_deref() {
            Some(p) if p == expected_path => {}
            Some(p) => problems.push(format!("Path is {p:?}, expected {expected_path:?}")),
            None => problems.push(format!("Path is missing (expected {expected_path:?})")),
        }
        if self.path.as_deref() == Some("/") {
            problems.push("Path is \"/\": the cookie must be scoped to the auth prefix".into());
        }
        if let Some(domain) = &self.domain {
            problems.push(format!(
                "Domain={domain} is set; the contract forbids Domain"
            ));
        }
        problems
    }
}

/// Finds the `Set-Cookie` for `name` among the response's header values.
pub fn find<'a>(
    set_cookie_headers: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> Option<SetCookie> {
    set_cookie_headers
        .into_iter()
        .filter_map(SetCookie::parse)
        .find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "__Secure-baton_refresh=abc_DEF-123; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age=600";

    #[test]
    fn parses_every_attribute() {
        let c = SetCookie::parse(GOOD).unwrap();
        assert_eq!(c.name, "__Secure-baton_refresh");
        assert_eq!(c.value, "abc_DEF-123");
        assert!(c.http_only && c.secure);
        assert_eq!(c.same_site.as_deref(), Some("Strict"));
        assert_eq!(c.path.as_deref(), Some("/auth"));
        assert_eq!(c.max_age, Some(Ok(600)));
        assert_eq!(c.domain, None);
    }

    #[test]
    fn attribute_names_are_case_insensitive() {
        let c = SetCookie::parse("n=v; httponly; SECURE; samesite=strict; path=/auth; max-age=5")
            .unwrap();
        assert!(c.http_only && c.secure);
        assert!(c.set_violations("/auth", Some(5)).is_empty());
    }

    #[test]
    fn a_conformant_cookie_has_no_violations() {
        let c = SetCookie::parse(GOOD).unwrap();
        assert_eq!(c.set_violations("/auth", Some(600)), Vec::<String>::new());
        assert_eq!(c.set_violations("/auth", Some(599)), Vec::<String>::new());
    }

    #[test]
    fn each_missing_attribute_is_reported() {
        let c = SetCookie::parse("n=v; Path=/; Domain=example.test; SameSite=Lax").unwrap();
        let problems = c.set_violations("/auth", Some(600)).join("\n");
        for expected in [
            "HttpOnly",
            "Secure",
            "SameSite is \"Lax\"",
            "Domain",
            "Path is \"/\"",
            "Max-Age is missing",
        ] {
            assert!(problems.contains(expected), "{expected} not in {problems}");
        }
    }

    #[test]
    fn max_age_must_match_remaining_life() {
        let c = SetCookie::parse(GOOD).unwrap();
        let problems = c.set_violations("/auth", Some(300));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("Max-Age is 600"));
    }

    #[test]
    fn a_clearing_cookie_needs_max_age_zero() {
        let clear = SetCookie::parse("n=; Path=/auth; Max-Age=0; HttpOnly; Secure").unwrap();
        assert!(clear.is_clearing());
        assert!(clear.clear_violations("/auth").is_empty());
        let expires_only =
            SetCookie::parse("n=; Path=/auth; Expires=Thu, 01 Jan 1970 00:00:00 GMT").unwrap();
        assert!(!expires_only.is_clearing());
        assert!(!expires_only.clear_violations("/auth").is_empty());
    }

    #[test]
    fn garbage_is_not_a_cookie() {
        assert_eq!(SetCookie::parse(""), None);
        assert_eq!(SetCookie::parse("no-equals-sign"), None);
        assert_eq!(SetCookie::parse("=value"), None);
        let bad_age = SetCookie::parse("n=v; Max-Age=soon").unwrap();
        assert_eq!(bad_age.max_age, Some(Err("soon".to_string())));
    }

    #[test]
    fn find_picks_the_named_cookie() {
        let headers = ["other=1; Path=/", GOOD];
        assert_eq!(
            find(headers, "__Secure-baton_refresh").unwrap().value,
            "abc_DEF-123"
        );
        assert!(find(headers, "missing").is_none());
    }
}
