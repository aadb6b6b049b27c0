//! Issue 16 "Connection limits at the edge": the real binary over real TCP,
//! against clients that trickle, stall, flood or send what is not HTTP. Each
//! test configures short limits so it takes seconds, and bounds every read.
//! Figures (times to cut, RSS growth, refusal latency) are printed, not
//! asserted beyond the configured limit plus a slack for a loaded machine.

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::BatonProcess;
use serde_json::Value;

/// Allowance over a configured limit on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(3);
/// No read waits longer than this: a test that would hang fails instead.
const READ_BOUND: Duration = Duration::from_secs(10);

fn start(env: &[(&str, &str)]) -> (tempfile::TempDir, BatonProcess) {
    let dir = tempfile::tempdir().unwrap();
    let server = BatonProcess::start(dir.path(), env);
    (dir, server)
}

fn connect(server: &BatonProcess) -> TcpStream {
    let stream = TcpStream::connect(server.socket_address()).expect("connects");
    stream.set_read_timeout(Some(READ_BOUND)).unwrap();
    stream
}

/// One HTTP/1.1 answer as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an RFC 9457 problem with `code`, the security headers and
    /// `Connection: close`.
    fn assert_edge_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let problem: Value = serde_json::from_slice(&self.body).expect("a JSON problem body");
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["status"], status, "{problem}");
        assert!(problem["detail"].is_string(), "{problem}");
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert_eq!(self.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(self.header("connection"), Some("close"), "{self:?}");
    }
}

/// Reads one answer: its head, then `Content-Length` bytes of body.
fn read_answer(stream: &mut TcpStream) -> std::io::Result<Answer> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "closed before an answer: {:?}",
                    String::from_utf8_lossy(&raw)
                ),
            ));
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// True once the server has closed the connection (EOF, or a reset).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

fn healthz(server: &BatonProcess) -> Answer {
    let mut stream = connect(server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_answer(&mut stream).expect("an answer to GET /healthz")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn a_head_trickled_a_byte_at_a_time_is_cut_with_a_408_problem_within_the_header_timeout() {
    let (_dir, server) = start(&[("BATON_HEADER_TIMEOUT", "1s")]);
    let mut stream = connect(&server);
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    // A valid head that never ends: a header value growing a byte per 300 ms.
    std::thread::spawn(move || {
        let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        for b in head.iter().chain(std::iter::repeat(&b'a')).take(200) {
            if writer.write_all(std::slice::from_ref(b)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let answer = read_answer(&mut stream).expect("a 408 before the client gives up");
    let cut = started.elapsed();
    answer.assert_edge_problem(408, "request_timeout");
    assert!(closed_by_server(&mut stream), "the connection is closed");
    eprintln!("slow header: answered 408 and closed after {cut:?} (BATON_HEADER_TIMEOUT=1s)");
    assert!(cut < Duration::from_secs(1) + SLACK, "cut after {cut:?}");
}

#[test]
fn a_body_trickled_a_byte_at_a_time_is_cut_with_a_408_problem_within_the_body_timeout() {
    let (_dir, server) = start(&[("BATON_BODY_TIMEOUT", "1s")]);
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n",
        )
        .unwrap();
    let started = Instant::now();
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b" ").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let answer = read_answer(&mut stream).expect("a 408 before the client gives up");
    let cut = started.elapsed();
    answer.assert_edge_problem(408, "request_timeout");
    assert!(closed_by_server(&mut stream), "the connection is closed");
    eprintln!("slow body: answered 408 and closed after {cut:?} (BATON_BODY_TIMEOUT=1s)");
    assert!(cut < Duration::from_secs(1) + SLACK, "cut after {cut:?}");
}

#[test]
fn a_flood_of_half_sent_heads_is_closed_within_the_header_timeout_while_others_are_served() {
    const FLOOD: usize = 200;
    let timeout = Duration::from_secs(2);
    let (_dir, server) = start(&[("BATON_HEADER_TIMEOUT", "2s")]);
    let started = Instant::now();
    let mut flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            s
        })
        .collect();
    let opened = started.elapsed();
    // A legitimate client during the flood.
    let served = Instant::now();
    assert_eq!(healthz(&server).status, 200);
    let served = served.elapsed();
    assert!(
        started.elapsed() < timeout,
        "the flood took too long to open to prove anything"
    );
    let deadline = started + timeout + SLACK;
    let mut cut = 0;
    for stream in &mut flood {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        if let Ok(answer) = read_answer(stream)
            && answer.status == 408
            && closed_by_server(stream)
        {
            cut += 1;
        }
    }
    let all_cut = started.elapsed();
    eprintln!(
        "flood: {FLOOD} half-sent heads opened in {opened:?}; GET /healthz answered in \
         {served:?} during it; {cut} answered 408 and closed {all_cut:?} after the first \
         (BATON_HEADER_TIMEOUT=2s)"
    );
    assert_eq!(
        cut, FLOOD,
        "every half-sent head is answered 408 and closed"
    );
    assert_eq!(healthz(&server).status, 200, "and the server still serves");
}

#[test]
fn a_connection_that_never_sends_is_closed_after_the_header_timeout() {
    let (_dir, server) = start(&[("BATON_HEADER_TIMEOUT", "1s")]);
    let mut stream = connect(&server);
    let started = Instant::now();
    assert!(closed_by_server(&mut stream), "closed (not left open)");
    let took = started.elapsed();
    eprintln!("silent connection: closed after {took:?} (BATON_HEADER_TIMEOUT=1s)");
    assert!(
        took < Duration::from_secs(1) + SLACK,
        "closed after {took:?}"
    );
}

#[test]
fn beyond_the_connection_cap_new_connections_get_a_503_problem_at_once_and_are_served_again_after()
{
    const CAP: usize = 8;
    let (_dir, server) = start(&[("BATON_MAX_CONNECTIONS", "8")]);
    // CAP keep-alive connections, each served once and then left idle.
    let mut held: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            assert_eq!(read_answer(&mut s).unwrap().status, 200);
            s
        })
        .collect();
    let mut refusals = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let answer = healthz(&server);
        refusals.push(started.elapsed());
        answer.assert_edge_problem(503, "too_many_connections");
        assert_eq!(answer.header("retry-after"), Some("1"));
    }
    eprintln!("connection cap {CAP}: refusals answered in {refusals:?}");
    // The held connections still work.
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut held[0]).unwrap().status, 200);
    drop(held);
    let until = Instant::now() + SLACK;
    loop {
        let answer = healthz(&server);
        if answer.status == 200 {
            break;
        }
        assert!(
            Instant::now() < until,
            "still refused after the held connections closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stalled_uploads_declaring_a_mebibyte_get_413_unread_and_barely_grow_memory() {
    const UPLOADS: usize = 100;
    let (_dir, server) = start(&[]);
    assert_eq!(healthz(&server).status, 200);
    let before = rss_kib(server.pid());
    let head = "POST /auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Content-Length: 1048576\r\n\r\n{\"email\":\"";
    let mut uploads: Vec<TcpStream> = (0..UPLOADS)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    // Every one is answered while its body (all but a few bytes) is unsent.
    let started = Instant::now();
    for stream in &mut uploads {
        let answer = read_answer(stream).expect("a 413 without the body being sent");
        assert_eq!(answer.status, 413, "{answer:?}");
        assert_eq!(answer.header("connection"), Some("close"));
        let problem: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(problem["code"], "payload_too_large");
    }
    let answered = started.elapsed();
    let after = rss_kib(server.pid());
    let growth = after.saturating_sub(before);
    eprintln!(
        "{UPLOADS} stalled 1 MiB uploads: all answered 413 in {answered:?}; RSS {before} KiB → \
         {after} KiB (+{growth} KiB)"
    );
    assert!(growth < 32 * 1024, "RSS grew by {growth} KiB");
}

#[test]
fn errors_before_routing_are_problems_with_the_security_headers() {
    let (_dir, server) = start(&[]);
    let long_target = format!(
        "GET /{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(9000)
    );
    let large_head = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let cases: [(&str, &[u8], u16, &str); 5] = [
        (
            "a 9,000-byte target",
            long_target.as_bytes(),
            414,
            "uri_too_long",
        ),
        (
            "a 20 KB head",
            large_head.as_bytes(),
            431,
            "header_fields_too_large",
        ),
        (
            "not a request line",
            b"HELLO WORLD\r\n\r\n",
            400,
            "bad_request",
        ),
        (
            "a header line without a colon",
            b"GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
            400,
            "bad_request",
        ),
        (
            // Well-formed lines; hyper refuses the framing itself.
            "a Content-Length that is not a number",
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ten\r\n\r\n",
            400,
            "bad_request",
        ),
    ];
    for (what, request, status, code) in cases {
        let mut stream = connect(&server);
        let _ = stream.write_all(request);
        let answer = read_answer(&mut stream).unwrap_or_else(|e| panic!("{what}: {e}"));
        eprintln!(
            "{what}: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        answer.assert_edge_problem(status, code);
        assert!(closed_by_server(&mut stream), "{what}: closed after");
    }
    assert_eq!(healthz(&server).status, 200);
}

#[test]
fn keep_alive_requests_are_served_on_one_connection_until_it_idles_past_the_keepalive_timeout() {
    let (_dir, server) = start(&[("BATON_KEEPALIVE_TIMEOUT", "1s")]);
    let mut stream = connect(&server);
    for i in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let answer = read_answer(&mut stream).unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(answer.status, 200, "request {i}");
        // Idle, but for less than the timeout.
        std::thread::sleep(Duration::from_millis(500));
    }
    let idle = Instant::now();
    assert!(
        closed_by_server(&mut stream),
        "the idle connection is closed"
    );
    let took = idle.elapsed() + Duration::from_millis(500);
    eprintln!("keep-alive: closed {took:?} after its last answer (BATON_KEEPALIVE_TIMEOUT=1s)");
    assert!(
        took < Duration::from_secs(1) + SLACK,
        "closed after {took:?}"
    );
}

#[test]
fn a_request_pipelined_behind_another_and_split_across_writes_is_served() {
    let (_dir, server) = start(&[]);
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HT")
        .unwrap();
    let first = read_answer(&mut stream).expect("the first answer");
    assert_eq!(first.status, 200, "{first:?}");
    std::thread::sleep(Duration::from_millis(200));
    stream
        .write_all(b"TP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let second = read_answer(&mut stream).expect("the second answer");
    assert_eq!(second.status, 200, "{second:?}");
}
