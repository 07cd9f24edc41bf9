//! Starting and stopping the listeners.

use crate::config::{Config, StampMode};
pub use crate::http::HttpOptions;
pub use crate::rtsp::RtspOptions;
pub use crate::turn::TurnOptions;
use anyhow::Context;
use hooks::{Hook, HookConfig, Hooks, LifecycleConfig};
use registry::{Registry, RegistryConfig, StreamOptions};
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
    /// HTTP connection limits (`http.keepAliveSecond`, the request head deadline).
    pub http: HttpOptions,
    /// RTMP settings.
    pub rtmp: RtmpOptions,
    /// RTSP listener.
    pub rtsp_addr: Option<SocketAddr>,
    /// RTSP settings.
    pub rtsp: RtspOptions,
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
    /// Web hooks (`[hook]`).
    pub hooks: HookConfig,
    /// Lifecycle hook settings (`general.flowThreshold`, `streamNoneReaderDelayMS`, …).
    pub lifecycle: LifecycleConfig,
    /// Every stream's settings unless on_publish overrides them (`[protocol]`).
    pub protocol: StreamOptions,
    /// The config as on_server_started sends it (flat `section.key`, secrets blanked).
    pub flat_config: Vec<(String, String)>,
    /// `record.appName`: recordings go under `{mp4_save_path}/{record_app}/…`.
    pub record_app: String,
    /// `http.rootPath`, served as files; `None` = no file server.
    pub file_root: Option<std::path::PathBuf>,
    /// `http.dirMenu`.
    pub dir_menu: bool,
    /// `http.allow_ip_range`.
    pub allow_ip_range: Vec<crate::config::IpRange>,
    /// `[hls]`.
    pub hls: api::HlsOptions,
    /// Connection caps (`general.maxConnections`, `maxConnectionsPerIp`, each listener's
    /// `maxConnections`).
    pub limits: crate::limits::LimitsConfig,
}

/// How long a stopping server waits for its sessions to end their streams.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long it waits for recordings to be finished into normal MP4 files.
const RECORDING_GRACE: Duration = Duration::from_secs(60);

/// The `admin_params` of ZLMediaKit's sample config.ini, known to everyone who read it.
const ZLM_EXAMPLE_ADMIN_PARAMS: &str = "secret=035c73f7-bb6b-4889-a715-d9eb2d1925cc";

/// State every session shares.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) hooks: Hooks,
    pub(crate) protocol: StreamOptions,
    pub(crate) rtsp: RtspOptions,
    pub(crate) rtp_outputs: crate::rtsp_out::RtpOutputs,
    pub(crate) recorders: crate::record::Recorders,
    /// `record.appName`: the directory recordings go under.
    pub(crate) record_app: String,
    pub(crate) rtmp: RtmpOptions,
    pub(crate) enable_vhost: bool,
    pub(crate) max_stream_wait: Duration,
    pub(crate) write_timeout: Duration,
    /// Connection caps of every listener.
    pub(crate) limits: crate::limits::Limits,
}

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    /// The bound RTMP address, if enabled.
    pub rtmp_addr: Option<SocketAddr>,
    /// The bound HTTP address, if enabled.
    pub http_addr: Option<SocketAddr>,
    /// The bound RTSP address, if enabled.
    pub rtsp_addr: Option<SocketAddr>,
    /// The bound STUN/TURN address (UDP and TCP), if enabled.
    pub turn_addr: Option<SocketAddr>,
    /// The live streams.
    pub registry: Registry,
    /// The hook client.
    pub hooks: Hooks,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    lifecycle: hooks::LifecycleTask,
    shared: Arc<Shared>,
    record_manager: JoinHandle<()>,
}

impl Server {
    /// Binds every enabled listener and starts serving.
    pub async fn start(options: Options) -> anyhow::Result<Server> {
        let registry = Registry::new(options.registry.clone());
        let hooks = Hooks::new(options.hooks.clone());
        if hooks.config().admin_params == ZLM_EXAMPLE_ADMIN_PARAMS {
            tracing::warn!(
                "hook.admin_params is ZLMediaKit's published example value: anyone who adds it to \
                 a URL skips on_publish and on_play; set your own or leave it empty"
            );
        }
        let mut lifecycle_config = options.lifecycle.clone();
        if options.rtsp_addr.is_none() {
            lifecycle_config.outputs.retain(|schema| *schema != "rtsp");
        }
        let lifecycle = hooks::spawn_lifecycle(hooks.clone(), registry.clone(), lifecycle_config);
        let shared = Arc::new(Shared {
            registry: registry.clone(),
            hooks: hooks.clone(),
            protocol: options.protocol.clone(),
            rtsp: options.rtsp.clone(),
            rtp_outputs: crate::rtsp_out::RtpOutputs::new(
                registry.clone(),
                ::rtsp::RtspConfig::default(),
            ),
            recorders: crate::record::Recorders::default(),
            record_app: options.record_app.clone(),
            rtmp: options.rtmp.clone(),
            enable_vhost: options.enable_vhost,
            max_stream_wait: options.max_stream_wait,
            write_timeout: options.write_timeout,
            limits: crate::limits::Limits::new(options.limits),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let record_manager = crate::record::spawn_manager(Arc::clone(&shared));

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

        let mut rtsp_addr = None;
        if let Some(addr) = options.rtsp_addr {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind RTSP on {addr}"))?;
            let bound = listener.local_addr()?;
            tracing::info!("RTSP listening on rtsp://{bound}");
            rtsp_addr = Some(bound);
            tasks.push(tokio::spawn(crate::rtsp::serve(
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
            let allow = options.allow_ip_range.clone();
            let app = api::router(api::AppState::new(
                registry.clone(),
                hooks.clone(),
                api::ApiOptions {
                    enable_vhost: options.enable_vhost,
                    max_stream_wait: options.max_stream_wait,
                    local_addr: bound,
                    file_root: options.file_root.clone(),
                    dir_menu: options.dir_menu,
                    allow_ip: api::IpFilter(Arc::new(move |ip| {
                        allow.iter().any(|range| range.contains(ip))
                    })),
                    hls: options.hls.clone(),
                },
            ));
            tasks.push(tokio::spawn(crate::http::serve(
                listener,
                app,
                options.write_timeout,
                options.http.clone(),
                shared.limits.clone(),
                shutdown_rx.clone(),
            )));
        }

        let mut turn_addr = None;
        if let Some(addr) = options.turn_addr {
            let (bound, task) = crate::turn::start(
                addr,
                options.turn.clone(),
                registry.clone(),
                shared.limits.clone(),
                shutdown_rx.clone(),
            )
            .await?;
            turn_addr = Some(bound);
            tasks.push(task);
        }

        if hooks.enabled(Hook::OnServerStarted) {
            let body = options
                .flat_config
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect();
            let hooks = hooks.clone();
            // Not awaited: a slow backend must not delay the listeners.
            tokio::spawn(async move { hooks.on_server_started(body).await });
        }

        Ok(Server {
            rtmp_addr,
            http_addr,
            rtsp_addr,
            turn_addr,
            registry,
            hooks,
            shutdown,
            tasks,
            lifecycle,
            shared,
            record_manager,
        })
    }

    /// Stops accepting, ends every session, waits for the listeners to finish, sends the
    /// hooks still queued (bounded by the hook timeout) and then on_server_exited.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        // End every stream (those waiting for a dropped publisher too) and give the sessions a
        // moment to let go of them, so their last hooks (regist=false, flow reports) go out.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for stream in self.registry.streams() {
            self.registry.close(&stream.key);
        }
        while !self.registry.streams().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Recordings close their files (and queue on_record_mp4) once their stream ended.
        self.record_manager.abort();
        self.shared.recorders.finish(RECORDING_GRACE).await;
        self.lifecycle.stop().await;
        let config = self.hooks.config();
        let bound = config.timeout.saturating_add(Duration::from_secs(1));
        self.hooks.flush(bound).await;
        if self.hooks.enabled(Hook::OnServerExited) {
            let _ = tokio::time::timeout(bound, self.hooks.on_server_exited()).await;
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
            http: HttpOptions {
                keep_alive: config.http.keep_alive_second,
                header_timeout: crate::http::HEADER_TIMEOUT,
            },
            rtmp: RtmpOptions {
                handshake_timeout: config.rtmp.handshake_second,
                keep_alive: config.rtmp.keep_alive_second,
            },
            rtsp_addr: listen(config.rtsp.port),
            rtsp: RtspOptions {
                handshake_timeout: config.rtsp.handshake_second,
                keep_alive: config.rtsp.keep_alive_second,
                auth_basic: config.rtsp.auth_basic,
            },
            enable_vhost: config.general.enable_vhost,
            max_stream_wait: config.general.max_stream_wait,
            write_timeout: Duration::from_secs(15),
            registry: RegistryConfig::default(),
            turn_addr: listen(config.turn.port),
            turn: turn_options(&config.turn),
            hooks: hook_config(config),
            lifecycle: LifecycleConfig {
                outputs: vec!["rtmp", "rtsp"],
                flow_threshold: config.general.flow_threshold.saturating_mul(1024),
                none_reader_delay: config.general.stream_none_reader_delay,
                alive_interval: config.hook.alive_interval,
            },
            protocol: protocol_options(&config.protocol),
            flat_config: config.to_flat_redacted(),
            record_app: config.record.app_name.clone(),
            file_root: Some(config.http.root_path.clone()),
            dir_menu: config.http.dir_menu,
            allow_ip_range: config.http.allow_ip_range.clone(),
            hls: api::HlsOptions {
                segment: config.hls.seg_dur,
                window: config.hls.seg_num as usize,
                retain: config.hls.seg_retain as usize,
                ..api::HlsOptions::default()
            },
            limits: crate::limits::LimitsConfig {
                max_total: config.general.max_connections as usize,
                max_per_ip: config.general.max_connections_per_ip as usize,
                rtmp: config.rtmp.max_connections as usize,
                rtsp: config.rtsp.max_connections as usize,
                http: config.http.max_connections as usize,
                turn_tcp: config.turn.max_tcp_connections as usize,
            },
        }
    }
}

/// `[hook]` (and `general.mediaServerId`) as the hook client's settings.
fn hook_config(config: &Config) -> HookConfig {
    let h = &config.hook;
    let mut c = HookConfig::default();
    c.enable = h.enable;
    c.timeout = h.timeout_sec;
    c.retry = h.retry;
    c.retry_delay = h.retry_delay;
    c.media_server_id = config.general.media_server_id.clone();
    c.sign_token = (!h.sign_token.is_empty()).then(|| h.sign_token.expose().to_owned());
    c.admin_params = h.admin_params.expose().to_owned();
    c.local_bypass = h.local_bypass;
    c.stream_changed_schemas = h.stream_changed_schemas.clone();
    for (hook, url) in [
        (Hook::OnPublish, &h.on_publish),
        (Hook::OnPlay, &h.on_play),
        (Hook::OnFlowReport, &h.on_flow_report),
        (Hook::OnHttpAccess, &h.on_http_access),
        (Hook::OnRecordMp4, &h.on_record_mp4),
        (Hook::OnRtspRealm, &h.on_rtsp_realm),
        (Hook::OnRtspAuth, &h.on_rtsp_auth),
        (Hook::OnStreamChanged, &h.on_stream_changed),
        (Hook::OnStreamNoneReader, &h.on_stream_none_reader),
        (Hook::OnStreamNotFound, &h.on_stream_not_found),
        (Hook::OnServerStarted, &h.on_server_started),
        (Hook::OnServerKeepalive, &h.on_server_keepalive),
        (Hook::OnServerExited, &h.on_server_exited),
    ] {
        c.set_url(hook, url.clone());
    }
    c
}

/// `[protocol]` as the default settings of every stream.
fn protocol_options(p: &crate::config::Protocol) -> StreamOptions {
    StreamOptions {
        enable_rtmp: p.enable_rtmp,
        enable_rtsp: p.enable_rtsp,
        enable_hls: p.enable_hls,
        enable_ts: p.enable_ts,
        enable_fmp4: p.enable_fmp4,
        enable_mp4: p.enable_mp4,
        enable_audio: p.enable_audio,
        mp4_save_path: p.mp4_save_path.clone(),
        mp4_max_second: p.mp4_max_second,
        hls_save_path: p.hls_save_path.clone(),
        auto_close: p.auto_close,
        continue_push: p.continue_push,
        // Not a `[protocol]` key here: LL-HLS is muxed only while someone watches it, so it is
        // on unless an on_publish reply turns it off.
        enable_hls_fmp4: true,
        modify_stamp: match p.modify_stamp {
            StampMode::Absolute => 0,
            StampMode::System => 1,
            StampMode::Relative => 2,
        },
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
        allow_peers: t
            .allow_peers
            .iter()
            .flat_map(crate::config::IpRange::blocks)
            .filter_map(|(addr, len)| ::turn::policy::Cidr::new(addr, len))
            .collect(),
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
