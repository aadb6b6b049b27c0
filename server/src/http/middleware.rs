//! What wraps every request: an id and a log line, the body limit, the
//! conversion of every error into a problem response, and `no-store` on
//! everything under `/auth`.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderName, HeaderValue, Method, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use poem::error::ResponseError as _;

use super::edge::BodyReadTimeout;
use super::error::{ApiError, into_problem};

/// RFC 9457 bodies for anything larger are refused with 413.
pub const MAX_BODY_BYTES: usize = 65_536;
/// The body timeout when a request did not come through the edge.
const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Request id and one log line per request: method, path (never the query),
/// status, latency. Headers and bodies, where tokens live, are not logged.
pub async fn log_requests<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    metrics: Arc<super::metrics::Metrics>,
) -> poem::Result<Response> {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // Reference-counted handles, not copies: this runs on every request.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let started = Instant::now();
    async move {
        let mut response = match next.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let status = response.status();
        let elapsed = started.elapsed();
        metrics.observe_request(method.as_str(), uri.path(), status.as_u16(), elapsed);
        let micros = elapsed.as_micros();
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                latency_us = micros,
                "request failed"
            );
        } else {
            tracing::info!(status = status.as_u16(), latency_us = micros, "request");
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Turns every error into a problem response (and, for unknown GET paths,
/// gives the web app's fallback a chance first).
pub async fn problems<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    fallback: Option<Arc<dyn Fn(Request) -> FallbackFuture + Send + Sync>>,
) -> poem::Result<Response> {
    // Kept (a reference-counted handle, not a copy) for the 401 challenge.
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let uri = req.uri().clone();
    let path_is_api = is_api_path(uri.path());
    // Only a GET outside the API can fall back to the web app: copy the
    // request for that case alone, not on every API call.
    let replay = (!path_is_api && matches!(*req.method(), Method::GET | Method::HEAD))
        .then(|| (req.method().clone(), uri.clone(), req.headers().clone()));
    match next.call(req).await {
        Ok(response) => Ok(response.into_response()),
        Err(err) => {
            if err.status() == poem::http::StatusCode::NOT_FOUND
                && !path_is_api
                && let (Some(fallback), Some((method, uri, headers))) = (fallback, replay)
            {
                let mut retry = Request::builder().method(method).uri(uri).finish();
                *retry.headers_mut() = headers;
                if let Some(response) = fallback(retry).await {
                    return Ok(response);
                }
            }
            // Bytes, not str: a non-ASCII credential is still a (malformed) Bearer token.
            let authorization = authorization
                .as_ref()
                .map(|v| String::from_utf8_lossy(v.as_bytes()));
            let mut response = into_problem(err, authorization.as_deref());
            if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
                && let Some(allow) = allowed_methods(uri.path())
                && let Ok(value) = HeaderValue::from_str(allow)
            {
                // RFC 9110 §15.5.6: a 405 lists the methods the resource has.
                response.headers_mut().insert(header::ALLOW, value);
            }
            Ok(response)
        }
    }
}

/// The methods a path supports, from the route table, e.g. `"DELETE, GET"`
/// for `/auth/sessions`.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    super::routes::table().allow(path)
}

pub type FallbackFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<Response>> + Send>>;

/// Paths in the API's namespaces never fall back to the web app.
pub fn is_api_path(path: &str) -> bool {
    super::routes::table().is_api(path)
}

/// Reads the body up to the limit (413 beyond it, whatever Content-Length
/// claims) within the edge's body timeout (408), and treats an empty body
/// without a content type as `{}`, so a cookie refresh or logout may be a
/// bare POST. The handler's own `deadline` starts only after this.
pub async fn limit_body<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        // Refused unread: reading it would let every such request hold up
        // to its declared size. The edge's lingering close lets the client
        // see this answer even while it is still sending.
        return Ok(closing(ApiError::PayloadTooLarge));
    }
    let timeout = req
        .extensions()
        .get::<BodyReadTimeout>()
        .map_or(DEFAULT_BODY_TIMEOUT, |t| t.0);
    let read = tokio::time::timeout(timeout, req.take_body().into_bytes_limit(MAX_BODY_BYTES));
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        // What is left of the body is unread: the connection is done.
        Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => {
            return Ok(closing(ApiError::PayloadTooLarge));
        }
        Ok(Err(other)) => {
            return Err(ApiError::Validation(format!(
                "the request body could not be read: {other}"
            ))
            .into());
        }
        Err(_) => {
            return Ok(closing(ApiError::RequestTimeout(format!(
                "the request body did not arrive within {}",
                humantime::format_duration(timeout)
            ))));
        }
    };
    if bytes.is_empty()
        && req.method() == Method::POST
        && !req.headers().contains_key(header::CONTENT_TYPE)
    {
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        req.set_body(Body::from_string("{}".to_owned()));
    } else {
        req.set_body(Body::from(bytes));
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// `error`'s answer with `Connection: close`, for a request whose body is
/// left unread (RFC 9112 §9.6).
fn closing(error: ApiError) -> Response {
    let mut response = error.as_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Nothing under /auth may be cached: token responses (RFC 6749 §5.1) and
/// per-user data alike.
pub async fn no_store<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let is_auth = req.uri().path().starts_with("/auth");
    let mut response = next.call(req).await?.into_response();
    if is_auth {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// Bounds every request: a database that stops answering mid-query (a cut
/// network, not a refused connection) must give a 503, not a hang. Dropping
/// the handler's future rolls back its transaction.
pub async fn deadline<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    limit: std::time::Duration,
) -> poem::Result<Response> {
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => result.map(IntoResponse::into_response),
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            Err(ApiError::Domain(crate::domain::AuthError::Storage(
                crate::storage::StorageError::Unavailable(sea_orm::DbErr::Custom(
                    "the request did not complete in time".to_owned(),
                )),
            ))
            .into())
        }
    }
}

/// Headers every response carries: no MIME sniffing, no framing (click-
/// jacking), no referrer leaking paths to other sites. The edge adds the
/// same to the answers it writes itself.
pub const SECURITY_HEADERS: [(HeaderName, HeaderValue); 3] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
];

/// Adds [`SECURITY_HEADERS`] to every response.
pub async fn security_headers<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let mut response = next.call(req).await?.into_response();
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_methods_come_from_the_routes() {
        assert_eq!(allowed_methods("/auth/login"), Some("POST"));
        assert_eq!(allowed_methods("/auth/sessions"), Some("DELETE, GET"));
        assert_eq!(allowed_methods("/auth/sessions/abc"), Some("DELETE"));
        assert_eq!(allowed_methods("/metrics"), Some("GET"));
        assert_eq!(allowed_methods("/nope"), None);
    }
}
