//! `conformance --base-url URL [...]`: runs the suite and exits 0 only when nothing failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use conformance::runner::{self, Options};

/// Checks a running Baton deployment against the session contract.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// An instance to test; repeat to spread requests round-robin over instances sharing one database.
    #[arg(
        long = "base-url",
        env = "CONFORMANCE_BASE_URL",
        required_unless_present = "list",
        value_delimiter = ','
    )]
    base_urls: Vec<String>,
    /// Run only the checks whose id starts with this prefix (repeatable), e.g. `refresh/` or `jwt/alg-none`.
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// Generated cases per property (the state-machine model runs this many sequences).
    #[arg(long)]
    cases: Option<u32>,
    /// Seed for every generated input (printed on each run, so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Checks run in parallel (each with its own users).
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Write a report: `*.xml` is JUnit XML, anything else JSON (repeatable).
    #[arg(long = "report")]
    reports: Vec<PathBuf>,
    /// An existing account to use when registration is closed.
    #[arg(long, env = "CONFORMANCE_EMAIL", requires = "password")]
    email: Option<String>,
    #[arg(
        long,
        env = "CONFORMANCE_PASSWORD",
        requires = "email",
        hide_env_values = true
    )]
    password: Option<String>,
    /// A JSON file of operation sequences the model replays before its random ones (kept
    /// regressions, e.g. conformance/regressions/model-sessions.json).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// `quick` skips the checks that wait for a TTL or the grace and runs 4 property cases
    /// (unless --cases is given); `full` runs everything.
    #[arg(long, value_enum, default_value = "full")]
    profile: runner::Profile,
    /// A shell command that restarts every instance (run with `sh -c`); the suite waits for
    /// /healthz afterwards. Enables refresh/reuse/survives-restart, which is skipped without it.
    #[arg(long = "restart-cmd", env = "CONFORMANCE_RESTART_CMD")]
    restart_cmd: Option<String>,
    /// List the checks with what they send and the requirement, then exit.
    #[arg(long)]
    list: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for check in conformance::checks::all() {
            let written = writeln!(
                out,
                "{}\n    sends: {}\n    requirement ({}, {}): {}",
                check.id,
                check.description,
                check.section,
                check.level.label(),
                check.requirement
            );
            if written.is_err() {
                break; // the reader went away (e.g. `| head`)
            }
        }
        return ExitCode::SUCCESS;
    }
    let seed = args.seed.unwrap_or_else(|| {
        u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .unwrap_or_default(),
        ) >> 16
    });
    let regressions = match &args.replay {
        None => Vec::new(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| conformance::machine::parse_regressions(&text))
        {
            Ok(sequences) => sequences,
            Err(error) => {
                eprintln!("conformance: --replay {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let options = Options {
        base_urls: args.base_urls,
        filters: args.filters,
        cases: args.cases.unwrap_or(match args.profile {
            runner::Profile::Quick => 4,
            runner::Profile::Full => 24,
        }),
        seed,
        jobs: args.jobs,
        account: args.email.zip(args.password),
        regressions,
        profile: args.profile,
        restart_cmd: args.restart_cmd,
    };
    let report = match runner::run(options).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("conformance: {error:#}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.render());
    for path in &args.reports {
        let text = if path.extension().is_some_and(|e| e == "xml") {
            report.to_junit()
        } else {
            report.to_json()
        };
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("conformance: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.totals().failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
