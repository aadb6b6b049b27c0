//! Security schemes, as types: the bearer access token (verified by the
//! checker, so a failure becomes our problem body with `WWW-Authenticate`)
//! and the refresh cookie (documentation of the cookie channel; the handlers
//! read the cookie under its configured name).

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use super::error::ApiError;
use super::state::AppState;
use crate::domain::access_token::AccessClaims;

/// A JWT access token (RFC 9068, EdDSA) from `POST /auth/login` or
/// `POST /auth/refresh`, sent as `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(
    rename = "accessToken",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "verify_access_token"
)]
pub struct AccessToken(pub Arc<AccessClaims>);

async fn verify_access_token(req: &Request, bearer: Bearer) -> poem::Result<Arc<AccessClaims>> {
    let state = req
        .data::<AppState>()
        .expect("the app state is installed on every route");
    state
        .sessions
        .access_tokens()
        .verify(&bearer.token)
        .await
        .map_err(|e| ApiError::from(e).into())
}

/// The refresh token in its `HttpOnly; Secure; SameSite=Strict` cookie
/// (default name `__Secure-baton_refresh`, Path `/auth`; see
/// `/.well-known/auth-configuration` for this instance's name). Browsers
/// send it by themselves; requests that use it from a browser must come from
/// an allowed `Origin`.
#[derive(SecurityScheme)]
#[oai(
    rename = "refreshCookie",
    ty = "api_key",
    key_name = "__Secure-baton_refresh",
    key_in = "cookie"
)]
pub struct RefreshCookieScheme(#[allow(dead_code)] ApiKey);

/// Refresh and logout take the refresh token from the body or from the
/// cookie; neither is required by the framework (the handler decides).
#[derive(SecurityScheme)]
pub enum OptionalRefreshCookie {
    Cookie(RefreshCookieScheme),
    #[oai(fallback)]
    NoCookie,
}
