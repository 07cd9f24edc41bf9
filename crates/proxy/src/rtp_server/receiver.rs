//! One stream received over RTP: the packets of one source (a port opened by openRtpServer, or
//! one SSRC on the shared port) in, a live stream out.
//!
//! ```text
//!  socket tasks ──Inbound (bounded)──▶ run ─ rtp::Packet ─▶ Reorder ─▶ Payload ─▶ Ingest
//!                                        │                           (PS, TS, H.264, H.265)
//!                                        └─ nothing for timeoutSec ─▶ Ended::Timeout
//! ```
//!
//! The first packet makes the stream live (on_publish); its payload type picks how the payload
//! is read, and later packets of another payload type are dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use media::{Codec, TrackInfo, TrackKind};
use rtsp::demux::{DemuxEvent, Demuxer};
use rtsp::reorder::Reorder;
use rtsp::rtp::Packet;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Ingest, ProxyError};

use super::RtpServerConfig;

/// Packets a reorder holds while it waits for a missing one (about 45 ms of a 4 Mbit/s
/// stream in 1400-byte packets; the first packets wait for half of it).
const REORDER_WINDOW: usize = 16;
/// Packets waiting between the socket tasks and a stream's task; past it UDP packets are
/// dropped and TCP readers wait.
pub(crate) const INBOUND_QUEUE: usize = 1024;

/// One datagram or RFC 4571 frame as received.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// The RTP packet's bytes.
    pub(crate) data: Bytes,
    /// Who sent it.
    pub(crate) peer: SocketAddr,
    /// Where it arrived.
    pub(crate) local: SocketAddr,
}

/// ZLMediaKit's `only_track`: which tracks of the source the stream keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnlyTrack {
    /// Audio and video (`0`).
    #[default]
    All,
    /// Only audio (`1`).
    Audio,
    /// Only video (`2`).
    Video,
}

impl OnlyTrack {
    /// The `only_track` argument's value.
    pub fn from_arg(value: u8) -> Option<OnlyTrack> {
        match value {
            0 => Some(OnlyTrack::All),
            1 => Some(OnlyTrack::Audio),
            2 => Some(OnlyTrack::Video),
            _ => None,
        }
    }

    /// The number listRtpServer reports.
    pub fn as_arg(self) -> u8 {
        match self {
            OnlyTrack::All => 0,
            OnlyTrack::Audio => 1,
            OnlyTrack::Video => 2,
        }
    }

    fn keeps(self, kind: TrackKind) -> bool {
        match self {
            OnlyTrack::All => true,
            OnlyTrack::Audio => kind == TrackKind::Audio,
            OnlyTrack::Video => kind == TrackKind::Video,
        }
    }
}

/// Why a stream's task ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// No packet for `timeoutSec`.
    Timeout,
    /// Every socket feeding it is gone (the server was closed).
    Closed,
    /// The stream was closed here, refused by on_publish, or its source broke.
    Stream(ProxyError),
}

/// A track's media: what to do with an RTP payload of the stream's payload type.
enum Payload {
    /// Raw H.264 or H.265 (RFC 6184 / RFC 7798), depacketized by the RTSP crate's demuxer on
    /// a one-track SDP.
    Rtp(Demuxer),
    /// MPEG-PS (GB28181 §C) or MPEG-TS, through the MPEG demuxers.
    Mpeg(Box<super::mpeg::Mpeg>),
}

impl Payload {
    /// The reader for payload type `pt`, `None` for one nobody configured.
    fn for_type(pt: u8, config: &RtpServerConfig) -> Option<Payload> {
        let raw = |codec| {
            let track = rtsp::sdp::Track {
                info: TrackInfo::new(codec, Bytes::new()),
                payload_type: pt,
                clock_rate: 90_000,
                control: String::new(),
            };
            Payload::Rtp(Demuxer::new(&[track], &rtsp::RtspConfig::default()))
        };
        if pt == config.ps_pt {
            Some(Payload::Mpeg(Box::new(super::mpeg::Mpeg::ps())))
        } else if pt == super::mpeg::TS_PT {
            Some(Payload::Mpeg(Box::new(super::mpeg::Mpeg::ts())))
        } else if pt == config.h264_pt {
            Some(raw(Codec::H264))
        } else if pt == config.h265_pt {
            Some(raw(Codec::H265))
        } else {
            None
        }
    }

    /// Packets were lost before the next one. The RTP depacketizers see the gap in the
    /// sequence numbers themselves; the MPEG readers are told, so that they drop what they
    /// were assembling rather than hand it out damaged.
    fn discard(&mut self) {
        if let Payload::Mpeg(mpeg) = self {
            mpeg.discard();
        }
    }

    /// Feeds one packet in sequence order; its tracks and frames go to `out`.
    fn push(&mut self, packet: &Packet, arrival_ms: u64, out: &mut Vec<DemuxEvent>) {
        match self {
            Payload::Rtp(demuxer) => {
                if let Err(e) = demuxer.push(0, packet.to_bytes(), arrival_ms) {
                    tracing::debug!("RTP payload dropped: {e}");
                }
                out.extend(std::iter::from_fn(|| demuxer.pull()));
            }
            Payload::Mpeg(mpeg) => mpeg.push(&packet.payload, out),
        }
    }
}

/// One source's RTP in, tracks and frames out, with no IO: the SSRC check, the reorder, the
/// payload reader chosen by the first packet's payload type, and `only_track`.
///
/// [`Depacketizer::push`] one packet (as received), then [`Depacketizer::pull`] until `None`.
pub(crate) struct Depacketizer {
    config: RtpServerConfig,
    /// The source's SSRC: the one asked for, or the first one seen.
    ssrc: Option<u32>,
    only_track: OnlyTrack,
    reorder: Reorder,
    payload: Option<(u8, Payload)>,
    events: Vec<DemuxEvent>,
}

impl Depacketizer {
    /// For a source of `ssrc` (0 = the first that comes), keeping `only_track`.
    pub(crate) fn new(config: RtpServerConfig, ssrc: u32, only_track: OnlyTrack) -> Self {
        Depacketizer {
            config,
            ssrc: (ssrc != 0).then_some(ssrc),
            only_track,
            reorder: Reorder::new(REORDER_WINDOW),
            payload: None,
            events: Vec::new(),
        }
    }

    /// One packet as received, `arrival_ms` after the source started. Whether it was the
    /// source's RTP (not garbage, not another SSRC): only that keeps the source alive.
    pub(crate) fn push(&mut self, data: Bytes, arrival_ms: u64) -> bool {
        let packet = match Packet::parse(data) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::debug!("not an RTP packet: {e}");
                return false;
            }
        };
        if *self.ssrc.get_or_insert(packet.ssrc) != packet.ssrc {
            tracing::debug!(ssrc = packet.ssrc, "RTP of another SSRC dropped");
            return false;
        }
        self.reorder.push(packet);
        while let Some((packet, after_gap)) = self.reorder.pull() {
            let reader = match &mut self.payload {
                Some((pt, reader)) if *pt == packet.payload_type => reader,
                Some(_) => continue,
                None => match Payload::for_type(packet.payload_type, &self.config) {
                    Some(reader) => &mut self.payload.insert((packet.payload_type, reader)).1,
                    None => {
                        tracing::debug!(pt = packet.payload_type, "RTP of an unknown payload type");
                        continue;
                    }
                },
            };
            if after_gap {
                reader.discard();
            }
            reader.push(&packet, arrival_ms, &mut self.events);
        }
        let only = self.only_track;
        self.events.retain(|e| match e {
            DemuxEvent::Track(track) => only.keeps(track.kind()),
            DemuxEvent::Frame(frame) => only.keeps(frame.kind()),
        });
        self.events.reverse();
        true
    }

    /// The next track or frame of the packets pushed.
    pub(crate) fn pull(&mut self) -> Option<DemuxEvent> {
        self.events.pop()
    }

    /// Whether a packet of a payload type it reads came: only then is the source media (RTP
    /// of an unknown payload type, or noise that parses as RTP, makes no stream).
    pub(crate) fn has_media(&self) -> bool {
        self.payload.is_some()
    }
}

/// Receives one stream until it times out, is closed or its sockets go; see the
/// [module docs](self). `went_live` turns true once the stream is published (so that whoever
/// ends it knows the stream of its name is its own).
pub(crate) async fn run(
    mut ingest: Ingest,
    mut inbound: mpsc::Receiver<Inbound>,
    config: RtpServerConfig,
    ssrc: u32,
    only_track: OnlyTrack,
    went_live: Arc<AtomicBool>,
) -> Ended {
    let started = Instant::now();
    let mut deadline = started + config.timeout;
    let timeout = config.timeout;
    let mut depacketizer = Depacketizer::new(config, ssrc, only_track);
    loop {
        let received = tokio::select! {
            r = tokio::time::timeout_at(deadline, inbound.recv()) => r,
            _ = ingest.closed() => return Ended::Stream(ProxyError::Closed),
        };
        let Inbound { data, peer, local } = match received {
            Err(_) => return Ended::Timeout,
            Ok(None) => return Ended::Closed,
            Ok(Some(inbound)) => inbound,
        };
        let arrival_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !depacketizer.push(data, arrival_ms) {
            continue;
        }
        deadline = Instant::now() + timeout;
        if !ingest.is_live() {
            if !depacketizer.has_media() {
                continue;
            }
            if let Err(e) = ingest.live(peer, local).await {
                return Ended::Stream(e);
            }
            went_live.store(true, Ordering::Relaxed);
        }
        while let Some(event) = depacketizer.pull() {
            match event {
                DemuxEvent::Track(track) => ingest.set_track(track),
                DemuxEvent::Frame(frame) => {
                    if let Err(e) = ingest.push(frame) {
                        return Ended::Stream(e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
