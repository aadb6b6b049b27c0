//! The HTTP layer's error type, and the one place where every failure —
//! domain errors, token errors, framework parse errors — becomes a problem
//! response.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Response, error::ResponseError};

use super::problem::{PROBLEM_CONTENT_TYPE, Problem, ProblemCode};
use super::throttle::RateLimitHeaders;
use crate::domain::AuthError;
use crate::domain::access_token::AccessTokenError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] AuthError),
    /// An access token was sent and refused.
    #[error(transparent)]
    AccessToken(#[from] AccessTokenError),
    /// A protected endpoint was called without an access token.
    #[error("this endpoint needs an access token: Authorization: Bearer <token>")]
    MissingAccessToken,
    /// The account behind a valid access token no longer exists.
    #[error("the account of this access token no longer exists")]
    UnknownSubject,
    #[error("requests that use the refresh cookie must come from an allowed origin")]
    OriginNotAllowed,
    #[error("{0}")]
    Validation(String),
    #[error("the request body is larger than 65536 bytes")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("no such resource")]
    NotFound,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("too many attempts; try again in {retry_after} s")]
    RateLimited {
        retry_after: u64,
        headers: RateLimitHeaders,
    },
    /// The request head or body did not arrive in time (the edge's timeouts).
    #[error("{0}")]
    RequestTimeout(String),
    /// The request head, or one of its limits, is too large.
    #[error("{0}")]
    HeaderFieldsTooLarge(String),
    /// The request line (its target) is too long.
    #[error("{0}")]
    UriTooLong(String),
    /// The request is not well-formed HTTP/1.1 (refused before routing).
    #[error("{0}")]
    BadRequest(String),
    /// The connection limit is reached.
    #[error("the server has too many connections; try again in a second")]
    TooManyConnections,
    /// The same error, with a `Set-Cookie` that clears the refresh cookie.
    #[error("{0}")]
    ClearingCookie(Box<ApiError>, String),
}

struct Shape {
    status: StatusCode,
    code: ProblemCode,
    title: &'static str,
}

impl ApiError {
    fn shape(&self) -> Shape {
        use ProblemCode as C;
        let s = |status, code, title| Shape {
            status,
            code,
            title,
        };
        match self {
            ApiError::Domain(e) => match e {
                AuthError::Validation(_) => s(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    C::ValidationFailed,
                    "Validation failed",
                ),
                AuthError::EmailTaken => s(StatusCode::CONFLICT, C::EmailTaken, "Email taken"),
                AuthError::RegistrationClosed => s(
                    StatusCode::FORBIDDEN,
                    C::RegistrationClosed,
                    "Registration closed",
                ),
                AuthError::InvalidCredentials => s(
                    StatusCode::UNAUTHORIZED,
                    C::InvalidCredentials,
                    "Invalid credentials",
                ),
                AuthError::RefreshTokenMissing | AuthError::RefreshTokenInvalid => s(
                    StatusCode::UNAUTHORIZED,
                    C::RefreshTokenInvalid,
                    "Invalid refresh token",
                ),
                AuthError::RefreshTokenExpired => s(
                    StatusCode::UNAUTHORIZED,
                    C::RefreshTokenExpired,
                    "Refresh token expired",
                ),
                AuthError::RefreshTokenReused => s(
                    StatusCode::UNAUTHORIZED,
                    C::RefreshTokenReused,
                    "Refresh token reused",
                ),
                AuthError::SessionRevoked => s(
                    StatusCode::UNAUTHORIZED,
                    C::SessionRevoked,
                    "Session revoked",
                ),
                AuthError::SessionNotFound => s(
                    StatusCode::NOT_FOUND,
                    C::SessionNotFound,
                    "Session not found",
                ),
                AuthError::AccountNotFound => s(
                    StatusCode::UNAUTHORIZED,
                    C::InvalidToken,
                    "Invalid access token",
                ),
                AuthError::Storage(StorageError::Unavailable(_) | StorageError::Conflict(_)) => s(
                    StatusCode::SERVICE_UNAVAILABLE,
                    C::ServiceUnavailable,
                    "Service unavailable",
                ),
                AuthError::Storage(_) | AuthError::Unexpected(_) => s(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    C::InternalError,
                    "Internal error",
                ),
            },
            ApiError::AccessToken(AccessTokenError::Expired) => s(
                StatusCode::UNAUTHORIZED,
                C::TokenExpired,
                "Access token expired",
            ),
            ApiError::AccessToken(_) | ApiError::UnknownSubject => s(
                StatusCode::UNAUTHORIZED,
                C::InvalidToken,
                "Invalid access token",
            ),
            ApiError::MissingAccessToken => s(
                StatusCode::UNAUTHORIZED,
                C::MissingToken,
                "Access token required",
            ),
            ApiError::OriginNotAllowed => s(
                StatusCode::FORBIDDEN,
                C::OriginNotAllowed,
                "Origin not allowed",
            ),
            ApiError::Validation(_) => s(
                StatusCode::UNPROCESSABLE_ENTITY,
                C::ValidationFailed,
                "Validation failed",
            ),
            ApiError::PayloadTooLarge => s(
                StatusCode::PAYLOAD_TOO_LARGE,
                C::PayloadTooLarge,
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType(_) => s(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                C::UnsupportedMediaType,
                "Unsupported media type",
            ),
            ApiError::NotFound => s(StatusCode::NOT_FOUND, C::NotFound, "Not found"),
            ApiError::MethodNotAllowed => s(
                StatusCode::METHOD_NOT_ALLOWED,
                C::MethodNotAllowed,
                "Method not allowed",
            ),
            ApiError::RateLimited { .. } => s(
                StatusCode::TOO_MANY_REQUESTS,
                C::RateLimited,
                "Too many requests",
            ),
            ApiError::RequestTimeout(_) => s(
                StatusCode::REQUEST_TIMEOUT,
                C::RequestTimeout,
                "Request timeout",
            ),
            ApiError::HeaderFieldsTooLarge(_) => s(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                C::HeaderFieldsTooLarge,
                "Request header fields too large",
            ),
            ApiError::UriTooLong(_) => s(StatusCode::URI_TOO_LONG, C::UriTooLong, "URI too long"),
            ApiError::BadRequest(_) => s(StatusCode::BAD_REQUEST, C::BadRequest, "Bad request"),
            ApiError::TooManyConnections => s(
                StatusCode::SERVICE_UNAVAILABLE,
                C::TooManyConnections,
                "Too many connections",
            ),
            ApiError::ClearingCookie(inner, _) => inner.shape(),
        }
    }

    /// What a client may read. Internal causes are logged, never shown.
    fn detail(&self) -> String {
        match self {
            ApiError::Domain(AuthError::Storage(StorageError::Unavailable(_))) => {
                "the database is unavailable; try again shortly".to_owned()
            }
            ApiError::Domain(AuthError::Storage(StorageError::Conflict(_))) => {
                "the request collided with concurrent changes; try again".to_owned()
            }
            ApiError::Domain(AuthError::Storage(_) | AuthError::Unexpected(_)) => {
                "an unexpected error occurred; it has been logged".to_owned()
            }
            ApiError::ClearingCookie(inner, _) => inner.detail(),
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            ApiError::Domain(AuthError::Storage(
                StorageError::Unavailable(_) | StorageError::Conflict(_),
            )) => Some(2),
            ApiError::TooManyConnections => Some(1),
            ApiError::ClearingCookie(inner, _) => inner.retry_after(),
            _ => None,
        }
    }

    /// RFC 6750 §3: the challenge for access-token failures.
    fn www_authenticate(&self) -> Option<String> {
        match self {
            ApiError::MissingAccessToken => Some("Bearer".to_owned()),
            ApiError::AccessToken(e) => Some(format!(
                r#"Bearer error="invalid_token", error_description="{e}""#
            )),
            ApiError::UnknownSubject | ApiError::Domain(AuthError::AccountNotFound) => Some(
                format!(r#"Bearer error="invalid_token", error_description="{self}""#),
            ),
            _ => None,
        }
    }

    pub fn code(&self) -> ProblemCode {
        self.shape().code
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.shape().status
    }

    fn as_response(&self) -> Response {
        let shape = self.shape();
        // A refused connection is logged by the edge, throttled: it is load,
        // not a failure.
        if shape.status.is_server_error() && !matches!(self, ApiError::TooManyConnections) {
            tracing::error!(error = %self, "request failed");
        }
        let problem = Problem {
            type_: format!("urn:baton:problem:{}", shape.code.as_str()),
            title: shape.title.to_owned(),
            status: shape.status.as_u16(),
            detail: self.detail(),
            code: shape.code,
            retry_after: self.retry_after(),
        };
        let body =
            serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&problem)).unwrap_or_default();
        let mut response = Response::builder()
            .status(shape.status)
            .header(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)
            .header(header::CACHE_CONTROL, "no-store")
            .body(body);
        if let Some(challenge) = self.www_authenticate()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::ClearingCookie(_, cookie) = self
            && let Ok(value) = HeaderValue::from_str(cookie)
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        if let ApiError::RateLimited { headers, .. } = self {
            for (name, value) in [
                ("ratelimit-policy", &headers.policy),
                ("ratelimit", &headers.current),
            ] {
                if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                    response.headers_mut().insert(name, value);
                }
            }
        }
        response
    }
}

/// Parse errors quote the offending value, which may be most of a 64 KiB
/// body: keep the explanation, not the echo.
fn shortened(reason: &str) -> String {
    const MAX_CHARS: usize = 200;
    if reason.chars().count() <= MAX_CHARS {
        return reason.to_owned();
    }
    let mut cut: String = reason.chars().take(MAX_CHARS).collect();
    cut.push('…');
    cut
}

/// Converts any error that reached the edge of the app into a problem
/// response: our own errors as they are, the framework's by their type.
pub fn into_problem(err: poem::Error, authorization: Option<&str>) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.as_response();
    }
    let api = if err.is::<AuthorizationError>() {
        // poem-openapi could not extract a bearer token: none was sent, or
        // the header is not a well-formed `Bearer <token>`.
        match authorization {
            Some(value)
                if value
                    .get(..6)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer")) =>
            {
                ApiError::AccessToken(AccessTokenError::Malformed)
            }
            _ => ApiError::MissingAccessToken,
        }
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::Validation(format!(
            "the request body is invalid: {}",
            shortened(&e.reason)
        ))
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::Validation(e.to_string())
    } else if let Some(e) = err.downcast_ref::<ParsePathError>() {
        ApiError::Validation(e.to_string())
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        ApiError::UnsupportedMediaType(format!("{e}; send application/json"))
    } else {
        match err.status() {
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(err.to_string()),
            status if status.is_client_error() => ApiError::Validation(err.to_string()),
            _ => ApiError::Domain(AuthError::Unexpected(anyhow::anyhow!("{err}"))),
        }
    };
    api.as_response()
}
