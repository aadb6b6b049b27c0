//! Last-byte synchronisation: N requests written over raw connections up to their last byte,
//! then all released at once, so the server sees them as close together as the network allows
//! (a tighter race than N requests sent from a pool, which a server may partly serialise).

use std::time::Duration;

use futures::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{Exchange, Recorder, Reply, now};

/// `host:port` of a plain-http base URL; `None` for https (the burst speaks plain TCP).
pub fn plain_http_authority(base_url: &str) -> Option<String> {
    let rest = base_url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    Some(if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    })
}

/// Sends one POST with a JSON `body` to each of `authorities` (one connection each), holding back
/// every request's last byte until all the rest is written, then releasing them together.
pub async fn post_json_released_together(
    authorities: &[String],
    path: &str,
    body: &[u8],
    recorder: &Recorder,
) -> Result<Vec<Reply>, String> {
    let mut streams = Vec::new();
    for authority in authorities {
        let mut stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connecting to {authority}: {e}"))?;
        let request = [
            format!(
                "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: baton-conformance/0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            body.to_vec(),
        ]
        .concat();
        let (head, last) = request.split_at(request.len() - 1);
        stream
            .write_all(head)
            .await
            .map_err(|e| format!("writing to {authority}: {e}"))?;
        stream.flush().await.map_err(|e| e.to_string())?;
        streams.push((authority.clone(), stream, last.to_vec()));
    }
    // Let every server read what it was sent so far, then release the last bytes together.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent_at = now();
    let replies = join_all(
        streams
            .into_iter()
            .map(|(authority, mut stream, last)| async move {
                stream.write_all(&last).await.map_err(|e| e.to_string())?;
                let mut raw = Vec::new();
                tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut raw))
                    .await
                    .map_err(|_| format!("{authority} did not answer within 15 s"))?
                    .map_err(|e| e.to_string())?;
                parse_response(&raw, sent_at)
                    .ok_or_else(|| format!("{authority} sent no HTTP response"))
                    .map(|reply| (authority, reply))
            }),
    )
    .await;
    let mut out = Vec::new();
    for result in replies {
        let (authority, reply) = result?;
        recorder.push(Exchange {
            method: "POST".into(),
            url: format!("http://{authority}{path}"),
            request_headers: vec![("Content-Type".into(), "application/json".into())],
            request_body: Some(body.to_vec()),
            expectation: Some("(released with the others at the last byte)".into()),
            outcome: Ok(reply.status),
            response_headers: reply.headers.clone(),
            response_body: reply.body_text().chars().take(2000).collect(),
        });
        out.push(reply);
    }
    Ok(out)
}

/// Parses an HTTP/1.1 response read to the end (`Connection: close`), chunked or not.
pub fn parse_response(raw: &[u8], sent_at: f64) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&rest[..end]);
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            let start = end + 2;
            decoded.extend_from_slice(rest.get(start..start + size)?);
            rest = rest.get(start + size + 2..)?;
        }
        body = decoded;
    }
    Some(Reply {
        status,
        headers,
        body,
        sent_at,
        received_at: now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_responses_parse() {
        let plain =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let reply = parse_response(plain, 0.0).unwrap();
        assert_eq!((reply.status, reply.body_text().as_str()), (200, "{}"));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let chunked = b"HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, 0.0).unwrap().body_text(),
            "{\"a\":1}"
        );
        assert!(parse_response(b"garbage", 0.0).is_none());
    }

    #[test]
    fn only_plain_http_urls_have_an_authority() {
        assert_eq!(
            plain_http_authority("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            plain_http_authority("http://auth.test/").as_deref(),
            Some("auth.test:80")
        );
        assert_eq!(plain_http_authority("https://auth.test"), None);
    }
}
