//! The real `baton` binary as a child process, for end-to-end tests that
//! need real time or the real process (logs, signals).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `baton serve` on a fresh SQLite file, its stderr collected.
pub struct BatonProcess {
    child: std::process::Child,
    pub logs: Arc<Mutex<String>>,
    pub address: String,
}

impl BatonProcess {
    /// Starts the binary with `env` on top of a test baseline (port 0, no
    /// throttling, JSON logs at debug level) and waits for it to listen.
    pub fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> BatonProcess {
        let mut process = Self::spawn(dir, env);
        process.wait_until_listening();
        process
    }

    /// Starts the binary like `start`, without waiting for it.
    pub fn spawn(dir: &std::path::Path, env: &[(&str, &str)]) -> BatonProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
        command
            .arg("serve")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/baton.db", dir.display()),
            )
            .env("BATON_BIND", "127.0.0.1:0")
            .env("BATON_MASTER_KEY_FILE", dir.join("master.key"))
            .env("BATON_RATE_LIMITS", "off")
            .env("BATON_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .env_remove("BATON_MASTER_KEY")
            .env_remove("BATON_FAULTS")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the baton binary starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        BatonProcess {
            child,
            logs,
            address: String::new(),
        }
    }

    /// Waits until the server logs its address (30 s at most).
    pub fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let logs = &self.logs;
        let address = loop {
            let found = logs.lock().unwrap().lines().find_map(|l| {
                let start = l.find("listening on http://")? + "listening on ".len();
                let rest = &l[start..];
                Some(rest[..rest.find([' ', '"']).unwrap_or(rest.len())].to_owned())
            });
            if let Some(a) = found {
                break a;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the server exited ({status}) instead of listening:\n{}",
                    logs.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{}",
                logs.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        self.address = address;
    }

    /// Waits for the process to exit (30 s at most) and returns its status.
    pub fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `127.0.0.1:PORT`, for raw TCP clients.
    pub fn socket_address(&self) -> &str {
        self.address.trim_start_matches("http://")
    }

    /// The server's process id (to read its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BatonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
