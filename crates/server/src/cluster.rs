//! The cluster's edge side (DESIGN.md §1 "Cluster"): a play of a stream that is not live here
//! asks the directory ([`events::Cluster`]) before on_stream_not_found and, when another node
//! has the stream, pulls it from there as a proxy of `originType` 4 ([`proxy::Pulls`]).
//!
//! The pull is an ordinary RTMP play on the origin (its on_play decides). It has no retries:
//! when the origin's stream ends, the pull ends and the edge's viewers with it. It is opened
//! with `auto_close`, so once it has had no viewer for `general.streamNoneReaderDelayMS` the
//! lifecycle task closes it like any unwatched stream.

use std::net::SocketAddr;
use std::time::Duration;

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `cluster.nats`.
    pub nats: String,
    /// `cluster.advertise`; `None` = `rtmp://{this host's address}:{RTMP port}`.
    pub advertise: Option<String>,
    /// `cluster.ttl`.
    pub ttl: Duration,
}

impl ClusterOptions {
    /// `[cluster]`, or `None` when `cluster.nats` is empty (one node).
    pub fn from_config(c: &config::Config) -> Option<ClusterOptions> {
        let nats = c
            .cluster
            .nats
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())?;
        Some(ClusterOptions {
            nats: nats.to_owned(),
            advertise: c
                .cluster
                .advertise
                .as_deref()
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty()),
            ttl: c.cluster.ttl.max(Duration::from_secs(1)),
        })
    }

    /// The directory's settings for a node `node` whose RTMP listener is bound to `rtmp`.
    pub(crate) fn directory(&self, node: u32, rtmp: SocketAddr) -> events::ClusterConfig {
        let advertise = self.advertise.clone().unwrap_or_else(|| {
            let ip = crate::turn::relay_ip(rtmp.ip());
            format!("rtmp://{}", SocketAddr::new(ip, rtmp.port()))
        });
        events::ClusterConfig {
            nats: self.nats.clone(),
            node,
            advertise,
            ttl: self.ttl,
        }
    }
}

/// The directory and the pulls, as the hooks' [`hooks::RemoteStreams`].
pub(crate) struct Edge {
    pub(crate) cluster: events::Cluster,
    pub(crate) pulls: proxy::Pulls,
}

impl hooks::RemoteStreams for Edge {
    fn fetch<'a>(&'a self, key: &'a media::StreamKey) -> hooks::BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some(entry) = self.cluster.lookup(key).await else {
                return false;
            };
            tracing::info!(stream = %key, node = entry.node, url = %entry.url, "pulling from another node");
            self.cluster.pulling(key, true);
            let mut options = serde_json::Map::new();
            options.insert("auto_close".into(), true.into());
            let request = proxy::PullRequest {
                key: key.clone(),
                url: entry.url,
                retry_count: 0,
                attempt: proxy::AttemptOptions::default(),
                options,
            };
            match self.pulls.add(request).await {
                Ok(_) => true,
                // Another viewer's play started the same pull: wait for it too.
                Err(e) if e.contains("already exists") => true,
                Err(e) => {
                    tracing::warn!(stream = %key, "pull from another node failed: {e}");
                    self.cluster.pulling(key, false);
                    false
                }
            }
        })
    }
}
