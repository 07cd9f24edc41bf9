//! RTP for RTSP viewers, packetized once per stream and shared by all of them.
//!
//! The first RTSP viewer of a stream creates its [`RtpOutput`]: a task that reads the stream
//! from the registry (as an output, not counted as a viewer), runs it through one
//! `rtsp::mux::Muxer` and fans the packets out on a [`Fanout`], bounded in bytes and count,
//! whose packets since the last video keyframe let a new viewer start with a decodable picture
//! at once. Every viewer reads the same [`MuxPacket`] bytes; the output ends with the stream or
//! its last viewer.
//!
//! A viewer that falls more than the ring behind skips to the next keyframe; one that does so
//! too often is dropped (the [`Fanout`] policy).

use bytes::Bytes;
use media::StreamKey;
use registry::{Ended, Fanout, Item, Protocol, Reader, Registry, SessionInfo};
use rtsp::mux::{MuxPacket, Muxer};
use rtsp::{sdp, RtspConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, UNIX_EPOCH};
use tokio::task::JoinHandle;

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
    fanout: Fanout<MuxPacket>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    sdp: String,
    tracks: Vec<sdp::Track>,
    /// Per track: next sequence number and RTP time, for RTP-Info.
    rtp_info: Vec<(usize, u16, u32)>,
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
        let output = Arc::new(RtpOutput {
            state: Mutex::new(State {
                sdp: muxer.sdp(key.stream()),
                tracks: muxer.tracks().to_vec(),
                rtp_info: muxer.rtp_info(),
            }),
            fanout: Fanout::new(self.registry.fanout_limits()),
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
                state.sdp = muxer.sdp(sub.key().stream());
                state.tracks = muxer.tracks().to_vec();
            }
            Ok(Item::Metadata(_)) => {}
            Err(ended) => {
                tracing::debug!(stream = %sub.key(), "RTP output ended: {ended}");
                out.fanout.close();
                return;
            }
        }
        // The muxer flags each video keyframe's first packet (every audio frame's, in an
        // audio-only stream): where a viewer may start.
        while let Some(packet) = muxer.pull() {
            let size = packet.data.len();
            let starts_gop = packet.keyframe;
            out.fanout.push(packet, size, starts_gop);
        }
        out.lock().rtp_info = muxer.rtp_info();
    }
}

impl RtpOutput {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves State consistent; a poisoned lock is safe to reuse.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self) -> bool {
        !self.fanout.is_closed()
    }

    /// The DESCRIBE body and the tracks it describes.
    pub(crate) fn describe(&self) -> (String, Vec<sdp::Track>) {
        let state = self.lock();
        (state.sdp.clone(), state.tracks.clone())
    }

    /// A new viewer's reader: the packets since the last keyframe, then the live ones, and the
    /// RTP-Info of the first packet it will get of each track.
    pub(crate) fn reader(&self) -> (RtpReader, Vec<(usize, u16, u32)>) {
        let reader = self.fanout.reader();
        let info = self
            .lock()
            .rtp_info
            .iter()
            .map(|&(track, seq, ts)| {
                reader
                    .upcoming(|p| (p.track == track && !p.rtcp).then(|| rtp_seq_ts(&p.data)))
                    .flatten()
                    .map_or((track, seq, ts), |(seq, ts)| (track, seq, ts))
            })
            .collect();
        (RtpReader { reader }, info)
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
    reader: Reader<MuxPacket>,
}

impl RtpReader {
    /// The next packet.
    pub(crate) async fn recv(&mut self) -> Result<MuxPacket, Ended> {
        self.reader.recv().await
    }

    /// The next packet if one is ready now (for batching writes); a reader that fell behind
    /// too often learns it from the next [`RtpReader::recv`].
    pub(crate) fn try_recv(&mut self) -> Option<MuxPacket> {
        self.reader.try_recv()?.ok()
    }
}
