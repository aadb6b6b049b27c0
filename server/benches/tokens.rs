//! The hot pure functions of a request, through the library's public API:
//! signing and verifying an access token (Ed25519 JWT, the server's own
//! `AccessTokens` over a key ring in a temporary SQLite file), generating and
//! hashing a refresh token, and the HMAC that derives a grace successor.
//!
//! `cargo bench -p baton-server --bench tokens` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use baton::domain::access_token::AccessTokens;
use baton::domain::keys::{KeyRing, MasterKey};
use baton::domain::refresh_token::RefreshToken;
use baton::domain::{Clock, SessionPolicy, SystemClock};
use baton::storage::{self, PoolSettings};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn access_tokens(rt: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> AccessTokens {
    let url = format!("sqlite://{}/keys.db", dir.path().display());
    rt.block_on(async {
        let settings = PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        };
        let db = storage::connect(&url, &settings)
            .await
            .expect("open SQLite");
        storage::migrate(&db).await.expect("migrate");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ring = KeyRing::open(db, MasterKey::generate(), clock.clone())
            .await
            .expect("key ring");
        let policy = SessionPolicy {
            access_ttl: Duration::from_secs(900),
            leeway: Duration::from_secs(5),
            refresh_ttl: Duration::from_secs(7 * 86_400),
            session_max_lifetime: Duration::from_secs(30 * 86_400),
            reuse_grace: Duration::from_secs(10),
        };
        AccessTokens::new(
            ring,
            clock,
            policy,
            "http://127.0.0.1:8080".to_owned(),
            "baton".to_owned(),
        )
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = access_tokens(&rt, &dir);
    let user = uuid::Uuid::new_v4().to_string();
    let session = uuid::Uuid::new_v4().to_string();

    c.bench_function("access_token/sign", |b| {
        b.iter(|| {
            tokens
                .issue(black_box(&user), black_box(&session))
                .expect("sign")
        })
    });

    // First presentation: header, key, Ed25519 signature, claims. Each
    // iteration gets a token never verified before (issued in the setup).
    c.bench_function("access_token/verify_first", |b| {
        b.iter_batched(
            || tokens.issue(&user, &session).expect("sign").token,
            |token| {
                rt.block_on(tokens.verify(black_box(&token)))
                    .expect("verify")
            },
            BatchSize::SmallInput,
        )
    });

    // Every later presentation: found in the verified-token map.
    let issued = tokens.issue(&user, &session).expect("sign");
    c.bench_function("access_token/verify_again", |b| {
        b.iter(|| {
            rt.block_on(tokens.verify(black_box(&issued.token)))
                .expect("verify")
        })
    });

    c.bench_function("refresh_token/generate+hash", |b| {
        b.iter(|| RefreshToken::generate().hash())
    });

    let presented = RefreshToken::generate();
    let successor_key = MasterKey::generate().successor_key();
    c.bench_function("refresh_token/successor_mac", |b| {
        b.iter(|| black_box(&presented).successor(black_box(&successor_key)))
    });
    c.bench_function("refresh_token/successor_mac+hash", |b| {
        b.iter(|| {
            black_box(&presented)
                .successor(black_box(&successor_key))
                .hash()
        })
    });
}

criterion_group! {
    name = tokens;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(tokens);
