//! The refresh cookie: how it is set, cleared and read.

use poem::Request;
use poem::http::header;

use super::state::HttpSettings;

/// `Set-Cookie` for a refresh token living `max_age_secs` more seconds.
pub fn set_refresh_cookie(settings: &HttpSettings, token: &str, max_age_secs: u64) -> String {
    format!(
        "{}={}; Path={}; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        settings.cookie_name, token, settings.cookie_path, max_age_secs
    )
}

/// `Set-Cookie` that makes the browser forget the refresh cookie.
pub fn clear_refresh_cookie(settings: &HttpSettings) -> String {
    format!(
        "{}=; Path={}; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        settings.cookie_name, settings.cookie_path
    )
}

/// At most this many cookies of the refresh cookie's name are considered.
pub const MAX_COOKIE_CANDIDATES: usize = 4;

/// The distinct values of the cookies named `name` in the request's `Cookie`
/// headers, in the order sent, at most `MAX_COOKIE_CANDIDATES`. There can be
/// several: a sibling subdomain can plant a cookie of the same name with a
/// more specific path ("cookie tossing"), which browsers send first, so the
/// first one is not necessarily ours.
pub fn read_cookies(req: &Request, name: &str) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    let found = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'));
    for value in found {
        if values.len() == MAX_COOKIE_CANDIDATES {
            break;
        }
        if !values.iter().any(|seen| seen == value) {
            values.push(value.to_owned());
        }
    }
    values
}

/// CSRF defence besides SameSite: a cookie-authenticated request with an
/// `Origin` outside the allowed list (including `null`) is refused. Requests
/// without `Origin` come from non-browser clients and are allowed.
pub fn origin_allowed(req: &Request, settings: &HttpSettings) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/');
    settings
        .allowed_origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionPolicy;
    use std::time::Duration;

    fn settings() -> HttpSettings {
        HttpSettings {
            cookie_name: "__Secure-baton_refresh".into(),
            cookie_path: "/auth".into(),
            allowed_origins: vec!["http://127.0.0.1:8080".into()],
            issuer: "http://127.0.0.1:8080".into(),
            audience: "baton".into(),
            policy: SessionPolicy {
                access_ttl: Duration::from_secs(900),
                leeway: Duration::from_secs(5),
                refresh_ttl: Duration::from_secs(3600),
                session_max_lifetime: Duration::from_secs(7200),
                reuse_grace: Duration::from_secs(10),
            },
            client_address: Default::default(),
            request_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn the_cookie_carries_every_protective_attribute() {
        let c = set_refresh_cookie(&settings(), "tok", 3600);
        assert_eq!(
            c,
            "__Secure-baton_refresh=tok; Path=/auth; Max-Age=3600; HttpOnly; Secure; SameSite=Strict"
        );
        assert!(!c.contains("Domain"));
    }

    #[test]
    fn clearing_uses_the_same_name_and_path_with_max_age_zero() {
        let c = clear_refresh_cookie(&settings());
        assert!(c.starts_with("__Secure-baton_refresh=; Path=/auth; Max-Age=0"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let req = Request::builder()
            .header(header::COOKIE, "a=1; __Secure-baton_refresh=xyz; b=2")
            .finish();
        assert_eq!(read_cookies(&req, "__Secure-baton_refresh"), ["xyz"]);
        assert!(read_cookies(&req, "missing").is_empty());
    }

    #[test]
    fn every_cookie_of_the_name_is_a_candidate_in_the_order_sent_and_bounded() {
        let req = Request::builder()
            .header(header::COOKIE, "r=planted; a=1; r=real; r=planted")
            .header(header::COOKIE, "r=3; r=4; r=5")
            .finish();
        assert_eq!(read_cookies(&req, "r"), ["planted", "real", "3", "4"]);
    }

    #[test]
    fn origins_are_checked_only_when_sent() {
        let s = settings();
        let with = |o: &str| Request::builder().header(header::ORIGIN, o).finish();
        assert!(origin_allowed(&Request::builder().finish(), &s));
        assert!(origin_allowed(&with("http://127.0.0.1:8080"), &s));
        assert!(!origin_allowed(&with("null"), &s));
        assert!(!origin_allowed(&with("http://evil.test"), &s));
    }
}
