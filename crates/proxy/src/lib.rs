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
use std::time::Duration;

use registry::{Registry, StreamOptions};
use tokio::sync::oneshot;

mod error;
mod ingest;
pub mod pull;
pub mod push;
mod rtmp_client;
pub mod rtp_server;
mod status;
mod tasks;
#[doc(hidden)]
pub mod testing;

pub use error::ProxyError;
pub use ingest::Ingest;
pub use pull::{PullInfo, PullRequest, Pulls};
pub use push::{PushInfo, PushRequest, Pushes};
pub use rtp_server::{
    OnlyTrack, OpenRequest, RtpServerConfig, RtpServerError, RtpServerInfo, RtpServers, TcpMode,
};
pub use status::Status;

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

/// How an RTSP source or server carries RTP (addStreamProxy's `rtp_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtpTransport {
    /// Interleaved in the RTSP connection (`rtp_type=0`, the default).
    #[default]
    Tcp,
    /// A UDP port pair per track (`rtp_type=1`).
    Udp,
}

/// Settings of one attempt of a pull or push proxy.
#[derive(Debug, Clone)]
pub struct AttemptOptions {
    /// addStreamProxy's `timeout_sec`: the longest a connect, a request, or a silence of the
    /// peer may take before the attempt fails.
    pub timeout: Duration,
    /// How an RTSP peer carries RTP.
    pub rtp_transport: RtpTransport,
}

impl Default for AttemptOptions {
    fn default() -> Self {
        AttemptOptions {
            timeout: Duration::from_secs(10),
            rtp_transport: RtpTransport::Tcp,
        }
    }
}

/// Tells whoever started a proxy that an attempt got through (a pull is live, a push was
/// accepted by its server): addStreamProxy and addStreamPusherProxy answer then.
#[derive(Debug, Default)]
pub struct Started(Option<oneshot::Sender<()>>);

impl Started {
    /// A signal and the receiver that hears it.
    pub fn new() -> (Started, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Started(Some(tx)), rx)
    }

    /// The attempt got through; later calls do nothing.
    pub fn done(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}
