//! Push proxies, ZLMediaKit's `addStreamPusherProxy`: a live stream sent to another server.
//!
//! Like a pull proxy, each is one task whose attempts are retried with ZLMediaKit's backoff
//! while `retry_count` allows; the first attempt decides the call's answer. A push ends when
//! its stream ends, on delStreamPusherProxy, or when it is kicked (it is listed as a viewer
//! of its stream, so getAllSession shows it and kick_session ends it).

mod rtmp;
pub(crate) mod rtsp;

use std::sync::Arc;

use md5::{Digest, Md5};
use media::StreamKey;
use tokio::sync::oneshot;
use url::Url;

use crate::status::Retries;
use crate::tasks::Tasks;
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
    Rtsp,
}

impl Destination {
    fn of(schema: &str, url: &Url) -> Result<Destination, String> {
        match (schema, url.scheme()) {
            ("rtmp", "rtmp") => Ok(Destination::Rtmp),
            ("rtsp", "rtsp") => Ok(Destination::Rtsp),
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
            Destination::Rtsp => rtsp::push(url, opts, ctx, key, started, status).await,
        }
    }
}

/// Every push proxy of the server. Cloning gives another handle to the same set.
#[derive(Clone)]
pub struct Pushes {
    ctx: Context,
    tasks: Arc<Tasks<Meta>>,
}

/// What the API reports of a push besides its live figures.
struct Meta {
    stream: StreamKey,
    url: String,
    status: Arc<Status>,
}

impl Pushes {
    /// No pushes yet.
    pub fn new(ctx: Context) -> Self {
        Pushes {
            ctx,
            tasks: Arc::default(),
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
        if self.tasks.contains(&key) {
            return Ok(key);
        }
        let (started, pushing) = Started::new();
        let (failed_tx, failed) = oneshot::channel();
        let status = Arc::new(Status::default());
        let meta = Meta {
            stream: req.key.clone(),
            url: redacted(&url),
            status: Arc::clone(&status),
        };
        let attempts = Attempts {
            destination,
            url,
            stream: req.key.clone(),
            opts: req.attempt.clone(),
            retry_count: req.retry_count,
        };
        let new = self.tasks.start(&key, meta, |id| {
            tokio::spawn(run(
                self.ctx.clone(),
                Arc::clone(&self.tasks),
                key.clone(),
                id,
                attempts,
                started,
                failed_tx,
                status,
            ))
        });
        if !new {
            // Another call started the same push meanwhile.
            return Ok(key);
        }
        tokio::select! {
            Ok(()) = pushing => Ok(key),
            Ok(why) = failed => Err(why),
            else => Err("the push was deleted".into()),
        }
    }

    /// Stops the push `key`; false when there is none. Its session has ended when this
    /// answers.
    pub async fn remove(&self, key: &str) -> bool {
        let removed = self.tasks.remove(key).await;
        if removed {
            tracing::info!(push = ?key, "push proxy deleted");
        }
        removed
    }

    /// Every push, by key.
    pub fn list(&self) -> Vec<PushInfo> {
        self.tasks.list(info)
    }

    /// The push `key`.
    pub fn get(&self, key: &str) -> Option<PushInfo> {
        self.tasks.get(key, info)
    }

    /// Stops every push (the server stops).
    pub fn shutdown(&self) {
        self.tasks.shutdown();
    }
}

fn info(key: &str, m: &Meta) -> PushInfo {
    PushInfo {
        key: key.to_owned(),
        stream: m.stream.clone(),
        url: m.url.clone(),
        status: m.status.code(),
        live_secs: m.status.live_secs(),
        retries: m.status.retries(),
        bytes_speed: m.status.speed(),
        total_bytes: m.status.bytes(),
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
    tasks: Arc<Tasks<Meta>>,
    key: String,
    id: u64,
    attempts: Attempts,
    mut started: Started,
    failed: oneshot::Sender<String>,
    status: Arc<Status>,
) {
    let mut failed = Some(failed);
    let mut retries = Retries::new(attempts.retry_count);
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
        let Some(wait) = retries.next(got_through) else {
            let failures = retries.failures();
            tracing::info!(push = ?key, "push ends after {failures} failed attempts: {err}");
            break;
        };
        tracing::info!(push = ?key, "push lost ({err}); retrying in {wait:?}");
        tokio::time::sleep(wait).await;
        if !ctx.registry.is_live(&attempts.stream) {
            break;
        }
        status.retried();
    }
    tasks.remove_own(&key, id);
}
