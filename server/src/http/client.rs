//! Facts about the caller: address (for throttling) and user agent.

use poem::Request;
use poem::http::header;

use super::state::HttpSettings;

/// User agents are stored for the session list, cut to this many characters.
const MAX_USER_AGENT_CHARS: usize = 512;

pub fn user_agent(req: &Request) -> Option<String> {
    let ua = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    Some(ua.chars().take(MAX_USER_AGENT_CHARS).collect())
}

/// The client address: the last entry of the trusted proxy header when one
/// is configured (a client can prepend anything, only the proxy's own entry
/// counts), else the peer address.
pub fn client_address(req: &Request, settings: &HttpSettings) -> String {
    if let Some(name) = &settings.trusted_client_ip_header
        && let Some(value) = req
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
        && let Some(last) = value.rsplit(',').next()
    {
        return last.trim().to_owned();
    }
    match req.remote_addr().as_socket_addr() {
        Some(addr) => addr.ip().to_string(),
        None => "unknown".to_owned(),
    }
}
