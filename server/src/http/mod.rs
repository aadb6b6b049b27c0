//! The HTTP layer: poem-openapi endpoints, their bodies, security schemes,
//! and the one mapping from errors to problem responses.

pub mod auth;
pub mod client;
pub mod cookies;
pub mod discovery;
pub mod edge;
pub mod error;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod models;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod security;
pub mod sessions;
pub mod state;
pub mod strict_string;
pub mod throttle;

use std::path::PathBuf;
use std::sync::Arc;

use poem::endpoint::{StaticFilesEndpoint, make_sync};
use poem::error::ResponseError as _;
use poem::http::{StatusCode, header};
use poem::middleware::CatchPanic;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get};
use poem_openapi::{LicenseObject, OpenApiService, ServerObject};

use self::auth::AuthApi;
use self::discovery::DiscoveryApi;
use self::error::ApiError;
use self::health::HealthApi;
use self::middleware::{
    FallbackFuture, deadline, limit_body, log_requests, no_store, problems, security_headers,
};
use self::sessions::SessionsApi;
use self::state::AppState;

pub type Apis = (AuthApi, SessionsApi, DiscoveryApi, HealthApi);

const DESCRIPTION: &str = "\
Baton issues **short-lived access tokens** (JWT, EdDSA, `typ: at+jwt`, 15 minutes by default) \
and **rotating refresh tokens** (opaque, 256 bits, stored only as a hash).

## Token lifecycle

1. `POST /auth/login` returns an access token and a refresh token. Browsers get the refresh \
token in an `HttpOnly; Secure; SameSite=Strict` cookie scoped to `/auth`, so JavaScript never \
sees it; other clients ask for it in the body with `refresh_token_in_body: true`.
2. Send the access token as `Authorization: Bearer <token>`. When a call answers 401 \
(`token_expired`), call `POST /auth/refresh` once and retry.
3. Every refresh **rotates**: the presented refresh token is spent and a new pair is returned on \
the same channel. Presenting a spent token again is **reuse**: the whole session is revoked. \
Within a short grace (`refresh_reuse_grace`), a repeat of the just-spent token returns the same \
successor, so concurrent refreshes (two tabs, a lost response) converge.
4. `POST /auth/logout` revokes the session; `DELETE /auth/sessions` revokes all of them.

Access tokens are stateless: one issued before a logout stays valid until it expires, which is \
why it lives only minutes. Sliding refresh-token expiry (`refresh_token_ttl`) is capped by an \
absolute session lifetime (`session_max_lifetime`); `/.well-known/auth-configuration` publishes \
this instance's values.

## Verifying access tokens (resource servers)

Verify offline with a key from `GET /.well-known/jwks.json`: pin `alg` to `EdDSA` (never take it \
from the token); require `typ: at+jwt`; look the `kid` up in the JWK Set; check `iss` and `aud` \
against your configured values (`/.well-known/auth-configuration`); require `exp` and `iat` and \
allow at most 5 s of leeway on `exp`, `nbf` and `iat` (some libraries default to 60 s); use \
`sub` (the user) and `sid` (the session). Cache the JWK Set for its `max-age` and revalidate \
with `If-None-Match`; on an unknown `kid`, refetch at once but at most every 5 s: a rotated key \
signs as soon as it is published. Refuse with 401 and `WWW-Authenticate: Bearer \
error=\"invalid_token\"`. The full guide, with runnable examples for Node, Python and Rust, is \
`docs/RESOURCE_SERVERS.md` in the repository.

## Errors

Every error is `application/problem+json` (RFC 9457) with a stable `code` to branch on (see the \
`ProblemCode` schema). A client logs the user out only on a 401 from `POST /auth/refresh`; \
network errors, 5xx, 429 and 409 are retryable and keep the session.";

/// The API as a poem-openapi service (no state needed: the document can be
/// produced without a database).
pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (AuthApi, SessionsApi, DiscoveryApi, HealthApi),
        "Baton session service",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
    .license(LicenseObject::new("MIT OR Apache-2.0").url("https://spdx.org/licenses/MIT.html"))
    .server(ServerObject::new("/").description("This instance"))
}

/// The OpenAPI document, exactly as `GET /openapi.json` serves it.
pub fn openapi_document() -> String {
    openapi::finish(&api_service().spec())
}

/// The web app loads only its own scripts and talks only to this origin; an
/// injected script could otherwise read the in-memory access token.
const APP_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'; object-src 'none'";

const NO_APP_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Baton</title></head>
<body><h1>Baton session service</h1>
<p>The API reference is at <a href="/docs">/docs</a>; the OpenAPI document at
<a href="/openapi.json">/openapi.json</a>.</p>
<p>The web app is not built: run <code>scripts/run</code> (or <code>npm run build</code> in
<code>frontend/</code>) to serve it here.</p></body></html>"#;

/// The whole application: API, documents, web app, and the middleware.
pub fn app(state: AppState, static_dir: Option<PathBuf>) -> impl Endpoint {
    let request_timeout = state.settings.request_timeout;
    let service = api_service();
    let generated = service.spec();
    let document = openapi::finish(&generated);
    // The reference UI gets the finished document, and no web fonts from
    // another host (the page must work offline and leak nothing).
    let docs_html = service
        .scalar_html()
        .replace(&generated, &document)
        // Only the page's own tag (it comes first): the bundled script
        // contains the same text inside string literals.
        .replacen(
            r#"id="api-reference""#,
            r#"id="api-reference" data-configuration='{"withDefaultFonts":false}'"#,
            1,
        );
    let spec_body = document.clone();

    #[cfg(feature = "fault-injection")]
    let (variations, faults, cookie_name, access_tokens) = (
        state.variations.clone(),
        state.faults.clone(),
        state.settings.cookie_name.clone(),
        state.sessions.access_tokens().clone(),
    );
    let metrics = state.metrics.clone();
    let metrics_for_route = state.metrics.clone();
    let fallback: Arc<dyn Fn(Request) -> FallbackFuture + Send + Sync> = match static_dir {
        Some(dir) => {
            let files = Arc::new(
                StaticFilesEndpoint::new(dir)
                    .index_file("index.html")
                    .fallback_to_index(),
            );
            Arc::new(move |req: Request| {
                let files = files.clone();
                Box::pin(async move {
                    let mut response = files.call(req).await.ok()?.into_response();
                    response.headers_mut().insert(
                        header::CONTENT_SECURITY_POLICY,
                        poem::http::HeaderValue::from_static(APP_CSP),
                    );
                    Some(response)
                }) as FallbackFuture
            })
        }
        None => Arc::new(|req: Request| {
            Box::pin(
                async move { (req.uri().path() == "/").then(|| Html(NO_APP_PAGE).into_response()) },
            ) as FallbackFuture
        }),
    };

    let app = Route::new()
        .nest("/", service)
        .at(
            "/openapi.json",
            get(make_sync(move |_| {
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(spec_body.clone())
            })),
        )
        .at("/docs", get(make_sync(move |_| Html(docs_html.clone()))))
        .at(
            "/metrics",
            get(make_sync(move |_| {
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                    .body(metrics_for_route.render())
            })),
        )
        .around(no_store)
        .around(move |next, req| deadline(next, req, request_timeout))
        .around(limit_body)
        .data(state)
        .around(move |next, req| problems(next, req, Some(fallback.clone())))
        .with(CatchPanic::new().with_handler(|_| {
            ApiError::Domain(crate::domain::AuthError::Unexpected(anyhow::anyhow!(
                "a request handler panicked"
            )))
            .as_response()
        }))
        .around(security_headers)
        .around(move |next, req| log_requests(next, req, metrics.clone()));
    #[cfg(feature = "fault-injection")]
    let app = crate::faults::install(
        crate::variations::install(app, variations),
        faults,
        cookie_name,
        access_tokens,
    );
    app
}
