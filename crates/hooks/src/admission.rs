//! Admission of publishers and players: the auth hooks, then the registry. Every protocol
//! driver admits through these two functions, so the rules hold the same on every path.

use crate::body::Request;
use crate::client::Hooks;
use crate::reply::stream_options;
use crate::Hook;
use media::StreamKey;
use registry::{PublisherGuard, Registry, SessionInfo, StreamOptions, Viewer};
use std::time::Duration;

/// Why a publisher was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishRefusal {
    /// on_publish refused (RTMP: `NetStream.Publish.BadAuth`).
    #[error("{0}")]
    Denied(String),
    /// Somebody already publishes the stream (RTMP: `NetStream.Publish.BadName`).
    #[error("Already publishing")]
    AlreadyPublishing,
    /// on_publish's `stream_replace` is not a valid stream id (RTMP:
    /// `NetStream.Publish.BadName`).
    #[error("stream_replace refused: {0}")]
    BadName(media::KeyError),
}

/// Why a player was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlayRefusal {
    /// on_play refused (RTMP: `NetStream.Play.BadAuth`, HTTP 401).
    #[error("{0}")]
    Denied(String),
    /// The stream did not go live within `maxStreamWaitMS`, or on_stream_not_found said
    /// `close: true`.
    #[error("stream not found")]
    NotFound,
}

/// Where a stream that is not live on this server may be: the cluster's other nodes. Installed
/// with [`Hooks::set_remote`]; [`find_stream`] asks it before on_stream_not_found.
pub trait RemoteStreams: Send + Sync + 'static {
    /// Starts bringing `key` here if another node has it live: true once it is on its way (it
    /// goes live here shortly, and the caller waits for it), false when no node has it.
    fn fetch<'a>(&'a self, key: &'a StreamKey) -> crate::BoxFuture<'a, bool>;
}

/// Asks on_publish, then makes the stream live with `defaults` (`[protocol]`) overridden by
/// the reply, under the reply's `stream_replace` name if it gives one.
pub async fn admit_publish(
    hooks: &Hooks,
    registry: &Registry,
    key: StreamKey,
    publisher: SessionInfo,
    defaults: &StreamOptions,
) -> Result<PublisherGuard, PublishRefusal> {
    let reply = hooks
        .on_publish(&Request::new(key.clone(), &publisher))
        .await
        .map_err(|r| PublishRefusal::Denied(r.msg))?;
    let (options, replace) = match reply {
        Some(reply) => stream_options(&reply, defaults),
        None => (defaults.clone(), None),
    };
    let key = match replace {
        Some(stream) => key.with_stream(stream).map_err(|e| {
            tracing::warn!("on_publish answered an invalid stream_replace: {e}");
            PublishRefusal::BadName(e)
        })?,
        None => key,
    };
    registry
        .publish_with(key, publisher, options)
        .map_err(|_| PublishRefusal::AlreadyPublishing)
}

/// Asks on_play, then joins the stream. A stream that is not live fires on_stream_not_found and is
/// waited for up to `max_wait` (the player may come before the publisher), unless the reply
/// says `close: true`.
pub async fn admit_play(
    hooks: &Hooks,
    registry: &Registry,
    key: &StreamKey,
    viewer: SessionInfo,
    max_wait: Duration,
) -> Result<Viewer, PlayRefusal> {
    hooks
        .on_play(&Request::new(key.clone(), &viewer))
        .await
        .map_err(|r| PlayRefusal::Denied(r.msg))?;
    find_stream(hooks, registry, key, viewer, max_wait).await
}

/// The second half of [`admit_play`], for a player already authorized another way (RTSP
/// credentials checked with on_rtsp_auth): joins the stream; or, when it is not live here,
/// asks the [`RemoteStreams`] installed (the cluster) and waits for the stream it brings; or
/// fires on_stream_not_found and waits up to `max_wait` for the stream unless the reply says
/// `close: true`.
pub async fn find_stream(
    hooks: &Hooks,
    registry: &Registry,
    key: &StreamKey,
    viewer: SessionInfo,
    max_wait: Duration,
) -> Result<Viewer, PlayRefusal> {
    let req = Request::new(key.clone(), &viewer);
    if let Some(joined) = registry.join(key, viewer.clone()) {
        return Ok(joined);
    }
    if let Some(remote) = hooks.remote() {
        if remote.fetch(key).await {
            return registry
                .wait_for(key, viewer, max_wait)
                .await
                .ok_or(PlayRefusal::NotFound);
        }
    }
    let wait = registry.wait_for(key, viewer, max_wait);
    if !hooks.enabled(Hook::OnStreamNotFound) {
        return wait.await.ok_or(PlayRefusal::NotFound);
    }
    let not_found = hooks.on_stream_not_found(&req);
    tokio::pin!(wait, not_found);
    let mut asked = false;
    loop {
        tokio::select! {
            sub = &mut wait => return sub.ok_or(PlayRefusal::NotFound),
            close = &mut not_found, if !asked => {
                asked = true;
                if close {
                    return Err(PlayRefusal::NotFound);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
