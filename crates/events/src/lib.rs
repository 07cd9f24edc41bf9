//! Every internal event in seed 004's envelope, sent to other systems (DESIGN.md §1 "Events"),
//! and the cluster's directory of live streams (DESIGN.md §1 "Cluster").
//!
//! ```text
//!  Registry::events() ──▶ subscriber task ─▶ Mapper ─┐
//!  TURN handler ─────── Events::turn ────────────────┼─▶ Envelope ─▶ Queue (bounded, per provider)
//!  recorder ─────────── Events::record ──────────────┘                 │ drop oldest beyond events.buffer
//!                                                                      ▼
//!                                             provider task: send the oldest, retry with backoff
//!                                             ├─ webhook: JSON POST, signed like the hooks
//!                                             └─ NATS: JetStream publish on {subject}.{event}, acked
//! ```
//!
//! An envelope is `{"uuid": v4, "node": events.node, "ts": unix ms, "event": kind, "payload":
//! {…}}`; the kinds and their payloads are [`Kind`] and the `envelope` module. Building and
//! queueing an envelope never waits: a caller on a media path (the TURN owner task, the
//! recorder) only takes a std lock to push onto each provider's queue. Each provider sends its
//! queue's envelopes one at a time in order, and only drops one from its queue after the sink
//! took it (a 2xx answer, a JetStream ack): delivery is at least once. While its sink is down it
//! retries the same envelope with a backoff (100 ms doubling to 5 s) and its queue fills; past
//! `events.buffer` the oldest envelopes are dropped and counted ([`Figures`], `/metrics`). A
//! subscriber that falls behind the registry's broadcast channel counts the events it missed
//! as dropped by every provider.
//!
//! The cluster ([`Cluster`]) keeps this node's live streams in a JetStream key-value bucket and
//! answers where a stream that is not here lives; the server pulls it from there.
//!
//! Layout:
//! - `lib.rs`: [`EventsConfig`], [`Events`], [`Kind`], [`Figures`].
//! - `envelope.rs`: the envelope and the mapping of registry events to payloads.
//! - `queue.rs`: a provider's bounded queue and its sending task.
//! - `webhook.rs`, `nats.rs`: the two sinks.
//! - `cluster.rs`: [`Cluster`], the key encoding and the directory task.
//! - `fuzzing.rs`: fuzz target bodies (the directory's keys and values come from other nodes).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod cluster;
mod envelope;
#[doc(hidden)]
pub mod fuzzing;
mod nats;
mod queue;
mod webhook;

pub use cluster::{decode_key, encode_key, Cluster, ClusterConfig, Entry, RemoteStream};
pub use envelope::{uuid_v4, Envelope};

use queue::Queue;
use registry::Registry;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// How events are sent (`[events]`, and `hook.sign_token` for the webhook's signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// `events.webhook`: every envelope is POSTed here; `None` = no webhook provider.
    pub webhook: Option<String>,
    /// `events.nats`: the NATS server of the NATS provider; `None` = none.
    pub nats: Option<String>,
    /// `events.subject`: envelopes go to `{subject}.{event}`, into the JetStream stream named
    /// [`stream_name`]`(subject)`.
    pub subject: String,
    /// `events.node`: the envelope's `node`.
    pub node: u32,
    /// `events.buffer`: envelopes each provider holds while its sink is down.
    pub buffer: usize,
    /// `hook.sign_token`: the webhook is signed as the hooks are when set.
    pub sign_token: Option<String>,
    /// One webhook POST or JetStream publish (to its ack) may take this long before it
    /// counts as failed and is retried. Not a config key. Default: 5 s.
    pub timeout: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig::from(&config::Config::default())
    }
}

impl From<&config::Config> for EventsConfig {
    fn from(c: &config::Config) -> Self {
        let e = &c.events;
        let set = |v: &Option<String>| {
            v.as_ref()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        EventsConfig {
            webhook: set(&e.webhook),
            nats: set(&e.nats),
            subject: e.subject.trim().to_owned(),
            node: e.node,
            buffer: usize::try_from(e.buffer).unwrap_or(usize::MAX).max(1),
            sign_token: (!c.hook.sign_token.is_empty())
                .then(|| c.hook.sign_token.expose().to_owned()),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The JetStream stream the NATS provider keeps its envelopes in: `subject` with every
/// character a stream name may not have (`.`, `*`, `>`, whitespace, path separators) as `_`.
pub fn stream_name(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `subject` is a NATS subject a provider can publish under: dot-separated tokens,
/// none empty, no wildcards or whitespace, at most 200 bytes (room for `.{event}`).
pub fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= 200
        && subject.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
        })
}

/// An envelope's `event`: seed 004's kinds and ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A client session (a publisher or a viewer) connected or disconnected.
    Session,
    /// A session joined or left a stream (its room).
    Peer,
    /// A publisher's track started or ended.
    RemoteTrack,
    /// A viewer's track attached to or detached from a stream's track.
    LocalTrack,
    /// A stream was published or unpublished (with ZLMediaKit's MediaSource JSON).
    Stream,
    /// An MP4 recording segment was finished (the on_record_mp4 body).
    Record,
    /// The TURN relay's seed-000 events.
    Turn,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Session,
        Kind::Peer,
        Kind::RemoteTrack,
        Kind::LocalTrack,
        Kind::Stream,
        Kind::Record,
        Kind::Turn,
    ];

    /// The envelope's `event` (and the last token of the NATS subject).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Peer => "peer",
            Kind::RemoteTrack => "remote_track",
            Kind::LocalTrack => "local_track",
            Kind::Stream => "stream",
            Kind::Record => "record",
            Kind::Turn => "turn",
        }
    }
}

/// Figures of one provider, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// `webhook` or `nats`.
    pub provider: &'static str,
    /// Envelopes its sink took.
    pub sent: u64,
    /// Envelopes dropped: the oldest beyond the buffer, and those the subscriber missed.
    pub dropped: u64,
    /// Envelopes waiting now.
    pub queued: usize,
}

/// The running event pipeline: a cheap-to-clone handle. With no provider configured every call
/// is a no-op and no task runs.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    node: u32,
    queues: Vec<Arc<Queue>>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Registry events the subscriber missed (counted as dropped by every provider too).
    missed: AtomicU64,
}

impl Events {
    /// No provider: every event goes nowhere.
    pub fn disabled() -> Events {
        Events {
            inner: Arc::new(Inner {
                node: 0,
                queues: Vec::new(),
                tasks: std::sync::Mutex::new(Vec::new()),
                missed: AtomicU64::new(0),
            }),
        }
    }

    /// Starts a provider per configured sink and, when there is one, the task that turns
    /// `registry`'s lifecycle events into envelopes. A sink that is down at start is retried
    /// like one that goes down later; a NATS subject that is not valid turns that provider off
    /// (logged).
    pub fn start(config: EventsConfig, registry: &Registry) -> Events {
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        if let Some(url) = &config.webhook {
            match webhook::Webhook::new(url, config.sign_token.clone(), config.timeout) {
                Ok(sink) => {
                    let queue = Arc::new(Queue::new("webhook", config.buffer));
                    tasks.push(tokio::spawn(queue::run(Arc::clone(&queue), sink)));
                    queues.push(queue);
                }
                Err(e) => tracing::error!("events.webhook is off: {e}"),
            }
        }
        if let Some(url) = &config.nats {
            if valid_subject(&config.subject) {
                let sink = nats::Nats::new(url, &config.subject, config.timeout);
                let queue = Arc::new(Queue::new("nats", config.buffer));
                tasks.push(tokio::spawn(queue::run(Arc::clone(&queue), sink)));
                queues.push(queue);
            } else {
                tracing::error!(
                    subject = %config.subject,
                    "events.nats is off: events.subject is not a NATS subject"
                );
            }
        }
        let events = Events {
            inner: Arc::new(Inner {
                node: config.node,
                queues,
                tasks: std::sync::Mutex::new(Vec::new()),
                missed: AtomicU64::new(0),
            }),
        };
        if events.enabled() {
            tasks.push(tokio::spawn(subscribe(events.clone(), registry.clone())));
            tracing::info!(
                providers = ?events.inner.queues.iter().map(|q| q.name()).collect::<Vec<_>>(),
                "events on"
            );
        }
        *events.lock_tasks() = tasks;
        events
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether any provider runs.
    pub fn enabled(&self) -> bool {
        !self.inner.queues.is_empty()
    }

    /// Wraps `payload` in an envelope of `kind` and queues it for every provider, without
    /// waiting.
    pub fn emit(&self, kind: Kind, payload: Map<String, Value>) {
        if !self.enabled() {
            return;
        }
        let envelope = Arc::new(Envelope::new(self.inner.node, now_ms(), kind, payload));
        for queue in &self.inner.queues {
            queue.push(Arc::clone(&envelope));
        }
    }

    /// A finished recording: its on_record_mp4 body as a `record` event.
    pub fn record(&self, file: &outputs::RecordedFile) {
        if self.enabled() {
            self.emit(Kind::Record, hooks::record_json(file));
        }
    }

    /// A TURN event: its seed-000 body as a `turn` event.
    pub fn turn(&self, event: &hooks::TurnEvent) {
        if !self.enabled() {
            return;
        }
        if let Value::Object(body) = event.json() {
            self.emit(Kind::Turn, body);
        }
    }

    /// Each provider's figures.
    pub fn figures(&self) -> Vec<Figures> {
        let missed = self.inner.missed.load(Ordering::Relaxed);
        self.inner
            .queues
            .iter()
            .map(|q| Figures {
                provider: q.name(),
                sent: q.sent(),
                dropped: q.dropped() + missed,
                queued: q.len(),
            })
            .collect()
    }

    /// Gives the providers up to `grace` to send what they hold, then stops them.
    pub async fn stop(&self, grace: Duration) {
        if !self.enabled() {
            return;
        }
        let deadline = tokio::time::Instant::now() + grace;
        // The subscriber hands over what the registry emitted last first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while self.inner.queues.iter().any(|q| q.len() > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
    }
}

/// Unix time now, milliseconds.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Turns the registry's lifecycle events into envelopes until the registry goes away.
async fn subscribe(events: Events, registry: Registry) {
    let mut rx = registry.events();
    let mut mapper = envelope::Mapper::default();
    loop {
        match rx.recv().await {
            Ok(event) => {
                for (kind, payload) in mapper.map(&registry, event) {
                    events.emit(kind, payload);
                }
            }
            Err(RecvError::Lagged(n)) => {
                events.inner.missed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!("events missed {n} registry events (event channel full)");
            }
            Err(RecvError::Closed) => return,
        }
    }
}
