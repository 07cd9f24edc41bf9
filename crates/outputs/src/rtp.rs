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

use crate::ondemand::{Live, Task};
use bytes::Bytes;
use registry::{Ended, Fanout, Item, Reader, Registry, StreamReader};
use rtsp::mux::{MuxPacket, Muxer};
use rtsp::{sdp, RtspConfig};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, UNIX_EPOCH};

/// How long a new output waits for a stream's tracks to be known.
const TRACK_WAIT: Duration = Duration::from_secs(5);
/// How long it waits for a second track after the first.
const LATE_TRACK_WAIT: Duration = Duration::from_secs(1);

/// One stream's shared RTP.
pub struct RtpOutput {
    state: Mutex<State>,
    fanout: Fanout<MuxPacket>,
    _task: Task,
}

struct State {
    sdp: String,
    tracks: Vec<sdp::Track>,
    /// Per track: next sequence number and RTP time, for RTP-Info.
    rtp_info: Vec<(usize, u16, u32)>,
}

impl Live for RtpOutput {
    fn live(&self) -> bool {
        !self.fanout.is_closed()
    }
}

impl RtpOutput {
    /// Starts packetizing `key` once its tracks are known. `None` when the stream is not live
    /// or has no track RTSP can carry.
    pub(crate) async fn start(
        registry: &Registry,
        key: &media::StreamKey,
        config: &RtspConfig,
    ) -> Option<Arc<RtpOutput>> {
        let tracks = registry
            .tracks_ready(key, LATE_TRACK_WAIT, TRACK_WAIT)
            .await?;
        let info = registry.stream(key)?;
        let reader = registry.subscribe_output(key)?;
        let origin = info.created.duration_since(UNIX_EPOCH).unwrap_or_default();
        let muxer = Muxer::new(&tracks, config, origin, rand::random());
        if muxer.tracks().is_empty() {
            return None;
        }
        let state = State {
            sdp: muxer.sdp(key.stream()),
            tracks: muxer.tracks().to_vec(),
            rtp_info: muxer.rtp_info(),
        };
        let fanout = Fanout::new(registry.fanout_limits());
        tracing::debug!(stream = %key, "RTP output started");
        Some(Arc::new_cyclic(|weak: &Weak<RtpOutput>| RtpOutput {
            state: Mutex::new(state),
            fanout,
            _task: Task::spawn(run(weak.clone(), reader, muxer)),
        }))
    }
}

async fn run(output: Weak<RtpOutput>, mut sub: StreamReader, mut muxer: Muxer) {
    loop {
        let item = sub.recv().await;
        let Some(out) = output.upgrade() else {
            return; // no viewer left
        };
        match item {
            Ok(Item::Frame(frame)) => muxer.push(&frame),
            Ok(Item::Track(t)) => {
                muxer.update_track(&t);
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

    /// The DESCRIBE body and the tracks it describes.
    pub fn describe(&self) -> (String, Vec<sdp::Track>) {
        let state = self.lock();
        (state.sdp.clone(), state.tracks.clone())
    }

    /// A new viewer's reader: the packets since the last keyframe, then the live ones, and the
    /// RTP-Info of the first packet it will get of each track.
    pub fn reader(self: &Arc<Self>) -> (RtpReader, Vec<(usize, u16, u32)>) {
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
        (
            RtpReader {
                reader,
                _output: Arc::clone(self),
            },
            info,
        )
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

/// One viewer's read side of an [`RtpOutput`]; it keeps the output running.
pub struct RtpReader {
    reader: Reader<MuxPacket>,
    _output: Arc<RtpOutput>,
}

impl RtpReader {
    /// The next packet.
    pub async fn recv(&mut self) -> Result<MuxPacket, Ended> {
        self.reader.recv().await
    }

    /// The next packet if one is ready now (for batching writes); a reader that fell behind
    /// too often learns it from the next [`RtpReader::recv`].
    pub fn try_recv(&mut self) -> Option<MuxPacket> {
        self.reader.try_recv()?.ok()
    }
}
