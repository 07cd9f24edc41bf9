//! The cluster's directory (DESIGN.md §1 "Cluster"): every node keeps its live streams in one
//! JetStream key-value bucket ([`BUCKET`]) of the shared NATS, and looks there for a stream it
//! does not have. NATS is the only shared state: no node knows another but through it.
//!
//! - Key: `{vhost}.{app}.{stream}`, each part with every byte other than `A-Z a-z 0-9 - _`
//!   written `=XX` (upper-case hex), so dots and slashes in names cannot make extra tokens and
//!   the key stays within NATS's key alphabet ([`encode_key`], [`decode_key`]).
//! - Value: `{"node": <events.node>, "url": "rtmp://host:port/app/stream"}` ([`Entry`]).
//! - Lifetime: the bucket's `max_age` is `cluster.ttl`; a node writes its entry when the stream
//!   goes live, writes it again every third of the TTL while it lives, and deletes it when the
//!   stream ends. A node that dies leaves entries that expire within the TTL.
//!
//! Streams this node pulls from another node (marked with [`Cluster::pulling`]) are not
//! written: the directory names only origins.

use media::{StreamKey, DEFAULT_VHOST};
use registry::{Event, Registry};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

/// The key-value bucket of the cluster's live streams.
pub const BUCKET: &str = "ferrostream_streams";
/// Longest directory value read (a node id and a URL).
const MAX_VALUE: usize = 4096;
/// Longest pull URL accepted from the directory.
const MAX_URL: usize = 1024;
/// Most entries getMediaList lists from the directory.
const MAX_LISTED: usize = 10_000;
/// How long one directory read or write may take.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// `[cluster]`, with the node id of `[events]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `cluster.nats`: the shared NATS server.
    pub nats: String,
    /// `events.node`: this node's id in the directory.
    pub node: u32,
    /// The RTMP base URL other nodes pull from (`cluster.advertise`, or this host's address and
    /// RTMP port), without a trailing `/`.
    pub advertise: String,
    /// `cluster.ttl`: how long an entry lives unless refreshed.
    pub ttl: Duration,
}

/// A directory entry: which node has a stream and where to pull it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The node's `events.node`.
    pub node: u32,
    /// An `rtmp://` URL of the stream on that node.
    pub url: String,
}

impl Entry {
    /// The entry's JSON value.
    pub fn to_json(&self) -> Vec<u8> {
        json!({"node": self.node, "url": self.url})
            .to_string()
            .into_bytes()
    }

    /// Reads a value written by a node: a JSON object with a u32 `node` and an `rtmp://` `url`
    /// of at most 1024 bytes without control characters; anything else is `None`.
    pub fn parse(value: &[u8]) -> Option<Entry> {
        if value.len() > MAX_VALUE {
            return None;
        }
        let v: Value = serde_json::from_slice(value).ok()?;
        let node = u32::try_from(v.get("node")?.as_u64()?).ok()?;
        let url = v.get("url")?.as_str()?;
        if url.len() > MAX_URL
            || !url.starts_with("rtmp://")
            || url.chars().any(|c| c.is_control() || c == ' ')
        {
            return None;
        }
        Some(Entry {
            node,
            url: url.to_owned(),
        })
    }
}

/// A stream another node has, as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStream {
    /// The stream.
    pub key: StreamKey,
    /// Where it is.
    pub entry: Entry,
}

fn encode_part(part: &str, out: &mut String) {
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
}

/// The directory key of `key`: `{vhost}.{app}.{stream}`, each part escaped (module docs).
pub fn encode_key(key: &StreamKey) -> String {
    let mut out = String::new();
    encode_part(key.vhost(), &mut out);
    out.push('.');
    encode_part(key.app(), &mut out);
    out.push('.');
    encode_part(key.stream(), &mut out);
    out
}

fn decode_part(part: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(part.len());
    let mut iter = part.bytes();
    while let Some(b) = iter.next() {
        match b {
            b'=' => {
                let hi = char::from(iter.next()?).to_digit(16)?;
                let lo = char::from(iter.next()?).to_digit(16)?;
                bytes.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => bytes.push(b),
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

/// The stream a directory key names, or `None` for a key this encoding cannot have written
/// (or that names no valid stream).
pub fn decode_key(key: &str) -> Option<StreamKey> {
    if key.len() > 4096 {
        return None;
    }
    let mut parts = key.split('.');
    let (vhost, app, stream) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    StreamKey::with_vhost(decode_part(vhost)?, decode_part(app)?, decode_part(stream)?).ok()
}

/// The cluster's directory: a cheap-to-clone handle. The connection is made in the background
/// (retried while NATS is down); until it is up, lookups find nothing.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClusterConfig,
    // std Mutexes: held to clone the store handle or test a key, never across an `.await`.
    store: Mutex<Option<kv::Store>>,
    pulling: Mutex<HashSet<StreamKey>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Cluster {
    /// Connects to `config.nats` (in the background) and keeps `registry`'s live streams in
    /// the directory until [`Cluster::stop`].
    pub fn start(config: ClusterConfig, registry: &Registry) -> Cluster {
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                store: Mutex::new(None),
                pulling: Mutex::new(HashSet::new()),
                task: Mutex::new(None),
            }),
        };
        let task = tokio::spawn(run(cluster.clone(), registry.clone()));
        *lock(&cluster.inner.task) = Some(task);
        cluster
    }

    /// This node's id.
    pub fn node(&self) -> u32 {
        self.inner.config.node
    }

    /// The URL other nodes pull `key` from.
    pub fn url_of(&self, key: &StreamKey) -> String {
        let mut url = format!(
            "{}/{}/{}",
            self.inner.config.advertise,
            key.app(),
            key.stream()
        );
        if key.vhost() != DEFAULT_VHOST {
            url.push_str("?vhost=");
            url.push_str(key.vhost());
        }
        url
    }

    /// Whether the directory is connected.
    pub fn connected(&self) -> bool {
        lock(&self.inner.store).is_some()
    }

    fn store(&self) -> Option<kv::Store> {
        lock(&self.inner.store).clone()
    }

    /// Marks `key` as pulled from another node (or unmarks it): its publish and end here are
    /// not written to the directory.
    pub fn pulling(&self, key: &StreamKey, on: bool) {
        let mut pulling = lock(&self.inner.pulling);
        if on {
            pulling.insert(key.clone());
        } else {
            pulling.remove(key);
        }
    }

    fn is_pulled(&self, key: &StreamKey) -> bool {
        lock(&self.inner.pulling).contains(key)
    }

    /// Where another node has `key` live, if one does (this node's own entry is not an
    /// answer).
    pub async fn lookup(&self, key: &StreamKey) -> Option<Entry> {
        let store = self.store()?;
        let value = tokio::time::timeout(OP_TIMEOUT, store.get(encode_key(key)))
            .await
            .ok()?
            .ok()??;
        Entry::parse(&value).filter(|e| e.node != self.node())
    }

    /// Every stream another node has live (at most 10 000).
    pub async fn remote_streams(&self) -> Vec<RemoteStream> {
        let Some(store) = self.store() else {
            return Vec::new();
        };
        let list = async {
            let mut out = Vec::new();
            let Ok(mut keys) = store.keys().await else {
                return out;
            };
            while let Some(Ok(name)) = keys.next().await {
                if out.len() >= MAX_LISTED {
                    break;
                }
                let Some(key) = decode_key(&name) else {
                    continue;
                };
                if let Ok(Some(value)) = store.get(&name).await {
                    if let Some(entry) = Entry::parse(&value).filter(|e| e.node != self.node()) {
                        out.push(RemoteStream { key, entry });
                    }
                }
            }
            out
        };
        tokio::time::timeout(OP_TIMEOUT, list)
            .await
            .unwrap_or_default()
    }

    /// Deletes this node's entries of the streams still live and stops the directory task.
    pub async fn stop(&self, registry: &Registry) {
        if let Some(task) = lock(&self.inner.task).take() {
            task.abort();
        }
        for stream in registry.streams() {
            if !self.is_pulled(&stream.key) {
                self.remove(&stream.key).await;
            }
        }
    }

    async fn put(&self, key: &StreamKey) {
        let Some(store) = self.store() else {
            return;
        };
        let entry = Entry {
            node: self.node(),
            url: self.url_of(key),
        };
        let put = store.put(encode_key(key), entry.to_json().into());
        match tokio::time::timeout(OP_TIMEOUT, put).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(stream = %key, "cluster directory write failed: {e}"),
            Err(_) => tracing::warn!(stream = %key, "cluster directory write timed out"),
        }
    }

    /// Deletes `key`'s entry if it is this node's (another node may publish the same name).
    async fn remove(&self, key: &StreamKey) {
        let Some(store) = self.store() else {
            return;
        };
        let name = encode_key(key);
        let op = async {
            let current = store.get(&name).await.ok().flatten();
            if current
                .and_then(|v| Entry::parse(&v))
                .is_some_and(|e| e.node == self.node())
            {
                let _ = store.delete(&name).await;
            }
        };
        if tokio::time::timeout(OP_TIMEOUT, op).await.is_err() {
            tracing::warn!(stream = %key, "cluster directory delete timed out");
        }
    }

    async fn refresh(&self, registry: &Registry) {
        for stream in registry.streams() {
            if !self.is_pulled(&stream.key) {
                self.put(&stream.key).await;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Single assignments: a poisoned lock cannot hold a half-made value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects (retrying), opens the bucket, then follows the registry and refreshes the entries.
async fn run(cluster: Cluster, registry: Registry) {
    // Subscribe first: streams published while connecting are written by the first refresh.
    let mut events = registry.events();
    let config = cluster.inner.config.clone();
    let mut wait = Duration::from_millis(200);
    let store = loop {
        match open(&config).await {
            Ok(store) => break store,
            Err(e) => {
                tracing::warn!("cluster directory unavailable: {e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    };
    tracing::info!(nats = %config.nats, node = config.node, "cluster directory connected");
    *lock(&cluster.inner.store) = Some(store);
    let period = (config.ttl / 3).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(Event::Published { key, .. }) => {
                    if !cluster.is_pulled(&key) {
                        cluster.put(&key).await;
                    }
                }
                Ok(Event::Unpublished { key, .. }) => {
                    if cluster.is_pulled(&key) {
                        cluster.pulling(&key, false);
                    } else if !registry.is_live(&key) {
                        cluster.remove(&key).await;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => cluster.refresh(&registry).await,
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => cluster.refresh(&registry).await,
        }
    }
}

async fn open(config: &ClusterConfig) -> Result<kv::Store, String> {
    let client = tokio::time::timeout(OP_TIMEOUT, crate::nats::connect(&config.nats))
        .await
        .map_err(|_| format!("connect to {} timed out", config.nats))??;
    let js = jetstream::new(client);
    // The bucket's stream, made as NATS's key-value layout has it (ADR-8: `KV_{bucket}`,
    // subjects `$KV.{bucket}.>`, one message per key, rollups, direct get). Made here rather
    // than with `create_key_value`, which first asks `$JS.API.INFO` and cannot read the answer
    // of nats-server 2.9 (Debian 12's) with async-nats 0.51.
    let stream = jetstream::stream::Config {
        name: format!("KV_{BUCKET}"),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: config.ttl,
        max_message_size: i32::try_from(MAX_VALUE).unwrap_or(i32::MAX),
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    js.get_or_create_stream(stream)
        .await
        .map_err(|e| format!("key-value stream KV_{BUCKET}: {e}"))?;
    js.get_key_value(BUCKET)
        .await
        .map_err(|e| format!("key-value bucket {BUCKET}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_stay_in_the_nats_alphabet() {
        for (app, stream) in [
            ("live", "a"),
            ("live", "a.b/c d"),
            ("my.app", "x=y%z"),
            ("live", "ünï"),
        ] {
            let key = StreamKey::new(app, stream).expect("key");
            let encoded = encode_key(&key);
            assert_eq!(encoded.matches('.').count(), 2, "{encoded}");
            assert!(encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)));
            assert_eq!(decode_key(&encoded), Some(key));
        }
        assert_eq!(
            encode_key(&StreamKey::new("live", "a").expect("key")),
            "__defaultVhost__.live.a"
        );
        for bad in ["a.b", "a.b.c.d", "a.b.=4", "a.b.=ZZ", "a.b.c d", "a.b.=FF"] {
            assert_eq!(decode_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_are_checked() {
        let e = Entry {
            node: 3,
            url: "rtmp://10.0.0.1:1935/live/a".into(),
        };
        assert_eq!(Entry::parse(&e.to_json()), Some(e));
        for bad in [
            &br#"{"node":-1,"url":"rtmp://h/a/b"}"#[..],
            br#"{"node":1,"url":"http://h/a/b"}"#,
            br#"{"node":1}"#,
            br#"{"node":1,"url":"rtmp://h/a b"}"#,
            b"not json",
        ] {
            assert_eq!(Entry::parse(bad), None);
        }
    }
}
