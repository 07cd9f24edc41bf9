//! The HTTP listener: each connection served by hyper with the api crate's routes, behind a
//! [`StallGuard`] so a viewer that stops reading an endless FLV body is cut off, and watched so
//! that a client cannot hold a socket without using it:
//!
//! - **Header deadline** ([`HttpOptions::header_timeout`], [`HEADER_TIMEOUT`]): once the first
//!   byte of a request arrives, the rest of its head must follow within the deadline, however
//!   slowly it trickles in.
//! - **Idle keep-alive** (`http.keepAliveSecond`, ZLMediaKit's key and default): a connection
//!   with no request in flight is closed once it has been quiet that long, whether it never
//!   sent a byte or finished a response. A request is in flight from its head until its
//!   response body ends, so an endless HTTP-FLV body or a held LL-HLS blocking playlist is never
//!   cut by this.
//!
//! hyper's own `http1::Builder::header_read_timeout` is not used, because it covers neither
//! case as we need (hyper 1.12, hyper-util 0.1.21): behind hyper-util's `auto` builder its
//! clock only starts once the HTTP/2-preface sniff has read a byte, so a silent socket is never
//! timed; and between keep-alive requests it starts when the connection goes idle, not at the
//! next request's first byte, so it would close idle connections at the header deadline rather
//! than at keepAliveSecond. It does nothing for HTTP/2 either. It needs a timer to run at all
//! (without one its 30 s default is silently off), so leaving it off costs nothing.

use crate::limits::{ConnGuard, Limits, Listener};
use crate::stall::StallGuard;

pub(crate) mod live_flv;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

/// How long a request's head may take to arrive once its first byte has. Fixed rather than a
/// config key (ZLMediaKit has none either): a legitimate client sends its head in one go, so
/// 10 s only matters to one that trickles it to hold the socket.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits on how an HTTP connection may be held, built from a [`config::Config`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `http.keepAliveSecond`: a connection with no request in flight that has received and
    /// sent nothing for this long is closed.
    pub keep_alive: Duration,
    /// A request's head must have arrived this long after its first byte, or the connection
    /// is closed. Not a config key (ZLMediaKit has none); tests shorten it. Default: 10 s.
    pub header_timeout: Duration,
}

impl Default for HttpOptions {
    /// The config table's defaults.
    fn default() -> Self {
        HttpOptions::from(&config::Config::default())
    }
}

impl From<&config::Config> for HttpOptions {
    fn from(config: &config::Config) -> Self {
        HttpOptions {
            keep_alive: config.http.keep_alive_second,
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `accept` turns true (the listener moves or the server
/// stops); its connections end when `shutdown` does. Open responses end with it: live
/// bodies never end by themselves, so there is nothing to drain.
pub(crate) async fn serve(
    listener: TcpListener,
    state: api::AppState,
    write_timeout: Duration,
    options: HttpOptions,
    limits: Limits,
    accept: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
) {
    let app: Router = api::router(state.clone());
    let sessions = shutdown;
    let serve = move |socket: tokio::net::TcpStream, peer, guard: ConnGuard| {
        let _ = socket.set_nodelay(true);
        let (app, state) = (app.clone(), state.clone());
        let mut shutdown = sessions.clone();
        let activity = Arc::new(Activity::new(options.clone()));
        let span = tracing::debug_span!("http", %peer);
        async move {
            // The first request decides: an HTTP-FLV play is served on the socket itself
            // (`live_flv`), anything else by hyper.
            // Waiting for it is bounded like hyper's wait: by keepAliveSecond.
            let head = tokio::select! {
                head = live_flv::peek_head(&socket) => head,
                expiry = activity.expired() => {
                    tracing::debug!("HTTP connection closed: {expiry}");
                    return;
                }
                _ = shutdown.changed() => return,
            };
            if let Some(head) = head {
                let established = || guard.established();
                live_flv::serve(
                    socket,
                    head,
                    peer,
                    &state,
                    write_timeout,
                    &mut shutdown,
                    established,
                )
                .await;
                return;
            }
            let requests = Arc::clone(&activity);
            let guard = Arc::new(guard);
            let service = tower::service_fn(move |mut req: axum::extract::Request<Incoming>| {
                // A request head arrived: the connection is no longer a silent one.
                guard.established();
                // What `into_make_service_with_connect_info` would insert.
                req.extensions_mut().insert(ConnectInfo(peer));
                let busy = requests.begin();
                let response = app.clone().oneshot(req);
                async move {
                    let response = response.await?;
                    // The request stays in flight until hyper drops its body: at its end, or
                    // with the connection.
                    Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
                }
            });
            let io = TokioIo::new(Watched {
                inner: StallGuard::new(socket, write_timeout),
                activity: Arc::clone(&activity),
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // `Activity` does this job (see the module docs); say so instead of relying on
            // hyper's default being off for want of a timer.
            builder.http1().header_read_timeout(None);
            let conn =
                builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!("HTTP connection ended: {e}");
                },
                expiry = activity.expired() => {
                    tracing::debug!("HTTP connection closed: {expiry}");
                }
                _ = shutdown.changed() => {}
            }
        }
        .instrument(span)
    };
    crate::limits::accept_loop(listener, Listener::Http, limits, accept, serve).await;
}

/// Why an idle connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// No request in flight for `keep_alive`.
    Idle(Duration),
    /// A request's head still incomplete `header_timeout` after its first byte.
    Header(Duration),
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::Idle(d) => write!(f, "no request for {d:?} (http.keepAliveSecond)"),
            Expiry::Header(d) => write!(f, "request head not received within {d:?}"),
        }
    }
}

/// What one connection is doing, as its socket ([`Watched`]) and its requests ([`Busy`])
/// report it; [`Activity::expired`] resolves once it has gone unused for too long.
struct Activity {
    limits: HttpOptions,
    /// Requests whose response body has not ended. Changed only under `times`'s lock; read
    /// without it on every socket read and write, so a streaming response costs no locking.
    in_flight: AtomicUsize,
    times: Mutex<Times>,
    /// Wakes [`Activity::expired`] when its deadline may have moved earlier.
    changed: Notify,
}

struct Times {
    /// The last sign of life while no request was in flight: the connection's start, the end
    /// of a response, or a write of its tail after that.
    idle_since: Instant,
    /// When the first byte of the next request arrived (only while none is in flight).
    head_since: Option<Instant>,
}

impl Activity {
    fn new(limits: HttpOptions) -> Activity {
        Activity {
            limits,
            in_flight: AtomicUsize::new(0),
            times: Mutex::new(Times {
                idle_since: Instant::now(),
                head_since: None,
            }),
            changed: Notify::new(),
        }
    }

    fn times(&self) -> MutexGuard<'_, Times> {
        // Every critical section leaves the times consistent; a poisoned lock is safe to reuse.
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Bytes arrived. With no request in flight they start the next request's head, and its
    /// deadline runs from the first of them (a trickle does not extend it).
    fn received(&self) {
        if !self.idle() {
            return;
        }
        let mut times = self.times();
        if self.idle() && times.head_since.is_none() {
            times.head_since = Some(Instant::now());
            self.changed.notify_one();
        }
    }

    /// Bytes left. With no request in flight this is the tail of the last response still
    /// draining to a slow reader: the connection is not idle while it moves.
    fn sent(&self) {
        if self.idle() {
            self.times().idle_since = Instant::now();
        }
    }

    /// A request's head was parsed: it is in flight until the returned guard drops.
    fn begin(self: &Arc<Self>) -> Busy {
        let mut times = self.times();
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        times.head_since = None;
        Busy(Arc::clone(self))
    }

    fn end(&self) {
        let mut times = self.times();
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            times.idle_since = Instant::now();
            times.head_since = None;
            self.changed.notify_one();
        }
    }

    /// When the connection expires as things stand, and why; `None` while a request is in
    /// flight.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let times = self.times();
        if !self.idle() {
            return None;
        }
        let HttpOptions {
            keep_alive,
            header_timeout,
        } = self.limits;
        Some(match times.head_since {
            // A head on its way replaces the idle clock: a request that starts just before
            // keepAliveSecond runs out still gets its full header deadline.
            Some(first_byte) => (first_byte + header_timeout, Expiry::Header(header_timeout)),
            None => (times.idle_since + keep_alive, Expiry::Idle(keep_alive)),
        })
    }

    /// Resolves once the connection has been idle, or a request head incomplete, for too long.
    async fn expired(&self) -> Expiry {
        loop {
            match self.deadline() {
                // `notify_one` keeps a permit when nobody waits, so a change made between
                // `deadline` and here is not missed.
                None => self.changed.notified().await,
                Some((at, expiry)) => {
                    if Instant::now() >= at {
                        return expiry;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// A request in flight; dropping it (with the response body) ends it.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that keeps its request in flight until hyper drops it.
struct Tracked {
    body: axum::body::Body,
    _busy: Busy,
}

impl Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, reporting to its [`Activity`] when bytes move.
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> Watched<T> {
    fn wrote(&self, poll: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.sent();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpOptions {
        HttpOptions {
            keep_alive: Duration::from_secs(15),
            header_timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_after_keep_alive() {
        let activity = Activity::new(limits());
        let start = Instant::now();
        assert_eq!(activity.expired().await, Expiry::Idle(limits().keep_alive));
        assert_eq!(start.elapsed(), limits().keep_alive);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_expires_from_its_first_byte() {
        let activity = Arc::new(Activity::new(limits()));
        let trickle = {
            let activity = Arc::clone(&activity);
            async move {
                tokio::time::sleep(Duration::from_secs(12)).await;
                loop {
                    activity.received();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let start = Instant::now();
        let expiry = tokio::select! {
            e = activity.expired() => e,
            _ = trickle => unreachable!(),
        };
        assert_eq!(expiry, Expiry::Header(limits().header_timeout));
        // First byte at 12 s, inside keepAliveSecond; the head deadline then runs from it.
        assert_eq!(start.elapsed(), Duration::from_secs(22));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_never_expires_and_idleness_restarts_at_its_end() {
        let activity = Arc::new(Activity::new(limits()));
        activity.received();
        let busy = activity.begin();
        let start = Instant::now();
        let ended = async {
            tokio::time::sleep(Duration::from_secs(100)).await;
            drop(busy);
        };
        let (expiry, ()) = tokio::join!(activity.expired(), ended);
        assert_eq!(expiry, Expiry::Idle(limits().keep_alive));
        assert_eq!(start.elapsed(), Duration::from_secs(115));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_of_a_response_tail_keep_the_connection_alive() {
        let activity = Arc::new(Activity::new(limits()));
        drop(activity.begin());
        let start = Instant::now();
        let draining = async {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                activity.sent();
            }
        };
        let (expiry, ()) = tokio::join!(activity.expired(), draining);
        assert_eq!(expiry, Expiry::Idle(limits().keep_alive));
        assert_eq!(start.elapsed(), Duration::from_secs(35));
    }
}
