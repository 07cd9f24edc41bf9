//! Pulling an HTTP MPEG-TS source (`http://….ts`): one long GET whose body is a live
//! transport stream, demuxed ([`hls::reader::Demuxer`]) into PES and turned into tracks and
//! frames ([`hls::es::Elementary`]). The HLS pull reads its segments with the same [`TsFeed`].

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hls::es::{Elementary, EsEvent};
use hls::reader::Demuxer;
use tokio::time::{timeout, Instant};
use url::Url;

use crate::{AttemptOptions, Ingest, ProxyError};

/// Where the first frame after a discontinuity goes: this long after the last one (ms).
const REBASE_GAP_MS: u64 = 40;

/// Plays `url` into `ingest` until the body ends ([`ProxyError::Ended`]) or fails; a source
/// silent, or sending nothing that decodes, for `opts.timeout` is a [`ProxyError::Timeout`].
pub(crate) async fn pull(
    url: &Url,
    opts: &AttemptOptions,
    ingest: &mut Ingest,
) -> Result<(), ProxyError> {
    let client = client(opts)?;
    let mut response = get(&client, url, opts.timeout).await?;
    let peer = response
        .remote_addr()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let local = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut feed = TsFeed::new(opts.timeout);
    // This attempt called `Ingest::live` (every attempt does, once: a reconnect resumes).
    let mut live = false;
    loop {
        let chunk = timeout(opts.timeout, response.chunk())
            .await
            .map_err(|_| ProxyError::Timeout("no data from the source"))?
            .map_err(|e| ProxyError::Io {
                context: "read",
                source: std::io::Error::other(e),
            })?;
        let Some(chunk) = chunk else {
            feed.finish();
            if !live {
                return Err(ProxyError::Protocol(
                    "the body ended without an MPEG-TS program".into(),
                ));
            }
            feed.drain(ingest)?;
            return Err(ProxyError::Ended);
        };
        feed.push(&chunk);
        if !live && feed.has_program() {
            ingest.live(peer, local).await?;
            live = true;
        }
        if live {
            feed.drain(ingest)?;
        }
        feed.check_progress()?;
    }
}

/// The HTTP client of one attempt: connect timeout, our user agent, at most 5 redirects and
/// only to http:// (a redirect elsewhere answers as the 3xx it is).
pub(super) fn client(opts: &AttemptOptions) -> Result<reqwest::Client, ProxyError> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.url().scheme() != "http" || attempt.previous().len() >= 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .connect_timeout(opts.timeout)
        .redirect(redirects)
        .user_agent(concat!("ferrostream/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProxyError::Protocol(e.to_string()))
}

/// GETs `url`, answering once the response head came; a status other than 2xx is
/// [`ProxyError::Refused`].
pub(super) async fn get(
    client: &reqwest::Client,
    url: &Url,
    wait: Duration,
) -> Result<reqwest::Response, ProxyError> {
    let response = timeout(wait, client.get(url.clone()).send())
        .await
        .map_err(|_| ProxyError::Timeout("HTTP response"))?
        .map_err(|e| {
            if e.is_connect() {
                ProxyError::Io {
                    context: "connect",
                    source: io_cause(&e),
                }
            } else {
                ProxyError::Refused(format!("GET {}: {e}", crate::redacted(url)))
            }
        })?;
    if !response.status().is_success() {
        return Err(ProxyError::Refused(format!(
            "GET {}: HTTP {}",
            crate::redacted(url),
            response.status()
        )));
    }
    Ok(response)
}

/// The socket error under a reqwest error (`Connection refused (os error 111)`, as the RTMP
/// pull reports it), or the error itself when there is none.
fn io_cause(e: &reqwest::Error) -> std::io::Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return match io.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(io.kind(), io.to_string()),
            };
        }
        cause = c.source();
    }
    std::io::Error::other(e.to_string())
}

/// A transport stream being read into tracks and frames: a [`Demuxer`] and an [`Elementary`].
/// Damaged packets and PES are dropped (logged at debug), as a player would skip them; a source
/// that sends bytes but no frame for the attempt's timeout fails
/// ([`TsFeed::check_progress`]).
pub(super) struct TsFeed {
    demuxer: Demuxer,
    es: Elementary,
    /// The longest a source may go without a frame.
    patience: Duration,
    last_frame: Instant,
    /// Added to every frame's timestamps (ms): the HLS pull's rebase at a discontinuity.
    offset: i64,
    /// The next frame starts a new timeline section (EXT-X-DISCONTINUITY).
    rebase: bool,
    /// The latest DTS handed out, after the offset.
    last_dts: Option<u64>,
    errors: u64,
}

impl TsFeed {
    pub(super) fn new(patience: Duration) -> Self {
        TsFeed {
            demuxer: Demuxer::new(),
            es: Elementary::new(),
            patience,
            last_frame: Instant::now(),
            offset: 0,
            rebase: false,
            last_dts: None,
            errors: 0,
        }
    }

    /// The next bytes of the stream.
    pub(super) fn push(&mut self, data: &[u8]) {
        if let Err(e) = self.demuxer.push(data) {
            self.error("TS", &e);
        }
        self.take_pes();
    }

    /// The end of the stream (or of an HLS segment): the PES and access units still open are
    /// completed.
    pub(super) fn finish(&mut self) {
        if let Err(e) = self.demuxer.finish() {
            self.error("TS", &e);
        }
        self.take_pes();
        self.es.flush();
    }

    /// Starts the next HLS segment: a fresh demuxer (segments need not continue each other's
    /// continuity counters); the elementary streams, their clock and parameter sets go on.
    /// `discontinuity`: its timestamps need not follow the last segment's, so its first frame
    /// is placed just after the last one handed out.
    pub(super) fn next_segment(&mut self, discontinuity: bool) {
        self.demuxer = Demuxer::new();
        self.rebase |= discontinuity;
    }

    /// Whether the program map was read: the source is a transport stream with media.
    pub(super) fn has_program(&self) -> bool {
        self.demuxer.pmt().is_some_and(|p| !p.streams.is_empty())
    }

    fn take_pes(&mut self) {
        while let Some(pes) = self.demuxer.pull() {
            let stream_type = self
                .demuxer
                .pmt()
                .and_then(|p| p.streams.iter().find(|(_, pid)| *pid == pes.pid))
                .map(|(t, _)| *t);
            let Some(stream_type) = stream_type else {
                continue;
            };
            let payload = Bytes::from(pes.data);
            if let Err(e) = self
                .es
                .push(stream_type, pes.header.pts, pes.header.dts, payload)
            {
                self.error("PES", &e);
            }
        }
    }

    fn error(&mut self, what: &str, e: &hls::Error) {
        self.errors += 1;
        if self.errors <= 10 || self.errors.is_power_of_two() {
            tracing::debug!(errors = self.errors, "{what} dropped: {e}");
        }
    }

    /// Hands the tracks and frames read so far to `ingest`.
    pub(super) fn drain(&mut self, ingest: &mut Ingest) -> Result<(), ProxyError> {
        while let Some(event) = self.next_event() {
            match event {
                EsEvent::Track(track) => ingest.set_track(track),
                EsEvent::Frame(frame) => ingest.push(frame)?,
            }
        }
        Ok(())
    }

    /// The next track or frame read, its timestamps on the pull's one timeline.
    pub(super) fn next_event(&mut self) -> Option<EsEvent> {
        let mut event = self.es.pull()?;
        if let EsEvent::Frame(frame) = &mut event {
            if std::mem::take(&mut self.rebase) {
                // One offset for every track keeps them in sync with each other; a frame's
                // worth of gap after the last one.
                let next = self.last_dts.map_or(frame.dts, |d| d + REBASE_GAP_MS);
                self.offset = next as i64 - frame.dts as i64;
            }
            frame.dts = frame.dts.saturating_add_signed(self.offset);
            self.last_dts = Some(self.last_dts.map_or(frame.dts, |d| d.max(frame.dts)));
            self.last_frame = Instant::now();
        }
        Some(event)
    }

    /// Fails when no frame came for the attempt's timeout although bytes did.
    pub(super) fn check_progress(&self) -> Result<(), ProxyError> {
        if self.last_frame.elapsed() > self.patience {
            return Err(ProxyError::Timeout("no decodable media from the source"));
        }
        Ok(())
    }
}
