//! Pull proxies, ZLMediaKit's `addStreamProxy`: a source the server plays and republishes
//! as a live stream of `originType` 4.
//!
//! Each proxy is one task: an attempt plays the source into the proxy's [`Ingest`]; when it
//! ends the task waits ZLMediaKit's backoff (2 s more per failure, at most 60 s) and tries
//! again while `retry_count` allows (negative = forever). The stream stays live across
//! attempts, so its viewers stay attached. The first attempt decides addStreamProxy's answer:
//! if it fails, the proxy is gone, as in ZLMediaKit. A proxy ends for good when its stream is
//! closed here (close_streams, on_stream_none_reader's `close`, a kick), when on_publish
//! refuses it, or on delStreamProxy.

mod flv;
mod rtmp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use media::StreamKey;
use registry::Protocol;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use crate::status::backoff;
use crate::{redacted, AttemptOptions, Context, Ingest, ProxyError, Started, Status};

/// Longest tag or frame a pulled source may send, bytes.
pub(crate) const MAX_FRAME: usize = 8 << 20;

/// What addStreamProxy asks for.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The stream it becomes.
    pub key: StreamKey,
    /// The source.
    pub url: String,
    /// Attempts after a failure; negative = forever.
    pub retry_count: i64,
    /// Timeouts and RTSP transport.
    pub attempt: AttemptOptions,
    /// ZLMediaKit's ProtocolOption given with the call (`enable_hls`, `enable_mp4`, …).
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// One proxy as listStreamProxy and getProxyInfo report it.
#[derive(Debug, Clone)]
pub struct PullInfo {
    /// `vhost/app/stream`.
    pub key: String,
    /// The stream.
    pub stream: StreamKey,
    /// The source, without credentials.
    pub url: String,
    /// 0 while the source plays, 1 while connecting or waiting to retry.
    pub status: u32,
    /// Seconds the source played, over every attempt.
    pub live_secs: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Viewers the stream had.
    pub total_readers: u64,
    /// Bytes per second from the source over the last second.
    pub bytes_speed: u64,
    /// Media bytes from the source.
    pub total_bytes: u64,
}

/// What kind of source a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Rtmp,
    HttpFlv,
}

impl Source {
    fn of(url: &Url) -> Result<Source, ProxyError> {
        let path = url.path().to_ascii_lowercase();
        match url.scheme() {
            "rtmp" => Ok(Source::Rtmp),
            "http" if path.ends_with(".flv") => Ok(Source::HttpFlv),
            "https" | "rtmps" | "rtsps" => Err(ProxyError::BadUrl(format!(
                "{}:// (TLS) sources are not supported",
                url.scheme()
            ))),
            "http" => Err(ProxyError::BadUrl(
                "an http:// source must end in .flv, .m3u8 or .ts".into(),
            )),
            scheme => Err(ProxyError::BadUrl(format!("{scheme}:// is not a source"))),
        }
    }

    async fn attempt(
        self,
        url: &Url,
        opts: &AttemptOptions,
        ingest: &mut Ingest,
    ) -> Result<(), ProxyError> {
        match self {
            Source::Rtmp => rtmp::pull(url, opts, ingest).await,
            Source::HttpFlv => flv::pull(url, opts, ingest).await,
        }
    }
}

/// Every pull proxy of the server. Cloning gives another handle to the same set.
#[derive(Clone)]
pub struct Pulls {
    ctx: Context,
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    proxies: Mutex<HashMap<String, Entry>>,
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
    fn proxies(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.proxies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes proxy `id` under `key` (not a newer one under the same key).
    fn remove_own(&self, key: &str, id: u64) {
        let mut proxies = self.proxies();
        if proxies.get(key).is_some_and(|e| e.id == id) {
            proxies.remove(key);
        }
    }
}

impl Pulls {
    /// No proxies yet.
    pub fn new(ctx: Context) -> Self {
        Pulls {
            ctx,
            inner: Arc::default(),
        }
    }

    /// Starts a proxy and answers once its first attempt plays (`Ok(key)`, the key being
    /// `vhost/app/stream`) or fails (`Err(why)`, and the proxy is gone).
    pub async fn add(&self, req: PullRequest) -> Result<String, String> {
        let url = Url::parse(req.url.trim()).map_err(|e| format!("invalid url: {e}"))?;
        let source = Source::of(&url).map_err(|e| e.to_string())?;
        let key = short_key(&req.key);
        let (started, live) = Started::new();
        let (failed_tx, failed) = oneshot::channel();
        let status = Arc::new(Status::default());
        {
            let mut proxies = self.inner.proxies();
            if proxies.contains_key(&key) {
                return Err("This stream already exists".into());
            }
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let origin = redacted(&url);
            let ingest = Ingest::new(
                self.ctx.clone(),
                req.key.clone(),
                Protocol::Pull,
                Some(origin.clone()),
                req.options.clone(),
            )
            .with_started(started)
            .with_status(Arc::clone(&status));
            let task = tokio::spawn(run(
                Arc::clone(&self.inner),
                key.clone(),
                id,
                Attempts {
                    source,
                    url,
                    opts: req.attempt.clone(),
                    retry_count: req.retry_count,
                },
                ingest,
                failed_tx,
                Arc::clone(&status),
            ));
            proxies.insert(
                key.clone(),
                Entry {
                    id,
                    stream: req.key.clone(),
                    url: origin,
                    status,
                    task,
                },
            );
        }
        tokio::select! {
            Ok(()) = live => Ok(key),
            Ok(why) = failed => Err(why),
            else => Err("the proxy was deleted".into()),
        }
    }

    /// Stops the proxy `key` (`vhost/app/stream`) and ends its stream; false when there is none.
    pub async fn remove(&self, key: &str) -> bool {
        let entry = self.inner.proxies().remove(key);
        match entry {
            Some(entry) => {
                entry.task.abort();
                // Its stream (or its session) has ended when this answers.
                let _ = entry.task.await;
                tracing::info!(proxy = ?key, "pull proxy deleted");
                true
            }
            None => false,
        }
    }

    /// Every proxy, by key.
    pub fn list(&self) -> Vec<PullInfo> {
        let proxies = self.inner.proxies();
        let mut list: Vec<_> = proxies.iter().map(|(k, e)| self.info(k, e)).collect();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        list
    }

    /// The proxy `key`.
    pub fn get(&self, key: &str) -> Option<PullInfo> {
        let proxies = self.inner.proxies();
        proxies.get(key).map(|e| self.info(key, e))
    }

    /// Stops every proxy (the server stops).
    pub fn shutdown(&self) {
        for (_, entry) in self.inner.proxies().drain() {
            entry.task.abort();
        }
    }

    fn info(&self, key: &str, e: &Entry) -> PullInfo {
        let total_readers = self
            .ctx
            .registry
            .stream(&e.stream)
            .map_or(0, |s| s.total_readers);
        PullInfo {
            key: key.to_owned(),
            stream: e.stream.clone(),
            url: e.url.clone(),
            status: e.status.code(),
            live_secs: e.status.live_secs(),
            retries: e.status.retries(),
            total_readers,
            bytes_speed: e.status.speed(),
            total_bytes: e.status.bytes(),
        }
    }
}

/// ZLMediaKit's key of a proxy: `vhost/app/stream`.
pub fn short_key(key: &StreamKey) -> String {
    format!("{}/{}/{}", key.vhost(), key.app(), key.stream())
}

struct Attempts {
    source: Source,
    url: Url,
    opts: AttemptOptions,
    retry_count: i64,
}

async fn run(
    inner: Arc<Inner>,
    key: String,
    id: u64,
    attempts: Attempts,
    mut ingest: Ingest,
    failed: oneshot::Sender<String>,
    status: Arc<Status>,
) {
    let mut failed = Some(failed);
    let mut failures: u32 = 0;
    loop {
        let connects = ingest.connects();
        let result = attempts
            .source
            .attempt(&attempts.url, &attempts.opts, &mut ingest)
            .await;
        status.went_down();
        let err = result.err().unwrap_or(ProxyError::Ended);
        if !ingest.is_live() {
            if let Some(failed) = failed.take() {
                tracing::info!(proxy = ?key, "pull proxy failed: {err}");
                let _ = failed.send(err.to_string());
                break;
            }
        }
        failed = None;
        if !err.retryable() {
            tracing::info!(proxy = ?key, "pull proxy ends: {err}");
            break;
        }
        if ingest.connects() > connects {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        if attempts.retry_count >= 0 && i64::from(failures) > attempts.retry_count {
            tracing::info!(proxy = ?key, "pull proxy ends after {failures} failed attempts: {err}");
            break;
        }
        let wait = backoff(failures);
        tracing::info!(proxy = ?key, "source lost ({err}); retrying in {wait:?}");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ingest.closed() => break,
        }
        status.retried();
    }
    inner.remove_own(&key, id);
}

/// Feeds one RTMP/FLV audio or video tag body to `ingest`. An undecodable tag is dropped, as a
/// player would skip it.
pub(crate) fn feed_tag(
    demuxer: &mut ::rtmp::flv::Demuxer,
    ingest: &mut Ingest,
    timestamp: u32,
    body: &bytes::Bytes,
    video: bool,
) -> Result<(), ProxyError> {
    use ::rtmp::flv::DemuxEvent;
    let first = if video {
        demuxer.push_video(timestamp, body)
    } else {
        demuxer.push_audio(timestamp, body)
    };
    let first = match first {
        Ok(first) => first,
        Err(e) => {
            tracing::debug!("tag dropped: {e}");
            return Ok(());
        }
    };
    let second = demuxer.pull();
    for event in [first, second].into_iter().flatten() {
        match event {
            DemuxEvent::Track(track) => ingest.set_track(track),
            DemuxEvent::Frame { frame, .. } => ingest.push(frame)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_url() {
        let of = |s: &str| Source::of(&Url::parse(s).expect("url"));
        assert_eq!(of("rtmp://h/live/a").ok(), Some(Source::Rtmp));
        assert_eq!(
            of("http://h/live/a.live.flv?x=1").ok(),
            Some(Source::HttpFlv)
        );
        assert!(matches!(of("https://h/a.flv"), Err(ProxyError::BadUrl(_))));
        assert!(matches!(of("http://h/a.mp4"), Err(ProxyError::BadUrl(_))));
        assert!(matches!(
            of("file:///etc/passwd"),
            Err(ProxyError::BadUrl(_))
        ));
    }
}
