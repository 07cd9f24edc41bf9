//! `ferrostream`: the media streaming server binary.
//!
//! `ferrostream` runs on embedded defaults; `ferrostream -c conf/config.ini` reads a
//! ZLMediaKit-style INI file; `FERROSTREAM__<SECTION>__<KEY>` environment variables override
//! either. SIGINT/SIGTERM stop it cleanly.

#![allow(clippy::print_stdout)] // --help and --version print to stdout.

use anyhow::Context;
use server::config::{Config, Live};
use server::{Options, Server};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
ferrostream: a media streaming server (RTMP, HTTP-FLV, WS-FLV)

Usage: ferrostream [-c <config.ini>]

Options:
  -c, --config <FILE>  read this ZLMediaKit-style INI file (default: embedded defaults)
  -h, --help           print this help
  -V, --version        print the version

Every key can be overridden from the environment as FERROSTREAM__<SECTION>__<KEY>,
e.g. FERROSTREAM__RTMP__PORT=1936. Log level: RUST_LOG (default info).
";

enum Cli {
    Run { config: Option<PathBuf> },
    Help,
    Version,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" | "--config" => {
                let path = args.next().ok_or_else(|| format!("{arg} needs a file"))?;
                config = Some(PathBuf::from(path));
            }
            "-h" | "--help" => return Ok(Cli::Help),
            "-V" | "--version" => return Ok(Cli::Version),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Cli::Run { config })
}

fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("ferrostream: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config_path = match cli {
        Cli::Help => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Cli::Version => {
            println!("ferrostream {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Cli::Run { config } => config,
    };
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config_path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = Config::load(config_path.as_deref(), std::env::vars())?;
    for warning in &loaded.warnings {
        tracing::warn!("config: {warning}");
    }
    let mut config = loaded.config;
    if config.api.ensure_secret() {
        // ZLMediaKit's rule: an empty or well-known default secret would open the API to
        // anyone, so a random one is used and shown once.
        tracing::warn!(
            "api.secret was empty or the well-known default; using the random secret {}",
            config.api.secret.expose()
        );
    }
    match &config_path {
        Some(path) => tracing::info!("config read from {}", path.display()),
        None => tracing::info!("running on embedded defaults (no -c given)"),
    }
    raise_fd_limit(u64::from(config.general.max_connections));
    // Changes made through the handle (setServerConfig) are written back into the file read.
    let live = Live::new(config, loaded.file);
    let server = Server::start(Options::from_live(live))
        .await
        .context("start-up failed")?;
    let restart = tokio::select! {
        _ = shutdown_signal() => false,
        _ = server.restart_requested() => true,
    };
    tracing::info!("shutting down");
    server.shutdown().await;
    if restart {
        return restart_self();
    }
    Ok(())
}

/// restartServer: after a clean stop, this process becomes a fresh run of the same binary with
/// the same arguments (the same pid, so a supervisor sees no exit).
#[cfg(unix)]
fn restart_self() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("find the binary to restart")?;
    tracing::info!("restarting {}", exe.display());
    let err = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .exec();
    Err(anyhow::Error::new(err).context(format!("restart {}", exe.display())))
}

#[cfg(not(unix))]
fn restart_self() -> anyhow::Result<()> {
    anyhow::bail!("restartServer is supported on Unix only")
}

/// Raises the soft limit on open files to the hard one (as nginx's `worker_rlimit_nofile` and
/// Go's runtime do): the usual soft default of 1024 would make `accept` fail with `EMFILE` long
/// before `general.maxConnections`. Warns when even the hard limit leaves no room for the cap
/// (each connection holds one descriptor, RTSP over UDP two per track more, plus files and
/// relay sockets).
fn raise_fd_limit(max_connections: u64) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!("open file limit: {limit}");
            if max_connections == 0 || limit < max_connections.saturating_add(1024) {
                tracing::warn!(
                    "the open file limit ({limit}) leaves little room for general.maxConnections \
                     ({max_connections}); raise `ulimit -n` or lower the cap"
                );
            }
        }
        Err(e) => tracing::warn!("could not raise the open file limit: {e}"),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
