//! The network edge: the accept loop and the HTTP/1.1 serving of each
//! connection (hyper), with the limits a public listener needs. poem's own
//! server has none of them: it builds hyper without a timer (no header
//! timeout ever fires), its idle timeout watches reads only, and it spins on
//! accept errors such as EMFILE.
//!
//! Per connection, [`GuardedIo`] sits between the socket and hyper and shares
//! a small [`ConnState`] with the service: whether a request is being served
//! and, while a request head arrives, when it started and how it looks so far
//! ([`HeadScanner`], which checks the head as it streams in and keeps none of
//! it). That is where slow, oversized and malformed heads are cut, before
//! hyper buffers them, and answered with a problem body of our own. What the
//! edge enforces (docs/OPERATIONS.md lists the settings):
//!
//! - a request head must arrive within the header timeout, counted from the
//!   accept for a connection's first request and from the first byte of each
//!   later one (408; a connection that never sent a byte is closed silently);
//! - an idle keep-alive connection is closed after the keep-alive timeout;
//! - a request body must arrive within the body timeout (408, in
//!   `limit_body`), and a response write that makes no progress for that long
//!   ends the connection;
//! - the head is at most `max_header_bytes` (431), with at most
//!   [`MAX_HEADER_FIELDS`] fields (431) and a request line of at most
//!   [`MAX_REQUEST_LINE_BYTES`] (414), shaped `METHOD SP TARGET SP HTTP/1.x`
//!   with well-formed header lines (400);
//! - at most `max_connections` connections at once; beyond that a canned 503
//!   is written once, without waiting for the request.
//!
//! Whatever the edge answers itself ends the connection with a lingering
//! close: our side is shut down, then what the client still sends is read and
//! dropped for a bounded time, so the close is a FIN rather than a reset that
//! would destroy the answer in the client's receive buffer.
//!
//! HTTP/1.0 and 1.1 only: a proxy in front that terminates TLS speaks HTTP/2
//! or 3 to browsers.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use http_body_util::combinators::BoxBody;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Sleep;

use super::error::ApiError;
use super::middleware::SECURITY_HEADERS;

/// The limits of the edge; `Settings::edge_limits` gives the configured ones.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// A request head must arrive within this (see the module docs).
    pub header_timeout: Duration,
    /// A request body must arrive within this; a response write may stall
    /// for at most this long.
    pub body_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keepalive_timeout: Duration,
    /// The largest request head (request line and header fields).
    pub max_header_bytes: usize,
    /// Concurrent connections; beyond this, new ones are refused with 503.
    pub max_connections: usize,
}

/// The body-read bound, handed with every request to `limit_body`.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// The longest request line; a longer one (a huge target) is 414.
pub const MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;
/// The most header fields in a request (hyper's own default); more is 431.
pub const MAX_HEADER_FIELDS: usize = 100;
/// How long a lingering close reads and drops what the client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// The same for a refused connection: a client reads the 503 and closes
/// within milliseconds; one that does not (a flood) gives its slot up soon.
const REFUSAL_LINGER: Duration = Duration::from_millis(250);
/// Refused connections that may linger at once; beyond this they are simply
/// closed, so refusing stays bounded work even under a flood.
const MAX_LINGERING_REFUSALS: usize = 64;
/// Descriptors kept out of the connection cap: the database pool, log and
/// key files, lingering refusals.
const RESERVED_DESCRIPTORS: u64 = 128;
/// Writing an answer of the edge's own may take at most this.
const ANSWER_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause after an accept error that is not about one connection (EMFILE,
/// ENFILE, ENOMEM): retrying at once would only spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bound listener and the limits it serves under.
pub struct Edge {
    listener: TcpListener,
    limits: EdgeLimits,
}

impl Edge {
    /// Binds `address`; the connection cap is clamped below the process's
    /// open-file limit (with a warning), so the cap, not EMFILE, decides.
    pub async fn bind(address: SocketAddr, mut limits: EdgeLimits) -> io::Result<Self> {
        let soft_limit = open_files_soft_limit();
        let allowed = connection_cap(limits.max_connections, soft_limit);
        if allowed < limits.max_connections {
            tracing::warn!(
                configured = limits.max_connections,
                allowed,
                open_files_soft_limit = soft_limit,
                "BATON_MAX_CONNECTIONS is above what the open-file limit allows (ulimit -n): \
                 using {allowed}; raise the limit to allow more"
            );
            limits.max_connections = allowed;
        }
        let listener = TcpListener::bind(address).await?;
        Ok(Self { listener, limits })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn limits(&self) -> &EdgeLimits {
        &self.limits
    }

    /// Serves `endpoint` until `shutdown` resolves; then stops accepting (the
    /// listener closes at once), lets every connection finish its request in
    /// flight for up to `grace`, and closes whatever is left.
    pub async fn serve<E>(
        self,
        endpoint: E,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> io::Result<()>
    where
        E: Endpoint + 'static,
    {
        let Edge { listener, limits } = self;
        let local = listener.local_addr()?;
        let limits = Arc::new(limits);
        let endpoint = Arc::new(endpoint);
        let http = Arc::new(http1_builder(&limits));
        let refusal = Bytes::from(answer_bytes(&ApiError::TooManyConnections, false).await);
        let lingering_refusals = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut accept_errors = ThrottledLog::default();
        let mut refusals = ThrottledLog::default();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            while connections.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    if connections.len() >= limits.max_connections {
                        refusals.warn(|suppressed| {
                            tracing::warn!(
                                max_connections = limits.max_connections,
                                suppressed,
                                "connection limit reached: refusing new connections with 503"
                            );
                        });
                        refuse(stream, &refusal, &lingering_refusals);
                        continue;
                    }
                    connections.spawn(serve_connection(
                        stream,
                        peer,
                        local,
                        endpoint.clone(),
                        limits.clone(),
                        http.clone(),
                        stopped.clone(),
                    ));
                }
                Err(e) if concerns_one_connection(&e) => {
                    tracing::debug!(error = %e, "a connection failed before it was accepted");
                }
                Err(e) => {
                    accept_errors.warn(|suppressed| {
                        tracing::warn!(
                            error = %e,
                            suppressed,
                            "accepting connections fails (out of descriptors or memory?)"
                        );
                    });
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
        drop(listener);
        let _ = stop.send(true);
        let finished = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                open = connections.len(),
                grace_ms = grace.as_millis() as u64,
                "connections still busy after the shutdown grace: closing them"
            );
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// hyper's own limits, set looser than the edge's so that ours answer first
/// (with problem bodies). No timer: the edge keeps time itself.
fn http1_builder(limits: &EdgeLimits) -> http1::Builder {
    /// hyper's default read-buffer bound (8 KiB + 100 × 4 KiB).
    const HYPER_DEFAULT_MAX_BUF: usize = 8192 + 4096 * 100;
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .half_close(false)
        .max_headers(MAX_HEADER_FIELDS + 28)
        .max_buf_size(HYPER_DEFAULT_MAX_BUF.max(2 * limits.max_header_bytes));
    builder
}

/// Errors of `accept` that concern only the connection being accepted.
fn concerns_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Over the cap: one non-blocking write of the canned 503 (it fits in any
/// socket buffer), then a short lingering close while few are lingering.
fn refuse(stream: TcpStream, answer: &Bytes, lingering: &Arc<AtomicUsize>) {
    let _ = stream.try_write(answer);
    if lingering.fetch_add(1, Ordering::AcqRel) < MAX_LINGERING_REFUSALS {
        let lingering = lingering.clone();
        tokio::spawn(async move {
            linger(stream, REFUSAL_LINGER).await;
            lingering.fetch_sub(1, Ordering::AcqRel);
        });
    } else {
        lingering.fetch_sub(1, Ordering::AcqRel);
        // No slot: drop what has already arrived (bounded, without waiting),
        // so that closing with unread data does not turn into a reset.
        let mut scrap = [0u8; 4096];
        for _ in 0..4 {
            if !matches!(stream.try_read(&mut scrap), Ok(n) if n > 0) {
                break;
            }
        }
    }
}

/// At most one warning a second for a repeated condition, with a count of
/// those suppressed since: a flood must not become a flood of log lines.
#[derive(Default)]
struct ThrottledLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ThrottledLog {
    fn warn(&mut self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.last = Some(now);
        self.suppressed = 0;
    }
}

async fn serve_connection<E>(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    endpoint: Arc<E>,
    limits: Arc<EdgeLimits>,
    http: Arc<http1::Builder>,
    mut stopped: watch::Receiver<bool>,
) where
    E: Endpoint + 'static,
{
    // Answers are written whole: do not hold their last segment back.
    let _ = stream.set_nodelay(true);
    let state = Arc::new(Mutex::new(ConnState::new(Instant::now())));
    let io = GuardedIo::new(stream, state.clone(), limits.clone());
    let service = hyper::service::service_fn({
        let state = state.clone();
        let body_timeout = limits.body_timeout;
        move |req: poem::http::Request<hyper::body::Incoming>| {
            lock(&state).request_started(declared_body_length(req.headers()));
            let endpoint = endpoint.clone();
            let state = state.clone();
            Box::pin(async move {
                let mut req = poem::Request::from((
                    req,
                    LocalAddr(Addr::SocketAddr(local)),
                    RemoteAddr(Addr::SocketAddr(peer)),
                    Scheme::HTTP,
                ));
                req.extensions_mut().insert(BodyReadTimeout(body_timeout));
                let response = endpoint.get_response(req).await;
                let closes = announces_close(response.headers());
                lock(&state).request_finished(closes, Instant::now());
                Ok::<_, Infallible>(hyper::Response::<BoxBody<Bytes, io::Error>>::from(response))
            }) as ServiceFuture
        }
    });
    let mut connection = http.serve_connection(TokioIo::new(io), service);
    let mut draining = false;
    let outcome = loop {
        tokio::select! {
            outcome = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => {
                break outcome;
            }
            _ = stopped.wait_for(|stop| *stop), if !draining => {
                // Finish the request in flight, then close; an idle
                // connection closes now.
                Pin::new(&mut connection).graceful_shutdown();
                draining = true;
            }
        }
    };
    if let Err(e) = &outcome {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    let io = connection.into_parts().io.into_inner();
    let refusal = lock(&state).refusal.take();
    io.close(refusal).await;
}

type ServiceFuture = Pin<
    Box<dyn Future<Output = Result<hyper::Response<BoxBody<Bytes, io::Error>>, Infallible>> + Send>,
>;

/// The body length a request declares; `None` when it is chunked.
fn declared_body_length(headers: &poem::http::HeaderMap) -> Option<u64> {
    if headers.contains_key(poem::http::header::TRANSFER_ENCODING) {
        return None;
    }
    Some(
        headers
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    )
}

fn announces_close(headers: &poem::http::HeaderMap) -> bool {
    headers
        .get_all(poem::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

fn lock(state: &Mutex<ConnState>) -> MutexGuard<'_, ConnState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shut down our side, then read and drop (never keep) what the client still
/// sends until it closes or `bound` passes.
async fn linger(mut stream: TcpStream, bound: Duration) {
    let _ = stream.shutdown().await;
    let mut scrap = [0u8; 4096];
    let _ = tokio::time::timeout(bound, async {
        while let Ok(n) = stream.read(&mut scrap).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A whole HTTP/1.1 answer for `error`: its problem body and headers, the
/// security headers, `Connection: close`.
async fn answer_bytes(error: &ApiError, with_date: bool) -> Vec<u8> {
    use poem::error::ResponseError as _;
    let response = error.as_response();
    let status = response.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    let mut header = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in response.headers() {
        header(name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in SECURITY_HEADERS {
        header(name.as_str().as_bytes(), value.as_bytes());
    }
    header(b"connection", b"close");
    if with_date {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT");
        header(b"date", date.to_string().as_bytes());
    }
    let body = response.into_body().into_vec().await.unwrap_or_default();
    header(b"content-length", body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

/// The descriptor soft limit (`ulimit -n`), from /proc/self/limits.
fn open_files_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_soft_limit(&limits)
}

fn parse_open_files_soft_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The connection cap that leaves descriptors for everything else: the soft
/// limit less [`RESERVED_DESCRIPTORS`] (half of it when the limit is small).
fn connection_cap(configured: usize, soft_limit: Option<u64>) -> usize {
    let Some(soft) = soft_limit else {
        return configured;
    };
    let available = if soft > 2 * RESERVED_DESCRIPTORS {
        soft - RESERVED_DESCRIPTORS
    } else {
        soft / 2
    };
    configured.min(usize::try_from(available.max(1)).unwrap_or(usize::MAX))
}

/// Why the edge ended a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The head broke a rule while it arrived.
    Head(Violation),
    /// The head did not arrive within the header timeout.
    HeadTimeout(Duration),
    /// Nothing arrived: a first request that never started, or an idle
    /// keep-alive connection.
    Idle,
    /// A response write made no progress for the body timeout.
    WriteStalled,
    /// hyper refused the head itself (a status it would have answered with
    /// an empty body), on a connection's first request.
    Stack(u16),
}

impl Refusal {
    /// The answer, when the client may still be listening for one.
    fn answer(&self) -> Option<ApiError> {
        Some(match self {
            Refusal::Head(Violation::LineTooLong) => ApiError::UriTooLong(format!(
                "the request line is longer than {MAX_REQUEST_LINE_BYTES} bytes"
            )),
            Refusal::Head(Violation::HeadTooLarge(max)) => ApiError::HeaderFieldsTooLarge(format!(
                "the request head (request line and header fields) is larger than {max} bytes"
            )),
            Refusal::Head(Violation::TooManyFields) => ApiError::HeaderFieldsTooLarge(format!(
                "the request has more than {MAX_HEADER_FIELDS} header fields"
            )),
            Refusal::Head(Violation::Malformed(why)) => ApiError::BadRequest((*why).to_owned()),
            Refusal::HeadTimeout(limit) => ApiError::RequestTimeout(format!(
                "the request head did not arrive within {}",
                humantime::format_duration(*limit)
            )),
            Refusal::Stack(431) => {
                ApiError::HeaderFieldsTooLarge("the request head is too large".to_owned())
            }
            Refusal::Stack(414) => {
                ApiError::UriTooLong("the request target is too long".to_owned())
            }
            Refusal::Stack(_) => ApiError::BadRequest(
                "the request is malformed (its target, a header value or its framing \
                 headers such as Content-Length and Transfer-Encoding)"
                    .to_owned(),
            ),
            Refusal::Idle | Refusal::WriteStalled => return None,
        })
    }
}

/// What one connection is doing, shared by its IO and its service.
#[derive(Debug)]
struct ConnState {
    accepted: Instant,
    phase: Phase,
    /// Requests handed to the service on this connection.
    requests: u64,
    refusal: Option<Refusal>,
    /// hyper's task, parked on a read: once a read has returned `Pending`,
    /// hyper reads again only when woken, so a change of deadline (a request
    /// done, the connection now idle) must wake it to re-arm the clock.
    read_waker: Option<Waker>,
    /// Bytes read since the current request's head ended.
    after_head: u64,
    /// The current request's declared body length (`None`: chunked).
    expected_body: Option<u64>,
    /// More was read during a request than its body: a request pipelined
    /// behind it, whose head went by unscanned. Heads are no longer
    /// followed on this connection (hyper's limits and the keep-alive
    /// timeout still apply), rather than misreading the middle of one.
    unscanned: bool,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the first byte of a request head.
    Idle { since: Instant },
    /// A request head is arriving.
    Head {
        started: Instant,
        scanner: HeadScanner,
    },
    /// A head has arrived; hyper has yet to hand it to the service.
    Dispatching { started: Instant },
    /// A request is being served.
    Busy,
    /// The response announced `Connection: close`: nothing more is a request.
    Closing,
}

impl ConnState {
    fn new(accepted: Instant) -> Self {
        Self {
            accepted,
            phase: Phase::Idle { since: accepted },
            requests: 0,
            refusal: None,
            read_waker: None,
            after_head: 0,
            expected_body: Some(0),
            unscanned: false,
        }
    }

    fn request_started(&mut self, declared_body: Option<u64>) {
        self.requests += 1;
        self.expected_body = declared_body;
        self.phase = Phase::Busy;
    }

    fn request_finished(&mut self, closes: bool, now: Instant) {
        if self
            .expected_body
            .map_or(self.after_head > 0, |body| self.after_head > body)
        {
            self.unscanned = true;
        }
        self.after_head = 0;
        self.phase = if closes {
            Phase::Closing
        } else {
            Phase::Idle { since: now }
        };
        if let Some(waker) = self.read_waker.take() {
            waker.wake();
        }
    }

    /// Bytes the client sent: follow (and check) request heads.
    fn observe_read(
        &mut self,
        mut bytes: &[u8],
        now: Instant,
        max_header_bytes: usize,
    ) -> Result<(), Refusal> {
        while !bytes.is_empty() {
            match &mut self.phase {
                Phase::Idle { .. } if self.unscanned => break,
                Phase::Idle { .. } => {
                    // RFC 9112 §2.2: empty lines before a request line are ignored.
                    let blank = bytes
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    bytes = &bytes[blank..];
                    if bytes.is_empty() {
                        break;
                    }
                    let started = if self.requests == 0 {
                        self.accepted
                    } else {
                        now
                    };
                    self.phase = Phase::Head {
                        started,
                        scanner: HeadScanner::new(max_header_bytes),
                    };
                }
                Phase::Head { scanner, started } => match scanner.feed(bytes) {
                    Ok(Some(used)) => {
                        bytes = &bytes[used..];
                        self.phase = Phase::Dispatching { started: *started };
                        self.after_head = 0;
                    }
                    Ok(None) => break,
                    Err(violation) => return Err(Refusal::Head(violation)),
                },
                // A body, or a request pipelined behind one.
                Phase::Dispatching { .. } | Phase::Busy => {
                    self.after_head += bytes.len() as u64;
                    break;
                }
                Phase::Closing => break,
            }
        }
        Ok(())
    }

    /// Bytes went out: an idle connection is not idle while its answer leaves.
    fn observe_write(&mut self, now: Instant) {
        if let Phase::Idle { since } = &mut self.phase {
            *since = now;
        }
    }

    /// Until when a read may wait, and what it means when it waited too long.
    fn read_deadline(&self, limits: &EdgeLimits) -> Option<(Instant, Refusal)> {
        match &self.phase {
            Phase::Idle { since } if self.requests == 0 => {
                Some((*since + limits.header_timeout, Refusal::Idle))
            }
            Phase::Idle { since } => Some((*since + limits.keepalive_timeout, Refusal::Idle)),
            Phase::Head { started, .. } | Phase::Dispatching { started } => Some((
                *started + limits.header_timeout,
                Refusal::HeadTimeout(limits.header_timeout),
            )),
            Phase::Busy | Phase::Closing => None,
        }
    }

    /// hyper writes an answer of its own only for a head it could not parse.
    /// On a first request nothing else can have been written yet, so such a
    /// write is recognised, dropped, and replaced by a problem answer.
    fn intercepts(&mut self, first: &[u8]) -> bool {
        if self.requests != 0 || matches!(self.phase, Phase::Idle { .. } | Phase::Closing) {
            return false;
        }
        let status = first
            .strip_prefix(b"HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse::<u16>().ok());
        match status {
            Some(status @ 400..=499) => {
                self.refusal = Some(Refusal::Stack(status));
                true
            }
            _ => false,
        }
    }
}

/// The socket as hyper sees it, with the edge's clocks and checks.
struct GuardedIo {
    stream: TcpStream,
    state: Arc<Mutex<ConnState>>,
    limits: Arc<EdgeLimits>,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    write_stalled_since: Option<Instant>,
}

fn edge_error(kind: io::ErrorKind, what: &'static str) -> io::Error {
    io::Error::new(kind, what)
}

impl GuardedIo {
    fn new(stream: TcpStream, state: Arc<Mutex<ConnState>>, limits: Arc<EdgeLimits>) -> Self {
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        Self {
            stream,
            state,
            limits,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_stalled_since: None,
        }
    }

    /// Polls `timer` set to `deadline`: ready once the deadline has passed.
    fn expired(timer: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
        let deadline = tokio::time::Instant::from_std(deadline);
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx).is_ready()
    }

    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                self.write_stalled_since = None;
                lock(&self.state).observe_write(Instant::now());
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let since = *self.write_stalled_since.get_or_insert_with(Instant::now);
                if Self::expired(&mut self.write_timer, since + self.limits.body_timeout, cx) {
                    lock(&self.state).refusal = Some(Refusal::WriteStalled);
                    return Poll::Ready(Err(edge_error(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }

    /// Answers (when the client may be listening), then closes lingering.
    async fn close(mut self, refusal: Option<Refusal>) {
        if let Some(refusal) = &refusal {
            tracing::debug!(?refusal, "connection ended at the edge");
        }
        if let Some(error) = refusal.as_ref().and_then(Refusal::answer) {
            let answer = answer_bytes(&error, true).await;
            let _ =
                tokio::time::timeout(ANSWER_WRITE_TIMEOUT, self.stream.write_all(&answer)).await;
        }
        if refusal != Some(Refusal::WriteStalled) {
            linger(self.stream, LINGER).await;
        }
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let mut state = lock(&this.state);
                let fresh = &buf.filled()[before..];
                match state.observe_read(fresh, Instant::now(), this.limits.max_header_bytes) {
                    Ok(()) => Poll::Ready(Ok(())),
                    Err(refusal) => {
                        state.refusal = Some(refusal);
                        Poll::Ready(Err(edge_error(
                            io::ErrorKind::InvalidData,
                            "the request head was refused at the edge",
                        )))
                    }
                }
            }
            Poll::Pending => {
                let mut state = lock(&this.state);
                state.read_waker = Some(cx.waker().clone());
                let deadline = state.read_deadline(&this.limits);
                drop(state);
                let Some((deadline, refusal)) = deadline else {
                    return Poll::Pending;
                };
                if Self::expired(&mut this.read_timer, deadline, cx) {
                    lock(&this.state).refusal = Some(refusal);
                    return Poll::Ready(Err(edge_error(
                        io::ErrorKind::TimedOut,
                        "the connection timed out at the edge",
                    )));
                }
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if lock(&this.state).intercepts(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.after_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        if lock(&this.state).intercepts(first) {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A rule a request head broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Violation {
    /// The request line is longer than [`MAX_REQUEST_LINE_BYTES`].
    LineTooLong,
    /// The head is larger than the configured bound (carried for the detail).
    HeadTooLarge(usize),
    /// More than [`MAX_HEADER_FIELDS`] header fields.
    TooManyFields,
    /// Not `METHOD SP TARGET SP HTTP/1.x`, or a header line that is not
    /// `name: value`.
    Malformed(&'static str),
}

const BAD_REQUEST_LINE: &str = "the request line is not `METHOD SP TARGET SP HTTP/1.1`";
const BAD_FIELD_LINE: &str = "a header line is not `name: value` (a token, a colon, a value \
                              without control characters)";
const FOLDED_FIELD_LINE: &str = "a header line starts with white space (obsolete line folding)";

/// Where in a head the next byte falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Method,
    TargetStart,
    Target,
    /// The n-th byte of `HTTP/1.x`.
    Version(u8),
    RequestLineEnd,
    /// After a CR, which must be followed by LF; `true` when that ends the head.
    Lf {
        ends_head: bool,
    },
    FieldStart,
    FieldName,
    FieldValue,
}

/// Checks a request head as it streams in, keeping none of it: its size, its
/// request line's length and shape, the shape of its header lines.
#[derive(Debug)]
struct HeadScanner {
    at: At,
    head_bytes: usize,
    line_bytes: usize,
    in_request_line: bool,
    fields: usize,
    max_head_bytes: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl HeadScanner {
    fn new(max_head_bytes: usize) -> Self {
        Self {
            at: At::Method,
            head_bytes: 0,
            line_bytes: 0,
            in_request_line: true,
            fields: 0,
            max_head_bytes,
        }
    }

    /// Feeds the next bytes of the head; `Some(n)` when the head ended with
    /// the n-th of them (the rest belongs to the body).
    fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, Violation> {
        use Violation::Malformed;
        for (i, &b) in bytes.iter().enumerate() {
            self.head_bytes += 1;
            self.line_bytes += 1;
            self.at = match self.at {
                At::Method if is_tchar(b) => At::Method,
                At::Method if b == b' ' && self.line_bytes > 1 => At::TargetStart,
                At::TargetStart | At::Target if b.is_ascii_graphic() || b >= 0x80 => At::Target,
                At::Target if b == b' ' => At::Version(0),
                At::Version(n @ 0..=6) if b == b"HTTP/1."[usize::from(n)] => At::Version(n + 1),
                At::Version(7) if matches!(b, b'0' | b'1') => At::RequestLineEnd,
                At::Method | At::TargetStart | At::Target | At::Version(_) => {
                    return Err(Malformed(BAD_REQUEST_LINE));
                }
                At::RequestLineEnd | At::FieldValue if b == b'\r' => At::Lf { ends_head: false },
                At::RequestLineEnd | At::FieldValue if b == b'\n' => self.next_line()?,
                At::RequestLineEnd => return Err(Malformed(BAD_REQUEST_LINE)),
                At::Lf { ends_head: true } if b == b'\n' => return Ok(Some(i + 1)),
                At::Lf { ends_head: false } if b == b'\n' => self.next_line()?,
                At::Lf { .. } => return Err(Malformed("a CR in the head is not followed by LF")),
                At::FieldStart if b == b'\r' => At::Lf { ends_head: true },
                At::FieldStart if b == b'\n' => return Ok(Some(i + 1)),
                At::FieldStart if matches!(b, b' ' | b'\t') => {
                    return Err(Malformed(FOLDED_FIELD_LINE));
                }
                At::FieldStart | At::FieldName if is_tchar(b) => At::FieldName,
                At::FieldName if b == b':' => At::FieldValue,
                At::FieldValue if b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80 => {
                    At::FieldValue
                }
                At::FieldStart | At::FieldName | At::FieldValue => {
                    return Err(Malformed(BAD_FIELD_LINE));
                }
            };
            if self.in_request_line && self.line_bytes > MAX_REQUEST_LINE_BYTES {
                return Err(Violation::LineTooLong);
            }
            if self.head_bytes > self.max_head_bytes {
                return Err(Violation::HeadTooLarge(self.max_head_bytes));
            }
        }
        Ok(None)
    }

    /// A line ended (not the head): count the field it was, if any.
    fn next_line(&mut self) -> Result<At, Violation> {
        if self.in_request_line {
            self.in_request_line = false;
        } else {
            self.fields += 1;
            if self.fields > MAX_HEADER_FIELDS {
                return Err(Violation::TooManyFields);
            }
        }
        self.line_bytes = 0;
        Ok(At::FieldStart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(head: &[u8]) -> Result<Option<usize>, Violation> {
        HeadScanner::new(16 * 1024).feed(head)
    }

    #[test]
    fn a_well_formed_head_ends_at_its_empty_line() {
        let head = b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(scan(head), Ok(Some(head.len() - 2)));
        assert_eq!(scan(b"GET / HTTP/1.0\nHost: x\n\n"), Ok(Some(24)));
        assert_eq!(scan(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }

    #[test]
    fn a_head_fed_in_single_bytes_ends_at_the_same_place() {
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n";
        let mut scanner = HeadScanner::new(16 * 1024);
        for (i, b) in head.iter().enumerate() {
            let end = scanner.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(end.is_some(), i == head.len() - 1, "byte {i}");
        }
    }

    #[test]
    fn request_lines_of_the_wrong_shape_are_malformed() {
        for bad in [
            &b"HELLO\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b" GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1 \r\n\r\n",
            b"GET /\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET /a\x01b HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                scan(bad),
                Err(Violation::Malformed(BAD_REQUEST_LINE)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn header_lines_of_the_wrong_shape_are_malformed() {
        assert_eq!(
            scan(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"),
            Err(Violation::Malformed(BAD_FIELD_LINE))
        );
        assert_eq!(
            scan(b"GET / HTTP/1.1\r\n: empty name\r\n\r\n"),
            Err(Violation::Malformed(BAD_FIELD_LINE))
        );
        assert_eq!(
            scan(b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n"),
            Err(Violation::Malformed(BAD_FIELD_LINE))
        );
        assert_eq!(
            scan(b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"),
            Err(Violation::Malformed(FOLDED_FIELD_LINE))
        );
    }

    #[test]
    fn a_long_request_line_is_too_long_before_the_head_is_too_large() {
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_REQUEST_LINE_BYTES));
        assert_eq!(scan(&line), Err(Violation::LineTooLong));
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        while head.len() <= 16 * 1024 {
            head.extend_from_slice(format!("X-Padding: {}\r\n", "a".repeat(1000)).as_bytes());
        }
        assert_eq!(
            HeadScanner::new(16 * 1024).feed(&head),
            Err(Violation::HeadTooLarge(16 * 1024))
        );
    }

    #[test]
    fn more_than_the_field_count_limit_is_too_many() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADER_FIELDS {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        assert_eq!(scan(&head), Err(Violation::TooManyFields));
    }

    #[test]
    fn the_first_head_is_timed_from_the_accept_and_later_ones_from_their_first_byte() {
        let limits = EdgeLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(75),
            max_header_bytes: 16 * 1024,
            max_connections: 10,
        };
        let t0 = Instant::now();
        let mut state = ConnState::new(t0);
        assert_eq!(
            state.read_deadline(&limits),
            Some((t0 + limits.header_timeout, Refusal::Idle))
        );
        let t1 = t0 + Duration::from_secs(3);
        state.observe_read(b"GET / HT", t1, 16 * 1024).unwrap();
        assert_eq!(
            state.read_deadline(&limits),
            Some((
                t0 + limits.header_timeout,
                Refusal::HeadTimeout(limits.header_timeout)
            ))
        );
        state
            .observe_read(b"TP/1.1\r\n\r\n", t1, 16 * 1024)
            .unwrap();
        state.request_started(Some(0));
        assert_eq!(state.read_deadline(&limits), None);
        let t2 = t1 + Duration::from_secs(1);
        state.request_finished(false, t2);
        assert_eq!(
            state.read_deadline(&limits),
            Some((t2 + limits.keepalive_timeout, Refusal::Idle))
        );
        let t3 = t2 + Duration::from_secs(30);
        state.observe_read(b"\r\nGET", t3, 16 * 1024).unwrap();
        assert_eq!(
            state.read_deadline(&limits),
            Some((
                t3 + limits.header_timeout,
                Refusal::HeadTimeout(limits.header_timeout)
            ))
        );
    }

    #[test]
    fn a_head_pipelined_behind_a_request_stops_the_scanning_instead_of_being_misread() {
        let now = Instant::now();
        let mut state = ConnState::new(now);
        state
            .observe_read(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", now, 1024)
            .unwrap();
        state.request_started(Some(2));
        state.request_finished(false, now);
        assert!(
            !state.unscanned,
            "a body of its declared length is no pipelining"
        );
        state
            .observe_read(b"GET / HTTP/1.1\r\n\r\nGET / HT", now, 1024)
            .unwrap();
        state.request_started(Some(0));
        state.request_finished(false, now);
        assert!(state.unscanned);
        // The rest of the pipelined head is not taken for a new request line.
        assert_eq!(state.observe_read(b"TP/1.1\r\n\r\n", now, 1024), Ok(()));
    }

    #[test]
    fn only_hypers_answer_to_a_first_unparsable_head_is_intercepted() {
        let mut state = ConnState::new(Instant::now());
        state
            .observe_read(b"GET /a\"b HTTP/1.1\r\n\r\n", Instant::now(), 1024)
            .unwrap();
        assert!(state.intercepts(b"HTTP/1.1 400 Bad Request\r\n"));
        assert_eq!(state.refusal, Some(Refusal::Stack(400)));
        let mut served = ConnState::new(Instant::now());
        served.request_started(Some(0));
        assert!(!served.intercepts(b"HTTP/1.1 404 Not Found\r\n"));
    }

    #[test]
    fn the_connection_cap_stays_below_the_open_file_limit() {
        assert_eq!(connection_cap(1024, None), 1024);
        assert_eq!(connection_cap(1024, Some(1_048_576)), 1024);
        assert_eq!(connection_cap(1024, Some(1024)), 1024 - 128);
        assert_eq!(connection_cap(1024, Some(256)), 128);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_soft_limit(limits), Some(1024));
        assert_eq!(
            parse_open_files_soft_limit("Max open files  unlimited  unlimited  files"),
            None
        );
    }
}
