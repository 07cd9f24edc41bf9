//! The TURN relay's web hooks (seed 000): `GET {hook_url}/password?addr=&name=` for the
//! password of a user the relay does not know, and `POST {hook_url}/events` for what its
//! clients did. Both requests carry the headers `realm` (`turn.realm`) and `rid` (random per
//! start, so a backend can tell that the relay restarted).
//!
//! ```text
//!  TURN owner task ─ PasswordRequest ─▶ spawn(TurnHooks::password) ─▶ GET /password
//!  turn::handler::Handler ─ TurnHooks::event ─▶ queue (bounded) ─▶ sender task ─▶ POST /events
//! ```
//!
//! Events are posted one at a time, in the order they happened; when the backend does not
//! keep up the queue fills and further events are dropped and counted: the owner task never
//! waits on the hook. A password lookup is its own request, never queued behind events.

use crate::BoxFuture;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// A drop or failure warning is logged once per this many.
const WARN_EVERY: u64 = 1000;
/// Largest `GET /password` reply read: a password is a line of text. A longer reply counts as
/// no answer (an unknown user) rather than memory held for every parked lookup.
const MAX_PASSWORD_REPLY: usize = 64 << 10;

/// One `POST {hook_url}/events` body of seed 000, by its `kind`. `addr` is the client's
/// address (UDP or TCP), `name` the TURN username.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// `binding`: a STUN Binding request was answered (RFC 8489 §3).
    Binding {
        /// The client.
        addr: SocketAddr,
    },
    /// `allocated`: an Allocate succeeded (RFC 8656 §7.2); `port` is the relay's.
    Allocated {
        /// The username.
        name: String,
        /// The client.
        addr: SocketAddr,
        /// The relayed transport address's port.
        port: u16,
    },
    /// `refresh`: a Refresh succeeded (RFC 8656 §8); `expiration` is the lifetime left.
    Refresh {
        /// The username.
        name: String,
        /// The client.
        addr: SocketAddr,
        /// Seconds until the allocation expires.
        expiration: u32,
    },
    /// `create_permission`: a permission was installed (RFC 8656 §9); `relay` is the peer's
    /// port, as seed 000 names it.
    CreatePermission {
        /// The username.
        name: String,
        /// The client.
        addr: SocketAddr,
        /// The peer's port.
        relay: u16,
    },
    /// `channel_bind`: a channel was bound (RFC 8656 §12).
    ChannelBind {
        /// The username.
        name: String,
        /// The client.
        addr: SocketAddr,
        /// The channel number.
        channel: u16,
    },
    /// `abort`: the allocation ended (deleted, expired or its TCP connection closed).
    Abort {
        /// The username.
        name: String,
        /// The client.
        addr: SocketAddr,
    },
}

impl TurnEvent {
    /// The seed 000 `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            TurnEvent::Binding { .. } => "binding",
            TurnEvent::Allocated { .. } => "allocated",
            TurnEvent::Refresh { .. } => "refresh",
            TurnEvent::CreatePermission { .. } => "create_permission",
            TurnEvent::ChannelBind { .. } => "channel_bind",
            TurnEvent::Abort { .. } => "abort",
        }
    }

    /// The JSON body, field for field as seed 000 has it.
    pub fn json(&self) -> Value {
        let kind = self.kind();
        match self {
            TurnEvent::Binding { addr } => json!({"kind": kind, "addr": addr.to_string()}),
            TurnEvent::Allocated { name, addr, port } => json!({
                "kind": kind, "name": name, "addr": addr.to_string(), "port": port,
            }),
            TurnEvent::Refresh {
                name,
                addr,
                expiration,
            } => json!({
                "kind": kind, "name": name, "addr": addr.to_string(), "expiration": expiration,
            }),
            TurnEvent::CreatePermission { name, addr, relay } => json!({
                "kind": kind, "name": name, "addr": addr.to_string(), "relay": relay,
            }),
            TurnEvent::ChannelBind {
                name,
                addr,
                channel,
            } => json!({
                "kind": kind, "name": name, "addr": addr.to_string(), "channel": channel,
            }),
            TurnEvent::Abort { name, addr } => {
                json!({"kind": kind, "name": name, "addr": addr.to_string()})
            }
        }
    }
}

/// How the TURN relay reaches its hook backend: [`HttpTurnHooks`] for real,
/// `RecordingTurnHooks` (feature `test-util`) in tests. Usable as `Arc<dyn TurnHooks>`.
pub trait TurnHooks: Send + Sync + 'static {
    /// The password of `name`, a client at `addr` (`GET /password?addr=&name=`); `None` is an
    /// unknown user (no answer, or not in time). The caller runs it off its own task.
    fn password(&self, name: &str, addr: SocketAddr) -> BoxFuture<'_, Option<String>>;

    /// Queues `event` for `POST /events` without waiting; a full queue drops it (counted in
    /// [`TurnHooks::dropped`]).
    fn event(&self, event: TurnEvent);

    /// Events dropped so far because the queue was full.
    fn dropped(&self) -> u64;
}

/// Where and how [`HttpTurnHooks`] calls (`[turn]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnHookConfig {
    /// `turn.hook_url`: the base URL; the hooks are `{url}/password` and `{url}/events` (a
    /// trailing `/` is ignored).
    pub url: String,
    /// `turn.realm`, sent as the header `realm`.
    pub realm: String,
    /// How long one request may take, connect to last byte. Default: 5 s.
    pub timeout: Duration,
    /// Events waiting to be posted; past it they are dropped. Default: 1024.
    pub queue_capacity: usize,
}

impl TurnHookConfig {
    /// The hooks under `url` for `realm`, with the default timeout and queue.
    pub fn new(url: impl Into<String>, realm: impl Into<String>) -> Self {
        TurnHookConfig {
            url: url.into(),
            realm: realm.into(),
            timeout: Duration::from_secs(5),
            queue_capacity: 1024,
        }
    }
}

/// Why [`HttpTurnHooks::new`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TurnHookError {
    /// The HTTP client could not be built with the settings.
    #[error("TURN hook HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The seed 000 hooks over HTTP: one pooled client for both, events posted in order by one
/// sender task from a bounded queue.
pub struct HttpTurnHooks {
    client: reqwest::Client,
    /// `url` without a trailing `/`.
    base: String,
    realm: String,
    rid: String,
    events: mpsc::Sender<TurnEvent>,
    dropped: AtomicU64,
}

impl HttpTurnHooks {
    /// The hooks of `config`, with a fresh `rid`. Starts the event sender, so it must be
    /// called inside a tokio runtime; the sender ends once this is dropped and its queue is
    /// sent.
    pub fn new(config: TurnHookConfig) -> Result<HttpTurnHooks, TurnHookError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(TurnHookError::Client)?;
        let rid: String = {
            use rand::Rng;
            rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(16)
                .map(char::from)
                .collect()
        };
        let base = config.url.trim_end_matches('/').to_owned();
        let (events, rx) = mpsc::channel(config.queue_capacity.max(1));
        tokio::spawn(
            post_events(
                client.clone(),
                format!("{base}/events"),
                config.realm.clone(),
                rid.clone(),
                rx,
            )
            .instrument(tracing::Span::current()),
        );
        Ok(HttpTurnHooks {
            client,
            base,
            realm: config.realm,
            rid,
            events,
            dropped: AtomicU64::new(0),
        })
    }

    /// This start's runtime id, the `rid` header: 16 random alphanumerics.
    pub fn rid(&self) -> &str {
        &self.rid
    }
}

impl TurnHooks for HttpTurnHooks {
    fn password(&self, name: &str, addr: SocketAddr) -> BoxFuture<'_, Option<String>> {
        let call = self
            .client
            .get(format!("{}/password", self.base))
            .query(&[("addr", addr.to_string()), ("name", name.to_owned())])
            .header("realm", &self.realm)
            .header("rid", &self.rid);
        Box::pin(async move {
            // Anything but a 200 with a readable body is an unknown user.
            match call.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => match read_capped(r).await {
                    Ok(body) => Some(body.trim().to_owned()),
                    Err(e) => {
                        tracing::warn!("TURN password hook body: {e}");
                        None
                    }
                },
                Ok(r) => {
                    tracing::debug!("TURN password hook answered {}", r.status());
                    None
                }
                Err(e) => {
                    tracing::warn!("TURN password hook failed: {e}");
                    None
                }
            }
        })
    }

    fn event(&self, event: TurnEvent) {
        if self.events.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped % WARN_EVERY == 1 {
                tracing::warn!(
                    dropped,
                    "TURN events backend not keeping up: events dropped"
                );
            }
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for HttpTurnHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTurnHooks")
            .field("base", &self.base)
            .field("realm", &self.realm)
            .field("rid", &self.rid)
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// The body of `r` as text, at most [`MAX_PASSWORD_REPLY`] bytes.
async fn read_capped(mut r: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_PASSWORD_REPLY {
            return Err(format!("reply larger than {MAX_PASSWORD_REPLY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Sends queued events one at a time, in order, until every [`HttpTurnHooks`] is gone.
async fn post_events(
    client: reqwest::Client,
    url: String,
    realm: String,
    rid: String,
    mut rx: mpsc::Receiver<TurnEvent>,
) {
    let mut failures = 0u64;
    while let Some(event) = rx.recv().await {
        let sent = client
            .post(&url)
            .header("realm", &realm)
            .header("rid", &rid)
            .json(&event.json())
            .send()
            .await;
        let problem = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("status {}", r.status())),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            failures += 1;
            if failures % WARN_EVERY == 1 {
                tracing::warn!(failures, "TURN events hook failed: {problem}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bodies_follow_seed_000() {
        let name = || "alice".to_owned();
        let addr: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        let bodies: Vec<Value> = [
            TurnEvent::Binding { addr },
            TurnEvent::Allocated {
                name: name(),
                addr,
                port: 50000,
            },
            TurnEvent::Refresh {
                name: name(),
                addr,
                expiration: 600,
            },
            TurnEvent::CreatePermission {
                name: name(),
                addr,
                relay: 6000,
            },
            TurnEvent::ChannelBind {
                name: name(),
                addr,
                channel: 0x4000,
            },
            TurnEvent::Abort { name: name(), addr },
        ]
        .iter()
        .map(TurnEvent::json)
        .collect();
        let addr = "192.0.2.7:5000";
        assert_eq!(
            bodies,
            vec![
                json!({"kind": "binding", "addr": addr}),
                json!({"kind": "allocated", "name": "alice", "addr": addr, "port": 50000}),
                json!({"kind": "refresh", "name": "alice", "addr": addr, "expiration": 600}),
                json!({"kind": "create_permission", "name": "alice", "addr": addr, "relay": 6000}),
                json!({"kind": "channel_bind", "name": "alice", "addr": addr, "channel": 0x4000}),
                json!({"kind": "abort", "name": "alice", "addr": addr}),
            ]
        );
    }
}
