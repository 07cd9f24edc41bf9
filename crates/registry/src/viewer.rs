//! A viewer's place in the registry: counted in its stream's readers, listed in the session
//! table, reported as it joins and leaves, and closable by the API (kick). The media a viewer
//! gets comes from an output's fan-out, not from here.

use crate::stream::Stream;
use crate::{Event, Inner, SessionInfo};
use media::{StreamKey, TrackInfo};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;
use tokio::sync::watch;

/// The wait behind [`Viewer::kicked`], kept between calls (a `Mutex` only to make the viewer
/// `Sync`; the driver that polls it has it by `&mut`).
type KickWait = Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>;

/// A viewer's handle on a live stream. Dropping it leaves the stream (and reports the bytes the
/// driver counted with [`Viewer::add_bytes`]).
pub struct Viewer {
    stream: Arc<Stream>,
    registry: Arc<Inner>,
    info: SessionInfo,
    bytes: Arc<AtomicU64>,
    started: Instant,
    kick: watch::Receiver<bool>,
    /// The wait for the kick, made at the first [`Viewer::kicked`] and kept: a driver that
    /// selects on `kicked()` beside its media, once per packet, then does not register and
    /// unregister a waiter each time (which cost more than the packet's own work).
    kick_wait: KickWait,
    /// The kick arrived (the wait has finished and may not be polled again).
    kicked: bool,
}

impl Viewer {
    pub(crate) fn new(stream: Arc<Stream>, info: SessionInfo, registry: Arc<Inner>) -> Self {
        stream.readers.fetch_add(1, Ordering::Relaxed);
        stream.total_readers.fetch_add(1, Ordering::Relaxed);
        let bytes = Arc::new(AtomicU64::new(0));
        let kick = registry.add_session(&info, &stream.key, crate::Role::Viewer, &bytes);
        tracing::debug!(stream = %stream.key, viewer = info.id, "viewer joined");
        registry.emit(Event::ViewerJoined {
            key: stream.key.clone(),
            viewer: info.clone(),
        });
        Viewer {
            stream,
            registry,
            info,
            bytes,
            started: Instant::now(),
            kick,
            kick_wait: Mutex::new(None),
            kicked: false,
        }
    }

    /// The stream watched.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// The viewer's session.
    pub fn session(&self) -> &SessionInfo {
        &self.info
    }

    /// The stream's tracks now.
    pub fn tracks(&self) -> Vec<TrackInfo> {
        self.stream.lock().tracks.clone()
    }

    /// Counts bytes the driver sent to the viewer (reported when it leaves).
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether the viewer must leave now (what [`Viewer::kicked`] waits for), for a driver
    /// that serves many viewers from one task and looks instead of waiting.
    pub fn is_kicked(&self) -> bool {
        *self.kick.borrow()
    }

    /// Resolves when the viewer must leave ([`crate::Registry::kick`]): the driver should then
    /// close the session. Cheap to call again and again (in a `select!` per packet): the wait
    /// it polls lives as long as the viewer.
    pub fn kicked(&mut self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(move |cx| {
            if self.kicked {
                return Poll::Ready(());
            }
            let wait = self
                .kick_wait
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| {
                    let mut kick = self.kick.clone();
                    // An error means the session table dropped its sender, i.e. the registry
                    // is gone: the viewer leaves too.
                    Box::pin(async move {
                        let _ = kick.wait_for(|kicked| *kicked).await;
                    })
                });
            let done = wait.as_mut().poll(cx);
            if done.is_ready() {
                self.kicked = true;
            }
            done
        })
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stream.readers.fetch_sub(1, Ordering::Relaxed);
        self.registry.remove_session(self.info.id);
        tracing::debug!(stream = %self.stream.key, viewer = self.info.id, "viewer left");
        self.registry.emit(Event::ViewerLeft {
            key: self.stream.key.clone(),
            viewer: self.info.clone(),
            bytes: self.bytes.load(Ordering::Relaxed),
            duration: self.started.elapsed(),
        });
    }
}
