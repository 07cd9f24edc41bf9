//! The RTP side of one live stream for RTSP viewers: frames in, RTP packets and RTCP sender
//! reports out. One [`Muxer`] per stream; its packets are shared by every viewer (each packet is
//! a [`Bytes`], so fan-out is a reference-count increment).
//!
//! A transform with retina's contract: [`Muxer::push`] one frame, then [`Muxer::pull`] until it
//! returns `None` before the next `push`.
//!
//! Timestamps: a frame's RTP time is `pts_ms * clock_rate / 1000` plus a random per-track offset
//! (RFC 3550 §5.1). Every sender report maps the NTP time `origin + pts` to that RTP time, the
//! same way for every track, so players line audio up with video (RFC 3550 §6.4.1).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use media::{avc, hevc, Codec, Frame, TrackInfo, TrackKind};

use crate::rtp::{self, Packet, SenderReport};
use crate::{aac, h264, h265, nal, sdp, RtspConfig};

/// Media time between two sender reports of a track, in ms.
const SR_INTERVAL_MS: u64 = 1000;

/// One packet ready to send: a complete RTP packet (or RTCP SR) of one track.
#[derive(Debug, Clone)]
pub struct MuxPacket {
    /// Index into [`Muxer::tracks`].
    pub track: usize,
    /// `true`: an RTCP sender report (compound with an SDES CNAME) for the track's RTCP
    /// channel or port.
    pub rtcp: bool,
    /// `true` on the first RTP packet of a video keyframe access unit: a viewer that lags
    /// resumes here. In a stream without a video track, the first packet of every audio frame.
    pub keyframe: bool,
    /// The whole RTP (or RTCP) packet, header included.
    pub data: Bytes,
}

/// Cuts frames into RTP packets per payload format.
#[derive(Debug)]
enum Packetizer {
    H264(h264::Packetizer),
    H265(h265::Packetizer),
    Aac(aac::Packetizer),
    /// G.711 and Opus: one frame per payload (G.711 split at the size limit).
    Raw {
        sequence: u16,
    },
}

impl Packetizer {
    fn new(codec: Codec, max_payload: usize, payload_type: u8, ssrc: u32, seq: u16) -> Self {
        match codec {
            Codec::H264 => {
                Packetizer::H264(h264::Packetizer::new(max_payload, payload_type, ssrc, seq))
            }
            Codec::H265 => {
                Packetizer::H265(h265::Packetizer::new(max_payload, payload_type, ssrc, seq))
            }
            Codec::Aac => {
                Packetizer::Aac(aac::Packetizer::new(max_payload, payload_type, ssrc, seq))
            }
            _ => Packetizer::Raw { sequence: seq },
        }
    }

    fn next_sequence(&self) -> u16 {
        match self {
            Packetizer::H264(p) => p.next_sequence(),
            Packetizer::H265(p) => p.next_sequence(),
            Packetizer::Aac(p) => p.next_sequence(),
            Packetizer::Raw { sequence } => *sequence,
        }
    }
}

#[derive(Debug)]
struct TrackState {
    packetizer: Packetizer,
    ssrc: u32,
    /// Added to every RTP timestamp of the track.
    ts_offset: u32,
    packets: u32,
    octets: u32,
    /// The pts of the last sender report.
    last_sr_pts: Option<u64>,
    /// RTP time of the last frame (of pts 0 before any).
    last_rtp: u32,
    /// Parameter sets from the track configuration (VPS, SPS, PPS order), put in front of
    /// keyframes that lack them.
    params: Vec<Bytes>,
}

/// Packetizes one live stream's frames for every RTSP viewer; see the [module docs](self).
#[derive(Debug)]
pub struct Muxer {
    tracks: Vec<sdp::Track>,
    states: Vec<TrackState>,
    origin: Duration,
    max_payload: usize,
    has_video: bool,
    queue: VecDeque<MuxPacket>,
}

/// SplitMix64: spreads the caller's seed over the tracks' SSRCs, sequences and offsets.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The parameter-set NAL units of a video configuration, in decoding order.
fn parameter_sets(info: &TrackInfo) -> Vec<Bytes> {
    match info.codec {
        Codec::H264 => avc::DecoderConfig::parse(&info.config)
            .map(|c| c.sps.into_iter().chain(c.pps).collect())
            .unwrap_or_default(),
        Codec::H265 => hevc::DecoderConfig::parse(&info.config)
            .map(|c| {
                [hevc::NAL_VPS, hevc::NAL_SPS, hevc::NAL_PPS]
                    .into_iter()
                    .flat_map(|t| {
                        c.arrays
                            .iter()
                            .filter(move |(a, _)| *a == t)
                            .flat_map(|(_, n)| n.iter().cloned())
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The NAL unit type of `nal` in `codec`'s header layout.
fn nal_type(codec: Codec, nal: &[u8]) -> u8 {
    let first = nal.first().copied().unwrap_or(0);
    match codec {
        Codec::H265 => (first >> 1) & 0x3f,
        _ => first & 0x1f,
    }
}

/// `data` (AVCC) with the parameter sets of `params` whose types it lacks put in front.
fn with_parameter_sets(codec: Codec, params: &[Bytes], data: &Bytes) -> Bytes {
    let Ok(nals) = nal::split_avcc(data) else {
        return data.clone();
    };
    let missing: Vec<&Bytes> = params
        .iter()
        .filter(|p| {
            let t = nal_type(codec, p);
            !nals.iter().any(|n| nal_type(codec, n) == t)
        })
        .collect();
    if missing.is_empty() {
        return data.clone();
    }
    let extra: usize = missing.iter().map(|p| 4 + p.len()).sum();
    let mut out = BytesMut::with_capacity(extra + data.len());
    for p in missing {
        out.put_u32(p.len() as u32);
        out.put_slice(p);
    }
    out.put_slice(data);
    out.freeze()
}

impl Muxer {
    /// A muxer for a stream of `tracks`; codecs RTSP cannot carry (MP3) are left out, so index
    /// `i` of [`Muxer::tracks`] is the SDP media section `i` with `a=control:trackID=i`.
    ///
    /// `origin`: the wall-clock time (since the UNIX epoch) at which the stream's timeline
    /// (frame pts in ms) was 0; sender reports map NTP = `origin + pts` to the track's RTP
    /// time. `ssrc_seed`: randomness from the caller, from which the SSRCs, first sequence
    /// numbers and timestamp offsets derive.
    pub fn new(
        tracks: &[TrackInfo],
        config: &RtspConfig,
        origin: Duration,
        ssrc_seed: u64,
    ) -> Muxer {
        let mut rng = ssrc_seed;
        let offered: Vec<sdp::Track> = tracks
            .iter()
            .filter(|t| t.codec != Codec::Mp3)
            .enumerate()
            .filter_map(|(i, t)| sdp::Track::offer(t, i))
            .collect();
        let states = offered
            .iter()
            .map(|t| {
                let r = splitmix(&mut rng);
                let ssrc = r as u32;
                let seq = (r >> 32) as u16;
                let ts_offset = splitmix(&mut rng) as u32;
                TrackState {
                    packetizer: Packetizer::new(
                        t.info.codec,
                        config.max_rtp_payload,
                        t.payload_type,
                        ssrc,
                        seq,
                    ),
                    ssrc,
                    ts_offset,
                    packets: 0,
                    octets: 0,
                    last_sr_pts: None,
                    last_rtp: ts_offset,
                    params: parameter_sets(&t.info),
                }
            })
            .collect();
        let has_video = offered.iter().any(|t| t.info.kind() == TrackKind::Video);
        Muxer {
            tracks: offered,
            states,
            origin,
            max_payload: config.max_rtp_payload,
            has_video,
            queue: VecDeque::new(),
        }
    }

    /// The tracks, in SDP order.
    pub fn tracks(&self) -> &[sdp::Track] {
        &self.tracks
    }

    /// The DESCRIBE body ([`sdp::write`] of [`Muxer::tracks`]).
    pub fn sdp(&self, session_name: &str) -> String {
        sdp::write(&self.tracks, session_name)
    }

    /// A track's configuration changed (new avcC/ASC): update what [`Muxer::sdp`] says and
    /// the parameter sets put before keyframes. The track is the first of `info`'s kind; SSRC
    /// and sequence numbers continue (also when the codec changes).
    pub fn update_track(&mut self, info: &TrackInfo) {
        let Some(i) = self.track_of(info.kind()) else {
            return;
        };
        let (Some(track), Some(state)) = (self.tracks.get_mut(i), self.states.get_mut(i)) else {
            return;
        };
        let Some(mut offered) = sdp::Track::offer(info, i) else {
            return;
        };
        offered.control = std::mem::take(&mut track.control);
        if offered.info.codec != track.info.codec {
            state.packetizer = Packetizer::new(
                offered.info.codec,
                self.max_payload,
                offered.payload_type,
                state.ssrc,
                state.packetizer.next_sequence(),
            );
        }
        state.params = parameter_sets(&offered.info);
        *track = offered;
    }

    fn track_of(&self, kind: TrackKind) -> Option<usize> {
        self.tracks.iter().position(|t| t.info.kind() == kind)
    }

    /// Packetizes one frame for the first track of the frame's kind (ignored if there is none,
    /// or if its codec differs). Then call [`Muxer::pull`] until `None`.
    ///
    /// A sender report goes out before the track's first packet, before every video keyframe
    /// and at least once per second of media time. A video keyframe that lacks parameter sets
    /// gets the track configuration's in front, so a viewer joining there can decode.
    pub fn push(&mut self, frame: &Frame) {
        let Some(i) = self.track_of(frame.kind()) else {
            return;
        };
        let (Some(track), Some(state)) = (self.tracks.get(i), self.states.get_mut(i)) else {
            return;
        };
        if track.info.codec != frame.codec {
            tracing::debug!(codec = ?frame.codec, track = i, "frame of another codec ignored");
            return;
        }
        let pts = frame.pts();
        let clock = u128::from(track.clock_rate);
        let ts = ((u128::from(pts) * clock / 1000) as u32).wrapping_add(state.ts_offset);
        let video = frame.kind() == TrackKind::Video;
        let key = video && frame.keyframe;
        let sr_due = match state.last_sr_pts {
            None => true,
            // A jump back (a new timeline) restarts the schedule.
            Some(last) => {
                key || pts >= last.saturating_add(SR_INTERVAL_MS)
                    || pts.saturating_add(5 * SR_INTERVAL_MS) < last
            }
        };
        if sr_due {
            let mut out = BytesMut::with_capacity(28 + 20);
            SenderReport {
                ssrc: state.ssrc,
                ntp_time: rtp::ntp_timestamp(
                    self.origin
                        .checked_add(Duration::from_millis(pts))
                        .unwrap_or(Duration::MAX),
                ),
                rtp_time: ts,
                packet_count: state.packets,
                octet_count: state.octets,
                reports: Vec::new(),
            }
            .write(&mut out);
            rtp::write_sdes(&mut out, state.ssrc);
            state.last_sr_pts = Some(pts);
            self.queue.push_back(MuxPacket {
                track: i,
                rtcp: true,
                keyframe: false,
                data: out.freeze(),
            });
        }
        state.last_rtp = ts;

        let mut packets = Vec::new();
        let result = match &mut state.packetizer {
            Packetizer::H264(p) => {
                let data = if key {
                    with_parameter_sets(Codec::H264, &state.params, &frame.data)
                } else {
                    frame.data.clone()
                };
                let r = p.push(ts, &data);
                packets.extend(std::iter::from_fn(|| p.pull()));
                r
            }
            Packetizer::H265(p) => {
                let data = if key {
                    with_parameter_sets(Codec::H265, &state.params, &frame.data)
                } else {
                    frame.data.clone()
                };
                let r = p.push(ts, &data);
                packets.extend(std::iter::from_fn(|| p.pull()));
                r
            }
            Packetizer::Aac(p) => {
                let r = p.push(ts, &frame.data);
                packets.extend(std::iter::from_fn(|| p.pull()));
                r
            }
            Packetizer::Raw { sequence } => {
                // G.711 is one byte per sample at 8 kHz, so it splits anywhere; Opus packets
                // cannot be split and go whole.
                let chunk = if frame.codec == Codec::Opus {
                    frame.data.len().max(1)
                } else {
                    self.max_payload.max(1)
                };
                let mut pos = 0;
                while pos < frame.data.len() {
                    let end = (pos + chunk).min(frame.data.len());
                    packets.push(Packet {
                        marker: false,
                        payload_type: track.payload_type,
                        sequence: *sequence,
                        timestamp: ts.wrapping_add(pos as u32),
                        ssrc: state.ssrc,
                        payload: frame.data.slice(pos..end),
                    });
                    *sequence = sequence.wrapping_add(1);
                    pos = end;
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, track = i, "frame not packetized");
        }
        let mark_first = key || (!self.has_video && !video);
        for (n, p) in packets.into_iter().enumerate() {
            state.packets = state.packets.wrapping_add(1);
            state.octets = state.octets.wrapping_add(p.payload.len() as u32);
            self.queue.push_back(MuxPacket {
                track: i,
                rtcp: false,
                keyframe: mark_first && n == 0,
                data: p.to_bytes(),
            });
        }
    }

    /// The next packet, in order; `None` when the pushed frames are used up.
    pub fn pull(&mut self) -> Option<MuxPacket> {
        self.queue.pop_front()
    }

    /// For the `RTP-Info` header of PLAY: per track (index, sequence number of the next
    /// packet, RTP time of the last frame, or of pts 0 before any).
    pub fn rtp_info(&self) -> Vec<(usize, u16, u32)> {
        self.states
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.packetizer.next_sequence(), s.last_rtp))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rtp::Rtcp;

    pub(crate) const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
    ];
    pub(crate) const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    pub(crate) fn avcc(nals: &[&[u8]]) -> Bytes {
        let mut b = BytesMut::new();
        for n in nals {
            b.put_u32(n.len() as u32);
            b.put_slice(n);
        }
        b.freeze()
    }

    fn h264_info() -> TrackInfo {
        TrackInfo::new(
            Codec::H264,
            avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
        )
    }

    fn drain(m: &mut Muxer) -> Vec<MuxPacket> {
        std::iter::from_fn(|| m.pull()).collect()
    }

    fn video(dts: u64, keyframe: bool, data: Bytes) -> Frame {
        Frame {
            codec: Codec::H264,
            dts,
            cts: 0,
            keyframe,
            data,
        }
    }

    #[test]
    fn mp3_is_left_out_and_sdp_names_the_rest() {
        let infos = [
            h264_info(),
            TrackInfo::new(Codec::Mp3, Bytes::new()),
            TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10])),
        ];
        let m = Muxer::new(&infos, &RtspConfig::default(), Duration::ZERO, 7);
        let codecs: Vec<Codec> = m.tracks().iter().map(|t| t.info.codec).collect();
        assert_eq!(codecs, [Codec::H264, Codec::Aac]);
        let sdp = m.sdp("live/cam");
        assert!(sdp.contains("a=control:trackID=1\r\n"), "{sdp}");
        assert!(sdp.contains("MPEG4-GENERIC/44100/2"), "{sdp}");
        let parsed = sdp::parse(sdp.as_bytes()).expect("parses");
        assert_eq!(parsed.len(), 2);
        // Different seeds, different SSRCs and sequence numbers.
        let other = Muxer::new(&infos, &RtspConfig::default(), Duration::ZERO, 8);
        assert_ne!(m.rtp_info(), other.rtp_info());
        assert_ne!(m.states[0].ssrc, m.states[1].ssrc);
    }

    #[test]
    fn sender_reports_carry_counts_and_the_shared_clock() {
        let origin = Duration::from_millis(1_700_000_000_250);
        let mut m = Muxer::new(&[h264_info()], &RtspConfig::default(), origin, 42);
        let (_, first_seq, rtp0) = m.rtp_info()[0];
        m.push(&video(0, true, avcc(&[SPS, PPS, &[0x65; 3000]])));
        let first = drain(&mut m);
        assert!(first[0].rtcp && !first[0].keyframe);
        assert!(first[1].keyframe && !first[1].rtcp);
        assert!(first[2..].iter().all(|p| !p.keyframe && !p.rtcp));
        let parsed = rtp::parse_rtcp(&first[0].data).expect("SR parses");
        let Some(Rtcp::SenderReport(sr)) = parsed.first() else {
            panic!("no SR: {parsed:?}");
        };
        assert_eq!((sr.packet_count, sr.octet_count), (0, 0));
        assert_eq!(sr.ntp_time, rtp::ntp_timestamp(origin));
        assert_eq!(sr.rtp_time, rtp0);
        let p = Packet::parse(first[1].data.clone()).expect("RTP");
        assert_eq!(
            (p.sequence, p.timestamp, p.ssrc),
            (first_seq, rtp0, sr.ssrc)
        );

        let mut sent = first.len() - 1;
        let mut octets: usize = first[1..].iter().map(|p| p.data.len() - 12).sum();
        // No SR within the second; then one at 1 s of media time.
        for i in 1..30u64 {
            m.push(&video(i * 33, false, avcc(&[&[0x41; 500]])));
            let out = drain(&mut m);
            assert!(out.iter().all(|p| !p.rtcp));
            sent += out.len();
            octets += out.iter().map(|p| p.data.len() - 12).sum::<usize>();
        }
        m.push(&video(1000, false, avcc(&[&[0x41; 10]])));
        let out = drain(&mut m);
        assert!(out[0].rtcp);
        let parsed = rtp::parse_rtcp(&out[0].data).expect("SR parses");
        let Some(Rtcp::SenderReport(sr)) = parsed.first() else {
            panic!("no SR: {parsed:?}");
        };
        assert_eq!(sr.packet_count as usize, sent);
        assert_eq!(sr.octet_count as usize, octets);
        assert_eq!(sr.rtp_time, rtp0.wrapping_add(90_000));
        assert_eq!(
            sr.ntp_time,
            rtp::ntp_timestamp(origin + Duration::from_secs(1))
        );
        let (_, next_seq, last_rtp) = m.rtp_info()[0];
        assert_eq!(next_seq, first_seq.wrapping_add(sent as u16 + 1));
        assert_eq!(last_rtp, sr.rtp_time);
        // And one before every keyframe.
        m.push(&video(1033, true, avcc(&[SPS, PPS, &[0x65; 10]])));
        let out = drain(&mut m);
        assert!(out[0].rtcp && out[1].keyframe);
    }

    #[test]
    fn parameter_sets_go_before_a_bare_idr() {
        let mut m = Muxer::new(&[h264_info()], &RtspConfig::default(), Duration::ZERO, 1);
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x21];
        let inter: &[u8] = &[0x41, 0x9a, 0x02];
        m.push(&video(0, true, avcc(&[idr])));
        m.push(&video(40, false, avcc(&[inter])));
        // A keyframe with only a PPS gets the SPS (the missing type) in front.
        m.push(&video(80, true, avcc(&[PPS, idr])));
        let mut d = h264::Depacketizer::new(&[], 1 << 20);
        let mut aus = Vec::new();
        for p in drain(&mut m).into_iter().filter(|p| !p.rtcp) {
            d.push(&Packet::parse(p.data).expect("RTP"));
            while let Some(e) = d.pull() {
                if let crate::Event::AccessUnit(au) = e {
                    aus.push(au);
                }
            }
        }
        assert_eq!(aus.len(), 3);
        assert_eq!(aus[0].data, avcc(&[SPS, PPS, idr]));
        assert!(aus[0].keyframe);
        assert_eq!(aus[1].data, avcc(&[inter]));
        assert_eq!(aus[2].data, avcc(&[SPS, PPS, idr]));
    }

    #[test]
    fn h265_keyframe_gets_vps_sps_pps() {
        let vps: &[u8] = &[
            0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00,
            0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
        ];
        let sps: &[u8] = &[
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0b, 0x08, 0x04, 0x85, 0x96, 0x56, 0x69, 0x24, 0xca,
            0xf0, 0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
        ];
        let pps: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];
        let config = hevc::DecoderConfig::build(vps, sps, pps).expect("hvcC");
        let info = TrackInfo::new(Codec::H265, config);
        let mut m = Muxer::new(&[info], &RtspConfig::default(), Duration::ZERO, 1);
        let idr: &[u8] = &[0x26, 0x01, 0xaf, 0x01];
        m.push(&Frame {
            codec: Codec::H265,
            dts: 0,
            cts: 0,
            keyframe: true,
            data: avcc(&[idr]),
        });
        let mut d = h265::Depacketizer::new(&[], 1 << 20);
        let mut aus = Vec::new();
        for p in drain(&mut m).into_iter().filter(|p| !p.rtcp) {
            d.push(&Packet::parse(p.data).expect("RTP"));
            while let Some(e) = d.pull() {
                if let crate::Event::AccessUnit(au) = e {
                    aus.push(au);
                }
            }
        }
        assert_eq!(aus.len(), 1);
        assert_eq!(aus[0].data, avcc(&[vps, sps, pps, idr]));
    }

    #[test]
    fn update_track_changes_sdp_and_continues_sequence() {
        let mut m = Muxer::new(
            &[TrackInfo::new(Codec::H264, Bytes::new())],
            &RtspConfig::default(),
            Duration::ZERO,
            3,
        );
        assert!(!m.sdp("x").contains("sprop"));
        m.push(&video(0, false, avcc(&[&[0x41, 1]])));
        let before = drain(&mut m);
        let ssrc = Packet::parse(before[1].data.clone()).expect("RTP").ssrc;
        let (_, seq, _) = m.rtp_info()[0];
        m.update_track(&h264_info());
        assert!(m.sdp("x").contains("sprop-parameter-sets"));
        assert_eq!(m.tracks()[0].control, "trackID=0");
        m.push(&video(40, true, avcc(&[&[0x65, 1]])));
        let after = drain(&mut m);
        let p = Packet::parse(after[1].data.clone()).expect("RTP");
        assert_eq!((p.sequence, p.ssrc), (seq, ssrc));
        // The new SPS/PPS go before the keyframe: three single-NAL packets.
        assert_eq!(after.iter().filter(|p| !p.rtcp).count(), 3);
        // Audio frames without an audio track are ignored.
        m.push(&Frame {
            codec: Codec::Aac,
            dts: 0,
            cts: 0,
            keyframe: true,
            data: Bytes::from_static(&[1]),
        });
        assert!(m.pull().is_none());
    }

    #[test]
    fn audio_only_stream_marks_every_frame() {
        let mut m = Muxer::new(
            &[TrackInfo::new(Codec::G711A, Bytes::new())],
            &RtspConfig {
                max_rtp_payload: 100,
                ..RtspConfig::default()
            },
            Duration::ZERO,
            3,
        );
        m.push(&Frame {
            codec: Codec::G711A,
            dts: 20,
            cts: 0,
            keyframe: true,
            data: Bytes::from(vec![0xd5; 160]),
        });
        let out = drain(&mut m);
        assert_eq!(out.len(), 3);
        assert!(out[0].rtcp && out[1].keyframe && !out[2].keyframe);
        let a = Packet::parse(out[1].data.clone()).expect("RTP");
        let b = Packet::parse(out[2].data.clone()).expect("RTP");
        assert_eq!(a.payload_type, 8);
        assert_eq!(b.timestamp.wrapping_sub(a.timestamp), 100);
        assert_eq!(b.sequence, a.sequence.wrapping_add(1));
    }
}
