//! `/.well-known/*`: the JWK Set and this instance's published settings.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::web::Data;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON as _;
use poem_openapi::{ApiResponse, OpenApi};
use sha2::{Digest, Sha256};

use super::models::{ApiTags, AuthConfiguration, Jwk, JwkSet, RefreshCookieConfiguration};
use super::state::AppState;
use crate::domain::keys::{RELOAD_INTERVAL, RETIREMENT_MARGIN};

pub struct DiscoveryApi;

/// How long a verifier may use its copy of the JWK Set. A rotation keeps the
/// retired key published for access_ttl + leeway + RETIREMENT_MARGIN, and
/// instances keep signing with it for up to RELOAD_INTERVAL: what is left of
/// the margin is how stale a copy may be (and the instance it came from may
/// lag by RELOAD_INTERVAL) while still holding the new key before the old one
/// goes. A key newer than the copy is the unknown-`kid` refetch's job
/// (docs/RESOURCE_SERVERS.md).
pub const JWKS_MAX_AGE: Duration =
    Duration::from_secs(RETIREMENT_MARGIN.as_secs() - RELOAD_INTERVAL.as_secs());
const _: () = assert!(
    JWKS_MAX_AGE.as_secs() > 0,
    "the margin must outlast a reload"
);

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The JWK Set.
    #[oai(status = 200)]
    Ok(
        Json<JwkSet>,
        /// `public, max-age=30`: a verifier may use its copy for 30 seconds,
        /// and must refetch (at most every few seconds) when a token names a
        /// `kid` the copy lacks.
        #[oai(header = "Cache-Control")]
        String,
        /// A strong validator, the SHA-256 of the body: send it back in
        /// `If-None-Match` to get a 304 while the keys are unchanged.
        #[oai(header = "ETag")]
        String,
    ),
    /// The keys are unchanged since the copy whose `ETag` was sent in
    /// `If-None-Match`: keep using it for another `max-age`.
    #[oai(status = 304)]
    NotModified(
        /// The same as on a 200.
        #[oai(header = "Cache-Control")]
        String,
        /// The same as on a 200.
        #[oai(header = "ETag")]
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
    /// expired. Resource servers verify access tokens with these: cache the
    /// set for `max-age` (revalidate with `If-None-Match`), and refetch at
    /// once, at most every few seconds, when a token names an unknown `kid`.
    /// The rules: docs/RESOURCE_SERVERS.md.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        operation_id = "getJwks"
    )]
    async fn jwks(
        &self,
        state: Data<&AppState>,
        /// The `ETag` of a copy the client holds (RFC 9110 §13.1.2).
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> JwksResponse {
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
        let set = JwkSet { keys };
        // The same serialisation as the Json payload's, so the tag is the
        // hash of the bytes sent.
        let body = serde_json::to_vec(&set.to_json()).unwrap_or_default();
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(Sha256::digest(&body)));
        let cache_control = format!("public, max-age={}", JWKS_MAX_AGE.as_secs());
        if if_none_match
            .0
            .as_deref()
            .is_some_and(|header| if_none_match_matches(header, &etag))
        {
            return JwksResponse::NotModified(cache_control, etag);
        }
        JwksResponse::Ok(Json(set), cache_control, etag)
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

/// RFC 9110 §13.1.2: `*`, or a list of entity tags compared weakly (a `W/`
/// prefix is ignored). Anything unparsable matches nothing, so the full body
/// is sent.
fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let header = header.trim();
    if header == "*" {
        return true;
    }
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(inner) = tag.strip_prefix('"') else {
            return false;
        };
        let Some(end) = inner.find('"') else {
            return false;
        };
        if &tag[..end + 2] == etag {
            return true;
        }
        rest = &inner[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_each_listed_tag_weakly() {
        let etag = r#""abc""#;
        assert!(if_none_match_matches(r#""abc""#, etag));
        assert!(if_none_match_matches(r#"W/"abc""#, etag));
        assert!(if_none_match_matches(r#""x", W/"y" ,"abc""#, etag));
        assert!(if_none_match_matches(" * ", etag));
        assert!(!if_none_match_matches(r#""abcd""#, etag));
        assert!(!if_none_match_matches(r#""ab""#, etag));
        assert!(!if_none_match_matches("abc", etag));
        assert!(!if_none_match_matches(r#""abc"#, etag));
        assert!(!if_none_match_matches("", etag));
    }
}
