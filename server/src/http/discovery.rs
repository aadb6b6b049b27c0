//! `/.well-known/*`: the JWK Set and this instance's published settings.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::models::{ApiTags, AuthConfiguration, Jwk, JwkSet, RefreshCookieConfiguration};
use super::state::AppState;

pub struct DiscoveryApi;

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The JWK Set.
    #[oai(status = 200)]
    Ok(
        Json<JwkSet>,
        /// Short, so that resource servers notice a key rotation.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum ConfigurationResponse {
    /// This instance's configuration.
    #[oai(status = 200)]
    Ok(Json<AuthConfiguration>),
}

#[OpenApi(tag = "ApiTags::Discovery")]
impl DiscoveryApi {
    /// The signing keys (JWKS)
    ///
    /// Every Ed25519 public key that may have signed a still-valid access
    /// token: the current one, and retired ones until their last token has
    /// expired. Resource servers verify access tokens with these.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        operation_id = "getJwks"
    )]
    async fn jwks(&self, state: Data<&AppState>) -> JwksResponse {
        let keys = state
            .keys
            .published()
            .into_iter()
            .map(|k| Jwk {
                kty: "OKP".to_owned(),
                crv: "Ed25519".to_owned(),
                x: URL_SAFE_NO_PAD.encode(k.public_key),
                kid: k.kid,
                alg: "EdDSA".to_owned(),
                use_: "sig".to_owned(),
            })
            .collect();
        JwksResponse::Ok(Json(JwkSet { keys }), "public, max-age=60".to_owned())
    }

    /// The auth configuration
    ///
    /// Issuer, audience, JWKS location, token lifetimes (whole seconds), the
    /// reuse grace and the refresh cookie's name and path, so clients and
    /// test suites can adapt to this instance.
    #[oai(
        path = "/.well-known/auth-configuration",
        method = "get",
        operation_id = "getAuthConfiguration"
    )]
    async fn configuration(&self, state: Data<&AppState>) -> ConfigurationResponse {
        let s = &state.settings;
        ConfigurationResponse::Ok(Json(AuthConfiguration {
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
            jwks_uri: format!("{}/.well-known/jwks.json", s.issuer),
            access_token_ttl: s.policy.access_ttl.as_secs(),
            access_token_leeway: s.policy.leeway.as_secs(),
            refresh_token_ttl: s.policy.refresh_ttl.as_secs(),
            session_max_lifetime: s.policy.session_max_lifetime.as_secs(),
            refresh_reuse_grace: s.policy.reuse_grace.as_secs(),
            refresh_cookie: RefreshCookieConfiguration {
                name: s.cookie_name.clone(),
                path: s.cookie_path.clone(),
                same_site: "Strict".to_owned(),
            },
        }))
    }
}
