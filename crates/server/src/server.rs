//! Starting and stopping the listeners.

use crate::config::Config;
pub use crate::turn::TurnOptions;
use anyhow::Context;
use registry::{Registry, RegistryConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// RTMP session settings.
#[derive(Debug, Clone)]
pub struct RtmpOptions {
    /// `rtmp.handshakeSecond`: the handshake and `connect` must complete within this.
    pub handshake_timeout: Duration,
    /// `rtmp.keepAliveSecond`: a publisher (or a session not yet publishing or playing) silent
    /// this long is closed.
    pub keep_alive: Duration,
}

/// What the server runs with: listener addresses (`None` = disabled) and session settings,
/// taken from [`Config`] by [`Options::from_config`].
#[derive(Debug, Clone)]
pub struct Options {
    /// RTMP listener.
    pub rtmp_addr: Option<SocketAddr>,
    /// HTTP listener (HTTP-FLV, WS-FLV).
    pub http_addr: Option<SocketAddr>,
    /// RTMP settings.
    pub rtmp: RtmpOptions,
    /// `general.enableVhost`.
    pub enable_vhost: bool,
    /// `general.maxStreamWaitMS`.
    pub max_stream_wait: Duration,
    /// A viewer whose socket accepts nothing for this long is dropped (RTMP, HTTP-FLV,
    /// WS-FLV); meanwhile the registry's ring moves on without it. Default: 15 s.
    pub write_timeout: Duration,
    /// Registry tunables.
    pub registry: RegistryConfig,
    /// STUN/TURN listener, UDP and TCP on the same port (`turn.port`).
    pub turn_addr: Option<SocketAddr>,
    /// TURN settings (`[turn]`).
    pub turn: TurnOptions,
}

/// State every session shares.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) rtmp: RtmpOptions,
    pub(crate) enable_vhost: bool,
    pub(crate) max_stream_wait: Duration,
    pub(crate) write_timeout: Duration,
}

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    /// The bound RTMP address, if enabled.
    pub rtmp_addr: Option<SocketAddr>,
    /// The bound HTTP address, if enabled.
    pub http_addr: Option<SocketAddr>,
    /// The bound STUN/TURN address (UDP and TCP), if enabled.
    pub turn_addr: Option<SocketAddr>,
    /// The live streams.
    pub registry: Registry,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds every enabled listener and starts serving.
    pub async fn start(options: Options) -> anyhow::Result<Server> {
        let registry = Registry::new(options.registry.clone());
        let shared = Arc::new(Shared {
            registry: registry.clone(),
            rtmp: options.rtmp.clone(),
            enable_vhost: options.enable_vhost,
            max_stream_wait: options.max_stream_wait,
            write_timeout: options.write_timeout,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let mut rtmp_addr = None;
        if let Some(addr) = options.rtmp_addr {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind RTMP on {addr}"))?;
            let bound = listener.local_addr()?;
            tracing::info!("RTMP listening on rtmp://{bound}");
            rtmp_addr = Some(bound);
            tasks.push(tokio::spawn(crate::rtmp::serve(
                listener,
                Arc::clone(&shared),
                shutdown_rx.clone(),
            )));
        }

        let mut http_addr = None;
        if let Some(addr) = options.http_addr {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind HTTP on {addr}"))?;
            let bound = listener.local_addr()?;
            tracing::info!("HTTP listening on http://{bound} (HTTP-FLV, WS-FLV)");
            http_addr = Some(bound);
            let app = api::router(api::AppState {
                registry: registry.clone(),
                options: api::ApiOptions {
                    enable_vhost: options.enable_vhost,
                    max_stream_wait: options.max_stream_wait,
                    local_addr: bound,
                },
            });
            tasks.push(tokio::spawn(crate::http::serve(
                listener,
                app,
                options.write_timeout,
                shutdown_rx.clone(),
            )));
        }

        let mut turn_addr = None;
        if let Some(addr) = options.turn_addr {
            let (bound, task) = crate::turn::start(
                addr,
                options.turn.clone(),
                registry.clone(),
                shutdown_rx.clone(),
            )
            .await?;
            turn_addr = Some(bound);
            tasks.push(task);
        }

        Ok(Server {
            rtmp_addr,
            http_addr,
            turn_addr,
            registry,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting, ends every session and waits for the listeners to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl Options {
    /// The options `config` describes: a port of 0 disables its listener.
    pub fn from_config(config: &Config) -> Options {
        let listen = |port: u16| (port != 0).then(|| SocketAddr::from(([0, 0, 0, 0], port)));
        Options {
            rtmp_addr: listen(config.rtmp.port),
            http_addr: listen(config.http.port),
            rtmp: RtmpOptions {
                handshake_timeout: config.rtmp.handshake_second,
                keep_alive: config.rtmp.keep_alive_second,
            },
            enable_vhost: config.general.enable_vhost,
            max_stream_wait: config.general.max_stream_wait,
            write_timeout: Duration::from_secs(15),
            registry: RegistryConfig::default(),
            turn_addr: listen(config.turn.port),
            turn: turn_options(&config.turn),
        }
    }
}

/// `[turn]` as the TURN driver's settings.
fn turn_options(t: &crate::config::Turn) -> TurnOptions {
    let server = ::turn::server::Config {
        realm: t.realm.clone(),
        external_ip: t.external_ip,
        max_allocations: usize::try_from(t.max_allocations).unwrap_or(usize::MAX),
        max_allocations_per_user: usize::try_from(t.max_allocations_per_user).unwrap_or(usize::MAX),
        max_lifetime: t.max_lifetime,
        bytes_per_second_per_allocation: t.max_bytes_per_second,
        users: t
            .users
            .iter()
            .map(|u| (u.name.clone(), u.password.expose().to_owned()))
            .collect(),
        auth_secret: (!t.auth_secret.is_empty()).then(|| t.auth_secret.expose().to_owned()),
        allow_peers: t.allow_peers.iter().flat_map(|r| r.to_cidrs()).collect(),
        password_hook: t.hook_url.is_some(),
        ..::turn::server::Config::default()
    };
    TurnOptions {
        server,
        relay_port_range: t.relay_port_range.clone(),
        hook_url: t.hook_url.clone(),
        ..TurnOptions::default()
    }
}
