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
pub(crate) mod hls;
mod rtmp;
pub(crate) mod rtsp;
pub(crate) mod ts;

use std::sync::Arc;

use media::StreamKey;
use registry::Protocol;
use tokio::sync::oneshot;
use url::Url;

use crate::status::Retries;
use crate::tasks::Tasks;
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
    HttpTs,
    Hls,
    Rtsp,
}

impl Source {
    fn of(url: &Url) -> Result<Source, ProxyError> {
        let path = url.path().to_ascii_lowercase();
        match url.scheme() {
            "rtmp" => Ok(Source::Rtmp),
            "rtsp" => Ok(Source::Rtsp),
            "http" if path.ends_with(".flv") => Ok(Source::HttpFlv),
            "http" if path.ends_with(".ts") => Ok(Source::HttpTs),
            "http" if path.ends_with(".m3u8") => Ok(Source::Hls),
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
            Source::HttpTs => ts::pull(url, opts, ingest).await,
            Source::Hls => hls::pull(url, opts, ingest).await,
            Source::Rtsp => rtsp::pull(url, opts, ingest).await,
        }
    }
}

/// Every pull proxy of the server. Cloning gives another handle to the same set.
#[derive(Clone)]
pub struct Pulls {
    ctx: Context,
    tasks: Arc<Tasks<Meta>>,
}

/// What the API reports of a pull besides its live figures.
struct Meta {
    stream: StreamKey,
    url: String,
    status: Arc<Status>,
}

impl Pulls {
    /// No proxies yet.
    pub fn new(ctx: Context) -> Self {
        Pulls {
            ctx,
            tasks: Arc::default(),
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
        let meta = Meta {
            stream: req.key.clone(),
            url: origin,
            status: Arc::clone(&status),
        };
        let attempts = Attempts {
            source,
            url,
            opts: req.attempt.clone(),
            retry_count: req.retry_count,
        };
        let started = self.tasks.start(&key, meta, |id| {
            tokio::spawn(run(
                Arc::clone(&self.tasks),
                key.clone(),
                id,
                attempts,
                ingest,
                failed_tx,
                status,
            ))
        });
        if !started {
            return Err("This stream already exists".into());
        }
        tokio::select! {
            Ok(()) = live => Ok(key),
            Ok(why) = failed => Err(why),
            else => Err("the proxy was deleted".into()),
        }
    }

    /// Stops the proxy `key` (`vhost/app/stream`) and ends its stream; false when there is
    /// none. Its stream has ended when this answers.
    pub async fn remove(&self, key: &str) -> bool {
        let removed = self.tasks.remove(key).await;
        if removed {
            tracing::info!(proxy = ?key, "pull proxy deleted");
        }
        removed
    }

    /// Every proxy, by key.
    pub fn list(&self) -> Vec<PullInfo> {
        self.tasks.list(|key, meta| self.info(key, meta))
    }

    /// The proxy `key`.
    pub fn get(&self, key: &str) -> Option<PullInfo> {
        self.tasks.get(key, |key, meta| self.info(key, meta))
    }

    /// Stops every proxy (the server stops).
    pub fn shutdown(&self) {
        self.tasks.shutdown();
    }

    fn info(&self, key: &str, m: &Meta) -> PullInfo {
        let total_readers = self
            .ctx
            .registry
            .stream(&m.stream)
            .map_or(0, |s| s.total_readers);
        PullInfo {
            key: key.to_owned(),
            stream: m.stream.clone(),
            url: m.url.clone(),
            status: m.status.code(),
            live_secs: m.status.live_secs(),
            retries: m.status.retries(),
            total_readers,
            bytes_speed: m.status.speed(),
            total_bytes: m.status.bytes(),
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
    tasks: Arc<Tasks<Meta>>,
    key: String,
    id: u64,
    attempts: Attempts,
    mut ingest: Ingest,
    failed: oneshot::Sender<String>,
    status: Arc<Status>,
) {
    let mut failed = Some(failed);
    let mut retries = Retries::new(attempts.retry_count);
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
                // Gone from the list before the add call hears of it.
                tasks.remove_own(&key, id);
                let _ = failed.send(err.to_string());
                break;
            }
        }
        failed = None;
        if !err.retryable() {
            tracing::info!(proxy = ?key, "pull proxy ends: {err}");
            break;
        }
        let Some(wait) = retries.next(ingest.connects() > connects) else {
            let failures = retries.failures();
            tracing::info!(proxy = ?key, "pull proxy ends after {failures} failed attempts: {err}");
            break;
        };
        tracing::info!(proxy = ?key, "source lost ({err}); retrying in {wait:?}");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ingest.closed() => break,
        }
        status.retried();
    }
    tasks.remove_own(&key, id);
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
        assert_eq!(of("http://h/live/a.live.ts").ok(), Some(Source::HttpTs));
        assert_eq!(of("http://h/live/a/hls.m3u8?t=1").ok(), Some(Source::Hls));
        assert!(matches!(of("https://h/a.flv"), Err(ProxyError::BadUrl(_))));
        assert!(matches!(of("http://h/a.mp4"), Err(ProxyError::BadUrl(_))));
        assert!(matches!(
            of("file:///etc/passwd"),
            Err(ProxyError::BadUrl(_))
        ));
    }
}
