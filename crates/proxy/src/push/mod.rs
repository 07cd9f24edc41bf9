//! Push proxies, ZLMediaKit's `addStreamPusherProxy`: a live stream sent to another server.
//!
//! Like a pull proxy, each is one task whose attempts are retried with ZLMediaKit's backoff
//! while `retry_count` allows; the first attempt decides the call's answer. A push ends when
//! its stream ends, on delStreamPusherProxy, or when it is kicked (it is listed as a viewer
//! of its stream, so getAllSession shows it and kick_session ends it).

mod rtmp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};
use media::StreamKey;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use crate::status::backoff;
use crate::{redacted, AttemptOptions, Context, ProxyError, Started, Status};

/// What addStreamPusherProxy asks for.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The output pushed: `rtmp` or `rtsp` (ZLMediaKit's `schema`).
    pub schema: String,
    /// The live stream pushed.
    pub key: StreamKey,
    /// Where to (`rtmp://` or `rtsp://`).
    pub dst_url: String,
    /// Attempts after a failure; negative = forever.
    pub retry_count: i64,
    /// Timeouts and RTSP transport.
    pub attempt: AttemptOptions,
}

/// One push as listStreamPusherProxy and getProxyPusherInfo report it.
#[derive(Debug, Clone)]
pub struct PushInfo {
    /// `schema/vhost/app/stream/md5(dst_url)`.
    pub key: String,
    /// The stream pushed.
    pub stream: StreamKey,
    /// The destination, without credentials.
    pub url: String,
    /// 0 while pushing, 1 while connecting or waiting to retry.
    pub status: u32,
    /// Seconds pushed, over every attempt.
    pub live_secs: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Bytes per second sent over the last second.
    pub bytes_speed: u64,
    /// Media bytes sent.
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Rtmp,
}

impl Destination {
    fn of(schema: &str, url: &Url) -> Result<Destination, String> {
        match (schema, url.scheme()) {
            ("rtmp", "rtmp") => Ok(Destination::Rtmp),
            ("rtmp" | "rtsp", "rtmps" | "rtsps") => {
                Err(format!("{}:// (TLS) is not supported", url.scheme()))
            }
            ("rtmp" | "rtsp", scheme) => Err(format!(
                "schema {schema} is pushed to {schema}:// URLs, not {scheme}://"
            )),
            _ => Err(format!("schema must be rtmp or rtsp, not {schema:?}")),
        }
    }

    async fn attempt(
        self,
        url: &Url,
        opts: &AttemptOptions,
        ctx: &Context,
        key: &StreamKey,
        started: &mut Started,
        status: &Status,
    ) -> Result<(), ProxyError> {
        match self {
            Destination::Rtmp => rtmp::push(url, opts, ctx, key, started, status).await,
        }
    }
}

/// Every push proxy of the server. Cloning gives another handle to the same set.
#[derive(Clone)]
pub struct Pushes {
    ctx: Context,
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pushes: Mutex<HashMap<String, Entry>>,
    next_id: AtomicU64,
}

struct Entry {
    id: u64,
    stream: StreamKey,
    url: String,
    status: Arc<Status>,
    task: JoinHandle<()>,
}

impl Inner {
    fn pushes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.pushes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove_own(&self, key: &str, id: u64) {
        let mut pushes = self.pushes();
        if pushes.get(key).is_some_and(|e| e.id == id) {
            pushes.remove(key);
        }
    }
}

impl Pushes {
    /// No pushes yet.
    pub fn new(ctx: Context) -> Self {
        Pushes {
            ctx,
            inner: Arc::default(),
        }
    }

    /// Starts pushing and answers once the destination accepted the first attempt (`Ok(key)`)
    /// or it failed (`Err(why)`, and the push is gone). A push of the same stream to the same
    /// URL that already runs answers its key at once, as ZLMediaKit does.
    pub async fn add(&self, req: PushRequest) -> Result<String, String> {
        let url = Url::parse(req.dst_url.trim()).map_err(|e| format!("invalid dst_url: {e}"))?;
        let destination = Destination::of(&req.schema, &url)?;
        let key = format!(
            "{}/{}/{}/{}/{}",
            req.schema,
            req.key.vhost(),
            req.key.app(),
            req.key.stream(),
            hex(&Md5::digest(req.dst_url.as_bytes()))
        );
        if !self.ctx.registry.is_live(&req.key) {
            return Err("can not find the source stream".into());
        }
        let (started, pushing) = Started::new();
        let (failed_tx, failed) = oneshot::channel();
        {
            let mut pushes = self.inner.pushes();
            if pushes.contains_key(&key) {
                return Ok(key);
            }
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let status = Arc::new(Status::default());
            let task = tokio::spawn(run(
                self.ctx.clone(),
                Arc::clone(&self.inner),
                key.clone(),
                id,
                Attempts {
                    destination,
                    url: url.clone(),
                    stream: req.key.clone(),
                    opts: req.attempt.clone(),
                    retry_count: req.retry_count,
                },
                started,
                failed_tx,
                Arc::clone(&status),
            ));
            pushes.insert(
                key.clone(),
                Entry {
                    id,
                    stream: req.key.clone(),
                    url: redacted(&url),
                    status,
                    task,
                },
            );
        }
        tokio::select! {
            Ok(()) = pushing => Ok(key),
            Ok(why) = failed => Err(why),
            else => Err("the push was deleted".into()),
        }
    }

    /// Stops the push `key`; false when there is none.
    pub async fn remove(&self, key: &str) -> bool {
        let entry = self.inner.pushes().remove(key);
        match entry {
            Some(entry) => {
                entry.task.abort();
                // Its stream (or its session) has ended when this answers.
                let _ = entry.task.await;
                tracing::info!(push = ?key, "push proxy deleted");
                true
            }
            None => false,
        }
    }

    /// Every push, by key.
    pub fn list(&self) -> Vec<PushInfo> {
        let pushes = self.inner.pushes();
        let mut list: Vec<_> = pushes.iter().map(|(k, e)| info(k, e)).collect();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        list
    }

    /// The push `key`.
    pub fn get(&self, key: &str) -> Option<PushInfo> {
        self.inner.pushes().get(key).map(|e| info(key, e))
    }

    /// Stops every push (the server stops).
    pub fn shutdown(&self) {
        for (_, entry) in self.inner.pushes().drain() {
            entry.task.abort();
        }
    }
}

fn info(key: &str, e: &Entry) -> PushInfo {
    PushInfo {
        key: key.to_owned(),
        stream: e.stream.clone(),
        url: e.url.clone(),
        status: e.status.code(),
        live_secs: e.status.live_secs(),
        retries: e.status.retries(),
        bytes_speed: e.status.speed(),
        total_bytes: e.status.bytes(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Attempts {
    destination: Destination,
    url: Url,
    stream: StreamKey,
    opts: AttemptOptions,
    retry_count: i64,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ctx: Context,
    inner: Arc<Inner>,
    key: String,
    id: u64,
    attempts: Attempts,
    mut started: Started,
    failed: oneshot::Sender<String>,
    status: Arc<Status>,
) {
    let mut failed = Some(failed);
    let mut failures: u32 = 0;
    loop {
        let result = attempts
            .destination
            .attempt(
                &attempts.url,
                &attempts.opts,
                &ctx,
                &attempts.stream,
                &mut started,
                &status,
            )
            .await;
        // The attempt reports itself live once the destination accepted the publish.
        let got_through = status.code() == 0;
        status.went_down();
        let err = result.err().unwrap_or(ProxyError::Ended);
        if got_through {
            failed = None;
        }
        if let Some(failed) = failed.take() {
            tracing::info!(push = ?key, "push failed: {err}");
            let _ = failed.send(err.to_string());
            break;
        }
        if !err.retryable() || !ctx.registry.is_live(&attempts.stream) {
            tracing::info!(push = ?key, "push ends: {err}");
            break;
        }
        failures = if got_through {
            1
        } else {
            failures.saturating_add(1)
        };
        if attempts.retry_count >= 0 && i64::from(failures) > attempts.retry_count {
            tracing::info!(push = ?key, "push ends after {failures} failed attempts: {err}");
            break;
        }
        let wait = backoff(failures);
        tracing::info!(push = ?key, "push lost ({err}); retrying in {wait:?}");
        tokio::time::sleep(wait).await;
        if !ctx.registry.is_live(&attempts.stream) {
            break;
        }
        status.retried();
    }
    inner.remove_own(&key, id);
}
