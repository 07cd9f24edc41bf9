//! RTP for RTSP viewers, packetized once per stream and shared by all of them.
//!
//! The first RTSP viewer of a stream creates its [`RtpOutput`]: a task that reads the stream
//! from the registry (as an output, not counted as a viewer), runs it through one
//! `rtsp::mux::Muxer` and fans the packets out on a bounded ring, with a cache of the packets
//! since the last video keyframe so a new viewer starts with a decodable picture at once. Every
//! viewer reads the same [`MuxPacket`] bytes; the output ends with the stream or its last
//! viewer.
//!
//! A viewer that falls more than the ring behind skips to the next keyframe; one that does so
//! too often is dropped (the registry's policy, [`registry::RegistryConfig`]).

use bytes::Bytes;
use media::{StreamKey, TrackKind};
use registry::{Item, LagTracker, Protocol, Registry, SessionInfo};
use rtsp::mux::{MuxPacket, Muxer};
use rtsp::{sdp, RtspConfig};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;

/// Packets in each output's ring.
const RING: usize = 4096;
/// Most packets and bytes kept since the last keyframe for new viewers.
const CACHE_PACKETS: usize = 8192;
const CACHE_BYTES: usize = 32 << 20;
/// A viewer that lags this many times within [`LAG_WINDOW`] is dropped.
const MAX_LAGS: usize = 5;
const LAG_WINDOW: Duration = Duration::from_secs(30);
/// How long a new output waits for a stream's tracks to be known.
const TRACK_WAIT: Duration = Duration::from_secs(5);
/// How long it waits for a second track after the first.
const LATE_TRACK_WAIT: Duration = Duration::from_secs(1);

/// The live RTP outputs, by stream.
pub(crate) struct RtpOutputs {
    registry: Registry,
    config: RtspConfig,
    outputs: Mutex<HashMap<StreamKey, Weak<RtpOutput>>>,
}

/// One stream's shared RTP.
pub(crate) struct RtpOutput {
    state: Mutex<State>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    sdp: String,
    tracks: Vec<sdp::Track>,
    /// Per track: next sequence number and RTP time, for RTP-Info.
    rtp_info: Vec<(usize, u16, u32)>,
    has_video: bool,
    cache: VecDeque<MuxPacket>,
    cache_bytes: usize,
    cache_broken: bool,
    /// `None` once the stream ended.
    tx: Option<broadcast::Sender<MuxPacket>>,
}

impl RtpOutputs {
    pub(crate) fn new(registry: Registry, config: RtspConfig) -> Self {
        RtpOutputs {
            registry,
            config,
            outputs: Mutex::new(HashMap::new()),
        }
    }

    fn outputs(&self) -> MutexGuard<'_, HashMap<StreamKey, Weak<RtpOutput>>> {
        self.outputs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The RTP output of `key`, started by the first viewer. `None` when the stream is not
    /// live or has no track RTSP can carry.
    pub(crate) async fn get(&self, key: &StreamKey, local: SocketAddr) -> Option<Arc<RtpOutput>> {
        let existing = self.outputs().get(key).and_then(Weak::upgrade);
        if let Some(output) = existing.filter(|o| o.live()) {
            return Some(output);
        }
        let tracks: Vec<media::TrackInfo> = self
            .registry
            .tracks_ready(key, LATE_TRACK_WAIT, TRACK_WAIT)
            .await?
            .into_iter()
            .map(|t| t.info)
            .collect();
        let info = self.registry.stream(key)?;
        let output_session = SessionInfo {
            id: self.registry.next_session_id(),
            protocol: Protocol::Rtsp,
            peer: local,
            local,
            params: String::new(),
        };
        let sub = self.registry.subscribe_output(key, output_session)?;
        let origin = info.created.duration_since(UNIX_EPOCH).unwrap_or_default();
        let muxer = Muxer::new(&tracks, &self.config, origin, rand::random());
        if muxer.tracks().is_empty() {
            return None;
        }
        let (tx, _) = broadcast::channel(RING);
        let output = Arc::new(RtpOutput {
            state: Mutex::new(State {
                sdp: muxer.sdp(&key.stream),
                tracks: muxer.tracks().to_vec(),
                rtp_info: muxer.rtp_info(),
                has_video: muxer
                    .tracks()
                    .iter()
                    .any(|t| t.info.kind() == TrackKind::Video),
                cache: VecDeque::new(),
                cache_bytes: 0,
                cache_broken: false,
                tx: Some(tx),
            }),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(run(Arc::downgrade(&output), sub, muxer));
        *output.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        let mut outputs = self.outputs();
        outputs.retain(|_, o| o.strong_count() > 0);
        outputs.insert(key.clone(), Arc::downgrade(&output));
        tracing::debug!(stream = %key, "RTP output started");
        Some(output)
    }
}

async fn run(output: Weak<RtpOutput>, mut sub: registry::Subscription, mut muxer: Muxer) {
    loop {
        let item = sub.recv().await;
        let Some(out) = output.upgrade() else {
            return; // no viewer left
        };
        match item {
            Ok(Item::Packet(p)) => muxer.push(&p.frame),
            Ok(Item::Track(t)) => {
                muxer.update_track(&t.info);
                let mut state = out.lock();
                state.sdp = muxer.sdp(&sub.key().stream);
                state.tracks = muxer.tracks().to_vec();
            }
            Ok(Item::Metadata(_)) => {}
            Err(ended) => {
                tracing::debug!(stream = %sub.key(), "RTP output ended: {ended}");
                out.lock().tx = None;
                return;
            }
        }
        let mut state = out.lock();
        while let Some(packet) = muxer.pull() {
            state.cache(&packet);
            if let Some(tx) = &state.tx {
                let _ = tx.send(packet);
            }
        }
        state.rtp_info = muxer.rtp_info();
    }
}

impl State {
    /// Keeps the packets since the last video keyframe, within bounds.
    fn cache(&mut self, packet: &MuxPacket) {
        if !self.has_video {
            return;
        }
        if packet.keyframe {
            self.cache.clear();
            self.cache_bytes = 0;
            self.cache_broken = false;
        }
        if self.cache_broken || self.cache.is_empty() && !packet.keyframe {
            return;
        }
        if self.cache.len() >= CACHE_PACKETS || self.cache_bytes + packet.data.len() > CACHE_BYTES {
            self.cache.clear();
            self.cache_bytes = 0;
            self.cache_broken = true;
            return;
        }
        self.cache_bytes += packet.data.len();
        self.cache.push_back(packet.clone());
    }
}

impl RtpOutput {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves State consistent; a poisoned lock is safe to reuse.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self) -> bool {
        self.lock().tx.is_some()
    }

    /// The DESCRIBE body and the tracks it describes.
    pub(crate) fn describe(&self) -> (String, Vec<sdp::Track>) {
        let state = self.lock();
        (state.sdp.clone(), state.tracks.clone())
    }

    /// A new viewer's reader: the cached packets since the last keyframe, then the live ones,
    /// and the RTP-Info of the first packet it will get of each track.
    pub(crate) fn reader(&self) -> (RtpReader, Vec<(usize, u16, u32)>) {
        let state = self.lock();
        let pending: VecDeque<MuxPacket> = state.cache.iter().cloned().collect();
        let rx = state.tx.as_ref().map(|tx| tx.subscribe());
        let info = state
            .rtp_info
            .iter()
            .map(|&(track, seq, ts)| {
                pending
                    .iter()
                    .find(|p| p.track == track && !p.rtcp)
                    .and_then(|p| rtp_seq_ts(&p.data))
                    .map_or((track, seq, ts), |(seq, ts)| (track, seq, ts))
            })
            .collect();
        let reader = RtpReader {
            pending,
            rx,
            skipping: false,
            lags: LagTracker::new(MAX_LAGS, LAG_WINDOW),
        };
        (reader, info)
    }
}

impl Drop for RtpOutput {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// Sequence number and timestamp of an RTP packet (RFC 3550 §5.1).
fn rtp_seq_ts(packet: &Bytes) -> Option<(u16, u32)> {
    let seq = packet.get(2..4)?;
    let ts = packet.get(4..8)?;
    Some((
        u16::from_be_bytes([seq[0], seq[1]]),
        u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]]),
    ))
}

/// One viewer's read side of an [`RtpOutput`].
pub(crate) struct RtpReader {
    pending: VecDeque<MuxPacket>,
    rx: Option<broadcast::Receiver<MuxPacket>>,
    skipping: bool,
    lags: LagTracker,
}

/// Why a reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReadEnd {
    #[error("the stream ended")]
    Ended,
    #[error("the viewer fell behind too often")]
    TooSlow,
}

impl RtpReader {
    /// The next packet.
    pub(crate) async fn recv(&mut self) -> Result<MuxPacket, ReadEnd> {
        if let Some(p) = self.pending.pop_front() {
            return Ok(p);
        }
        loop {
            let rx = self.rx.as_mut().ok_or(ReadEnd::Ended)?;
            match rx.recv().await {
                Ok(p) => {
                    if let Some(p) = self.take(p) {
                        return Ok(p);
                    }
                }
                Err(RecvError::Closed) => {
                    self.rx = None;
                    return Err(ReadEnd::Ended);
                }
                Err(RecvError::Lagged(n)) => self.lagged(n)?,
            }
        }
    }

    /// The next packet if one is ready now (for batching writes).
    pub(crate) fn try_recv(&mut self) -> Option<MuxPacket> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        loop {
            match self.rx.as_mut()?.try_recv() {
                Ok(p) => {
                    if let Some(p) = self.take(p) {
                        return Some(p);
                    }
                }
                Err(TryRecvError::Lagged(n)) => {
                    // Too slow: the next `recv` reports it.
                    self.lagged(n).ok()?;
                }
                Err(_) => return None,
            }
        }
    }

    /// `p` unless the reader is skipping to a keyframe.
    fn take(&mut self, p: MuxPacket) -> Option<MuxPacket> {
        // The muxer flags keyframes' first packets (every audio frame of an audio-only stream).
        if self.skipping && !p.keyframe {
            return None;
        }
        self.skipping = false;
        Some(p)
    }

    /// The reader lost `n` packets: skip to the next keyframe, or give up on a viewer that
    /// keeps falling behind.
    fn lagged(&mut self, n: u64) -> Result<(), ReadEnd> {
        if self.lags.lagged() {
            self.rx = None;
            self.pending.clear();
            return Err(ReadEnd::TooSlow);
        }
        tracing::debug!(
            skipped = n,
            "RTSP viewer fell behind, skipping to a keyframe"
        );
        self.skipping = true;
        Ok(())
    }
}
