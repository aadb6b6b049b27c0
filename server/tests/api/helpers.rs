//! `spawn_app`: the real application on port 0 with a fresh database, and a
//! `TestApp` with one method per endpoint.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use baton::config::{Settings, Switch};
use baton::domain::ManualClock;
use baton::domain::keys::{KeyRing, MasterKey};
use baton::startup::Application;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MariaDb,
}

pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MARIADB_ADMIN_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A fresh, empty database for one test; dropped (best effort) afterwards.
pub struct TestDatabase {
    pub url: String,
    backend: Backend,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// `None` when the backend is unreachable outside CI (the test is then
    /// skipped with a message); in CI an unreachable backend fails the test.
    pub async fn create(backend: Backend) -> Option<Self> {
        let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}/baton.db", dir.path().display());
                Some(Self {
                    url,
                    backend,
                    name,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres | Backend::MariaDb => {
                let admin = admin_url(backend);
                let db = match tokio::time::timeout(
                    Duration::from_secs(5),
                    sea_orm::Database::connect(admin),
                )
                .await
                {
                    Ok(Ok(db)) => db,
                    other => {
                        let why = match other {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".to_owned(),
                        };
                        if std::env::var_os("CI").is_some() {
                            panic!("{backend:?} is unreachable in CI at {admin}: {why}");
                        }
                        eprintln!("SKIPPED: {backend:?} is unreachable at {admin} ({why})");
                        return None;
                    }
                };
                use sea_orm::ConnectionTrait as _;
                db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("creating the test database");
                let _ = db.close().await;
                let url = match backend {
                    Backend::Postgres => format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    _ => format!("mysql://root@127.0.0.1:3306/{name}"),
                };
                Some(Self {
                    url,
                    backend,
                    name,
                    _dir: None,
                })
            }
        }
    }
}

fn admin_url(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => POSTGRES_ADMIN_URL,
        _ => MARIADB_ADMIN_URL,
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let (backend, name) = (self.backend, self.name.clone());
        // Async drop does not exist; a short-lived thread with its own runtime does.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                use sea_orm::ConnectionTrait as _;
                if let Ok(db) = sea_orm::Database::connect(admin_url(backend)).await {
                    let sql = match backend {
                        Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        _ => format!("DROP DATABASE IF EXISTS {name}"),
                    };
                    let _ = db.execute_unprepared(&sql).await;
                    let _ = db.close().await;
                }
            });
        })
        .join();
    }
}

/// Settings for a test server: port 0, no throttling, a fixed issuer so
/// several instances agree, the short lifetimes a test can reason about.
pub fn test_settings(database_url: &str, master_key: &MasterKey) -> Settings {
    let mut s = Settings::defaults();
    s.database_url = Some(database_url.to_owned());
    s.bind = "127.0.0.1:0".parse().unwrap();
    s.master_key = Some(master_key.to_hex());
    s.rate_limits = Switch::Off;
    s.issuer = Some("http://baton.test".to_owned());
    s.allowed_origins = vec!["http://app.test".to_owned()];
    s.static_dir = "/nonexistent".into();
    s.db_max_connections = 10;
    s.hash_concurrency = Some(2);
    s
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub settings: Settings,
    pub keys: KeyRing,
    pub db: sea_orm::DatabaseConnection,
    pub backend: Backend,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// Starts another instance on the same settings (and so the same
    /// database and master key), with its own clock.
    pub async fn start(settings: Settings, backend: Backend, clock: ManualClock) -> TestApp {
        let app = Application::build(settings.clone(), Arc::new(clock.clone()))
            .await
            .expect("the application builds");
        let port = app.port();
        let keys = app.state().keys.clone();
        let db = app.state().db.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("the server runs");
        });
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            settings,
            keys,
            db,
            backend,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server (graceful shutdown) and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn cookie_name(&self) -> &str {
        &self.settings.cookie_name
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json_with(&self, path: &str, body: Value, headers: HeaderMap) -> Response {
        self.client
            .post(self.url(path))
            .headers(headers)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/register",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers a new random user and returns its credentials.
    pub async fn new_user(&self) -> TestUser {
        let user = TestUser::random();
        let r = self.register(&user.email, &user.password).await;
        assert_eq!(r.status(), StatusCode::CREATED, "registering a test user");
        user
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json("/auth/login", json!({"email": email, "password": password}))
            .await
    }

    /// Logs in with cookie delivery and returns the pair.
    pub async fn login_cookie(&self, user: &TestUser) -> Tokens {
        let r = self.login(&user.email, &user.password).await;
        assert_eq!(r.status(), StatusCode::OK, "login");
        Tokens::from_cookie_response(r, self.cookie_name()).await
    }

    /// Logs in with body delivery and returns the pair.
    pub async fn login_body(&self, user: &TestUser) -> Tokens {
        let r = self
            .post_json(
                "/auth/login",
                json!({"email": user.email, "password": user.password, "refresh_token_in_body": true}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login");
        Tokens::from_body_response(r).await
    }

    pub async fn refresh_body(&self, refresh_token: &str) -> Response {
        self.post_json("/auth/refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn refresh_cookie(&self, refresh_token: &str) -> Response {
        self.refresh_cookie_with(refresh_token, HeaderMap::new())
            .await
    }

    pub async fn refresh_cookie_with(&self, refresh_token: &str, headers: HeaderMap) -> Response {
        self.post_with_refresh_cookie("/auth/refresh", refresh_token, headers)
            .await
    }

    /// POSTs `{}` to `path` with the refresh cookie (and any other headers).
    async fn post_with_refresh_cookie(
        &self,
        path: &str,
        refresh_token: &str,
        mut headers: HeaderMap,
    ) -> Response {
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("{}={}", self.cookie_name(), refresh_token)).unwrap(),
        );
        self.post_json_with(path, json!({}), headers).await
    }

    pub async fn logout_body(&self, refresh_token: &str) -> Response {
        self.post_json("/auth/logout", json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn logout_cookie_with(&self, refresh_token: &str, headers: HeaderMap) -> Response {
        self.post_with_refresh_cookie("/auth/logout", refresh_token, headers)
            .await
    }

    pub async fn get_authed(&self, path: &str, access_token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.get_authed("/auth/me", access_token).await
    }

    pub async fn me_with_authorization(&self, authorization: &str) -> Response {
        self.client
            .get(self.url("/auth/me"))
            .header("authorization", authorization)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn sessions(&self, access_token: &str) -> Response {
        self.get_authed("/auth/sessions", access_token).await
    }

    pub async fn revoke_session(&self, access_token: &str, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/auth/sessions/{id}")))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn revoke_all_sessions(&self, access_token: &str) -> Response {
        self.client
            .delete(self.url("/auth/sessions"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// How many live refresh tokens the session has, read from the database.
    pub async fn live_tokens_in(&self, session_id: &str) -> usize {
        baton::storage::sessions::count_live_tokens(&self.db, session_id, self.clock_now_millis())
            .await
            .unwrap()
    }

    pub fn clock_now_millis(&self) -> i64 {
        use baton::domain::Clock as _;
        self.clock.now().as_millis()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A running app together with the database it owns.
pub struct Harness {
    pub app: TestApp,
    pub database: TestDatabase,
    pub master_key: MasterKey,
}

impl std::ops::Deref for Harness {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut TestApp {
        &mut self.app
    }
}

impl Harness {
    /// Another instance on the same database and master key.
    pub async fn second_instance(&self) -> TestApp {
        TestApp::start(
            self.app.settings.clone(),
            self.app.backend,
            ManualClock::starting_now(),
        )
        .await
    }
}

pub async fn spawn_app(backend: Backend) -> Option<Harness> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> Option<Harness> {
    // Logs go to stderr, past the test harness's capture: opt in with TEST_LOG=1.
    if std::env::var_os("TEST_LOG").is_some() {
        baton::telemetry::init(baton::config::LogFormat::Pretty);
    }
    let database = TestDatabase::create(backend).await?;
    let master_key = MasterKey::generate();
    let mut settings = test_settings(&database.url, &master_key);
    configure(&mut settings);
    let app = TestApp::start(settings, backend, ManualClock::starting_now()).await;
    Some(Harness {
        app,
        database,
        master_key,
    })
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub password: String,
}

impl TestUser {
    pub fn random() -> Self {
        Self {
            email: format!("user-{}@example.test", uuid::Uuid::new_v4().simple()),
            password: format!("pw-{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

/// A token pair as a client holds it.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub body: Value,
    pub set_cookie: Option<String>,
}

impl Tokens {
    pub async fn from_cookie_response(r: Response, cookie_name: &str) -> Self {
        let set_cookie = set_cookie(&r).expect("a Set-Cookie header");
        let refresh_token = cookie_value(&set_cookie, cookie_name).expect("the refresh cookie");
        let body: Value = r.json().await.unwrap();
        Self {
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token,
            body,
            set_cookie: Some(set_cookie),
        }
    }

    pub async fn from_body_response(r: Response) -> Self {
        assert!(set_cookie(&r).is_none(), "body delivery sets no cookie");
        let body: Value = r.json().await.unwrap();
        Self {
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh_token in body")
                .to_owned(),
            body,
            set_cookie: None,
        }
    }

    /// The `sid` claim of the access token.
    pub fn session_id(&self) -> String {
        claims(&self.access_token)["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

pub fn set_cookie(r: &Response) -> Option<String> {
    r.headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
}

pub fn cookie_value(set_cookie: &str, name: &str) -> Option<String> {
    let first = set_cookie.split(';').next()?;
    let (k, v) = first.split_once('=')?;
    (k.trim() == name).then(|| v.to_owned())
}

/// The (unverified) claims of a JWT, for assertions.
pub fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Asserts a problem response: status, content type and stable `code`.
/// A 503 `service_unavailable` problem with a numeric `Retry-After`, as
/// the document declares on every 503; `what` names the request.
pub async fn assert_service_unavailable(r: Response, what: &str) -> Value {
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some(),
        "{what}: a 503 without a numeric Retry-After"
    );
    assert_problem(r, 503, "service_unavailable").await
}

pub async fn assert_problem(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        r.status().as_u16(),
        status,
        "status for expected code {code}"
    );
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "problem body: {body}");
    for field in ["type", "title", "status", "detail"] {
        assert!(body.get(field).is_some(), "problem lacks {field}: {body}");
    }
    assert_eq!(body["status"], status);
    body
}

/// Generates one test per backend from one body:
/// `backend_test!(name, |app| async move { ... });` gives `name::sqlite`,
/// `name::postgres` and `name::mariadb`.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$app:ident| $body:block) => {
        $crate::backend_test!($name, |_| {}, |$app| $body);
    };
    ($name:ident, $configure:expr, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::helpers::*;

            async fn run(backend: Backend) {
                #[allow(unused_mut)]
                let Some(mut $app) = spawn_app_with(backend, $configure).await else {
                    return;
                };
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                run(Backend::MariaDb).await
            }
        }
    };
}
