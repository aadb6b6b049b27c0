//! The faults that live at the HTTP boundary: one middleware around the
//! whole application that rewrites requests before the real handlers see
//! them, and responses after.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::http::header::{self, HeaderValue};
use poem::http::{Method, StatusCode};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response};
use serde_json::Value;

use super::{Fault, Faults};
use crate::domain::access_token::{AccessClaims, AccessTokenError, AccessTokens};
use crate::http::cookies::read_cookies;

/// Bodies the middleware reads are at most this long (the API's limit).
const MAX_BODY: usize = 64 * 1024;

/// What the middleware needs: the faults, the cookie's name, and the token
/// issuer that stands in for the verifier the faults weaken.
#[derive(Clone)]
struct Context {
    faults: Faults,
    cookie_name: String,
    access_tokens: AccessTokens,
}

/// Wraps the application in the faults' middleware (a no-op without faults).
pub fn install(
    app: impl Endpoint + 'static,
    faults: Faults,
    cookie_name: String,
    access_tokens: AccessTokens,
) -> impl Endpoint {
    let context = Context {
        faults,
        cookie_name,
        access_tokens,
    };
    app.around(move |next, req: Request| {
        let context = context.clone();
        async move {
            if context.faults.is_empty() {
                return Ok(next.call(req).await?.into_response());
            }
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let req = context.rewrite_request(req).await;
            let response = match next.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            };
            Ok(context.rewrite_response(response, &method, &path).await)
        }
    })
}

fn is_token_endpoint(method: &Method, path: &str) -> bool {
    method == Method::POST && (path == "/auth/refresh" || path == "/auth/logout")
}

impl Context {
    async fn rewrite_request(&self, mut req: Request) -> Request {
        let f = &self.faults;
        if f.has(Fault::NoOriginCheck) {
            req.headers_mut().remove(header::ORIGIN);
        }
        if f.has(Fault::CookieWinsOverBody)
            && is_token_endpoint(req.method(), req.uri().path())
            && !read_cookies(&req, &self.cookie_name).is_empty()
        {
            drop_body_token(&mut req).await;
        }
        if f.has(Fault::AcceptAlgNone) || f.has(Fault::IgnoreExp) {
            self.accept_weak_bearer(&mut req).await;
        }
        req
    }

    /// `accept-alg-none`, `ignore-exp`: a bearer token the verifier refuses
    /// for its algorithm (`none`) or its expiry is replaced by a valid one
    /// for the same user and session, so the handlers accept it.
    async fn accept_weak_bearer(&self, req: &mut Request) {
        let Some(token) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.get(7..)
                    .filter(|_| h[..7].eq_ignore_ascii_case("bearer "))
            })
            .map(str::to_owned)
        else {
            return;
        };
        let accepted = match self.access_tokens.verify(&token).await {
            Err(AccessTokenError::Expired) => self.faults.has(Fault::IgnoreExp),
            Err(_) => self.faults.has(Fault::AcceptAlgNone) && is_unsigned(&token),
            Ok(_) => false,
        };
        let Some(claims) = accepted.then(|| claims_of(&token)).flatten() else {
            return;
        };
        if let Ok(valid) = self.access_tokens.issue(&claims.sub, &claims.sid)
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", valid.token))
        {
            req.headers_mut().insert(header::AUTHORIZATION, value);
        }
    }

    async fn rewrite_response(
        &self,
        mut response: Response,
        method: &Method,
        path: &str,
    ) -> Response {
        let f = &self.faults;
        if f.has(Fault::CookieWithoutHttpOnly) {
            let cookies: Vec<HeaderValue> = response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|c| {
                    HeaderValue::from_str(&c.to_str().ok()?.replace("; HttpOnly", "")).ok()
                })
                .collect();
            replace_cookies(&mut response, cookies);
        }
        if f.has(Fault::ReusedCookieNotCleared)
            && path == "/auth/refresh"
            && response.status() == StatusCode::UNAUTHORIZED
        {
            let mut reused = false;
            edit_json(&mut response, |body| {
                reused = body["code"].as_str() == Some("refresh_token_reused");
            })
            .await;
            if reused {
                replace_cookies(&mut response, Vec::new());
            }
        }
        if f.has(Fault::SessionsOldestFirst)
            && method == Method::GET
            && path == "/auth/sessions"
            && response.status() == StatusCode::OK
        {
            edit_json(&mut response, |body| {
                if let Value::Array(sessions) = body {
                    sessions.reverse();
                }
            })
            .await;
        }
        response
    }
}

/// `cookie-wins-over-body`: the body's `refresh_token` is dropped when a
/// cookie came too, so the handler falls back to the cookie.
async fn drop_body_token(req: &mut Request) {
    let bytes = match req.take_body().into_bytes_limit(MAX_BODY).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => return,
    };
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut members)) => {
            members.remove("refresh_token");
            serde_json::to_vec(&Value::Object(members)).unwrap_or(bytes)
        }
        _ => bytes,
    };
    req.headers_mut().remove(header::CONTENT_LENGTH);
    req.set_body(Body::from_vec(body));
}

fn replace_cookies(response: &mut Response, cookies: Vec<HeaderValue>) {
    let headers = response.headers_mut();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
}

/// Applies `edit` to a JSON body; any other body stays as it was.
async fn edit_json(response: &mut Response, edit: impl FnOnce(&mut Value)) {
    let bytes = response.take_body().into_vec().await.unwrap_or_default();
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut body) => {
            edit(&mut body);
            serde_json::to_vec(&body).unwrap_or(bytes)
        }
        Err(_) => bytes,
    };
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response.set_body(Body::from_vec(body));
}

fn is_unsigned(token: &str) -> bool {
    let header = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok());
    header
        .as_ref()
        .and_then(|h| h["alg"].as_str())
        .is_some_and(|alg| alg.eq_ignore_ascii_case("none"))
}

/// A token's claims, unverified.
fn claims_of(token: &str) -> Option<AccessClaims> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice(&payload).ok()
}
