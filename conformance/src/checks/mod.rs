//! Every check, grouped by the contract section it checks. Each has an id, a description of
//! what it sends, and the requirement it enforces, quoted from the contract.

mod access;
mod endpoints;
mod input;
mod jwt_attacks;
mod limits;
mod refresh;
mod sessions;
mod web;

use futures::future::BoxFuture;

use crate::probe::{Outcome, Probe};

/// How binding the requirement a check enforces is (contract "Words").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// MUST / MUST NOT: a failure fails the run.
    Must,
    /// SHOULD: a failure is reported as a warning; the run still passes.
    Should,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

pub struct Check {
    pub id: &'static str,
    /// The contract section it enforces, e.g. `§3 Reuse detection`.
    pub section: &'static str,
    pub level: Level,
    /// What the check sends.
    pub description: &'static str,
    /// The contract text it enforces.
    pub requirement: &'static str,
    pub run: fn(Probe) -> BoxFuture<'static, Outcome>,
}

macro_rules! check {
    ($id:literal, $f:path, $section:literal, $level:ident, $description:literal, $requirement:literal) => {
        Check {
            id: $id,
            section: $section,
            level: Level::$level,
            description: $description,
            requirement: $requirement,
            run: |probe| Box::pin($f(probe)),
        }
    };
}

/// Sleeps for `seconds` (the callers bound their waits by `discovery::MAX_WAIT_SECS`).
pub(crate) async fn wait(seconds: f64) {
    tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
}

/// The checks that wait for a TTL, the grace or a restart to pass: `--profile quick` skips them.
pub const WAITING: &[&str] = &[
    "access/expiry",
    "refresh/reuse/after-grace",
    "refresh/reuse/expired-rotated",
    "refresh/reuse/survives-restart",
    "refresh/grace/boundary",
    "refresh/expiry",
    "refresh/expiry/sliding",
    "refresh/expiry/absolute",
    "sessions/revoke-expired",
    "login/timing-unknown-email",
];

/// The checks that send hundreds of requests (`sessions/bounded` logs in 120 times):
/// `--profile quick` skips them too.
pub const HEAVY: &[&str] = &["sessions/bounded"];

/// All checks in report order.
pub fn all() -> Vec<Check> {
    vec![
        check!(
            "discovery/auth-configuration",
            endpoints::auth_configuration,
            "§1 GET /.well-known/auth-configuration",
            Must,
            "GET /.well-known/auth-configuration and validate every member",
            "200 {issuer, audience, jwks_uri, access_token_ttl, access_token_leeway, refresh_token_ttl, session_max_lifetime, refresh_reuse_grace, refresh_cookie: {name, path, same_site}}, durations in whole seconds, jwks_uri an absolute URL, audience a string"
        ),
        check!(
            "discovery/jwks",
            endpoints::jwks,
            "§1 GET /.well-known/jwks.json",
            Must,
            "GET /.well-known/jwks.json, log in, and verify the access token's signature with the JWKS key named by its kid",
            "200 JWK Set of every public key that may have signed a still-valid access token"
        ),
        check!(
            "discovery/instances-agree",
            endpoints::instances_agree,
            "§1 Several instances on one database; §2 Signing keys",
            Must,
            "fetch the auth configuration and JWKS from every --base-url and compare",
            "Signing keys persist across restarts and are shared by every instance on the same database"
        ),
        check!(
            "endpoints/openapi",
            endpoints::openapi,
            "§1 GET /openapi.json",
            Must,
            "GET /openapi.json",
            "GET /openapi.json: 200 the OpenAPI 3 document of this instance"
        ),
        check!(
            "endpoints/docs",
            endpoints::docs,
            "§1 GET /docs",
            Must,
            "GET /docs",
            "GET /docs: 200 human-readable API reference rendered from that document"
        ),
        check!(
            "endpoints/health",
            endpoints::health,
            "§1 GET /healthz, /readyz",
            Must,
            "GET /healthz and GET /readyz",
            "GET /healthz / GET /readyz: 200 process up / 200 database reachable"
        ),
        check!(
            "register/created",
            endpoints::register_created,
            "§1 POST /auth/register",
            Must,
            "POST /auth/register with a fresh email and a valid password",
            "201 {id, email, created_at}; timestamps everywhere are RFC 3339 in UTC"
        ),
        check!(
            "register/email-taken-any-case",
            endpoints::register_email_taken,
            "§1 POST /auth/register; §1 emails compared without case",
            Must,
            "register an email, then the same email in upper case",
            "409 email taken; email addresses are compared without regard to case"
        ),
        check!(
            "register/password-length",
            endpoints::register_password_length,
            "§1 POST /auth/register",
            Must,
            "register with passwords of 7, 8, 128 and 129 Unicode scalar values (multi-byte ones included)",
            "422 invalid email or password (length 8..=128 chars, counted as Unicode scalar values)"
        ),
        check!(
            "register/invalid-email",
            endpoints::register_invalid_email,
            "§1 POST /auth/register",
            Must,
            "register with malformed email addresses",
            "422 invalid email or password"
        ),
        check!(
            "register/closed",
            endpoints::register_closed,
            "§1 POST /auth/register",
            Must,
            "with registration turned off: POST /auth/register with a fresh email, log in with that email and password, register it again",
            "403 when registration is turned off; every error body is application/problem+json (RFC 9457) with at least type, title, status, detail and code"
        ),
        check!(
            "login/cookie-channel",
            endpoints::login_cookie_channel,
            "§1 POST /auth/login; §1 The token pair",
            Must,
            "POST /auth/login without refresh_token_in_body",
            "200 token pair {access_token, token_type: \"Bearer\", expires_in, refresh_expires_in}, refresh token in the cookie; refresh_token present only on body delivery"
        ),
        check!(
            "login/body-channel",
            endpoints::login_body_channel,
            "§1 POST /auth/login; §1 The token pair",
            Must,
            "POST /auth/login with refresh_token_in_body: true",
            "200 token pair, refresh token in the body when refresh_token_in_body is true"
        ),
        check!(
            "login/wrong-credentials",
            endpoints::login_wrong_credentials,
            "§1 POST /auth/login",
            Must,
            "log in with an unknown email, then with a wrong password",
            "401 wrong credentials, same body and comparable time for an unknown email and a wrong password"
        ),
        check!(
            "login/timing-unknown-email",
            endpoints::login_timing,
            "§1 POST /auth/login",
            Must,
            "log in 5 times each with an unknown email and with a wrong password, interleaved, and compare the median times",
            "401 wrong credentials, same body and comparable time for an unknown email and a wrong password"
        ),
        check!(
            "login/email-any-case",
            endpoints::login_email_any_case,
            "§1 emails compared without case",
            Must,
            "register in lower case, log in with the email in upper case",
            "Email addresses are compared without regard to case"
        ),
        check!(
            "access/token-claims",
            access::token_claims,
            "§2 Access tokens (JWT header and claims)",
            Must,
            "log in and decode the access token's header and claims",
            "A JWT signed with an asymmetric key, header {alg, typ: \"at+jwt\", kid}, claims iss, aud, sub, iat, exp, jti, sid; sub is the user id, sid the family id"
        ),
        check!(
            "access/me",
            access::me,
            "§1 GET /auth/me",
            Must,
            "GET /auth/me with a fresh access token",
            "GET /auth/me: 200 {id, email, created_at}"
        ),
        check!(
            "access/bearer-scheme-any-case",
            access::bearer_any_case,
            "§2 Authorization: Bearer",
            Must,
            "GET /auth/me with `bearer` and `BEARER` as the scheme name",
            "the scheme name is case-insensitive (RFC 7235)"
        ),
        check!(
            "access/missing-token",
            access::missing_token,
            "§2 MUST reject; WWW-Authenticate",
            Must,
            "GET /auth/me, /auth/sessions and DELETE /auth/sessions without Authorization",
            "The server MUST reject with 401: a missing token; WWW-Authenticate: Bearer without error when none was sent"
        ),
        check!(
            "access/malformed-token",
            access::malformed_token,
            "§2 MUST reject",
            Must,
            "GET /auth/me with an empty credential, non-JWT strings and a JWT with a broken part",
            "The server MUST reject with 401 a malformed token; an empty credential counts as a malformed token"
        ),
        check!(
            "access/expiry",
            access::expiry,
            "§2 MUST reject: exp in the past",
            Must,
            "wait until exp + leeway has passed, then GET /auth/me with the token",
            "The server MUST reject with 401 ... exp in the past (leeway at most 5 s)"
        ),
        check!(
            "access/stateless-after-logout",
            access::stateless_after_logout,
            "§4 Access tokens after revocation",
            Must,
            "log out, then GET /auth/me with the access token issued before",
            "Access tokens are stateless: one issued before a logout stays valid until its exp"
        ),
        check!(
            "jwt/alg-none",
            jwt_attacks::alg_none,
            "§2 MUST reject: alg",
            Must,
            "replay a real token's claims with alg none/None/NONE and an empty or the original signature",
            "The server MUST reject with 401 any alg other than the one configured (none, ...)"
        ),
        check!(
            "jwt/hs256-public-key",
            jwt_attacks::hs256_public_key,
            "§2 MUST reject: alg",
            Must,
            "sign the real claims with HS256 using encodings of the server's public key as the secret",
            "The server MUST reject with 401 any alg other than the one configured (... HS256 made with the public key, and so on)"
        ),
        check!(
            "jwt/tampered-payload",
            jwt_attacks::tampered_payload,
            "§2 MUST reject: bad signature",
            Must,
            "property: change one claim (sub, sid, exp, iss, aud, jti) of a real token, keep its signature",
            "The server MUST reject with 401 a bad signature"
        ),
        check!(
            "jwt/bad-signature",
            jwt_attacks::bad_signature,
            "§2 MUST reject: bad signature",
            Must,
            "property: flip bits in a real token's signature, or truncate it",
            "The server MUST reject with 401 a bad signature"
        ),
        check!(
            "jwt/foreign-key",
            jwt_attacks::foreign_key,
            "§2 MUST reject: bad signature",
            Must,
            "sign the real claims with another Ed25519 key, with the server's kid",
            "The server MUST reject with 401 a bad signature"
        ),
        check!(
            "jwt/unknown-kid",
            jwt_attacks::unknown_kid,
            "§2 MUST reject: unknown kid",
            Must,
            "send tokens whose kid is unknown or absent",
            "The server MUST reject with 401 an unknown kid"
        ),
        check!(
            "jwt/jku-x5u-jwk",
            jwt_attacks::jku_x5u_jwk,
            "§2 jku, x5u, jwk never followed",
            Must,
            "sign with the suite's own key and point jku/x5u at a local JWKS, or embed the key as jwk",
            "a header with jku, x5u or jwk is never followed"
        ),
        check!(
            "jwt/oversized",
            jwt_attacks::oversized,
            "§2 MUST reject: oversized token",
            Must,
            "send bearer tokens of 8 KiB + 1 and 12 KiB",
            "The server MUST reject with 401 an oversized (> 8 KiB) token"
        ),
        check!(
            "jwt/www-authenticate",
            jwt_attacks::www_authenticate,
            "§2 WWW-Authenticate",
            Must,
            "send rejected tokens and check the WWW-Authenticate header of each 401",
            "Every 401 from an access-token check carries WWW-Authenticate: Bearer (RFC 6750): with error=\"invalid_token\" and an error_description when a token was sent"
        ),
        check!(
            "refresh/token-entropy",
            refresh::token_entropy,
            "§3 Opaque",
            Must,
            "log in on both channels and inspect the refresh tokens",
            "Opaque: at least 256 bits from a CSPRNG, base64url"
        ),
        check!(
            "refresh/rotation/new-pair",
            refresh::rotation_new_pair,
            "§3 Rotation",
            Must,
            "refresh with a live token on each channel",
            "a successful refresh revokes the presented token and issues a new one in the same family"
        ),
        check!(
            "refresh/rotation/old-token-rejected",
            refresh::rotation_old_token_rejected,
            "§3 Rotation",
            Must,
            "refresh, then present the rotated token again (after its successor was used when a grace is set)",
            "Rotation: a successful refresh revokes the presented token ... At any moment a family has at most one live refresh token"
        ),
        check!(
            "refresh/rotation/channel",
            refresh::rotation_channel,
            "§1 POST /auth/refresh (channel)",
            Must,
            "refresh via the body and via the cookie; see where the new token comes back",
            "delivered on the channel it came in on (body in → body out, cookie in → cookie out)"
        ),
        check!(
            "refresh/reuse/revokes-family",
            refresh::reuse_revokes_family,
            "§3 Reuse detection",
            Must,
            "rotate A→B→C, present A again, then present C",
            "presenting a token that was already rotated ... revokes the whole family, so every later refresh with any token of it gets 401"
        ),
        check!(
            "refresh/reuse/strict",
            refresh::reuse_strict,
            "§3 Reuse detection; §3 Reuse grace (0 = strict)",
            Must,
            "with grace 0: rotate A→B, present A again, then B",
            "Reuse grace 0 = strict: presenting a rotated token revokes the whole family"
        ),
        check!(
            "refresh/reuse/expired-rotated",
            refresh::reuse_expired_rotated,
            "§3 Reuse detection",
            Must,
            "rotate A→B late in A's life, use B, wait until A has also expired, present A, then the newest token",
            "presenting a token that was already rotated ... revokes the whole family ... This holds whether or not the rotated token has also expired"
        ),
        check!(
            "refresh/reuse/after-grace",
            refresh::reuse_after_grace,
            "§3 Reuse detection",
            Must,
            "rotate A→B, wait past the reuse grace, present A, then B",
            "presenting a token that was already rotated — after the reuse grace — revokes the whole family"
        ),
        check!(
            "refresh/grace/same-successor",
            refresh::grace_same_successor,
            "§3 Reuse grace",
            Must,
            "rotate A→B, present A again twice within the grace, then use B, then present A",
            "within the grace after a rotation, presenting the just-rotated token again, while its successor is still unused, is not reuse: the server answers 200 with the SAME successor refresh token"
        ),
        check!(
            "refresh/grace/boundary",
            refresh::grace_boundary,
            "§3 Reuse grace; §3 Reuse detection",
            Must,
            "rotate A→B, present A 0.8 s before the grace ends, then 0.7 s after it, then B",
            "within the grace after a rotation ... the server answers 200 with the SAME successor; presenting a token that was already rotated after the reuse grace revokes the whole family"
        ),
        check!(
            "refresh/grace/lost-response",
            refresh::grace_lost_response,
            "§3 Reuse grace",
            Must,
            "refresh and drop the answer, retry with the same token, then keep refreshing (both channels)",
            "So concurrent refreshes with one token (two tabs, a retried request whose response was lost) all get the same new token, and the family never forks"
        ),
        check!(
            "refresh/grace/same-access-token",
            refresh::grace_same_access_token,
            "§3 Reuse grace",
            Should,
            "rotate A→B, present A again within the grace, compare the access tokens",
            "The access token of such a repeat SHOULD be the same one too (a byte-identical token pair), so that N racers hold one working access token, not N"
        ),
        check!(
            "limits/global",
            limits::global,
            "§5 Bad input (throttling)",
            Must,
            "refresh with an unknown token from one address, alternating over every --base-url, until the first 429 (run it alone: it uses up this address's refresh allowance)",
            "When it is on, every limit holds across all instances of the service, and a 429 carries Retry-After"
        ),
        check!(
            "refresh/reuse/survives-restart",
            refresh::reuse_survives_restart,
            "§3 Reuse detection; §2 Signing keys persist across restarts",
            Must,
            "rotate A→B→C, run --restart-cmd, then use the access token from before, present A, then C",
            "Signing keys persist across restarts; presenting a token that was already rotated revokes the whole family (the server keeps its record)"
        ),
        check!(
            "refresh/concurrency/single-winner",
            refresh::concurrency_single_winner,
            "§3 Atomicity",
            Must,
            "with grace 0: 8 concurrent refreshes with one token (spread over the instances)",
            "Under N concurrent refreshes with one token, with grace 0, exactly one gets 200"
        ),
        check!(
            "refresh/concurrency/same-successor",
            refresh::concurrency_same_successor,
            "§3 Atomicity",
            Must,
            "with grace > 0: 8 concurrent refreshes with one token (spread over the instances)",
            "with grace > 0, every one gets 200 with the same new refresh token"
        ),
        check!(
            "refresh/concurrency/last-byte-burst",
            refresh::last_byte_burst,
            "§3 Atomicity; §3 Rotation",
            Must,
            "8 refreshes with one token over raw connections spread over every --base-url, written up to their last byte and released together; then try each refresh token handed out",
            "Under N concurrent refreshes with one token, with grace 0, exactly one gets 200; with grace > 0, every one gets 200 with the same new refresh token. At any moment a family has at most one live refresh token"
        ),
        check!(
            "refresh/expiry",
            refresh::expiry,
            "§3 Expiry",
            Must,
            "log in, wait past refresh_token_ttl, refresh",
            "each token lives refresh_token_ttl from its issue; 401 expired"
        ),
        check!(
            "refresh/expiry/sliding",
            refresh::expiry_sliding,
            "§3 Expiry (sliding)",
            Must,
            "refresh every 0.6 × refresh_token_ttl until the login is older than the TTL",
            "each token lives refresh_token_ttl from its issue (sliding)"
        ),
        check!(
            "refresh/expiry/absolute",
            refresh::expiry_absolute,
            "§3 Expiry (absolute)",
            Must,
            "keep refreshing until session_max_lifetime has passed",
            "but never past session_max_lifetime from the login that started its family (absolute)"
        ),
        check!(
            "refresh/missing-token",
            refresh::missing_token,
            "§1 POST /auth/refresh",
            Must,
            "POST /auth/refresh with no cookie and no body, and with {}",
            "401 missing"
        ),
        check!(
            "refresh/unknown-token",
            refresh::unknown_token,
            "§1 POST /auth/refresh",
            Must,
            "POST /auth/refresh with a random token in the body, then in the cookie",
            "401 unknown; when it came from the cookie, the response also clears the cookie"
        ),
        check!(
            "refresh/body-over-cookie",
            refresh::body_over_cookie,
            "§1 POST /auth/refresh",
            Must,
            "POST /auth/refresh with one session's token in the body and another's in the cookie",
            "refresh token from the body if given, else from the cookie; delivered on the channel it came in on"
        ),
        check!(
            "refresh/strict-body",
            refresh::strict_body,
            "§1 Request bodies are strict",
            Must,
            "POST /auth/refresh with a misspelt field next to a valid cookie",
            "an unknown field is a 422 (validation_failed), so that a misspelt refresh_token can never silently fall back to the cookie"
        ),
        check!(
            "logout/revokes-family",
            sessions::logout_revokes_family,
            "§1 POST /auth/logout; §3 Logout revokes the family",
            Must,
            "log out with the cookie, and with an already rotated body token; then refresh",
            "204: revokes that token's whole family (also when the token was already rotated) and always clears the cookie"
        ),
        check!(
            "logout/body-over-cookie",
            sessions::logout_body_over_cookie,
            "§1 POST /auth/logout",
            Must,
            "POST /auth/logout with one session's token in the body and another's in the cookie",
            "refresh token (body or cookie): the body wins, as for a refresh; revokes that token's whole family"
        ),
        check!(
            "logout/idempotent",
            sessions::logout_idempotent,
            "§1 POST /auth/logout",
            Must,
            "log out with no token, an unknown token, and the same token twice",
            "204 too for a missing, unknown or revoked token"
        ),
        check!(
            "logout/malformed-body",
            sessions::logout_malformed_body,
            "§1 POST /auth/logout",
            Must,
            "POST /auth/logout with a refresh_token of the wrong type",
            "4xx only for a malformed body"
        ),
        check!(
            "sessions/list",
            sessions::list,
            "§1 GET /auth/sessions; §1 A session",
            Must,
            "log in twice, GET /auth/sessions with one of the access tokens",
            "200 list of the user's live sessions: {id, created_at, last_used_at, expires_at, user_agent, current}"
        ),
        check!(
            "sessions/bounded",
            sessions::bounded,
            "§1 GET /auth/sessions",
            Must,
            "log one user in 120 times, then read GET /auth/sessions and every page its Link: <…>; rel=\"next\" names; refresh each session no page lists",
            "200 list of the user's live sessions ... bounded in size whatever the number of sessions (paged, or a per-user cap on live sessions)"
        ),
        check!(
            "sessions/revoke-one",
            sessions::revoke_one,
            "§1 DELETE /auth/sessions/{id}",
            Must,
            "DELETE /auth/sessions/{id} for one of two sessions, then refresh both, then delete it again",
            "204; revokes that family (the user's own only); 404 for an already revoked id"
        ),
        check!(
            "sessions/revoke-expired",
            sessions::revoke_expired,
            "§1 DELETE /auth/sessions/{id}",
            Must,
            "log in, wait until that refresh token has expired, DELETE its session with a fresh access token, then again",
            "204; revokes that family (the user's own only; an expired, never revoked one is revoked too); 404 for an already revoked id"
        ),
        check!(
            "sessions/revoke-foreign",
            sessions::revoke_foreign,
            "§1 DELETE /auth/sessions/{id}",
            Must,
            "DELETE another user's session id and an unknown id",
            "404 for another user's, an unknown or an already revoked id (never 403: do not reveal that it exists)"
        ),
        check!(
            "sessions/revoke-all",
            sessions::revoke_all,
            "§1 DELETE /auth/sessions",
            Must,
            "log in twice, DELETE /auth/sessions, refresh both",
            "204; revokes every family of the user (\"log out everywhere\")"
        ),
        check!(
            "cookie/attributes/set",
            web::cookie_set,
            "§3 Cookie",
            Must,
            "log in and refresh on the cookie channel; parse each Set-Cookie",
            "Cookie: HttpOnly; Secure; SameSite=Strict; Path=<the auth prefix, not />, no Domain, and Max-Age equal to the token's remaining life in whole seconds"
        ),
        check!(
            "cookie/attributes/clear",
            web::cookie_clear,
            "§3 Cookie",
            Must,
            "log out and fail a cookie refresh; parse each Set-Cookie",
            "Clearing it sends the same name and path with Max-Age=0"
        ),
        check!(
            "csrf/origin",
            web::csrf_origin,
            "§3 CSRF",
            Must,
            "cookie refresh and cookie logout with a foreign Origin and with Origin: null; then use the cookie without Origin",
            "a request that authenticates with the refresh cookie and carries an Origin header that is not in the configured allowed origins (Origin: null included) gets 403 and changes nothing"
        ),
        check!(
            "cache-control/no-store",
            web::cache_control_no_store,
            "§1 Cache-Control: no-store",
            Must,
            "log in and refresh on both channels",
            "Every response that carries a token has Cache-Control: no-store"
        ),
        check!(
            "input/malformed-json",
            input::malformed_json,
            "§5 Bad input",
            Must,
            "property: truncated, garbled and non-JSON bodies to every POST endpoint",
            "Every endpoint answers malformed JSON ... with a 4xx problem body, never with a 5xx"
        ),
        check!(
            "input/wrong-types",
            input::wrong_types,
            "§5 Bad input",
            Must,
            "property: JSON values of the wrong type in each field of every POST endpoint",
            "Every endpoint answers ... wrong types ... with a 4xx problem body"
        ),
        check!(
            "input/missing-fields",
            input::missing_fields,
            "§5 Bad input",
            Must,
            "register and log in with required fields left out",
            "Every endpoint answers ... missing fields ... with a 4xx problem body"
        ),
        check!(
            "input/unknown-fields",
            input::unknown_fields,
            "§1 Request bodies are strict",
            Must,
            "register, log in, refresh and log out with an extra field",
            "Request bodies are strict: an unknown field is a 422 (validation_failed)"
        ),
        check!(
            "input/oversized-body",
            input::oversized_body,
            "§5 Bad input (413)",
            Must,
            "POST bodies of 65,537 and 200,000 bytes",
            "oversized bodies (over 65,536 bytes: 413) with a 4xx problem body"
        ),
        check!(
            "input/odd-strings",
            input::odd_strings,
            "§5 Odd strings are data",
            Must,
            "property: register and log in with odd Unicode and injection strings as password and in the email",
            "Odd Unicode and injection strings inside otherwise valid fields are data: they are stored and compared exactly (a password may contain anything)"
        ),
        check!(
            "input/wrong-content-type",
            input::wrong_content_type,
            "§1 All bodies are JSON; §5 Bad input",
            Should,
            "POST /auth/login with a JSON body labelled text/plain, and with no Content-Type",
            "Every error body is application/problem+json; no error is ever a 500 for bad input"
        ),
        check!(
            "input/unknown-route",
            input::unknown_route,
            "§1 Every error body is a problem",
            Must,
            "GET an unknown path under /auth and use a wrong method on a known one",
            "Every error body is application/problem+json (RFC 9457)"
        ),
        check!(
            "model/sessions",
            crate::machine::sessions_follow_the_model,
            "§2–§4 as a whole",
            Must,
            "property: random sequences of logins, refreshes (newest/older/concurrent), logouts, revocations, /auth/me, session listings and waits, checked against a reference model",
            "§2–§4 as a whole: every status and every live token is what the contract predicts"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_grouped_by_section() {
        let checks = all();
        let mut ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "duplicate check ids");
        for c in &checks {
            assert!(c.id.contains('/'), "{} has no section", c.id);
            assert!(
                !c.description.is_empty() && !c.requirement.is_empty(),
                "{} lacks text",
                c.id
            );
        }
    }

    #[test]
    fn every_waiting_and_heavy_check_exists() {
        let ids: Vec<&str> = all().iter().map(|c| c.id).collect();
        for id in WAITING.iter().chain(HEAVY) {
            assert!(ids.contains(id), "{id} in WAITING is no check");
        }
    }

    #[test]
    fn the_qa_guide_explains_every_check() {
        let guide = include_str!("../../../docs/CONFORMANCE.md");
        for check in all() {
            assert!(
                guide.contains(&format!("`{}`", check.id)),
                "docs/CONFORMANCE.md does not describe {}",
                check.id
            );
        }
    }

    #[test]
    fn the_fault_catching_checks_exist() {
        let ids: Vec<&str> = all().iter().map(|c| c.id).collect();
        for id in [
            "refresh/rotation/old-token-rejected",
            "refresh/reuse/revokes-family",
            "cookie/attributes/set",
            "jwt/alg-none",
            "access/expiry",
            "refresh/grace/same-successor",
            "csrf/origin",
        ] {
            assert!(ids.contains(&id), "{id} missing");
        }
    }
}
