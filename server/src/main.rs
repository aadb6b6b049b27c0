// The edge serves the whole middleware stack as one concrete type; laying
// out its connection future in a release build takes more than the default
// 128 levels of type queries.
#![recursion_limit = "256"]

use std::process::ExitCode;

use baton::config::{Cli, Command};
use baton::{http, startup, telemetry};
use clap::Parser;

fn main() -> ExitCode {
    tune_allocator();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("baton: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Two glibc malloc settings, made before the runtime starts any thread.
///
/// glibc's malloc raises its mmap threshold the first time a large block is
/// freed; from then on the 19 MiB Argon2 buffers come from the heap arenas,
/// which keep them resident after the hashing ends. A fixed threshold keeps
/// every large block in a mapping of its own that goes back to the system
/// when freed, so the server returns to its idle size after a login flood.
///
/// glibc also gives threads up to 8 arenas per core; the runtime, the
/// blocking pool and one thread per SQLite connection reach six or more,
/// each keeping freed memory of its own after a load. No more threads than
/// cores run at once, so more arenas than cores only fragment: capping them
/// took idle RSS after the bench's load from 30.7 to 28.7 MiB
/// (docs/BENCHMARKS.md). An operator's MALLOC_ARENA_MAX or glibc tunable wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const MMAP_THRESHOLD: i32 = 1 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // the runtime starts any other thread, and its arguments are plain ints.
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    if ok != 1 {
        eprintln!(
            "baton: could not set the malloc mmap threshold; memory may not return after load"
        );
    }
    let operator_chose = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if !operator_chose {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let arenas = i32::try_from(cores).unwrap_or(i32::MAX);
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        print!("{}", http::openapi_document());
        return ExitCode::SUCCESS;
    }
    #[cfg(feature = "fault-injection")]
    if let Command::Faults = command {
        print!("{}", baton::faults::table());
        return ExitCode::SUCCESS;
    }
    telemetry::init(cli.settings.log_format);
    let result = match command {
        Command::Serve => startup::serve(cli.settings).await,
        Command::Migrate => startup::open_database(&cli.settings).await.map(|_| {
            tracing::info!("migrations applied");
        }),
        Command::RotateKeys => startup::rotate_keys(cli.settings).await.map(|kid| {
            tracing::info!(kid = %kid, "new signing key active; the previous one stays in the JWKS until its tokens expire");
            println!("{kid}");
        }),
        Command::Openapi => Ok(()),
        #[cfg(feature = "fault-injection")]
        Command::Faults => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("baton: {e:#}");
            ExitCode::FAILURE
        }
    }
}
