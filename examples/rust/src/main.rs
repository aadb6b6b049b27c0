//! A resource server that accepts Baton access tokens: `GET /whoami` answers
//! the token's user and session.
//!
//!     BATON_ISSUER=http://127.0.0.1:8080 PORT=3002 cargo run -p baton-verifier
//!
//! The rules are in docs/RESOURCE_SERVERS.md; `verify` applies each of them.

mod jwks;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::Json;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler};
use serde::{Deserialize, Serialize};

use jwks::{JwksCache, KeyError};

/// At most 5 s of clock skew, on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 5;

/// The claims of a Baton access token (CONTRACT §2); a missing one is a refusal.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AccessClaims {
    pub sub: String,
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

enum Refusal {
    /// A 401: the token is not acceptable.
    Invalid(String),
    /// A 503: the JWK Set is out of reach.
    Unavailable(String),
}

impl<T: Into<String>> From<T> for Refusal {
    fn from(reason: T) -> Self {
        Self::Invalid(reason.into())
    }
}

struct Verifier {
    jwks: JwksCache,
    validation: Validation,
}

impl Verifier {
    fn new(issuer: &str, audience: &str, jwks_uri: String) -> Self {
        // Pins the algorithm: a token saying HS256 or none is refused before
        // any key is used.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECONDS; // jsonwebtoken's default is 60 s
        validation.validate_nbf = true; // off by default
        validation.set_issuer(&[issuer]); // unchecked unless set
        validation.set_audience(&[audience]);
        // Without these, a token lacking iss or aud passes their checks.
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Self {
            jwks: JwksCache::new(jwks_uri),
            validation,
        }
    }

    async fn verify(&self, token: &str) -> Result<(AccessClaims, String), Refusal> {
        let header = decode_header(token).map_err(|e| e.to_string())?;
        if header.alg != Algorithm::EdDSA {
            return Err("alg is not EdDSA".into());
        }
        // jsonwebtoken never looks at typ: RFC 9068 tokens say at+jwt.
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err("typ is not at+jwt".into());
        }
        let kid = header.kid.ok_or("no kid")?;
        let key = self.jwks.key(&kid).await.map_err(|e| match e {
            KeyError::Unknown(kid) => Refusal::Invalid(format!("unknown kid {kid}")),
            KeyError::Unavailable(why) => Refusal::Unavailable(why),
        })?;
        let claims = decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|e| e.to_string())?
            .claims;
        // Nor does it check that iat is not in the future.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        if claims.iat > now.as_secs() + LEEWAY_SECONDS {
            return Err("iat is in the future".into());
        }
        if claims.sub.is_empty() || claims.sid.is_empty() {
            return Err("sub and sid must not be empty".into());
        }
        Ok((claims, kid))
    }
}

/// The middleware: a Bearer token (RFC 6750) or a 401 that says why; the
/// claims reach the handler as a request extension.
async fn authenticate<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    verifier: Arc<Verifier>,
) -> poem::Result<Response> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Ok(refuse("Bearer", "no bearer token"));
    };
    match verifier.verify(&token).await {
        Ok(verified) => {
            req.extensions_mut().insert(verified);
            Ok(next.call(req).await?.into_response())
        }
        Err(Refusal::Invalid(reason)) => Ok(refuse(r#"Bearer error="invalid_token""#, &reason)),
        Err(Refusal::Unavailable(why)) => {
            eprintln!("verification failed: {why}");
            Ok(
                Json(serde_json::json!({"error": "temporarily_unavailable"}))
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
                    .into_response(),
            )
        }
    }
}

fn refuse(challenge: &str, reason: &str) -> Response {
    let body = serde_json::json!({"error": "invalid_token", "error_description": reason});
    Json(body)
        .with_status(StatusCode::UNAUTHORIZED)
        .with_header("www-authenticate", challenge)
        .into_response()
}

#[handler]
fn whoami(req: &Request) -> Json<serde_json::Value> {
    let (claims, kid) = req
        .extensions()
        .get::<(AccessClaims, String)>()
        .expect("the middleware ran");
    Json(serde_json::json!({"sub": claims.sub, "sid": claims.sid, "kid": kid}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let issuer = std::env::var("BATON_ISSUER").expect("BATON_ISSUER is required");
    let audience = std::env::var("BATON_AUDIENCE").unwrap_or_else(|_| "baton".into());
    let jwks_uri = std::env::var("BATON_JWKS_URI")
        .unwrap_or_else(|_| format!("{issuer}/.well-known/jwks.json"));
    let port = std::env::var("PORT").unwrap_or_else(|_| "3002".into());
    let verifier = Arc::new(Verifier::new(&issuer, &audience, jwks_uri));
    let app = Route::new()
        .at("/whoami", get(whoami))
        .around(move |next, req| authenticate(next, req, verifier.clone()));
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"));
    println!("listening on http://127.0.0.1:{port}");
    Server::new(listener).run(app).await
}
