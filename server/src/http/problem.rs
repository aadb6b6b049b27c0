//! RFC 9457 problem details: the one error body of the API, and the
//! OpenAPI description of which operation answers which problem.

use poem_openapi::Object;
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, Registry};
use poem_openapi::types::Type;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error, as `application/problem+json` (RFC 9457). Clients branch on `code`.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:baton:problem:<code>`).
    #[oai(rename = "type")]
    pub type_: String,
    /// A short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a person to read.
    pub detail: String,
    /// Stable machine-readable snake_case code: see the `ProblemCode` schema.
    pub code: ProblemCode,
    /// On 429 and 503: seconds to wait before trying again (also in `Retry-After`).
    #[oai(skip_serializing_if_is_none)]
    pub retry_after: Option<u64>,
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        Self {
            type_: "urn:baton:problem:refresh_token_reused".into(),
            title: "Refresh token reused".into(),
            status: 401,
            detail: "the refresh token was already used; the session has been revoked".into(),
            code: ProblemCode::RefreshTokenReused,
            retry_after: None,
        }
    }
}

/// Every problem code this service can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum ProblemCode {
    /// 401: wrong email or password (the same for an unknown email).
    InvalidCredentials,
    /// 409: an account with this email (compared without case) exists.
    EmailTaken,
    /// 422: the body is malformed, has a wrong type, misses or adds a field, or a value breaks a rule.
    ValidationFailed,
    /// 403: registration is turned off on this instance.
    RegistrationClosed,
    /// 401: no access token was sent.
    MissingToken,
    /// 401: the access token is malformed, forged, for someone else or otherwise unacceptable.
    InvalidToken,
    /// 401: the access token has expired; refresh and retry.
    TokenExpired,
    /// 401: no refresh token was presented, or it is unknown.
    RefreshTokenInvalid,
    /// 401: the refresh token has expired (sliding or absolute lifetime).
    RefreshTokenExpired,
    /// 401: an already rotated refresh token was presented again; its whole session is now revoked.
    RefreshTokenReused,
    /// 401: the session was revoked (logout, revocation, reuse).
    SessionRevoked,
    /// 404: no such session among the caller's live sessions.
    SessionNotFound,
    /// 403: a cookie-authenticated request came from an origin that is not allowed.
    OriginNotAllowed,
    /// 429: too many attempts; wait `retry_after` seconds.
    RateLimited,
    /// 413: the body is larger than 65,536 bytes.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 404: no such path.
    NotFound,
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 503: the database is unreachable; retry later.
    ServiceUnavailable,
    /// 408: the request head or body did not arrive within the server's timeouts (any path;
    /// the connection is closed).
    RequestTimeout,
    /// 431: the request head is larger than the server accepts, or has too many header fields
    /// (any path; the connection is closed).
    HeaderFieldsTooLarge,
    /// 414: the request line is longer than 8,192 bytes (any path; the connection is closed).
    UriTooLong,
    /// 400: the request is not well-formed HTTP/1.1 (any path; the connection is closed).
    BadRequest,
    /// 503: the server has as many connections as it allows; retry after `retry_after` seconds.
    TooManyConnections,
    /// 500: an unexpected failure (logged with the request id).
    InternalError,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        use ProblemCode::*;
        match self {
            InvalidCredentials => "invalid_credentials",
            EmailTaken => "email_taken",
            ValidationFailed => "validation_failed",
            RegistrationClosed => "registration_closed",
            MissingToken => "missing_token",
            InvalidToken => "invalid_token",
            TokenExpired => "token_expired",
            RefreshTokenInvalid => "refresh_token_invalid",
            RefreshTokenExpired => "refresh_token_expired",
            RefreshTokenReused => "refresh_token_reused",
            SessionRevoked => "session_revoked",
            SessionNotFound => "session_not_found",
            OriginNotAllowed => "origin_not_allowed",
            RateLimited => "rate_limited",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            ServiceUnavailable => "service_unavailable",
            RequestTimeout => "request_timeout",
            HeaderFieldsTooLarge => "header_fields_too_large",
            UriTooLong => "uri_too_long",
            BadRequest => "bad_request",
            TooManyConnections => "too_many_connections",
            InternalError => "internal_error",
        }
    }
}

/// The descriptions of the rate-limit fields, for 429s and the successes
/// of throttled operations alike.
pub const RATE_LIMIT_POLICY_HEADER: &str = "The quota policies that applied (draft-ietf-httpapi-ratelimit-headers): a list of \
     `\"name\";q=<quota>;w=<window seconds>`, e.g. `\"login\";q=30;w=60, \"login-failures\";q=5;w=60`. \
     Absent when throttling is off.";
pub const RATE_LIMIT_HEADER: &str = "What is left of each policy: a list of `\"name\";r=<remaining>;t=<seconds until reset>`, \
     e.g. `\"login\";r=29;t=60, \"login-failures\";r=5;t=60`. Absent when throttling is off.";

fn header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

/// The OpenAPI description of one problem response; `bearer` marks the 401
/// of an access-token check, which carries a `WWW-Authenticate` challenge.
pub fn problem_response_meta(status: u16, bearer: bool) -> MetaResponse {
    let (description, headers) = match status {
        400 => ("Bad request.", vec![]),
        401 if !bearer => (
            "Not authenticated: see `code` (wrong credentials, or a refresh token that is \
             missing, unknown, expired, reused or from a revoked session).",
            vec![],
        ),
        401 => (
            "Not authenticated. For access tokens, `WWW-Authenticate: Bearer` says why \
             (RFC 6750); `code` is `missing_token`, `invalid_token` or `token_expired`.",
            vec![header(
                "WWW-Authenticate",
                "`Bearer` when no token was sent; `Bearer error=\"invalid_token\", \
                 error_description=\"...\"` when one was refused.",
            )],
        ),
        403 => ("Forbidden.", vec![]),
        404 => ("Not found.", vec![]),
        409 => ("Conflict with the current state.", vec![]),
        413 => (
            "The body is larger than 65,536 bytes (`payload_too_large`).",
            vec![],
        ),
        415 => ("The body is not JSON (`unsupported_media_type`).", vec![]),
        422 => (
            "The body is malformed JSON, has a wrong type, a missing or unknown field, or a \
             value that breaks a rule (`validation_failed`).",
            vec![],
        ),
        429 => (
            "Throttled (`rate_limited`): wait `Retry-After` seconds.",
            vec![
                header("Retry-After", "Seconds to wait before the next attempt."),
                MetaHeader {
                    required: false,
                    ..header("RateLimit-Policy", RATE_LIMIT_POLICY_HEADER)
                },
                MetaHeader {
                    required: false,
                    ..header("RateLimit", RATE_LIMIT_HEADER)
                },
            ],
        ),
        503 => (
            "The database is unavailable (`service_unavailable`); retry later.",
            vec![header("Retry-After", "Seconds to wait before retrying.")],
        ),
        _ => ("Unexpected failure.", vec![]),
    };
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: PROBLEM_CONTENT_TYPE,
            schema: Problem::schema_ref(),
        }],
        headers,
    }
}

pub fn register_problem(registry: &mut Registry) {
    <Problem as Type>::register(registry);
}

/// Declares an operation's error type: a newtype over `ApiError` whose
/// OpenAPI description lists exactly the problem statuses it can answer.
/// `Name(bearer): ...` is for operations behind an access token, whose 401
/// carries the `WWW-Authenticate: Bearer` challenge.
macro_rules! problem_responses {
    ($name:ident(bearer): $($status:literal),+ $(,)?) => {
        $crate::http::problem::problem_responses!(@define $name, true, $($status),+);
    };
    ($name:ident: $($status:literal),+ $(,)?) => {
        $crate::http::problem::problem_responses!(@define $name, false, $($status),+);
    };
    (@define $name:ident, $bearer:expr, $($status:literal),+) => {
        #[derive(Debug)]
        pub struct $name(pub $crate::http::error::ApiError);

        impl From<$crate::http::error::ApiError> for $name {
            fn from(e: $crate::http::error::ApiError) -> Self {
                Self(e)
            }
        }

        impl From<$crate::domain::AuthError> for $name {
            fn from(e: $crate::domain::AuthError) -> Self {
                Self(e.into())
            }
        }

        impl From<$name> for poem::Error {
            fn from(e: $name) -> Self {
                e.0.into()
            }
        }

        impl poem_openapi::ApiResponse for $name {
            fn meta() -> poem_openapi::registry::MetaResponses {
                poem_openapi::registry::MetaResponses {
                    responses: vec![
                        $($crate::http::problem::problem_response_meta($status, $bearer)),+
                    ],
                }
            }

            fn register(registry: &mut poem_openapi::registry::Registry) {
                $crate::http::problem::register_problem(registry);
            }
        }
    };
}

pub(crate) use problem_responses;
