//! ferrostream's HTTP side: axum routes for live playback over HTTP. HTTP only: the bytes come
//! muxed from the `outputs` crate, so this crate depends on no protocol crate.
//!
//! - `GET /{app}/{stream}.live.flv`: HTTP-FLV, an endless chunked FLV body, once on_play
//!   allowed it (401 with the backend's message otherwise).
//! - The same path with a WebSocket upgrade: WS-FLV (what mpegts.js in a browser reads), one
//!   binary message per FLV tag.
//!
//! Each live response is a reader of one of the stream's outputs turned into bytes: the
//! stream's FLV tags (TS chunks, fMP4 fragments) are made once per stream by its output and
//! handed to every viewer as shared [`bytes::Bytes`]; the response pulls the next one only when
//! the socket took the last one, so a slow viewer falls behind in the output's bounded ring (and
//! skips to a keyframe) instead of growing a buffer here. Each viewer also holds a
//! [`registry::Viewer`]: its place in the reader count, the session table and on_flow_report.
//!
//! The crate owns no listener: the server binds the socket and serves [`router`] on it with
//! `into_make_service_with_connect_info::<SocketAddr>()`.
//!
//! - `GET /{app}/{stream}.live.ts` and `.live.mp4`: MPEG-TS and fragmented MP4, plain or over
//!   a WebSocket.
//! - `GET /{app}/{stream}/hls.m3u8` (MPEG-TS HLS) and `/{app}/{stream}/hls.fmp4.m3u8` (LL-HLS),
//!   with their segments and parts.
//! - `/index/api/{name}`: ZLMediaKit's REST API (the `rest` module).
//! - `/index/api/whep`, `whip`, `webrtc`, `delete_webrtc`: WebRTC signalling (the [`webrtc`]
//!   module), answered by the server's engine behind [`webrtc::WebRtc`].
//! - `/metrics`: Prometheus figures (the `metrics` module).
//! - Any other path: a file under `http.rootPath` (Range requests, directory listings,
//!   on_http_access).
//!
//! Layout:
//! - `lib.rs`: [`AppState`], [`ApiOptions`], [`router`], dispatch by path.
//! - `flv.rs`: HTTP-FLV and WS-FLV responses.
//! - `live.rs`: `.live.ts` and `.live.mp4` responses.
//! - `hls.rs`: HLS and LL-HLS requests and their viewers.
//! - `viewing.rs`: admitting a live viewer and turning an output's reader into a body.
//! - `files.rs`: the file server.
//! - `console.rs`: the web console (`www/`, embedded), at `/` unless the file root has its own.
//! - `rest/`: the REST API.
//! - `metrics.rs`: `/metrics`.
//! - `webrtc.rs`: WHEP/WHIP signalling.
//! - `tokens.rs`: bounded, expiring random tokens (on_http_access grants, API logins).
//! - `ws.rs`: the WebSocket send loop of the live outputs, which also reads what the viewer
//!   sends (Close, ping, EOF).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod console;
mod files;
pub mod flv;
mod hls;
mod live;
mod metrics;
mod rest;
mod tokens;
mod viewing;
pub mod webrtc;
mod ws;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use registry::Registry;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings the HTTP routes need, built from a [`config::Config`] (`Default`: the config
/// table's defaults).
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `general.enableVhost`: take the vhost from the Host header or `?vhost=`.
    pub enable_vhost: bool,
    /// `general.maxStreamWaitMS`: how long a viewer waits for a stream that is not live yet.
    pub max_stream_wait: Duration,
    /// The address the HTTP listener is bound to (reported as the session's local address).
    pub local_addr: SocketAddr,
    /// `http.rootPath`: files served under `/`; `None` = no file server.
    pub file_root: Option<PathBuf>,
    /// `http.dirMenu`: list directories that have no `index.html`.
    pub dir_menu: bool,
    /// `http.allow_ip_range`: who may read files when on_http_access is off.
    pub allow_ip: IpFilter,
    /// `hls`: how long an HLS viewer is remembered after its last request (its on_play
    /// decision is reused until then). Default: 60 s (ZLMediaKit's).
    pub hls_idle: Duration,
    /// The output schemas a stream is listed with (getMediaList, one entry each), the same
    /// list on_stream_changed reports. Default: `rtmp`, `rtsp`.
    pub schemas: Vec<&'static str>,
}

/// Whether `http.allow_ip_range` (`list`) lets `ip` in: an empty list lets everyone in, as
/// ZLMediaKit's `isIPAllowed` does.
pub fn ip_allowed(list: &[config::IpRange], ip: IpAddr) -> bool {
    list.is_empty() || config::IpRange::any_contains(list, ip.to_canonical())
}

/// A predicate on client addresses (`http.allow_ip_range`).
#[derive(Clone)]
pub struct IpFilter(pub Arc<dyn Fn(IpAddr) -> bool + Send + Sync>);

impl std::ops::Deref for IpFilter {
    type Target = dyn Fn(IpAddr) -> bool + Send + Sync;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for IpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IpFilter")
    }
}

impl Default for ApiOptions {
    /// The config table's defaults, bound nowhere (`0.0.0.0:0`).
    fn default() -> Self {
        ApiOptions::from(&config::Config::default())
    }
}

impl From<&config::Config> for ApiOptions {
    /// The settings `config` gives; `local_addr` is `0.0.0.0:0` until the server has bound.
    fn from(config: &config::Config) -> Self {
        let allow = config.http.allow_ip_range.clone();
        ApiOptions {
            enable_vhost: config.general.enable_vhost,
            max_stream_wait: config.general.max_stream_wait,
            local_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            file_root: Some(config.http.root_path.clone()),
            dir_menu: config.http.dir_menu,
            allow_ip: IpFilter(Arc::new(move |ip| ip_allowed(&allow, ip))),
            hls_idle: outputs::HlsOptions::from(config).idle,
            schemas: vec!["rtmp", "rtsp"],
        }
    }
}

/// What the embedded TURN relay reports for `/metrics` (the server converts its relay's
/// counters; this crate knows no protocol crate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnFigures {
    /// Allocations now.
    pub allocations: u64,
    /// Payload bytes relayed, both directions, since the start.
    pub relayed_bytes: u64,
    /// Packets relayed, both directions, since the start.
    pub relayed_packets: u64,
    /// Requests refused for credentials since the start.
    pub auth_failures: u64,
    /// Inputs that did not decode or were dropped, since the start.
    pub dropped: u64,
}

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    /// The live streams.
    pub registry: Registry,
    /// Every stream's outputs (FLV, `.live.ts`/`.live.mp4`, HLS).
    pub outputs: outputs::Outputs,
    /// The hook client (on_play, on_stream_not_found, on_http_access).
    pub hooks: hooks::Hooks,
    /// The running configuration (getServerConfig, setServerConfig).
    pub config: config::Live,
    /// Settings.
    pub options: ApiOptions,
    /// on_http_access decisions remembered per client cookie.
    grants: Arc<files::Grants>,
    /// Every HLS viewer.
    hls: Arc<hls::HlsViewers>,
    /// API logins (ZLMediaKit's cookie login).
    logins: Arc<rest::Logins>,
    /// getSnap's cache and ffmpeg permits.
    snaps: Arc<rest::Snaps>,
    /// Starts and stops recordings (startRecord, stopRecord); `None` = no recorder.
    pub recorder: Option<outputs::RecordControl>,
    /// The embedded TURN relay's figures for `/metrics` (`None` inside: TURN is off or has not
    /// reported yet; the whole field `None`: no relay).
    pub turn: Option<tokio::sync::watch::Receiver<Option<TurnFigures>>>,
    /// Set to true by restartServer; the binary stops and starts again when it sees it.
    /// `None` = the server cannot restart itself.
    pub restart: Option<Arc<tokio::sync::watch::Sender<bool>>>,
    /// The GB28181 RTP server (openRtpServer, …); `None` = the calls do not exist.
    pub rtp: Option<proxy::RtpServers>,
    /// Pull proxies (addStreamProxy…); `None` = the proxy calls fail.
    pub pulls: Option<proxy::Pulls>,
    /// Push proxies (addStreamPusherProxy…); `None` = those calls fail.
    pub pushes: Option<proxy::Pushes>,
    /// Seed 004's event providers, for `/metrics`; `None` = none.
    pub events: Option<events::Events>,
    /// The cluster's directory (getMediaList `cluster=1`); `None` = one node.
    pub cluster: Option<events::Cluster>,
    /// The WebRTC engine (WHEP/WHIP); `None` = WebRTC is off and offers get 503.
    pub webrtc: Option<Arc<dyn webrtc::WebRtc>>,
}

impl AppState {
    /// The state of a router serving `outputs`' streams with `hooks`, `config` and `options`
    /// (the settings taken from `config` at start).
    pub fn new(
        outputs: outputs::Outputs,
        hooks: hooks::Hooks,
        config: config::Live,
        options: ApiOptions,
    ) -> Self {
        AppState {
            registry: outputs.registry().clone(),
            outputs,
            hooks,
            config,
            options,
            grants: Arc::default(),
            hls: Arc::default(),
            logins: Arc::default(),
            snaps: Arc::default(),
            recorder: None,
            turn: None,
            restart: None,
            rtp: None,
            pulls: None,
            pushes: None,
            events: None,
            cluster: None,
            webrtc: None,
        }
    }
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    // Stream paths may hold any number of slashes (`/app/a/b.live.flv`), so live paths are
    // matched by suffix in a fallback rather than by route patterns.
    Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::map_response(allow_any_origin))
        .with_state(state)
}

/// Live outputs by suffix, then files under the root.
async fn dispatch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    let path = req.uri().path().to_owned();
    if rest::is_api(&path) {
        return rest::serve(&state, peer, req).await;
    }
    if path == metrics::PATH && req.method() == axum::http::Method::GET {
        return metrics::serve(&state, peer, req.uri().query().unwrap_or(""), req.headers());
    }
    if path.ends_with(flv::SUFFIX) {
        return flv::live(state, peer, req).await;
    }
    if live::from_path(&path).is_some() {
        return live::serve(state, peer, req).await;
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    if req.method() == axum::http::Method::GET {
        if let Some(resp) = hls::serve(&state, peer, &path, &query, req.headers()).await {
            return resp;
        }
    }
    if let Some(resp) = console::serve(&state, req.method(), &path, req.headers()).await {
        return resp;
    }
    match files::serve(&state, peer, req.method(), &path, &query, req.headers()).await {
        Some(resp) => resp,
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The stream an HTTP request for `stem` (the path without its output suffix) names; answer
/// an error with [`bad_name`].
pub(crate) fn stream_key(
    state: &AppState,
    stem: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
) -> Result<media::StreamKey, media::KeyError> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    media::StreamKey::from_url(state.options.enable_vhost, stem, query, host)
}

/// `400 Bad Request` for a path or vhost that is not a valid stream address.
pub(crate) fn bad_name(e: &media::KeyError) -> Response {
    tracing::info!("refused: {e}");
    (StatusCode::BAD_REQUEST, format!("bad stream name: {e}")).into_response()
}

/// Browsers play our streams with mpegts.js from pages on other origins; they must see every
/// answer, errors included (a 404 must reach the player as a 404, not an opaque network error).
async fn allow_any_origin(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        axum::http::HeaderValue::from_static("*"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::{header, Request, StatusCode};
    use tower::ServiceExt;

    fn app() -> Router {
        router(AppState::new(
            outputs::Outputs::new(Registry::default(), outputs::OutputsConfig::default()),
            hooks::Hooks::new(hooks::HookConfig::default()),
            config::Live::default(),
            ApiOptions {
                max_stream_wait: Duration::from_millis(10),
                ..ApiOptions::default()
            },
        ))
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))))
    }

    #[tokio::test]
    async fn errors_carry_cors_too() {
        for (uri, status) in [
            ("/live/missing.live.flv", StatusCode::NOT_FOUND),
            ("/nothing/here", StatusCode::NOT_FOUND),
        ] {
            let req = Request::get(uri).body(Body::empty()).expect("request");
            let resp = app().oneshot(req).await.expect("response");
            assert_eq!(resp.status(), status, "{uri}");
            assert_eq!(
                resp.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
                Some(&axum::http::HeaderValue::from_static("*")),
                "{uri}"
            );
        }
        let req = Request::post("/live/a.live.flv")
            .body(Body::empty())
            .expect("request");
        let resp = app().oneshot(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
