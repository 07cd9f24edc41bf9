//! The admin shell (`shell.port`): a line-oriented console over TCP, like ZLMediaKit's telnet
//! shell, to list streams and sessions, kick a session and close a stream. This is the socket
//! owner around the sans-IO [`console::Console`], which holds the protocol, the limits and
//! the formatting.
//!
//! Drive loop per connection: read → `handle_input(now, ..)` → drain `poll_event` (the login
//! goes to on_shell_login, a command to the registry, each answered before the next) → write
//! `poll_transmit` → sleep until `poll_timeout` → `handle_timeout(now)`; closed once
//! `is_closed` and written.
//!
//! Login: on_shell_login decides when it is on (`hook.enable=1` and a URL), failing closed.
//! When it is off, the only login is user `admin` with `api.secret` as the password (read at
//! each login, so a setServerConfig change applies; compared in constant time): the shell
//! then guards exactly what the REST API's secret guards, and a server whose port is opened
//! without a hook is not an open door. A connection counts as pending (evictable at the
//! connection cap, `general.maxConnections`) until it has logged in.

pub(crate) mod console;

use console::ConsoleConfig;
use console::{Answer, Command, Console, Event, SessionRow, StreamRow};

use crate::limits::{ConnGuard, Listener};
use crate::stall::StallGuard;
use crate::Shared;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{field, Instrument};

/// The login must be complete this long after connecting (as `rtmp.handshakeSecond`).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);
/// A logged-in shell that sends nothing for this long is closed, so a forgotten terminal does
/// not hold an admin session open for ever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The user name of the login used when on_shell_login is off (its password is `api.secret`).
const FALLBACK_USER: &str = "admin";

/// Admin shell settings (not config keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOptions {
    /// From connecting to a completed login. Default: [`LOGIN_TIMEOUT`].
    pub login_timeout: Duration,
    /// A logged-in shell with no input for this long is closed. Default: [`IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
}

impl Default for ShellOptions {
    fn default() -> Self {
        ShellOptions {
            login_timeout: LOGIN_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// What every shell connection shares.
struct Context {
    shared: Arc<Shared>,
    /// For `api.secret`, the fallback login's password.
    config: config::Live,
    console: ConsoleConfig,
}

/// Accepts shell connections until `accept` turns true (the listener moves or the server
/// stops); its shells end when `shutdown` does.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    config: config::Live,
    options: ShellOptions,
    accept: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = shared.limits.clone();
    let context = Arc::new(Context {
        shared,
        config,
        console: ConsoleConfig {
            banner: concat!("ferrostream ", env!("CARGO_PKG_VERSION"), " admin shell").into(),
            login_timeout: options.login_timeout,
            idle_timeout: options.idle_timeout,
        },
    });
    let sessions = shutdown;
    crate::limits::accept_loop(
        listener,
        Listener::Shell,
        limits,
        accept,
        move |socket, peer, guard| {
            let id = context.shared.registry.next_session_id();
            let span =
                tracing::info_span!("session", proto = "shell", id, %peer, user = field::Empty);
            let (context, shutdown) = (Arc::clone(&context), sessions.clone());
            async move {
                match run(socket, peer, id, &context, shutdown, guard).await {
                    Ok(()) => tracing::debug!("shell closed"),
                    Err(e) if e.is_disconnect() => {
                        tracing::debug!("shell closed by the peer: {e}")
                    }
                    Err(e) => tracing::warn!("shell closed: {e}"),
                }
            }
            .instrument(span)
        },
    )
    .await;
}

/// Why a shell ended early.
#[derive(Debug, thiserror::Error)]
enum ShellError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("client cut off: {0}")]
    Limit(#[from] console::Error),
}

impl ShellError {
    /// A peer that went away (reset, broken pipe) is an ordinary end, not a fault to warn of.
    fn is_disconnect(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        matches!(self, ShellError::Io(e)
            if matches!(e.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof))
    }
}

/// The time as the console counts it; tokio's clock, so paused-time tests move it too.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until `at`; never, when no clock runs.
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

async fn run(
    socket: TcpStream,
    peer: SocketAddr,
    id: u64,
    context: &Context,
    mut shutdown: watch::Receiver<bool>,
    guard: ConnGuard,
) -> Result<(), ShellError> {
    let mut socket = StallGuard::new(socket, context.shared.write_timeout);
    let mut console = Console::new(now(), context.console.clone());
    let mut read_buf = vec![0u8; 2048];
    let mut out = BytesMut::new();
    let mut fault = None;
    loop {
        while let Some(event) = console.poll_event() {
            let result = match event {
                Event::Login { user_name, passwd } => {
                    let verdict = tokio::select! {
                        verdict = login(context, peer, id, &user_name, &passwd) => Some(verdict),
                        () = sleep_until(console.poll_timeout()) => None,
                        _ = shutdown.changed() => return Ok(()),
                    };
                    match verdict {
                        Some(Ok(())) => {
                            tracing::Span::current().record("user", field::debug(&user_name));
                            tracing::info!("shell login");
                            guard.established();
                            console.accept_login(now())
                        }
                        Some(Err(reason)) => {
                            tracing::info!(user = ?user_name, "shell login refused: {reason}");
                            console.reject_login(&reason);
                            Ok(())
                        }
                        None => {
                            console.handle_timeout(now());
                            Ok(())
                        }
                    }
                }
                Event::Command(command) => {
                    let answer = execute(&context.shared, command);
                    console.answer(now(), answer)
                }
            };
            if let Err(e) = result {
                fault = Some(e);
            }
        }
        if console.poll_transmit(&mut out) {
            socket.write_all(&out).await?;
            out.clear();
        }
        if console.is_closed() {
            let _ = socket.shutdown().await;
            return fault.map_or(Ok(()), |e| Err(e.into()));
        }
        tokio::select! {
            read = socket.read(&mut read_buf) => {
                let n = read?;
                if n == 0 {
                    return Ok(());
                }
                if let Err(e) = console.handle_input(now(), &read_buf[..n]) {
                    fault = Some(e);
                }
            }
            () = sleep_until(console.poll_timeout()) => console.handle_timeout(now()),
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Checks a login: `Err` says why it is refused, in words the client may see.
async fn login(
    context: &Context,
    peer: SocketAddr,
    id: u64,
    user_name: &str,
    passwd: &str,
) -> Result<(), String> {
    match context
        .shared
        .hooks
        .on_shell_login(peer, id, user_name, passwd)
        .await
    {
        Ok(true) => Ok(()),
        Err(refused) => Err(refused.msg),
        Ok(false) => {
            let config = context.config.get();
            let secret = config.api.secret.expose().as_bytes();
            // Both compared whatever the first gives, and the secret in constant time, so the
            // reply time tells nothing about either.
            let user_ok = constant_time_eq(user_name.as_bytes(), FALLBACK_USER.as_bytes());
            let passwd_ok = constant_time_eq(passwd.as_bytes(), secret);
            if user_ok & passwd_ok & !secret.is_empty() {
                Ok(())
            } else {
                Err("wrong user name or password".into())
            }
        }
    }
}

/// Equality whose time does not depend on where the inputs differ (only on their lengths).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs a command against the registry.
fn execute(shared: &Shared, command: Command) -> Answer {
    let registry = &shared.registry;
    match command {
        Command::Streams => {
            let mut rows: Vec<StreamRow> = registry.streams().iter().map(StreamRow::from).collect();
            rows.sort_by(|a, b| a.key.cmp(&b.key));
            Answer::Streams(rows)
        }
        Command::Sessions => {
            let mut rows: Vec<SessionRow> =
                registry.sessions().iter().map(SessionRow::from).collect();
            rows.sort_by_key(|row| row.id);
            Answer::Sessions(rows)
        }
        Command::Kick(id) => {
            let hit = registry.kick(id);
            tracing::info!(session = id, hit, "shell: kick");
            Answer::Kicked(id, hit)
        }
        Command::Close(key) => {
            let hit = registry.close(&key);
            tracing::info!(stream = %key, hit, "shell: close");
            Answer::Closed(key, hit)
        }
    }
}
