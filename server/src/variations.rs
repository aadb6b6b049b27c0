//! Legal variations of the contract, so the conformance suite can prove it
//! accepts every correct server and not only Baton's choices. Where faults
//! (`faults/`) break the contract, these rewrite responses in ways the
//! contract allows: a per-host `jwks_uri`, a cookie path under the auth prefix
//! other than `/auth`, other problem texts, extra members and extra headers.
//! Test-only: compiled with the `fault-injection` feature alone, read from
//! `BATON_VARIATIONS` (comma-separated names) and applied by one middleware.

use poem::http::header::{self, HeaderValue};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variation {
    /// `jwks_uri` names the host the request was sent to (its `Host` header).
    HostJwksUri,
    /// The refresh cookie's path is `/auth/` instead of `/auth`, in
    /// `Set-Cookie` and in the published configuration.
    CookiePath,
    /// Problem `title` and `detail` texts are worded otherwise.
    DetailTexts,
    /// Every JSON body (token pairs, users, sessions, JWKS, configuration,
    /// problems) carries extra members.
    ExtraFields,
    /// Extra headers and other legal spellings of the fixed ones: more
    /// `Cache-Control` directives, `charset` on JSON media types, a `realm`
    /// and an unquoted `error` in `WWW-Authenticate`, another cookie first.
    ExtraHeaders,
}

impl Variation {
    pub const ALL: [(Variation, &'static str); 5] = [
        (Variation::HostJwksUri, "host-jwks-uri"),
        (Variation::CookiePath, "cookie-path"),
        (Variation::DetailTexts, "detail-texts"),
        (Variation::ExtraFields, "extra-fields"),
        (Variation::ExtraHeaders, "extra-headers"),
    ];
}

#[derive(Debug, Clone, Default)]
pub struct Variations(Vec<Variation>);

impl Variations {
    /// Parses `BATON_VARIATIONS` (comma-separated names; `all` for every one).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut variations = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                variations.extend(Variation::ALL.iter().map(|(v, _)| *v));
                continue;
            }
            let variation = Variation::ALL
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(v, _)| *v)
                .ok_or_else(|| {
                    let known: Vec<_> = Variation::ALL.iter().map(|(_, n)| *n).collect();
                    format!(
                        "unknown variation {name:?}; known: all, {}",
                        known.join(", ")
                    )
                })?;
            variations.push(variation);
        }
        Ok(Self(variations))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn has(&self, variation: Variation) -> bool {
        self.0.contains(&variation)
    }
}

/// Wraps the whole application in the rewriting middleware (a no-op without
/// variations).
pub fn install(app: impl Endpoint + 'static, variations: Variations) -> impl Endpoint {
    app.around(move |next, req: Request| {
        let variations = variations.clone();
        async move {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let path = req.uri().path().to_owned();
            let response = match next.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            };
            if variations.is_empty() {
                return Ok(response);
            }
            Ok(rewrite(&variations, response, host.as_deref(), &path).await)
        }
    })
}

async fn rewrite(
    v: &Variations,
    mut response: Response,
    host: Option<&str>,
    path: &str,
) -> Response {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_problem = content_type.starts_with("application/problem+json");
    if content_type.starts_with("application/json") || is_problem {
        let bytes = response.take_body().into_vec().await.unwrap_or_default();
        let body = match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut body) => {
                rewrite_json(v, &mut body, is_problem, host, path);
                serde_json::to_vec(&body).unwrap_or(bytes)
            }
            Err(_) => bytes,
        };
        response.headers_mut().remove(header::CONTENT_LENGTH);
        response.set_body(Body::from_vec(body));
    }
    let headers = response.headers_mut();
    if v.has(Variation::CookiePath) {
        let cookies: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|c| {
                let c = c.to_str().ok()?;
                let moved = c.replace("; Path=/auth;", "; Path=/auth/;");
                let moved = match moved.strip_suffix("; Path=/auth") {
                    Some(rest) => format!("{rest}; Path=/auth/"),
                    None => moved,
                };
                HeaderValue::from_str(&moved).ok()
            })
            .collect();
        replace_all(headers, header::SET_COOKIE, cookies);
    }
    if v.has(Variation::ExtraHeaders) {
        headers.insert("x-variation", HeaderValue::from_static("extra-headers"));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(cache) = headers.get(header::CACHE_CONTROL)
            && cache.to_str().is_ok_and(|c| c.contains("no-store"))
        {
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache, no-store, max-age=0"),
            );
        }
        if content_type.ends_with("json")
            && let Ok(with_charset) =
                HeaderValue::from_str(&format!("{content_type}; charset=utf-8"))
        {
            headers.insert(header::CONTENT_TYPE, with_charset);
        }
        let challenges: Vec<HeaderValue> = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|c| {
                let c = c.to_str().ok()?;
                let rest = c.strip_prefix("Bearer")?.trim_start();
                let rest = rest.replace("error=\"invalid_token\"", "error = invalid_token");
                let value = if rest.is_empty() {
                    "bearer realm=\"baton\"".to_owned()
                } else {
                    format!("bearer realm=\"baton\", {rest}")
                };
                HeaderValue::from_str(&value).ok()
            })
            .collect();
        if !challenges.is_empty() {
            replace_all(headers, header::WWW_AUTHENTICATE, challenges);
        }
        // Another cookie, sent before the refresh cookie.
        let mut cookies = vec![HeaderValue::from_static(
            "baton_theme=dark; Path=/; SameSite=Lax",
        )];
        cookies.extend(headers.get_all(header::SET_COOKIE).iter().cloned());
        replace_all(headers, header::SET_COOKIE, cookies);
    }
    response
}

fn replace_all(
    headers: &mut poem::http::HeaderMap,
    name: header::HeaderName,
    values: Vec<HeaderValue>,
) {
    headers.remove(&name);
    for value in values {
        headers.append(name.clone(), value);
    }
}

fn rewrite_json(
    v: &Variations,
    body: &mut Value,
    is_problem: bool,
    host: Option<&str>,
    path: &str,
) {
    if path == "/.well-known/auth-configuration" {
        if let (true, Some(host)) = (v.has(Variation::HostJwksUri), host) {
            body["jwks_uri"] = json!(format!("http://{host}/.well-known/jwks.json"));
        }
        if v.has(Variation::CookiePath) && body["refresh_cookie"]["path"] == json!("/auth") {
            body["refresh_cookie"]["path"] = json!("/auth/");
        }
    }
    if is_problem && v.has(Variation::DetailTexts) {
        // The same code gets the same texts, so two equal problems stay equal.
        let code = body["code"].as_str().unwrap_or("unknown").to_owned();
        body["title"] = json!(format!("Request refused ({code})"));
        body["detail"] = json!(format!(
            "The service could not do this; see the code {code}."
        ));
    }
    if v.has(Variation::ExtraFields) {
        let extra = json!({"variant": true, "list": [1, "two", null]});
        match body {
            Value::Object(object) => {
                object.insert("x_variation".to_owned(), extra.clone());
                if is_problem {
                    object.insert("errors".to_owned(), json!([]));
                }
                for nested in ["refresh_cookie"] {
                    if let Some(Value::Object(inner)) = object.get_mut(nested) {
                        inner.insert("http_only".to_owned(), json!(true));
                    }
                }
                if let Some(Value::Array(keys)) = object.get_mut("keys") {
                    for key in keys.iter_mut().filter_map(Value::as_object_mut) {
                        key.insert("key_ops".to_owned(), json!(["verify"]));
                    }
                }
            }
            Value::Array(items) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.insert("x_variation".to_owned(), extra.clone());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_named() {
        let v = Variations::parse("cookie-path, extra-fields").unwrap();
        assert!(v.has(Variation::CookiePath) && v.has(Variation::ExtraFields));
        assert!(!v.has(Variation::HostJwksUri));
        assert_eq!(
            Variations::parse("all").unwrap().0.len(),
            Variation::ALL.len()
        );
        assert!(Variations::parse("").unwrap().is_empty());
        assert!(Variations::parse("nope").unwrap_err().contains("nope"));
    }

    #[test]
    fn the_configuration_names_the_host_and_the_other_path() {
        let v = Variations::parse("host-jwks-uri,cookie-path").unwrap();
        let mut config = json!({"jwks_uri": "http://a/.well-known/jwks.json", "refresh_cookie": {"path": "/auth"}});
        rewrite_json(
            &v,
            &mut config,
            false,
            Some("10.0.0.6:8080"),
            "/.well-known/auth-configuration",
        );
        assert_eq!(
            config["jwks_uri"],
            "http://10.0.0.6:8080/.well-known/jwks.json"
        );
        assert_eq!(config["refresh_cookie"]["path"], "/auth/");
    }

    #[test]
    fn equal_problems_stay_equal_with_other_texts() {
        let v = Variations::parse("detail-texts,extra-fields").unwrap();
        let mut a = json!({"code": "invalid_credentials", "title": "x", "detail": "y"});
        let mut b = json!({"code": "invalid_credentials", "title": "x", "detail": "y"});
        rewrite_json(&v, &mut a, true, None, "/auth/login");
        rewrite_json(&v, &mut b, true, None, "/auth/login");
        assert_eq!(a, b);
        assert_ne!(a["detail"], "y");
        assert!(a.get("x_variation").is_some() && a.get("errors").is_some());
    }
}
