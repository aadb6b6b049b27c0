//! `/auth/*`: register, login, refresh, logout, me.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::client::{client_address, user_agent};
use super::cookies::{clear_refresh_cookie, origin_allowed, read_cookies, set_refresh_cookie};
use super::error::ApiError;
use super::models::{
    ApiTags, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest, TokenPair, User,
};
use super::problem::problem_responses;
use super::security::{AccessToken, OptionalRefreshCookie};
use super::state::AppState;
use super::strict_string::StrictString;
use super::throttle::RateLimitHeaders;
use crate::domain::AuthError;
use crate::domain::refresh_token::RefreshToken;
use crate::domain::sessions::IssuedTokens;
use crate::domain::throttle::Throttled;

pub struct AuthApi;

const NO_STORE: &str = "no-store";

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account was created. Log in to get tokens.
    #[oai(status = 201)]
    Created(
        Json<User>,
        /// The quota policies that applied (draft-ietf-httpapi-ratelimit-headers):
        /// `"register";q=<quota>;w=<window seconds>`. Absent when throttling is off.
        #[oai(header = "RateLimit-Policy")]
        Option<String>,
        /// What is left: `"register";r=<remaining>;t=<seconds until reset>`.
        /// Absent when throttling is off.
        #[oai(header = "RateLimit")]
        Option<String>,
    ),
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
        /// The quota policies that applied (draft-ietf-httpapi-ratelimit-headers):
        /// a list of `"name";q=<quota>;w=<window seconds>` (login: `"login"`
        /// attempts from this address, `"login-failures"` wrong passwords for
        /// this account from this address; refresh: `"refresh"`). Absent when
        /// throttling is off.
        #[oai(header = "RateLimit-Policy")]
        Option<String>,
        /// What is left of each policy: `"name";r=<remaining>;t=<seconds until
        /// reset>`. Absent when throttling is off.
        #[oai(header = "RateLimit")]
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

fn token_response(
    state: &AppState,
    issued: IssuedTokens,
    channel: Channel,
    limits: RateLimitHeaders,
) -> TokenResponse {
    // Both lifetimes count from the moment of issue, not from "now" a few
    // milliseconds later, so a fresh token reports its full lifetime.
    let refresh_expires_in = issued.issued_at.until(issued.refresh_expires_at).as_secs();
    let cookie = (channel == Channel::Cookie)
        .then(|| set_refresh_cookie(&state.settings, issued.refresh.expose(), refresh_expires_in));
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
    TokenResponse::Ok(
        Json(body),
        NO_STORE.to_owned(),
        cookie,
        limits.policy,
        limits.current,
    )
}

fn rate_limited(throttled: Throttled) -> ApiError {
    ApiError::RateLimited {
        retry_after: throttled.retry_after,
        headers: RateLimitHeaders::from_quotas(&throttled.quotas),
    }
}

/// The refresh token(s) of a refresh or logout request: the body's wins;
/// else every refresh cookie sent (one of them may be planted, see
/// `read_cookies`), whose use from a browser needs an allowed `Origin`.
/// Empty when none was presented.
fn presented_tokens(
    req: &Request,
    state: &AppState,
    from_body: Option<String>,
) -> Result<(Vec<String>, Channel), ApiError> {
    if let Some(token) = from_body {
        return Ok((vec![token], Channel::Body));
    }
    let tokens = read_cookies(req, &state.settings.cookie_name);
    if !tokens.is_empty() && !origin_allowed(req, &state.settings) {
        return Err(ApiError::OriginNotAllowed);
    }
    Ok((tokens, Channel::Cookie))
}

/// Rotates the first of the candidates that rotates. A candidate refused
/// definitively (unknown, expired, reused, revoked) gives way to the next,
/// so a planted cookie sent first cannot end the real session; any other
/// failure (503, ...) is answered as it is.
async fn rotate_first(
    state: &AppState,
    candidates: &[String],
    user_agent: Option<String>,
) -> Result<IssuedTokens, AuthError> {
    let mut refusal = AuthError::RefreshTokenMissing;
    for raw in candidates {
        let result = match RefreshToken::presented(raw) {
            Some(token) => state.sessions.rotate(&token, user_agent.clone()).await,
            None => Err(AuthError::RefreshTokenInvalid),
        };
        match result {
            Ok(issued) => return Ok(issued),
            Err(e) if e.ends_the_session() => refusal = e,
            Err(e) => return Err(e),
        }
    }
    Err(refusal)
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
        let address = client_address(req, &state.settings);
        let admitted = state
            .throttle
            .register(address)
            .await
            .map_err(rate_limited)?;
        let Json(RegisterRequest { email, password }) = body;
        let account = state
            .accounts
            .register(&email.0, password.into_inner())
            .await?;
        let limits = RateLimitHeaders::from_quotas(&admitted.quotas);
        Ok(RegisterResponse::Created(
            Json(account.into()),
            limits.policy,
            limits.current,
        ))
    }

    /// Log in
    ///
    /// Checks the credentials and starts a session: a new refresh-token
    /// family. Returns an access token, and the refresh token in an
    /// `HttpOnly; Secure; SameSite=Strict` cookie scoped to `/auth` — or in
    /// the body when `refresh_token_in_body` is true (non-browser clients).
    /// A wrong password and an unknown email get the same 401
    /// `invalid_credentials` in comparable time. Throttled per client address,
    /// and per account and address on wrong passwords (429 with `Retry-After`):
    /// guesses from elsewhere never refuse an address that has not failed.
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
        let (email, password) = (email.into_inner(), password.into_inner());
        let mut gate = match state.throttle.login(&email, ip).await {
            Ok(gate) => gate,
            Err(throttled) => {
                tracing::warn!(event = "login_throttled", client = %ip, "login throttled");
                let error = rate_limited(throttled);
                state.metrics.observe_login(error.code().as_str());
                return Err(error.into());
            }
        };
        let account = match state.accounts.authenticate(&email, password).await {
            Ok(account) => account,
            Err(e) => {
                if matches!(e, AuthError::InvalidCredentials) {
                    tracing::info!(event = "login_failed", client = %ip, "login failed");
                    state.throttle.login_failed(&mut gate).await;
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
        let limits = RateLimitHeaders::from_quotas(&gate.admitted.quotas);
        Ok(token_response(&state, issued, channel, limits))
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
        let address = client_address(req, &state.settings);
        let admitted = state
            .throttle
            .refresh(address)
            .await
            .map_err(rate_limited)?;
        let (candidates, channel) = presented_tokens(
            req,
            &state,
            body.0.refresh_token.map(StrictString::into_inner),
        )?;
        if candidates.is_empty() {
            return Err(AuthError::RefreshTokenMissing.into());
        }
        match rotate_first(&state, &candidates, user_agent(req)).await {
            Ok(issued) => {
                state.metrics.observe_refresh("ok");
                let limits = RateLimitHeaders::from_quotas(&admitted.quotas);
                Ok(token_response(&state, issued, channel, limits))
            }
            Err(e) => {
                let definitive = e.ends_the_session();
                let error = ApiError::from(e);
                state.metrics.observe_refresh(error.code().as_str());
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
        let (candidates, _) = presented_tokens(
            req,
            &state,
            body.0.refresh_token.map(StrictString::into_inner),
        )?;
        // Every candidate's session ends: ours is meant to, and a planted
        // token's is its planter's own.
        for token in candidates
            .iter()
            .filter_map(|raw| RefreshToken::presented(raw))
        {
            state.sessions.logout(Some(&token)).await?;
        }
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
