//! Facts about the caller: address (for throttling) and user agent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use poem::Request;
use poem::http::header;

use super::state::HttpSettings;

/// User agents are stored for the session list, cut to this many characters.
const MAX_USER_AGENT_CHARS: usize = 512;

pub fn user_agent(req: &Request) -> Option<String> {
    let ua = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    Some(ua.chars().take(MAX_USER_AGENT_CHARS).collect())
}

/// An address block, `192.0.2.0/24` or `2001:db8::/32` (a bare address is
/// a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{s:?} is not an address or address/prefix"))?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// How the client address is found behind reverse proxies.
#[derive(Debug, Clone, Default)]
pub struct ClientAddressRule {
    /// The header the proxies write (`X-Forwarded-For`, `Forwarded`, …).
    /// `None`: the TCP peer is the client.
    pub header: Option<String>,
    /// The last `hops` entries were written by trusted proxies: the client
    /// is the `hops`-th from the right.
    pub hops: usize,
    /// When not empty, instead of `hops`: the header counts only when the
    /// peer is in these blocks, and the client is the rightmost entry that
    /// is not.
    pub trusted_proxies: Vec<Cidr>,
}

/// The client address: from the trusted header when one is configured and
/// it says something usable, else the TCP peer.
pub fn client_address(req: &Request, settings: &HttpSettings) -> IpAddr {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let rule = &settings.client_address;
    let Some(name) = &rule.header else {
        return peer;
    };
    let lines: Vec<&[u8]> = req
        .headers()
        .get_all(name.as_str())
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if lines.is_empty() {
        return peer;
    }
    let forwarded = name.eq_ignore_ascii_case("forwarded");
    match choose(&lines, forwarded, peer, rule) {
        Ok(ip) => ip,
        Err(why) => {
            warn_unusable(name, why);
            peer
        }
    }
}

/// Every entry of every line, in order (later lines were added by later
/// proxies), as the text of its address.
fn entries(lines: &[&[u8]], forwarded: bool) -> Result<Vec<String>, &'static str> {
    let mut all = Vec::new();
    for line in lines {
        let text = std::str::from_utf8(line).map_err(|_| "a value that is not text")?;
        for element in text.split(',') {
            let element = element.trim();
            if forwarded {
                // RFC 7239: `for=192.0.2.60;proto=http;by=203.0.113.43`.
                let node = element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned());
                all.push(node.unwrap_or_default());
            } else {
                all.push(element.to_owned());
            }
        }
    }
    Ok(all)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

fn choose(
    lines: &[&[u8]],
    forwarded: bool,
    peer: IpAddr,
    rule: &ClientAddressRule,
) -> Result<IpAddr, &'static str> {
    let entries = entries(lines, forwarded)?;
    if !rule.trusted_proxies.is_empty() {
        let trusted = |ip: IpAddr| rule.trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            // Not from a proxy we trust: the header is the client's own words.
            return Ok(peer);
        }
        let mut leftmost = None;
        for entry in entries.iter().rev() {
            let ip = parse_node(entry).ok_or("an entry that is not an address")?;
            if !trusted(ip) {
                return Ok(ip);
            }
            leftmost = Some(ip);
        }
        return leftmost.ok_or("no entries");
    }
    let hops = rule.hops.max(1);
    if entries.len() < hops {
        return Err("fewer entries than BATON_TRUSTED_PROXY_HOPS");
    }
    parse_node(&entries[entries.len() - hops]).ok_or("an entry that is not an address")
}

/// How often an unusable header is reported at most.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

fn warn_unusable(header: &str, why: &str) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|at| at.elapsed() < WARNING_INTERVAL) {
        return;
    }
    *last = Some(Instant::now());
    tracing::warn!(
        event = "client_address_unusable",
        header,
        reason = why,
        "the trusted client-address header has no usable client entry; using the peer \
         address (reported at most once a minute)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn hops(n: usize) -> ClientAddressRule {
        ClientAddressRule {
            header: Some("X-Forwarded-For".to_owned()),
            hops: n,
            trusted_proxies: vec![],
        }
    }

    fn cidrs(list: &[&str]) -> ClientAddressRule {
        ClientAddressRule {
            header: Some("X-Forwarded-For".to_owned()),
            hops: 1,
            trusted_proxies: list.iter().map(|c| c.parse().unwrap()).collect(),
        }
    }

    const PEER: &str = "10.0.0.2";

    #[test]
    fn every_line_counts_and_the_last_proxy_entry_wins() {
        let lines: [&[u8]; 2] = [b"203.0.113.66", b"198.51.100.7"];
        assert_eq!(
            choose(&lines, false, ip(PEER), &hops(1)),
            Ok(ip("198.51.100.7"))
        );
        let lines: [&[u8]; 2] = [b"203.0.113.66, 198.51.100.7", b"10.0.0.9"];
        assert_eq!(
            choose(&lines, false, ip(PEER), &hops(2)),
            Ok(ip("198.51.100.7"))
        );
        assert!(choose(&lines, false, ip(PEER), &hops(4)).is_err());
        let lines: [&[u8]; 1] = [b"not-an-address"];
        assert!(choose(&lines, false, ip(PEER), &hops(1)).is_err());
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right_and_an_untrusted_peer_is_the_client() {
        let rule = cidrs(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let lines: [&[u8]; 1] = [b"203.0.113.66, 198.51.100.7, 10.1.2.3, 2001:db8:ffff::1"];
        assert_eq!(
            choose(&lines, false, ip(PEER), &rule),
            Ok(ip("198.51.100.7"))
        );
        assert_eq!(
            choose(&lines, false, ip("192.0.2.1"), &rule),
            Ok(ip("192.0.2.1")),
            "a peer that is not a trusted proxy is the client, whatever it says"
        );
    }

    #[test]
    fn forwarded_for_nodes_parse_with_ports_brackets_and_quotes() {
        let lines: [&[u8]; 2] = [
            b"for=192.0.2.60;proto=http",
            b"For=\"[2001:db8:cafe::17]:4711\", for=198.51.100.1:80;by=x",
        ];
        assert_eq!(
            choose(&lines, true, ip(PEER), &hops(1)),
            Ok(ip("198.51.100.1"))
        );
        assert_eq!(
            choose(&lines, true, ip(PEER), &hops(2)),
            Ok(ip("2001:db8:cafe::17"))
        );
        let hidden: [&[u8]; 1] = [b"for=_hidden"];
        assert!(choose(&hidden, true, ip(PEER), &hops(1)).is_err());
    }

    #[test]
    fn cidr_blocks_match_by_prefix_and_ipv4_mapped_addresses_as_ipv4() {
        let net: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains(ip("192.0.2.200")));
        assert!(net.contains(ip("::ffff:192.0.2.1")));
        assert!(!net.contains(ip("192.0.3.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let one: Cidr = "2001:db8::1".parse().unwrap();
        assert!(one.contains(ip("2001:db8::1")) && !one.contains(ip("2001:db8::2")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com".parse::<Cidr>().is_err());
    }
}
