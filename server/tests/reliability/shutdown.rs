//! Issue 7 "Graceful shutdown": on SIGTERM/SIGINT the real binary stops
//! accepting, finishes the requests in flight, closes the pool and exits 0,
//! all within its 10 s bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{ProcessConfig, ServerProcess};

/// Logins in flight when the signal arrives: each costs an Argon2
/// verification, and with BATON_HASH_CONCURRENCY=1 they queue up, so the
/// last of them finishes well after the signal.
const IN_FLIGHT: usize = 24;
/// The server's own bound is 10 s; this allows for a slow machine.
const EXIT_BOUND: Duration = Duration::from_secs(15);

async fn in_flight_requests_finish_and_the_process_exits_0(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("baton.db");
    let url = format!("sqlite://{}", db_path.display());
    let config = ProcessConfig::new(&url).with("BATON_HASH_CONCURRENCY", "1");
    let mut server = ServerProcess::start(&config).await;
    let client = reqwest::Client::new();
    let (email, password) = ("shutdown@example.test", "a long enough password");
    let r = client
        .post(server.url("/auth/register"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let done = Arc::new(AtomicUsize::new(0));
    let body = json!({"email": email, "password": password}).to_string();
    let request = format!(
        "POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Raw connections, each with its whole request written before the
    // signal: these are in flight by any definition.
    let mut requests = Vec::new();
    for _ in 0..IN_FLIGHT {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let done = done.clone();
        requests.push(tokio::spawn(async move {
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
                    .await;
            done.fetch_add(1, Ordering::SeqCst);
            match read {
                Ok(Ok(_)) => {
                    let text = String::from_utf8_lossy(&answer);
                    let status = text.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok());
                    status.ok_or_else(|| format!("no HTTP answer: {text:?}"))
                }
                Ok(Err(e)) => Err(format!("{e:?}")),
                Err(_) => Err("no answer within 30 s".to_owned()),
            }
        }));
    }
    // Signal once the first login has come back: by then every request has
    // long been sent, and most wait for their turn at the hasher.
    let wait_first = Instant::now();
    while done.load(Ordering::SeqCst) == 0 {
        assert!(
            wait_first.elapsed() < Duration::from_secs(30),
            "no login answered"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let signalled = Instant::now();
    server.signal(signal);

    // New connections are refused while the old ones are still being served.
    let mut refused_while_busy = None;
    while signalled.elapsed() < Duration::from_secs(5) {
        let connect = TcpStream::connect(("127.0.0.1", server.port)).await;
        if connect.is_err() {
            refused_while_busy = Some(done.load(Ordering::SeqCst) < IN_FLIGHT);
            break;
        }
        drop(connect);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let Some(busy) = refused_while_busy else {
        panic!("SIG{signal}: new connections were still accepted 5 s after the signal");
    };

    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    let failed: Vec<_> = statuses.iter().filter(|s| *s != &Ok(200)).collect();
    assert!(
        failed.is_empty(),
        "SIG{signal}: every request in flight completes with 200; got {statuses:?}"
    );
    assert!(
        busy,
        "SIG{signal}: the listener closed only after every request had finished"
    );

    let status = server
        .wait_exit(EXIT_BOUND)
        .await
        .unwrap_or_else(|| panic!("SIG{signal}: still running {EXIT_BOUND:?} after the signal"));
    assert_eq!(
        status.code(),
        Some(0),
        "SIG{signal}: exit status; log:\n{}",
        server.log()
    );
    assert!(signalled.elapsed() < EXIT_BOUND);
    // The pool was closed: the last SQLite connection to close checkpoints
    // and removes the write-ahead log.
    let wal = dir.path().join("baton.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        wal_len, 0,
        "SIG{signal}: the WAL was left behind: the pool was not closed"
    );
    let log = server.log();
    assert!(log.contains("stopped"), "a clean stop is logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0() {
    in_flight_requests_finish_and_the_process_exits_0("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_finishes_in_flight_requests_refuses_new_ones_and_exits_0() {
    in_flight_requests_finish_and_the_process_exits_0("INT").await;
}

/// The 10 s bound holds even against a request that never finishes (here a
/// body that never arrives): the process still exits 0, soon after the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_its_bound_even_when_a_request_never_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/baton.db", dir.path().display());
    let mut server = ServerProcess::start(&ProcessConfig::new(&url)).await;
    let mut stuck = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    stuck
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    // Let the server start on the request before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(EXIT_BOUND)
        .await
        .expect("exits within the bound despite the stuck request");
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    assert!(took < EXIT_BOUND, "took {took:?}");
    drop(stuck);
}
