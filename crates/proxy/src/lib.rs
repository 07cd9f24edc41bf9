//! Streams the server fetches or sends by itself, ZLMediaKit's proxies and RTP server:
//!
//! - pull proxies (`addStreamProxy`): an RTSP, RTMP, HTTP-FLV, HLS or HTTP-TS source becomes a
//!   live stream of `originType` 4, reconnecting with backoff while it has retries left;
//! - push proxies (`addStreamPusherProxy`): a live stream sent to an RTMP or RTSP server;
//! - the RTP server (`openRtpServer`): GB28181 MPEG-PS, MPEG-TS or raw H.264/H.265 over RTP.
//!
//! The protocol work is done by the sans-IO crates (`rtmp`, `rtsp`, `hls`); this crate owns the
//! sockets, timers and retries, as the session drivers of the server crate do for the
//! connections that come in. Every source feeds an [`Ingest`], which admits the stream with
//! on_publish and publishes its frames into the registry like any pushed stream.

use std::sync::Arc;

use registry::{Registry, StreamOptions};

mod error;
mod ingest;

pub use error::ProxyError;
pub use ingest::Ingest;

/// What every proxy needs from the server.
#[derive(Clone)]
pub struct Context {
    /// The live streams.
    pub registry: Registry,
    /// The hook client (on_publish for each proxied stream).
    pub hooks: hooks::Hooks,
    /// Every stream's outputs (a push proxy reads its stream's FLV or RTP output).
    pub outputs: outputs::Outputs,
    /// `[protocol]` now: the defaults a new stream starts from.
    pub protocol: Arc<dyn Fn() -> StreamOptions + Send + Sync>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// `url` without its user and password, for logs and `originUrl`.
pub fn redacted(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}
