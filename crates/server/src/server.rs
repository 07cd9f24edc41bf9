//! Starting and stopping the listeners.

use crate::config::{self, Config};
pub use crate::http::HttpOptions;
use crate::listeners::Kind;
pub use crate::rtsp::RtspOptions;
pub use crate::turn::TurnOptions;
use anyhow::Context;
use hooks::{Hook, HookConfig, Hooks, LifecycleConfig};
use registry::{Registry, RegistryConfig, StreamOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
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
/// taken from [`Config`] by [`Options::from_config`] (each part built by its own crate's
/// `From<&Config>`).
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
    /// WS-FLV); meanwhile the registry's ring moves on without it. Not a config key.
    /// Default: 15 s.
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
    pub allow_ip_range: Vec<config::IpRange>,
    /// `[hls]`.
    pub hls: outputs::HlsOptions,
    /// `rtmp.enhanced=0`: H.265 to RTMP and HTTP-FLV players as the legacy CodecID 12 instead
    /// of Enhanced RTMP `hvc1`.
    pub flv_legacy_hevc: bool,
    /// `rtmp.enhancedOpus=1`: Opus to RTMP and HTTP-FLV players as Enhanced RTMP `Opus`;
    /// otherwise they get the video alone when the audio is Opus.
    pub flv_opus: bool,
    /// `general.mergeWriteMS` (at most [`MERGE_WRITE_MAX_MS`]): RTMP and HTTP/WS-FLV viewers
    /// are woken once per that many ms of media.
    pub flv_merge_write_ms: u32,
    /// Connection caps (`general.maxConnections`, `maxConnectionsPerIp`, each listener's
    /// `maxConnections`).
    pub limits: crate::limits::LimitsConfig,
    /// Admin shell listener (`shell.port`).
    pub shell_addr: Option<SocketAddr>,
    /// Admin shell deadlines.
    pub shell: crate::shell::ShellOptions,
    /// WebRTC (`[rtc]`): the media socket and the peers' limits.
    pub rtc: crate::webrtc::RtcOptions,
    /// The GB28181 RTP server (`[rtp_proxy]`); its `shared` is the shared port's address
    /// (`rtp_proxy.port`, UDP and TCP), `None` = off.
    pub rtp_server: proxy::RtpServerConfig,
    /// The running configuration these options were taken from, for the parts that apply
    /// changes live (setServerConfig, SIGHUP). Tests that adjust fields above leave it as is.
    pub config: config::Live,
    /// Seed 004's events (`[events]`, signed with `hook.sign_token`).
    pub events: events::EventsConfig,
    /// The cluster (`[cluster]`); `None` = one node.
    pub cluster: Option<crate::cluster::ClusterOptions>,
}

/// The most `general.mergeWriteMS` is taken as: a second of latency.
pub const MERGE_WRITE_MAX_MS: u32 = 1000;

/// A viewer whose socket accepts nothing for this long is dropped. Not a config key.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a stopping server waits for its sessions to end their streams.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long it waits for recordings to be finished into normal MP4 files.
const RECORDING_GRACE: Duration = Duration::from_secs(60);

/// How long a stopping server gives the event providers to deliver what they hold.
const EVENTS_GRACE: Duration = Duration::from_secs(2);

/// The `admin_params` of ZLMediaKit's sample config.ini, known to everyone who read it.
const ZLM_EXAMPLE_ADMIN_PARAMS: &str = "secret=035c73f7-bb6b-4889-a715-d9eb2d1925cc";

/// State every session shares.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) hooks: Hooks,
    /// `[protocol]` now: every new stream starts from it (setServerConfig and SIGHUP replace
    /// it). A std lock held only to clone it.
    protocol: std::sync::RwLock<StreamOptions>,
    pub(crate) rtsp: RtspOptions,
    /// Every stream's outputs, muxed once for all their viewers.
    pub(crate) outputs: outputs::Outputs,
    pub(crate) rtmp: RtmpOptions,
    pub(crate) enable_vhost: bool,
    pub(crate) max_stream_wait: Duration,
    pub(crate) write_timeout: Duration,
    /// Connection caps of every listener.
    pub(crate) limits: crate::limits::Limits,
}

impl Shared {
    /// The `[protocol]` settings a new stream starts with now.
    pub(crate) fn protocol(&self) -> StreamOptions {
        self.protocol
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_protocol(&self, options: StreamOptions) {
        *self
            .protocol
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = options;
    }
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
    /// The bound admin shell address, if enabled.
    pub shell_addr: Option<SocketAddr>,
    /// The bound shared RTP port (UDP and TCP, `rtp_proxy.port`), if enabled.
    pub rtp_proxy_addr: Option<SocketAddr>,
    /// The bound WebRTC media socket (UDP, `rtc.port`), if enabled.
    pub rtc_addr: Option<SocketAddr>,
    /// The GB28181 RTP server (openRtpServer and the shared port).
    pub rtp: proxy::RtpServers,
    /// The live streams.
    pub registry: Registry,
    /// The hook client.
    pub hooks: Hooks,
    /// The running configuration (the api's setServerConfig changes it through this handle).
    pub config: config::Live,
    shutdown: watch::Sender<bool>,
    /// Set by the api's restartServer.
    restart: Arc<watch::Sender<bool>>,
    /// RTMP, RTSP, HTTP and the admin shell, which config changes may move.
    listeners: Arc<crate::listeners::Listeners>,
    /// Applies config changes while running.
    applier: JoinHandle<()>,
    /// The TURN relay, which a config change may move.
    turn: Arc<TurnSlot>,
    lifecycle: hooks::LifecycleTask,
    recorder: outputs::Recorder,
    /// Pull proxies (addStreamProxy), stopped with the server.
    pulls: proxy::Pulls,
    /// Push proxies (addStreamPusherProxy), stopped with the server.
    pushes: proxy::Pushes,
    /// Seed 004's events (`[events]`): their figures are on `/metrics`.
    pub events: events::Events,
    /// The cluster's directory, when `[cluster] nats` is set.
    pub cluster: Option<events::Cluster>,
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
        let lifecycle_schemas = lifecycle_config.outputs.clone();
        let lifecycle = hooks::spawn_lifecycle(hooks.clone(), registry.clone(), lifecycle_config);
        // ZLMediaKit's rule: the API never runs with an empty secret. The binary has made one
        // already (and logged it); a server embedded with none gets a random one here.
        if options.config.get().api.secret.is_empty() {
            let mut api = options.config.get().api.clone();
            api.ensure_secret();
            options
                .config
                .set([("api.secret", api.secret.expose())])
                .context("set a random api.secret")?;
        }
        let restart = Arc::new(watch::channel(false).0);
        let outputs = outputs::Outputs::new(
            registry.clone(),
            outputs::OutputsConfig {
                flv_legacy_hevc: options.flv_legacy_hevc,
                flv_opus: options.flv_opus,
                flv_merge_write_ms: options.flv_merge_write_ms,
                rtsp: ::rtsp::RtspConfig::default(),
                hls: options.hls.clone(),
                enable_vhost: options.enable_vhost,
                rtc_queue_bytes: options.rtc.max_queue_bytes,
            },
        );
        let shared = Arc::new(Shared {
            registry: registry.clone(),
            hooks: hooks.clone(),
            protocol: std::sync::RwLock::new(options.protocol.clone()),
            rtsp: options.rtsp.clone(),
            outputs: outputs.clone(),
            rtmp: options.rtmp.clone(),
            enable_vhost: options.enable_vhost,
            max_stream_wait: options.max_stream_wait,
            write_timeout: options.write_timeout,
            limits: crate::limits::Limits::new(options.limits),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let proxy_ctx = proxy::Context {
            registry: registry.clone(),
            hooks: hooks.clone(),
            outputs: outputs.clone(),
            protocol: {
                let shared = Arc::clone(&shared);
                Arc::new(move || shared.protocol())
            },
        };
        let pulls = proxy::Pulls::new(proxy_ctx.clone());
        let pushes = proxy::Pushes::new(proxy_ctx.clone());
        let rtp = start_rtp(&options, proxy_ctx).await?;
        let events = events::Events::start(options.events.clone(), &registry);
        let recorder = {
            let (hooks, events) = (hooks.clone(), events.clone());
            outputs::Recorder::start(
                registry.clone(),
                outputs::RecordConfig {
                    app: options.record_app.clone(),
                    enable_vhost: options.enable_vhost,
                },
                move |file| {
                    events.record(&file);
                    hooks.on_record_mp4(&file);
                },
            )
        };

        let listeners = Arc::new(crate::listeners::Listeners::default());
        let turn_figures = watch::channel(None).0;
        let turn_credentials = watch::channel(crate::turn::credentials(&options.turn)).0;
        let rtmp_addr = {
            let (shared, sessions) = (Arc::clone(&shared), shutdown_rx.clone());
            let spawn: crate::listeners::Spawn = Box::new(move |listener, _bound, accept| {
                tokio::spawn(crate::rtmp::serve(
                    listener,
                    Arc::clone(&shared),
                    accept,
                    sessions.clone(),
                ))
            });
            listeners
                .start(Kind::Rtmp, options.rtmp_addr, spawn)
                .await
                .with_context(|| format!("bind RTMP on {:?}", options.rtmp_addr))?
        };
        let rtsp_addr = {
            let (shared, sessions) = (Arc::clone(&shared), shutdown_rx.clone());
            let spawn: crate::listeners::Spawn = Box::new(move |listener, _bound, accept| {
                tokio::spawn(crate::rtsp::serve(
                    listener,
                    Arc::clone(&shared),
                    accept,
                    sessions.clone(),
                ))
            });
            listeners
                .start(Kind::Rtsp, options.rtsp_addr, spawn)
                .await
                .with_context(|| format!("bind RTSP on {:?}", options.rtsp_addr))?
        };
        // The cluster's directory names this node's RTMP listener, so it starts once that is
        // bound; plays look there before on_stream_not_found.
        let cluster = match (&options.cluster, rtmp_addr) {
            (Some(c), Some(rtmp)) => {
                let cluster =
                    events::Cluster::start(c.directory(options.events.node, rtmp), &registry);
                hooks.set_remote(Arc::new(crate::cluster::Edge {
                    cluster: cluster.clone(),
                    pulls: pulls.clone(),
                }));
                Some(cluster)
            }
            (Some(_), None) => {
                tracing::error!(
                    "cluster.nats is set but RTMP is off: this node stays out of the cluster"
                );
                None
            }
            _ => None,
        };
        // The TURN port the answers' Link headers name, known once the relay is bound.
        let turn_port = Arc::new(std::sync::atomic::AtomicU16::new(0));
        let rtc = crate::webrtc::start(
            &options.rtc,
            Arc::clone(&shared),
            crate::webrtc::turn_ice_servers(
                Arc::clone(&turn_port),
                turn_credentials.subscribe(),
                options.turn.server.external_ip,
            ),
            shutdown_rx.clone(),
        )
        .await?;
        let http_addr = {
            let allow = options.allow_ip_range.clone();
            let mut state = api::AppState::new(
                outputs.clone(),
                hooks.clone(),
                options.config.clone(),
                api::ApiOptions {
                    enable_vhost: options.enable_vhost,
                    max_stream_wait: options.max_stream_wait,
                    local_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    file_root: options.file_root.clone(),
                    dir_menu: options.dir_menu,
                    allow_ip: api::IpFilter(Arc::new(move |ip| api::ip_allowed(&allow, ip))),
                    hls_idle: options.hls.idle,
                    schemas: lifecycle_schemas.clone(),
                },
            );
            state.recorder = Some(recorder.control());
            state.restart = Some(Arc::clone(&restart));
            state.pulls = Some(pulls.clone());
            state.pushes = Some(pushes.clone());
            state.turn = Some(turn_figures.subscribe());
            state.rtp = Some(rtp.clone());
            state.events = Some(events.clone());
            state.cluster = cluster.clone();
            state.webrtc = rtc
                .as_ref()
                .map(|(_, engine)| Arc::clone(engine) as Arc<dyn api::webrtc::WebRtc>);
            let (limits, sessions) = (shared.limits.clone(), shutdown_rx.clone());
            let (write_timeout, http) = (options.write_timeout, options.http.clone());
            let spawn: crate::listeners::Spawn = Box::new(move |listener, bound, accept| {
                // One state for every port the listener moves to (logins, HLS viewers, grants
                // are kept); only the local address reported for sessions changes.
                let mut state = state.clone();
                state.options.local_addr = bound;
                tokio::spawn(crate::http::serve(
                    listener,
                    state,
                    write_timeout,
                    http.clone(),
                    limits.clone(),
                    accept,
                    sessions.clone(),
                ))
            });
            listeners
                .start(Kind::Http, options.http_addr, spawn)
                .await
                .with_context(|| format!("bind HTTP on {:?}", options.http_addr))?
        };

        let turn = {
            let mut turn_options = options.turn.clone();
            if let Some((addr, _)) = &rtc {
                // The relay always lets WebRTC viewers reach this server's own media port.
                turn_options.server.own_media_ports.push(addr.port());
            }
            let (turn, registry, limits, events) = (
                turn_options,
                registry.clone(),
                shared.limits.clone(),
                events.clone(),
            );
            let (figures, credentials, shutdown) = (
                turn_figures.clone(),
                turn_credentials.clone(),
                shutdown_rx.clone(),
            );
            let start: TurnStart = Box::new(move |addr, drain| {
                Box::pin(crate::turn::start(
                    addr,
                    turn.clone(),
                    registry.clone(),
                    limits.clone(),
                    crate::turn::Links {
                        figures: figures.clone(),
                        credentials: credentials.subscribe(),
                        drain,
                        events: events.clone(),
                    },
                    shutdown.clone(),
                ))
            });
            Arc::new(TurnSlot::new(start))
        };
        let turn_addr = match options.turn_addr {
            Some(addr) => Some(turn.start(addr, &listeners).await?),
            None => None,
        };
        if let Some(addr) = turn_addr {
            turn_port.store(addr.port(), std::sync::atomic::Ordering::Relaxed);
        }

        let shell_addr = {
            let (shared, sessions) = (Arc::clone(&shared), shutdown_rx.clone());
            let (live, shell) = (options.config.clone(), options.shell.clone());
            let spawn: crate::listeners::Spawn = Box::new(move |listener, _bound, accept| {
                tokio::spawn(crate::shell::serve(
                    listener,
                    Arc::clone(&shared),
                    live.clone(),
                    shell.clone(),
                    accept,
                    sessions.clone(),
                ))
            });
            listeners
                .start(Kind::Shell, options.shell_addr, spawn)
                .await
                .with_context(|| format!("bind the admin shell on {:?}", options.shell_addr))?
        };

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
            shell_addr,
            rtp_proxy_addr: rtp.shared_addr(),
            rtc_addr: rtc.as_ref().map(|(addr, _)| *addr),
            rtp: rtp.clone(),
            registry,
            hooks,
            config: options.config.clone(),
            shutdown,
            restart,
            applier: spawn_applier(
                options.config.clone(),
                Arc::clone(&shared),
                outputs.clone(),
                Arc::clone(&listeners),
                turn_credentials,
                Arc::clone(&turn),
                (rtp.clone(), options.rtp_server.bind_ip),
            ),
            turn,
            listeners,
            lifecycle,
            recorder,
            pulls,
            pushes,
            events,
            cluster,
        })
    }

    /// The address the RTMP (RTSP, HTTP) listener is bound to now: a config change may have
    /// moved it since start (the `*_addr` fields keep the start's).
    pub fn rtmp_addr_now(&self) -> Option<SocketAddr> {
        self.listeners.addr(Kind::Rtmp)
    }

    /// See [`Server::rtmp_addr_now`].
    pub fn rtsp_addr_now(&self) -> Option<SocketAddr> {
        self.listeners.addr(Kind::Rtsp)
    }

    /// See [`Server::rtmp_addr_now`].
    pub fn http_addr_now(&self) -> Option<SocketAddr> {
        self.listeners.addr(Kind::Http)
    }

    /// The address the TURN relay takes new allocations on now (UDP and TCP).
    pub fn turn_addr_now(&self) -> Option<SocketAddr> {
        self.turn.addr()
    }

    /// See [`Server::rtmp_addr_now`].
    pub fn shell_addr_now(&self) -> Option<SocketAddr> {
        self.listeners.addr(Kind::Shell)
    }

    /// Resolves when restartServer asked this server to stop and start again.
    pub async fn restart_requested(&self) {
        let mut rx = self.restart.subscribe();
        let _ = rx.wait_for(|restart| *restart).await;
    }

    /// Stops accepting, ends every session, waits for the listeners to finish, sends the
    /// hooks still queued (bounded by the hook timeout) and then on_server_exited.
    pub async fn shutdown(self) {
        self.applier.abort();
        let _ = self.shutdown.send(true);
        // The listeners' accept loops and the TURN relay(s) end with the shutdown watch.
        self.listeners.stop().await;
        // Other nodes stop pulling from here.
        if let Some(cluster) = &self.cluster {
            cluster.stop(&self.registry).await;
        }
        // Proxies are sessions the server started itself: they end with it.
        self.pushes.shutdown();
        self.pulls.shutdown();
        self.rtp.shutdown();
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
        self.recorder.finish(RECORDING_GRACE).await;
        self.lifecycle.stop().await;
        let config = self.hooks.config();
        let bound = config.timeout.saturating_add(Duration::from_secs(1));
        self.hooks.flush(bound).await;
        if self.hooks.enabled(Hook::OnServerExited) {
            let _ = tokio::time::timeout(bound, self.hooks.on_server_exited()).await;
        }
        // The streams' last events (ended, left) go out if their sinks take them in time.
        self.events.stop(EVENTS_GRACE).await;
    }
}

/// Starts a TURN relay on an address; it drains (no new allocation, ends after its last)
/// when the receiver turns true.
type TurnStart = Box<
    dyn Fn(
            SocketAddr,
            watch::Receiver<bool>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = anyhow::Result<(SocketAddr, JoinHandle<()>)>>
                    + Send,
            >,
        > + Send
        + Sync,
>;

/// The TURN relay a changed `turn.port` moves: a relay starts on the new port, and the old one
/// takes no new allocation (508) but keeps those it has until they end, so no client loses
/// its relay. Port 0 drains the relay and starts none.
struct TurnSlot {
    start: TurnStart,
    current: std::sync::Mutex<Option<(SocketAddr, watch::Sender<bool>)>>,
}

impl TurnSlot {
    fn new(start: TurnStart) -> Self {
        TurnSlot {
            start,
            current: std::sync::Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(SocketAddr, watch::Sender<bool>)>> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn addr(&self) -> Option<SocketAddr> {
        self.lock().as_ref().map(|(addr, _)| *addr)
    }

    /// Starts a relay on `addr`; its task is kept with the listeners' (the server waits for
    /// it on shutdown). The relay it replaces, if any, drains.
    async fn start(
        &self,
        addr: SocketAddr,
        listeners: &crate::listeners::Listeners,
    ) -> anyhow::Result<SocketAddr> {
        let (drain, drained) = watch::channel(false);
        let (bound, task) = (self.start)(addr, drained).await?;
        listeners.adopt(task);
        if let Some((old, drain)) = self.lock().replace((bound, drain)) {
            drain.send_replace(true);
            tracing::info!("TURN moved from {old} to {bound}; {old} drains");
        }
        Ok(bound)
    }

    async fn move_to(&self, port: u16, listeners: &crate::listeners::Listeners) {
        let now = self.addr();
        if now.map(|a| a.port()) == Some(port) {
            return;
        }
        if port == 0 {
            if let Some((old, drain)) = self.lock().take() {
                drain.send_replace(true);
                tracing::info!("TURN turned off: {old} drains");
            }
            return;
        }
        let ip = now.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        if let Err(e) = self.start(SocketAddr::new(ip, port), listeners).await {
            tracing::error!("TURN stays where it was: {e:#}");
        }
    }
}

/// Applies each change of the running config (setServerConfig, SIGHUP) to what can change
/// while running: the hooks (URLs, timeouts, retries, signing), the `[protocol]` defaults of
/// new streams, the `[hls]` settings of HLS that starts from now on, the TURN users, and the
/// RTMP, RTSP, HTTP and admin shell ports (moved without dropping a session). Other keys take
/// effect at the next start;
/// each change says which keys it applied in the log.
fn spawn_applier(
    live: config::Live,
    shared: Arc<Shared>,
    outputs: outputs::Outputs,
    listeners: Arc<crate::listeners::Listeners>,
    turn_credentials: watch::Sender<crate::turn::Credentials>,
    turn: Arc<TurnSlot>,
    rtp: (proxy::RtpServers, std::net::IpAddr),
) -> JoinHandle<()> {
    let mut changes = live.subscribe();
    let mut prev = Arc::clone(&changes.borrow_and_update());
    live.mark_applied(&prev);
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let next = Arc::clone(&changes.borrow_and_update());
            let mut applied = Vec::new();
            if prev.hook != next.hook
                || prev.general.media_server_id != next.general.media_server_id
            {
                shared.hooks.set_config(HookConfig::from(&*next));
                applied.push("hook");
            }
            if prev.protocol != next.protocol {
                shared.set_protocol(StreamOptions::from(&*next));
                applied.push("protocol");
            }
            if prev.turn.users != next.turn.users || prev.turn.auth_secret != next.turn.auth_secret
            {
                turn_credentials.send_replace(crate::turn::credentials(&TurnOptions::from(&*next)));
                applied.push("turn.users");
            }
            if prev.hls != next.hls {
                outputs.set_hls(outputs::HlsOptions::from(&*next));
                applied.push("hls");
            }
            if prev.turn.port != next.turn.port {
                turn.move_to(next.turn.port, &listeners).await;
                applied.push("turn.port");
            }
            for (kind, old, new) in [
                (Kind::Rtmp, prev.rtmp.port, next.rtmp.port),
                (Kind::Rtsp, prev.rtsp.port, next.rtsp.port),
                (Kind::Http, prev.http.port, next.http.port),
                (Kind::Shell, prev.shell.port, next.shell.port),
            ] {
                if old != new {
                    listeners.move_to(kind, new).await;
                    applied.push(match kind {
                        Kind::Rtmp => "rtmp.port",
                        Kind::Rtsp => "rtsp.port",
                        Kind::Http => "http.port",
                        Kind::Shell => "shell.port",
                    });
                }
            }
            if prev.rtp_proxy != next.rtp_proxy {
                let (servers, bind_ip) = &rtp;
                // The shared port moves only when its port changed (a test or an embedder may
                // have it on another address than `0.0.0.0:{port}`).
                let shared = if prev.rtp_proxy.port == next.rtp_proxy.port {
                    servers.shared_addr()
                } else {
                    let ip = servers.shared_addr().map_or(*bind_ip, |a| a.ip());
                    next.rtp_proxy
                        .listen_port()
                        .map(|port| SocketAddr::new(ip, port))
                };
                let config = proxy::RtpServerConfig {
                    bind_ip: *bind_ip,
                    ..rtp_server_config(&next, shared)
                };
                match servers.set_config(config) {
                    Ok(()) => applied.push("rtp_proxy"),
                    Err(e) => tracing::error!("rtp_proxy.port: cannot bind {shared:?}: {e}"),
                }
            }
            if !applied.is_empty() {
                tracing::info!(?applied, "config change applied");
            }
            live.mark_applied(&next);
            prev = next;
        }
    })
}

impl Options {
    /// The options `config` describes, with a [`config::Live`] of it that writes nowhere (tests,
    /// benches). A port of 0 disables its listener.
    pub fn from_config(config: &Config) -> Options {
        Options::from_live(config::Live::new(config.clone(), None))
    }

    /// The options `live`'s config describes now, keeping `live` for the parts that follow
    /// its changes. A port of 0 disables its listener.
    pub fn from_live(live: config::Live) -> Options {
        let config = live.get();
        let c = &*config;
        let listen = |port: Option<u16>| port.map(|port| SocketAddr::from(([0, 0, 0, 0], port)));
        Options {
            rtmp_addr: listen(c.rtmp.listen_port()),
            http_addr: listen(c.http.listen_port()),
            http: HttpOptions::from(c),
            rtmp: RtmpOptions::from(c),
            rtsp_addr: listen(c.rtsp.listen_port()),
            rtsp: RtspOptions::from(c),
            enable_vhost: c.general.enable_vhost,
            max_stream_wait: c.general.max_stream_wait,
            write_timeout: WRITE_TIMEOUT,
            registry: RegistryConfig::default(),
            turn_addr: listen(c.turn.listen_port()),
            turn: TurnOptions::from(c),
            hooks: HookConfig::from(c),
            lifecycle: LifecycleConfig::new(c, vec!["rtmp", "rtsp"]),
            protocol: StreamOptions::from(c),
            flat_config: c.to_flat_redacted(),
            record_app: c.record.app_name.clone(),
            file_root: Some(c.http.root_path.clone()),
            dir_menu: c.http.dir_menu,
            allow_ip_range: c.http.allow_ip_range.clone(),
            hls: outputs::HlsOptions::from(c),
            flv_legacy_hevc: !c.rtmp.enhanced,
            flv_opus: c.rtmp.enhanced_opus,
            flv_merge_write_ms: c.general.merge_write_ms.min(MERGE_WRITE_MAX_MS),
            limits: crate::limits::LimitsConfig::from(c),
            shell_addr: listen(c.shell.listen_port()),
            shell: crate::shell::ShellOptions::default(),
            rtp_server: rtp_server_config(c, listen(c.rtp_proxy.listen_port())),
            rtc: crate::webrtc::RtcOptions::from(c),
            config: live.clone(),
            events: events::EventsConfig::from(c),
            cluster: crate::cluster::ClusterOptions::from_config(c),
        }
    }
}

/// `[rtp_proxy]` as the RTP server takes it, with its shared port at `shared`.
fn rtp_server_config(config: &Config, shared: Option<SocketAddr>) -> proxy::RtpServerConfig {
    let r = &config.rtp_proxy;
    proxy::RtpServerConfig {
        shared,
        port_range: r.port_range.clone(),
        timeout: r.timeout_sec,
        ps_pt: r.ps_pt,
        h264_pt: r.h264_pt,
        h265_pt: r.h265_pt,
        ..proxy::RtpServerConfig::default()
    }
}

/// Starts the GB28181 RTP server, binding its shared port.
async fn start_rtp(options: &Options, ctx: proxy::Context) -> anyhow::Result<proxy::RtpServers> {
    proxy::RtpServers::start(ctx, options.rtp_server.clone())
        .await
        .with_context(|| format!("bind the RTP port on {:?}", options.rtp_server.shared))
}

impl From<&Config> for RtmpOptions {
    fn from(config: &Config) -> Self {
        RtmpOptions {
            handshake_timeout: config.rtmp.handshake_second,
            keep_alive: config.rtmp.keep_alive_second,
        }
    }
}
