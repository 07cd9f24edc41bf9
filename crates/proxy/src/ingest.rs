//! [`Ingest`]: what every pulled or received source feeds, and how it becomes a live stream.

use std::net::SocketAddr;

use media::{Frame, Metadata, StreamKey, TrackInfo};
use registry::{Protocol, PublisherGuard, SessionInfo, StreamOptions};

use std::sync::Arc;

use crate::{Context, ProxyError, Started, Status};

/// One stream the server fetches (a pull proxy) or receives without a client session of its own
/// (the RTP server). The source driver calls [`Ingest::live`] once it is connected and knows
/// its tracks are coming, then [`Ingest::set_track`] and [`Ingest::push`].
///
/// The stream stays live across a reconnect of the source: the publisher guard lives in the
/// `Ingest`, not in the attempt, so viewers stay attached and the timeline goes on
/// ([`registry::PublisherGuard::resume`]). Dropping the `Ingest` ends the stream.
pub struct Ingest {
    ctx: Context,
    key: StreamKey,
    protocol: Protocol,
    /// The source's URL without credentials (`originUrl`), `None` for the RTP server.
    origin_url: Option<String>,
    /// ZLMediaKit's ProtocolOption given with the request (addStreamProxy's `enable_hls`, …):
    /// applied over `[protocol]`, then the on_publish reply over both.
    overrides: serde_json::Map<String, serde_json::Value>,
    guard: Option<PublisherGuard>,
    /// Attempts that reached [`Ingest::live`].
    connects: u64,
    /// Signalled by the first [`Ingest::live`].
    started: Started,
    /// Told when an attempt goes live.
    status: Option<Arc<Status>>,
}

impl Ingest {
    /// A stream named `key`, published as `protocol` ([`Protocol::Pull`] or [`Protocol::Rtp`]),
    /// not live yet.
    pub fn new(
        ctx: Context,
        key: StreamKey,
        protocol: Protocol,
        origin_url: Option<String>,
        overrides: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Ingest {
            ctx,
            key,
            protocol,
            origin_url,
            overrides,
            guard: None,
            connects: 0,
            started: Started::default(),
            status: None,
        }
    }

    /// Reports each attempt that goes live to `status`.
    pub fn with_status(mut self, status: Arc<Status>) -> Self {
        self.status = Some(status);
        self
    }

    /// Signals `started` when the stream first goes live.
    pub fn with_started(mut self, started: Started) -> Self {
        self.started = started;
        self
    }

    /// The stream's name.
    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// The source is connected over `peer` ↔ `local` and media follows. The first time, the
    /// stream is admitted (on_publish, with the request's options over `[protocol]`) and goes
    /// live; after a reconnect the live stream resumes, its timeline continuing.
    pub async fn live(&mut self, peer: SocketAddr, local: SocketAddr) -> Result<(), ProxyError> {
        self.connects += 1;
        if let Some(guard) = &self.guard {
            if guard.is_closed() {
                return Err(ProxyError::Closed);
            }
            guard.resume();
            if let Some(status) = &self.status {
                status.went_live();
            }
            return Ok(());
        }
        let session = SessionInfo {
            id: self.ctx.registry.next_session_id(),
            protocol: self.protocol,
            peer,
            local,
            params: String::new(),
        };
        let (defaults, _) = hooks::stream_options(&self.overrides, &(self.ctx.protocol)());
        let guard = hooks::admit_publish(
            &self.ctx.hooks,
            &self.ctx.registry,
            self.key.clone(),
            session,
            &defaults,
        )
        .await
        .map_err(|refusal| ProxyError::Denied(refusal.to_string()))?;
        if let Some(url) = &self.origin_url {
            guard.set_origin_url(url.clone());
        }
        // on_publish may have renamed it (stream_replace).
        self.key = guard.key().clone();
        tracing::info!(stream = %self.key, "source live");
        self.guard = Some(guard);
        if let Some(status) = &self.status {
            status.went_live();
        }
        self.started.done();
        Ok(())
    }

    /// Whether the stream is live (the first [`Ingest::live`] succeeded).
    pub fn is_live(&self) -> bool {
        self.guard.is_some()
    }

    /// How many attempts reached [`Ingest::live`].
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The stream's settings, once live.
    pub fn options(&self) -> Option<StreamOptions> {
        self.guard.as_ref().map(PublisherGuard::options)
    }

    /// Adds or replaces a track. Ignored before [`Ingest::live`].
    pub fn set_track(&mut self, track: TrackInfo) {
        if let Some(guard) = &self.guard {
            guard.set_track(track);
        }
    }

    /// Sets the stream's metadata. Ignored before [`Ingest::live`].
    pub fn set_metadata(&mut self, metadata: Metadata) {
        if let Some(guard) = &self.guard {
            guard.set_metadata(metadata);
        }
    }

    /// Sends a frame to every viewer; [`ProxyError::Closed`] once the stream was closed here
    /// (close_stream, kick, on_stream_none_reader), which ends the source for good. Ignored
    /// before [`Ingest::live`].
    pub fn push(&mut self, frame: Frame) -> Result<(), ProxyError> {
        match &self.guard {
            Some(guard) if guard.is_closed() => Err(ProxyError::Closed),
            Some(guard) => {
                if let Some(status) = &self.status {
                    status.add_bytes(frame.data.len() as u64);
                }
                guard.push(frame);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Resolves when the stream must end (see [`registry::PublisherGuard::closed`]); never
    /// before the stream is live.
    pub async fn closed(&mut self) {
        match &mut self.guard {
            Some(guard) => guard.closed().await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // The proxy itself ended (deleted, out of retries, the server stops): the stream ends
        // now. `continue_push` is for a publisher that may come back, and a proxy's retries
        // already keep its stream across a reconnect.
        if let Some(guard) = self.guard.take() {
            guard.finish();
        }
    }
}
