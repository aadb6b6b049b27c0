//! Reading access tokens and forging the malicious ones of contract §2.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// A compact JWS split into its decoded parts.
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Value,
    pub claims: Value,
    pub header_b64: String,
    pub claims_b64: String,
    pub signature_b64: String,
}

impl Jws {
    pub fn parse(token: &str) -> Result<Jws, String> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(format!(
                "a JWS has 3 dot-separated parts, this has {}",
                parts.len()
            ));
        }
        let decode = |part: &str, what: &str| -> Result<Value, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|e| format!("the {what} is not base64url: {e}"))?;
            serde_json::from_slice(&bytes).map_err(|e| format!("the {what} is not JSON: {e}"))
        };
        Ok(Jws {
            header: decode(parts[0], "header")?,
            claims: decode(parts[1], "payload")?,
            header_b64: parts[0].to_string(),
            claims_b64: parts[1].to_string(),
            signature_b64: parts[2].to_string(),
        })
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name)?.as_str()
    }
    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name)?.as_i64()
    }
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name)?.as_str()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(value: &Value) -> String {
    b64(&serde_json::to_vec(value).unwrap_or_default())
}

/// `header.claims.signature` with the given raw signature.
pub fn assemble(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64_json(header),
        b64_json(claims),
        b64(signature)
    )
}

/// An unsigned token (`alg` as given, typically some spelling of `none`), empty signature.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", b64_json(header), b64_json(claims))
}

/// HS256 over `header.claims` with `secret` as the HMAC key (the algorithm-confusion attack:
/// the secret is some encoding of the server's public key).
pub fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64_json(header), b64_json(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

/// An EdDSA token signed with the suite's own key (which the server must not trust).
pub fn ed25519_signed(header: &Value, claims: &Value, key: &ed25519_dalek::SigningKey) -> String {
    let signing_input = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&signature.to_bytes()))
}

/// The attacker's key: fixed, since it needs no secrecy, only to differ from the server's.
pub fn attacker_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x42; 32])
}

/// The attacker's public key as an OKP JWK.
pub fn attacker_jwk(kid: &str) -> Value {
    let public = attacker_key().verifying_key();
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(public.as_bytes()), "kid": kid, "alg": "EdDSA", "use": "sig"})
}

/// Every byte string a careless server might use as the HMAC secret for a JWK: the raw key
/// material, its base64url text, the JWK JSON, and a PEM SubjectPublicKeyInfo for Ed25519.
pub fn public_key_encodings(jwk: &Value) -> Vec<(String, Vec<u8>)> {
    let mut encodings = vec![(
        "the JWK as JSON".to_string(),
        serde_json::to_vec(jwk).unwrap_or_default(),
    )];
    if let Some(x) = jwk.get("x").and_then(Value::as_str) {
        encodings.push(("the base64url `x` text".to_string(), x.as_bytes().to_vec()));
        if let Ok(raw) = URL_SAFE_NO_PAD.decode(x) {
            if raw.len() == 32 {
                let mut spki = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                spki.extend_from_slice(&raw);
                let pem = format!(
                    "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                    base64::engine::general_purpose::STANDARD.encode(&spki)
                );
                encodings.push(("a PEM SubjectPublicKeyInfo".to_string(), pem.into_bytes()));
            }
            encodings.push(("the raw public key bytes".to_string(), raw));
        }
    }
    if let Some(n) = jwk.get("n").and_then(Value::as_str) {
        encodings.push(("the base64url `n` text".to_string(), n.as_bytes().to_vec()));
    }
    encodings
}

/// Verifies `token`'s signature against the JWK Set with the token's own `alg` and `kid`
/// (expiry, audience and issuer are checked separately by the caller).
pub fn verify_with_jwks(token: &str, jwks: &Value) -> Result<(), String> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| format!("unreadable header: {e}"))?;
    let kid = header.kid.clone().ok_or("the header has no kid")?;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone())
        .map_err(|e| format!("the JWKS does not parse: {e}"))?;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| format!("kid {kid:?} is not in the JWKS"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|_| ())
        .map_err(|e| format!("the signature does not verify with the JWKS key {kid:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Value {
        json!({"sub": "u1", "sid": "s1", "exp": 2_000_000_000i64, "iat": 1_999_999_000i64})
    }

    #[test]
    fn parse_roundtrips_assembled_tokens() {
        let token = assemble(&json!({"alg": "EdDSA", "kid": "k"}), &claims(), b"sig");
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(jws.header_str("kid"), Some("k"));
        assert_eq!(jws.claim_str("sub"), Some("u1"));
        assert_eq!(jws.claim_i64("exp"), Some(2_000_000_000));
        assert_eq!(jws.signature_b64, b64(b"sig"));
    }

    #[test]
    fn parse_rejects_non_jws() {
        assert!(Jws::parse("a.b").is_err());
        assert!(Jws::parse("!!.e30.x").is_err());
    }

    #[test]
    fn the_attackers_signature_verifies_only_with_the_attackers_key() {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "evil"});
        let token = ed25519_signed(&header, &claims(), &attacker_key());
        let own = json!({"keys": [attacker_jwk("evil")]});
        assert_eq!(verify_with_jwks(&token, &own), Ok(()));
        let mut other = attacker_jwk("evil");
        other["x"] = json!(b64(&[7u8; 32]));
        assert!(verify_with_jwks(&token, &json!({"keys": [other]})).is_err());
        assert!(verify_with_jwks(&token, &json!({"keys": [attacker_jwk("other-kid")]})).is_err());
    }

    #[test]
    fn hs256_matches_a_known_vector() {
        // jwt.io's example: {"alg":"HS256","typ":"JWT"} is serialized here with sorted keys,
        // so check the MAC over our own signing input instead of a copied string.
        let token = hs256(&json!({"alg": "HS256"}), &json!({"a": 1}), b"secret");
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(input.as_bytes());
        assert_eq!(sig, b64(&mac.finalize().into_bytes()));
    }

    #[test]
    fn public_key_encodings_cover_raw_text_and_pem() {
        let encodings = public_key_encodings(&attacker_jwk("k"));
        let names: Vec<&str> = encodings.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"the raw public key bytes"));
        assert!(names.contains(&"a PEM SubjectPublicKeyInfo"));
        let raw = &encodings
            .iter()
            .find(|(n, _)| n == "the raw public key bytes")
            .unwrap()
            .1;
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn unsigned_tokens_have_an_empty_signature() {
        let token = unsigned(&json!({"alg": "none"}), &claims());
        assert!(token.ends_with('.'));
        assert_eq!(Jws::parse(&token).unwrap().signature_b64, "");
    }
}
