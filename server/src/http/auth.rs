//! `/auth/*`: register, login, refresh, logout, me.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::client::{client_address, user_agent};
use super::cookies::{clear_refresh_cookie, origin_allowed, read_cookie, set_refresh_cookie};
use super::error::ApiError;
use super::models::{
    ApiTags, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest, TokenPair, User,
};
use super::problem::problem_responses;
use super::security::{AccessToken, OptionalRefreshCookie};
use super::state::AppState;
use super::strict_string::StrictString;
use crate::domain::AuthError;
use crate::domain::refresh_token::RefreshToken;
use crate::domain::sessions::IssuedTokens;
use crate::faults::Fault;

pub struct AuthApi;

const NO_STORE: &str = "no-store";

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account was created. Log in to get tokens.
    #[oai(status = 201)]
    Created(Json<User>),
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    /// A new token pair. On cookie delivery the refresh token is in
    /// `Set-Cookie` (`HttpOnly; Secure; SameSite=Strict; Path=/auth`,
    /// `Max-Age` = its remaining life) and absent from the body.
    #[oai(status = 200)]
    Ok(
        Json<TokenPair>,
        /// Always `no-store`: token responses are never cached (RFC 6749 §5.1).
        #[oai(header = "Cache-Control")]
        String,
        /// The refresh cookie, on cookie delivery only.
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// Logged out: the session of the presented token (if any) is revoked and
    /// the refresh cookie is cleared.
    #[oai(status = 204)]
    NoContent(
        /// Clears the refresh cookie (`Max-Age=0`).
        #[oai(header = "Set-Cookie")]
        String,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The account of the access token.
    #[oai(status = 200)]
    Ok(Json<User>),
}

problem_responses!(RegisterError: 403, 409, 413, 415, 422, 429, 503);
problem_responses!(LoginError: 401, 413, 415, 422, 429, 503);
problem_responses!(RefreshError: 401, 403, 413, 415, 422, 429, 503);
problem_responses!(LogoutError: 403, 413, 415, 422, 503);
problem_responses!(MeError(bearer): 401, 503);

/// Where a refresh token came from; the answer goes back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Body,
    Cookie,
}

fn token_response(state: &AppState, issued: IssuedTokens, channel: Channel) -> TokenResponse {
    // Both lifetimes count from the moment of issue, not from "now" a few
    // milliseconds later, so a fresh token reports its full lifetime.
    let refresh_expires_in = issued.issued_at.until(issued.refresh_expires_at).as_secs();
    let cookie = (channel == Channel::Cookie).then(|| {
        set_refresh_cookie(
            &state.settings,
            issued.refresh.expose(),
            refresh_expires_in,
            !state.faults.has(Fault::CookieWithoutHttpOnly),
        )
    });
    let body = TokenPair {
        access_token: issued.access.token,
        token_type: "Bearer".to_owned(),
        expires_in: issued
            .access
            .issued_at
            .until(issued.access.expires_at)
            .as_secs(),
        refresh_expires_in,
        refresh_token: (channel == Channel::Body).then(|| issued.refresh.expose().to_owned()),
    };
    TokenResponse::Ok(Json(body), NO_STORE.to_owned(), cookie)
}

fn throttle(state: &AppState, key: String, limit: super::throttle::Limit) -> Result<(), ApiError> {
    state
        .throttle
        .check(&key, limit)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

/// The refresh token of a refresh or logout request: the body wins, then the
/// cookie, whose use from a browser needs an allowed `Origin`.
fn presented_token(
    req: &Request,
    state: &AppState,
    from_body: Option<String>,
) -> Result<Option<(String, Channel)>, ApiError> {
    if state.faults.has(Fault::CookieWinsOverBody)
        && read_cookie(req, &state.settings.cookie_name).is_some()
    {
        return presented_token(req, state, None);
    }
    if let Some(token) = from_body {
        return Ok(Some((token, Channel::Body)));
    }
    let Some(token) = read_cookie(req, &state.settings.cookie_name) else {
        return Ok(None);
    };
    if !state.faults.has(Fault::NoOriginCheck) && !origin_allowed(req, &state.settings) {
        return Err(ApiError::OriginNotAllowed);
    }
    Ok(Some((token, Channel::Cookie)))
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account
    ///
    /// Creates an account with a unique email (compared without regard to
    /// case) and a password of 8 to 128 characters. Issues no tokens and sets
    /// no cookie: log in next. Answers 403 `registration_closed` when the
    /// instance has registration turned off.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<RegisterRequest>,
    ) -> Result<RegisterResponse, RegisterError> {
        let ip = client_address(req, &state.settings);
        throttle(
            &state,
            format!("register:{ip}"),
            state.throttle.limits.register_per_ip,
        )?;
        let Json(RegisterRequest { email, password }) = body;
        let account = state
            .accounts
            .register(&email.0, password.into_inner())
            .await?;
        Ok(RegisterResponse::Created(Json(account.into())))
    }

    /// Log in
    ///
    /// Checks the credentials and starts a session: a new refresh-token
    /// family. Returns an access token, and the refresh token in an
    /// `HttpOnly; Secure; SameSite=Strict` cookie scoped to `/auth` — or in
    /// the body when `refresh_token_in_body` is true (non-browser clients).
    /// A wrong password and an unknown email get the same 401
    /// `invalid_credentials` in comparable time. Throttled per account and per
    /// client address (429 with `Retry-After`).
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: Json<LoginRequest>,
    ) -> Result<TokenResponse, LoginError> {
        let Json(LoginRequest {
            email,
            password,
            refresh_token_in_body,
        }) = body;
        let ip = client_address(req, &state.settings);
        throttle(
            &state,
            format!("login-ip:{ip}"),
            state.throttle.limits.login_per_ip,
        )?;
        let (email, password) = (email.into_inner(), password.into_inner());
        let account_key = format!("login-account:{}", email.to_lowercase());
        if let Err(e) = throttle(&state, account_key, state.throttle.limits.login_per_account) {
            tracing::warn!(event = "login_throttled", client = %ip, "login throttled");
            state.metrics.observe_login(e.code().as_str());
            return Err(e.into());
        }
        let account = match state.accounts.authenticate(&email, password).await {
            Ok(account) => account,
            Err(e) => {
                if matches!(e, AuthError::InvalidCredentials) {
                    tracing::info!(event = "login_failed", client = %ip, "login failed");
                }
                let error = ApiError::from(e);
                state.metrics.observe_login(error.code().as_str());
                return Err(error.into());
            }
        };
        let issued = state.sessions.start(&account.id, user_agent(req)).await?;
        state.metrics.observe_login("ok");
        let channel = if refresh_token_in_body.unwrap_or(false) {
            Channel::Body
        } else {
            Channel::Cookie
        };
        Ok(token_response(&state, issued, channel))
    }

    /// Refresh the token pair
    ///
    /// Rotates the refresh token: the presented one is spent, a new pair is
    /// returned on the channel the token came in on (body in, body out;
    /// cookie in, cookie out). Presenting an already rotated token again —
    /// after the reuse grace, or once its successor was used — revokes the
    /// whole session (401 `refresh_token_reused`). Within the grace, while the
    /// successor is unused, the same successor is returned again, so
    /// concurrent refreshes converge. Every 401 that came through the cookie
    /// also clears the cookie. A cookie refresh from a foreign `Origin` gets
    /// 403 `origin_not_allowed` and changes nothing.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        req: &Request,
        state: Data<&AppState>,
        _cookie: OptionalRefreshCookie,
        body: Json<RefreshRequest>,
    ) -> Result<TokenResponse, RefreshError> {
        let ip = client_address(req, &state.settings);
        throttle(
            &state,
            format!("refresh:{ip}"),
            state.throttle.limits.refresh_per_ip,
        )?;
        let Some((raw, channel)) = presented_token(
            req,
            &state,
            body.0.refresh_token.map(StrictString::into_inner),
        )?
        else {
            return Err(AuthError::RefreshTokenMissing.into());
        };
        let result = match RefreshToken::presented(&raw) {
            Some(token) => state.sessions.rotate(&token, user_agent(req)).await,
            None => Err(AuthError::RefreshTokenInvalid),
        };
        match result {
            Ok(issued) => {
                state.metrics.observe_refresh("ok");
                Ok(token_response(&state, issued, channel))
            }
            Err(e) => {
                let error = ApiError::from(e);
                state.metrics.observe_refresh(error.code().as_str());
                let reused = error.code() == super::problem::ProblemCode::RefreshTokenReused;
                let definitive = error.code().is_refresh_failure()
                    && !(reused && state.faults.has(Fault::ReusedCookieNotCleared));
                if channel == Channel::Cookie && definitive {
                    let clear = clear_refresh_cookie(&state.settings);
                    return Err(ApiError::ClearingCookie(Box::new(error), clear).into());
                }
                Err(error.into())
            }
        }
    }

    /// Log out
    ///
    /// Revokes the whole session of the presented refresh token (body or
    /// cookie), also when that token was already rotated, and always clears
    /// the cookie. Idempotent: a missing, unknown or revoked token is also a
    /// 204. A cookie logout from a foreign `Origin` gets 403 and changes
    /// nothing. Access tokens already issued stay valid until they expire.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        req: &Request,
        state: Data<&AppState>,
        _cookie: OptionalRefreshCookie,
        body: Json<LogoutRequest>,
    ) -> Result<LogoutResponse, LogoutError> {
        let presented = presented_token(
            req,
            &state,
            body.0.refresh_token.map(StrictString::into_inner),
        )?;
        let token = presented.and_then(|(raw, _)| RefreshToken::presented(&raw));
        state.sessions.logout(token.as_ref()).await?;
        Ok(LogoutResponse::NoContent(
            clear_refresh_cookie(&state.settings),
            NO_STORE.to_owned(),
        ))
    }

    /// The current user
    ///
    /// Returns the account of the access token. Access tokens are stateless:
    /// one issued before a logout keeps working here until it expires.
    #[oai(path = "/auth/me", method = "get", operation_id = "getMe")]
    async fn me(&self, state: Data<&AppState>, auth: AccessToken) -> Result<MeResponse, MeError> {
        match state.accounts.find(&auth.0.sub).await {
            Ok(account) => Ok(MeResponse::Ok(Json(account.into()))),
            Err(AuthError::AccountNotFound) => Err(ApiError::UnknownSubject.into()),
            Err(e) => Err(e.into()),
        }
    }
}
