//! The `baton` binary's subcommands and configuration errors, as an
//! operator meets them.

use std::process::{Command, Output};

fn baton(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/baton.db", dir.display()),
        )
        .env("BATON_MASTER_KEY_FILE", dir.join("master.key"))
        .env_remove("BATON_MASTER_KEY")
        .env_remove("BATON_FAULTS")
        .env_remove("BATON_VARIATIONS")
        .output()
        .expect("the baton binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_names_every_documented_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&baton(dir.path(), &["--help"]).stdout);
    for var in [
        "DATABASE_URL",
        "BATON_BIND",
        "BATON_ACCESS_TTL",
        "BATON_REFRESH_TTL",
        "BATON_SESSION_MAX_LIFETIME",
        "BATON_REFRESH_REUSE_GRACE",
        "BATON_JWT_LEEWAY",
        "BATON_ALLOWED_ORIGINS",
        "BATON_ISSUER",
        "BATON_AUDIENCE",
        "BATON_REGISTRATION",
        "BATON_COOKIE_NAME",
        "BATON_LOG_FORMAT",
        "BATON_MASTER_KEY",
        "BATON_RATE_LIMITS",
        "BATON_HEADER_TIMEOUT",
        "BATON_BODY_TIMEOUT",
        "BATON_KEEPALIVE_TIMEOUT",
        "BATON_MAX_HEADER_BYTES",
        "BATON_MAX_CONNECTIONS",
        "BATON_RATE_LIMIT_LOGIN_ATTEMPTS_PER_ADDRESS",
        "BATON_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS",
        "BATON_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT",
        "BATON_RATE_LIMIT_REFRESHES_PER_ADDRESS",
        "BATON_RATE_LIMIT_REGISTRATIONS_PER_ADDRESS",
        "BATON_RATE_LIMIT_STORE",
        "BATON_RATE_LIMIT_STORE_TIMEOUT",
        "BATON_RATE_LIMIT_MEMORY_ENTRIES",
        "BATON_TRUSTED_CLIENT_IP_HEADER",
        "BATON_TRUSTED_PROXY_HOPS",
        "BATON_TRUSTED_PROXIES",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn openapi_prints_the_committed_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = baton(dir.path(), &["openapi"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        include_str!("../../openapi/openapi.json")
    );
}

#[test]
fn migrate_creates_the_database_and_needs_no_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = baton(dir.path(), &["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("baton.db").exists());
    assert!(!dir.path().join("master.key").exists());
    // Idempotent.
    assert!(baton(dir.path(), &["migrate"]).status.success());
}

#[test]
fn rotate_keys_prints_the_new_kid_and_keeps_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let first = baton(dir.path(), &["rotate-keys"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = baton(dir.path(), &["rotate-keys"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let (a, b) = (text(&first.stdout), text(&second.stdout));
    assert_eq!(a.trim().len(), 43, "an RFC 7638 thumbprint: {a}");
    assert_ne!(a, b);
    // The master key was generated on first use, readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_wrong_master_key_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    assert!(baton(dir.path(), &["rotate-keys"]).status.success());
    std::fs::write(dir.path().join("other.key"), "11".repeat(32)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("rotate-keys")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/baton.db", dir.path().display()),
        )
        .env("BATON_MASTER_KEY_FILE", dir.path().join("other.key"))
        .env_remove("BATON_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("master key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn invalid_settings_stop_the_binary_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = baton(dir.path(), &["serve", "--jwt-leeway", "60s"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("at most 5s"));
    let out = baton(dir.path(), &["serve", "--access-ttl", "soon"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("15m"),
        "the error shows examples"
    );
}

#[cfg(not(feature = "fault-injection"))]
#[test]
fn a_normal_build_refuses_to_run_with_faults() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/baton.db", dir.path().display()),
        )
        .env("BATON_MASTER_KEY_FILE", dir.path().join("master.key"))
        .env("BATON_BIND", "127.0.0.1:0")
        .env("BATON_FAULTS", "accept-alg-none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no fault injection"),
        "{}",
        text(&out.stderr)
    );
}

#[cfg(not(feature = "fault-injection"))]
#[test]
fn a_normal_build_refuses_to_run_with_variations() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/baton.db", dir.path().display()),
        )
        .env("BATON_MASTER_KEY_FILE", dir.path().join("master.key"))
        .env("BATON_BIND", "127.0.0.1:0")
        .env_remove("BATON_FAULTS")
        .env("BATON_VARIATIONS", "extra-fields")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no fault injection"),
        "{}",
        text(&out.stderr)
    );
}
