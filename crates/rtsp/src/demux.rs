//! The receiving side of an RTSP publisher (ANNOUNCE, RECORD): RTP and RTCP packets in, track
//! configurations and [`Frame`]s on the session's timeline out. One [`Demuxer`] per publisher.
//!
//! A transform with retina's contract: [`Demuxer::push`] (or [`Demuxer::push_rtcp`]) one
//! packet, then [`Demuxer::pull`] until it returns `None` before the next push.
//!
//! Timestamps: each track's RTP time is unwrapped (32-bit wrap) and converted to ms with the
//! track's clock rate. The first packet of a track is placed at the time it arrived (on the
//! driver's session clock); later ones advance by RTP time, so tracks line up to within arrival
//! jitter. Once every track has sent an RTCP sender report, the reports' NTP↔RTP mappings place
//! the tracks instead (RFC 3550 §6.4.1), which aligns them exactly; the switch keeps the least
//! delayed track continuous. Per track, output timestamps always increase.

use std::collections::VecDeque;

use bytes::Bytes;
use media::{Codec, Frame, TrackInfo, TrackKind};

use crate::rtp::{self, Packet, Rtcp};
use crate::{aac, h264, h265, sdp, Error, Event, RtspConfig};

/// What a [`Demuxer`] hands out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemuxEvent {
    /// A track's configuration, first from the SDP (tracks whose config is known) and again when
    /// in-band parameter sets change it. Video tracks with no config yet are announced once the
    /// first in-band SPS/PPS arrive.
    Track(TrackInfo),
    /// A frame: dts = pts in ms on the session's timeline, cts = 0, keyframe flag, AVCC data
    /// for video.
    Frame(Frame),
}

#[derive(Debug)]
enum Depacketizer {
    H264(h264::Depacketizer),
    H265(h265::Depacketizer),
    Aac(aac::Depacketizer),
    /// G.711 and Opus: one frame per packet, the payload as is.
    Raw {
        last_sequence: Option<u16>,
    },
}

/// The NTP↔RTP mapping of a track's latest sender report.
#[derive(Debug, Clone, Copy)]
struct Report {
    /// NTP time of the report, in µs since 1900.
    ntp_us: i128,
    rtp_time: u32,
}

#[derive(Debug)]
struct TrackIn {
    info: TrackInfo,
    depacketizer: Depacketizer,
    /// The track's [`DemuxEvent::Track`] has gone out; frames before it are dropped.
    announced: bool,
    clock_rate: i128,
    ssrc: Option<u32>,
    /// The last packet's RTP time, raw and unwrapped (relative to the first packet's).
    last_rtp: u32,
    last_ext: i64,
    /// Arrival of the first packet, in ms; `None` before it.
    first_arrival: Option<u64>,
    report: Option<Report>,
    /// The dts of the track's last frame; `None` before its first.
    last_dts: Option<u64>,
}

impl TrackIn {
    /// `rtp` unwrapped against the last packet's RTP time.
    fn extend(&self, rtp: u32) -> i64 {
        self.last_ext + i64::from(rtp.wrapping_sub(self.last_rtp) as i32)
    }

    /// The arrival-based time of unwrapped RTP time `ext`, in µs.
    fn arrival_us(&self, ext: i64) -> i128 {
        let first = i128::from(self.first_arrival.unwrap_or(0)) * 1000;
        first + (i128::from(ext) * 1_000_000).div_euclid(self.clock_rate)
    }

    /// The NTP time of RTP time `rtp` by the latest sender report, in µs.
    fn ntp_us(&self, rtp: u32) -> Option<i128> {
        let r = self.report?;
        let delta = i128::from(rtp.wrapping_sub(r.rtp_time) as i32);
        Some(r.ntp_us + (delta * 1_000_000).div_euclid(self.clock_rate))
    }
}

/// Turns one publisher's RTP into frames; see the [module docs](self).
#[derive(Debug)]
pub struct Demuxer {
    tracks: Vec<TrackIn>,
    /// Once every track has a sender report: NTP µs minus session µs.
    sync: Option<i128>,
    events: VecDeque<DemuxEvent>,
}

/// The NTP timestamp (RFC 3550 §4) in µs since 1900.
fn ntp_to_us(ntp: u64) -> i128 {
    let secs = i128::from(ntp >> 32);
    let frac = i128::from(ntp & 0xffff_ffff);
    secs * 1_000_000 + ((frac * 1_000_000) >> 32)
}

impl Demuxer {
    /// A demuxer for the tracks of an ANNOUNCE ([`sdp::parse`]). The configurations already
    /// known are queued as [`DemuxEvent::Track`]s for the first [`Demuxer::pull`]s.
    pub fn new(tracks: &[sdp::Track], config: &RtspConfig) -> Demuxer {
        let mut events = VecDeque::new();
        let tracks = tracks
            .iter()
            .map(|t| {
                let info = t.info.clone();
                let depacketizer = match info.codec {
                    Codec::H264 => Depacketizer::H264(h264::Depacketizer::new(
                        &info.config,
                        config.max_access_unit,
                    )),
                    Codec::H265 => Depacketizer::H265(h265::Depacketizer::new(
                        &info.config,
                        config.max_access_unit,
                    )),
                    Codec::Aac => Depacketizer::Aac(aac::Depacketizer::new()),
                    _ => Depacketizer::Raw {
                        last_sequence: None,
                    },
                };
                let announced = info.kind() == TrackKind::Audio || !info.config.is_empty();
                if announced {
                    events.push_back(DemuxEvent::Track(info.clone()));
                }
                TrackIn {
                    info,
                    depacketizer,
                    announced,
                    clock_rate: i128::from(t.clock_rate.max(1)),
                    ssrc: None,
                    last_rtp: 0,
                    last_ext: 0,
                    first_arrival: None,
                    report: None,
                    last_dts: None,
                }
            })
            .collect();
        Demuxer {
            tracks,
            sync: None,
            events,
        }
    }

    /// One RTP packet of `track` (index into the ANNOUNCE tracks), received at `arrival_ms`
    /// on the session's clock (ms since the session started). Then call [`Demuxer::pull`]
    /// until `None`.
    ///
    /// A packet that does not parse, or an unknown track, is an error and changes nothing.
    /// Loss and reordering are not errors: the frame they break is dropped.
    pub fn push(&mut self, track: usize, packet: Bytes, arrival_ms: u64) -> Result<(), Error> {
        let packet = Packet::parse(packet)?;
        let Some(t) = self.tracks.get_mut(track) else {
            return Err(Error::ProtocolViolation {
                context: "RTP packet for an unknown track",
            });
        };
        if t.first_arrival.is_none() {
            t.first_arrival = Some(arrival_ms);
            t.last_rtp = packet.timestamp;
            t.last_ext = 0;
        } else {
            t.last_ext = t.extend(packet.timestamp);
            t.last_rtp = packet.timestamp;
        }
        t.ssrc = Some(packet.ssrc);

        // (RTP time, keyframe, data) of each finished frame, and configuration changes.
        let mut frames: Vec<(u32, bool, Bytes)> = Vec::new();
        let mut configs: Vec<Bytes> = Vec::new();
        let mut video = |e: Event, frames: &mut Vec<_>| match e {
            Event::Config(c) => configs.push(c),
            Event::AccessUnit(au) => frames.push((au.timestamp, au.keyframe, au.data)),
        };
        match &mut t.depacketizer {
            Depacketizer::H264(d) => {
                d.push(&packet);
                while let Some(e) = d.pull() {
                    video(e, &mut frames);
                }
            }
            Depacketizer::H265(d) => {
                d.push(&packet);
                while let Some(e) = d.pull() {
                    video(e, &mut frames);
                }
            }
            Depacketizer::Aac(d) => {
                d.push(&packet);
                frames.extend(std::iter::from_fn(|| d.pull()).map(|f| (f.timestamp, true, f.data)));
            }
            Depacketizer::Raw { last_sequence } => {
                let fresh = last_sequence
                    .is_none_or(|last| (packet.sequence.wrapping_sub(last) as i16) > 0);
                if fresh {
                    *last_sequence = Some(packet.sequence);
                    if !packet.payload.is_empty() {
                        frames.push((packet.timestamp, true, packet.payload));
                    }
                }
            }
        }
        // A configuration event comes before the access unit that carried it.
        for config in configs {
            if config != t.info.config || !t.announced {
                t.info = TrackInfo::new(t.info.codec, config);
                t.announced = true;
                self.events.push_back(DemuxEvent::Track(t.info.clone()));
            }
        }
        for (rtp_time, keyframe, data) in frames {
            if !self.tracks.get(track).is_some_and(|t| t.announced) {
                tracing::debug!(track, "frame before the track's configuration dropped");
                continue;
            }
            let dts = self.dts(track, rtp_time);
            let Some(t) = self.tracks.get(track) else {
                continue;
            };
            self.events.push_back(DemuxEvent::Frame(Frame {
                codec: t.info.codec,
                dts,
                cts: 0,
                keyframe,
                data,
            }));
        }
        Ok(())
    }

    /// The session time, in ms, of RTP time `rtp` of `track`; never less than the track's
    /// previous frame's.
    fn dts(&mut self, track: usize, rtp: u32) -> u64 {
        if self.sync.is_none() && self.tracks.iter().all(|t| t.report.is_some()) {
            // Each track that has packets estimates NTP minus session time from its first
            // arrival; arrival only ever adds delay, so the largest estimate (the least delayed
            // track) is the best. That track stays continuous through the switch; the others
            // move back by their extra arrival delay.
            self.sync = self
                .tracks
                .iter()
                .filter(|t| t.first_arrival.is_some())
                .filter_map(|t| Some(t.ntp_us(t.last_rtp)? - t.arrival_us(t.last_ext)))
                .max();
        }
        let Some(t) = self.tracks.get(track) else {
            return 0;
        };
        let arrival = t.arrival_us(t.extend(rtp));
        let ntp = t.ntp_us(rtp);
        let us = match (self.sync, ntp) {
            (Some(offset), Some(n)) => n - offset,
            _ => arrival,
        };
        let ms = u64::try_from((us + 500).div_euclid(1000).max(0)).unwrap_or(u64::MAX);
        let Some(t) = self.tracks.get_mut(track) else {
            return 0;
        };
        // Two frames of a track never share a time: when the switch to sender-report timing
        // moves a track back, its next frames step on by 1 ms until they catch up (a muxer
        // refuses a dts that does not increase).
        let dts = match t.last_dts {
            Some(last) => ms.max(last.saturating_add(1)),
            None => ms,
        };
        t.last_dts = Some(dts);
        dts
    }

    /// An RTCP packet (compound allowed) received on `track`'s RTCP channel or port. Sender
    /// reports give the track's NTP↔RTP mapping; everything else is ignored. A packet that
    /// does not parse, or an unknown track, is an error and changes nothing.
    pub fn push_rtcp(&mut self, track: usize, data: &[u8]) -> Result<(), Error> {
        let reports = rtp::parse_rtcp(data)?;
        let Some(t) = self.tracks.get_mut(track) else {
            return Err(Error::ProtocolViolation {
                context: "RTCP packet for an unknown track",
            });
        };
        for r in reports {
            let Rtcp::SenderReport(sr) = r else {
                continue;
            };
            if sr.ntp_time == 0 || t.ssrc.is_some_and(|s| s != sr.ssrc) {
                continue;
            }
            t.report = Some(Report {
                ntp_us: ntp_to_us(sr.ntp_time),
                rtp_time: sr.rtp_time,
            });
        }
        Ok(())
    }

    /// The next event, `None` when the pushed packets are used up.
    pub fn pull(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::tests::{avcc, PPS, SPS};
    use crate::mux::{MuxPacket, Muxer};
    use bytes::{BufMut, BytesMut};
    use media::avc;
    use std::time::Duration;

    fn infos() -> Vec<TrackInfo> {
        vec![
            TrackInfo::new(
                Codec::H264,
                avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
            ),
            TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10])),
        ]
    }

    /// Video at 30 fps (a keyframe every 10, large enough for FU-A) and AAC at 44.1 kHz,
    /// interleaved by pts, for `ms` of media.
    fn frames(ms: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut n = 0u64;
        while n * 100 / 3 < ms {
            let key = n.is_multiple_of(10);
            let mut data = if key { avcc(&[SPS, PPS]) } else { Bytes::new() }.to_vec();
            let body: Vec<u8> = std::iter::once(if key { 0x65 } else { 0x41 })
                .chain((0..(if key { 3000 } else { 700 })).map(|i| (i * 7 + n as usize) as u8))
                .collect();
            data.extend_from_slice(&(body.len() as u32).to_be_bytes());
            data.extend_from_slice(&body);
            out.push(Frame {
                codec: Codec::H264,
                dts: n * 100 / 3,
                cts: 0,
                keyframe: key,
                data: Bytes::from(data),
            });
            n += 1;
        }
        let mut a = 0u64;
        while a * 1024 * 1000 / 44100 < ms {
            out.push(Frame {
                codec: Codec::Aac,
                dts: a * 1024 * 1000 / 44100,
                cts: 0,
                keyframe: true,
                data: Bytes::from(vec![0x21, a as u8, 3, 4, 5]),
            });
            a += 1;
        }
        out.sort_by_key(|f| f.dts);
        out
    }

    /// Muxes `frames`, passing each packet (after `filter`) to a demuxer built from the
    /// muxer's SDP as if it arrived at the frame's pts plus `late(track)`.
    fn round_trip(
        frames: &[Frame],
        seed: u64,
        rtcp: bool,
        mut filter: impl FnMut(&MuxPacket) -> bool,
        late: impl Fn(usize) -> u64,
    ) -> Vec<DemuxEvent> {
        let mut m = Muxer::new(
            &infos(),
            &RtspConfig::default(),
            Duration::from_secs(5),
            seed,
        );
        let tracks = sdp::parse(m.sdp("t").as_bytes()).expect("SDP");
        let mut d = Demuxer::new(&tracks, &RtspConfig::default());
        let mut out: Vec<DemuxEvent> = std::iter::from_fn(|| d.pull()).collect();
        for f in frames {
            m.push(f);
            while let Some(p) = m.pull() {
                if !filter(&p) {
                    continue;
                }
                if p.rtcp {
                    if rtcp {
                        d.push_rtcp(p.track, &p.data).expect("SR");
                    }
                } else {
                    d.push(p.track, p.data, f.pts() + late(p.track))
                        .expect("RTP");
                }
                out.extend(std::iter::from_fn(|| d.pull()));
            }
        }
        out
    }

    fn of(events: &[DemuxEvent], codec: Codec) -> Vec<Frame> {
        events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) if f.codec == codec => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    fn assert_same(input: &[Frame], output: &[Frame], offset: u64) {
        assert_eq!(input.len(), output.len());
        let (i0, o0) = (input[0].dts, output[0].dts);
        assert_eq!(o0, i0 + offset);
        let mut last = 0;
        for (i, o) in input.iter().zip(output) {
            assert_eq!((&i.data, i.keyframe, o.cts), (&o.data, o.keyframe, 0));
            let (a, b) = (i.dts - i0, o.dts - o0);
            assert!(a.abs_diff(b) <= 1, "in {a} out {b}");
            assert!(o.dts >= last);
            last = o.dts;
        }
    }

    #[test]
    fn muxer_to_demuxer_round_trip() {
        let input = frames(3000);
        for rtcp in [false, true] {
            let events = round_trip(&input, 99, rtcp, |_| true, |_| 0);
            assert_eq!(
                &events[..2],
                &[
                    DemuxEvent::Track(infos()[0].clone()),
                    DemuxEvent::Track(infos()[1].clone())
                ]
            );
            let (video, audio) = (of(&events, Codec::H264), of(&events, Codec::Aac));
            let vin: Vec<Frame> = input
                .iter()
                .filter(|f| f.codec == Codec::H264)
                .cloned()
                .collect();
            let ain: Vec<Frame> = input
                .iter()
                .filter(|f| f.codec == Codec::Aac)
                .cloned()
                .collect();
            assert_same(&vin, &video, 0);
            assert_same(&ain, &audio, 0);
            assert_eq!(events.len(), 2 + input.len(), "no other events");
        }
    }

    #[test]
    fn sender_reports_align_tracks_despite_arrival_jitter() {
        let input = frames(2000);
        // Audio always arrives 30 ms late: by arrival it would be 30 ms behind video; the
        // sender reports put it back.
        let late = |track: usize| if track == 1 { 30 } else { 0 };
        let by_arrival = round_trip(&input, 5, false, |_| true, late);
        assert_eq!(of(&by_arrival, Codec::Aac)[0].dts, 30);
        let synced = round_trip(&input, 5, true, |_| true, late);
        assert_eq!(of(&synced, Codec::H264)[0].dts, 0);
        let audio = of(&synced, Codec::Aac);
        // The first audio frame's SR comes before its first packet, so it is synced already.
        let ain: Vec<Frame> = input
            .iter()
            .filter(|f| f.codec == Codec::Aac)
            .cloned()
            .collect();
        assert_same(&ain, &audio, 0);
    }

    #[test]
    fn two_tracks_aligned_by_arrival() {
        let tracks = vec![
            sdp::Track::offer(&infos()[0], 0).expect("video"),
            sdp::Track::offer(&TrackInfo::new(Codec::G711U, Bytes::new()), 1).expect("audio"),
        ];
        let mut d = Demuxer::new(&tracks, &RtspConfig::default());
        let rtp = |pt, seq, ts: u32, payload: &[u8]| {
            let mut b = BytesMut::new();
            rtp::write_header(&mut b, true, pt, seq, ts, 9);
            b.put_slice(payload);
            b.freeze()
        };
        // Video starts at arrival 1000 (RTP time 0x7000_0000), audio at 1040 (RTP time 5).
        d.push(0, rtp(96, 1, 0x7000_0000, &[0x65, 1]), 1000)
            .expect("ok");
        d.push(1, rtp(0, 1, 5, &[0xff; 160]), 1040).expect("ok");
        d.push(0, rtp(96, 2, 0x7000_0000 + 40 * 90, &[0x41, 1]), 1041)
            .expect("ok");
        d.push(1, rtp(0, 2, 5 + 160, &[0xff; 160]), 1061)
            .expect("ok");
        let dts: Vec<(Codec, u64)> = std::iter::from_fn(|| d.pull())
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) => Some((f.codec, f.dts)),
                _ => None,
            })
            .collect();
        assert_eq!(
            dts,
            [
                (Codec::H264, 1000),
                (Codec::G711U, 1040),
                (Codec::H264, 1040),
                (Codec::G711U, 1060)
            ]
        );
        // Errors change nothing.
        assert!(d.push(0, Bytes::from_static(&[0x80, 96]), 0).is_err());
        assert!(d.push(2, rtp(96, 3, 0, &[0x41]), 0).is_err());
        assert!(d.push_rtcp(0, &[0x80, 200, 0, 9]).is_err());
        assert!(d.pull().is_none());
    }

    /// The switch to sender-report timing may move a track back: its frames then step on by
    /// 1 ms, never repeating a dts, until they catch up.
    #[test]
    fn a_track_moved_back_by_the_reports_keeps_rising() {
        let tracks = vec![
            sdp::Track::offer(&infos()[0], 0).expect("video"),
            sdp::Track::offer(&TrackInfo::new(Codec::G711U, Bytes::new()), 1).expect("audio"),
        ];
        let mut d = Demuxer::new(&tracks, &RtspConfig::default());
        let rtp = |pt, seq, ts: u32, payload: &[u8]| {
            let mut b = BytesMut::new();
            rtp::write_header(&mut b, true, pt, seq, ts, 9);
            b.put_slice(payload);
            b.freeze()
        };
        let sr = |rtp_time: u32| {
            let mut b = BytesMut::new();
            crate::rtp::SenderReport {
                ssrc: 9,
                ntp_time: rtp::ntp_timestamp(std::time::Duration::from_secs(1_700_000_000)),
                rtp_time,
                ..Default::default()
            }
            .write(&mut b);
            b
        };
        // Audio sampled when video's second frame was arrives 140 ms earlier than it.
        d.push(1, rtp(0, 1, 0, &[0xff; 160]), 900).expect("ok");
        d.push(0, rtp(96, 1, 0, &[0x65, 1]), 1000).expect("ok");
        d.push(0, rtp(96, 2, 3600, &[0x41, 1]), 1040).expect("ok");
        d.push_rtcp(0, &sr(3600)).expect("ok");
        d.push_rtcp(1, &sr(0)).expect("ok");
        d.push(0, rtp(96, 3, 7200, &[0x41, 2]), 1080).expect("ok");
        d.push(0, rtp(96, 4, 10800, &[0x41, 3]), 1120).expect("ok");
        let video: Vec<u64> = std::iter::from_fn(|| d.pull())
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) if f.codec == Codec::H264 => Some(f.dts),
                _ => None,
            })
            .collect();
        assert_eq!(video, [1000, 1040, 1041, 1042]);
    }

    #[test]
    fn rtp_time_wraps() {
        let tracks =
            vec![sdp::Track::offer(&TrackInfo::new(Codec::G711A, Bytes::new()), 0).expect("audio")];
        let mut d = Demuxer::new(&tracks, &RtspConfig::default());
        let start = u32::MAX - 400;
        for i in 0..10u16 {
            let mut b = BytesMut::new();
            let ts = start.wrapping_add(160 * u32::from(i));
            rtp::write_header(&mut b, false, 8, 60_000u16.wrapping_add(i * 1000), ts, 1);
            b.put_slice(&[0xd5; 160]);
            d.push(0, b.freeze(), 7).expect("ok");
        }
        let dts: Vec<u64> = std::iter::from_fn(|| d.pull())
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) => Some(f.dts),
                _ => None,
            })
            .collect();
        assert_eq!(dts, (0..10).map(|i| 7 + 20 * i).collect::<Vec<_>>());

        // H.264 across the wrap through the muxer and a sender report.
        let mut h = Demuxer::new(
            &[sdp::Track::offer(&infos()[0], 0).expect("video")],
            &RtspConfig::default(),
        );
        let mut p = h264::Packetizer::new(1400, 96, 1, 0);
        let mut got = Vec::new();
        for i in 0..6u32 {
            let ts = (u32::MAX - 2 * 3000).wrapping_add(3000 * i);
            p.push(ts, &avcc(&[&[0x41, i as u8]])).expect("valid");
            while let Some(pk) = p.pull() {
                h.push(0, pk.to_bytes(), 100).expect("ok");
                got.extend(std::iter::from_fn(|| h.pull()));
            }
        }
        let dts: Vec<u64> = of(&got, Codec::H264).iter().map(|f| f.dts).collect();
        assert_eq!(dts, [100, 133, 167, 200, 233, 267]);
    }

    #[test]
    fn loss_mid_stream_drops_only_the_broken_frame() {
        let input = frames(1000);
        let mut video_packets = 0;
        let events = round_trip(
            &input,
            11,
            true,
            |p| {
                if p.track != 0 || p.rtcp {
                    return true;
                }
                video_packets += 1;
                // A middle FU-A fragment of the first keyframe, and a packet of a later frame.
                video_packets != 2 && video_packets != 9
            },
            |_| 0,
        );
        let vin: Vec<&Frame> = input.iter().filter(|f| f.codec == Codec::H264).collect();
        let video = of(&events, Codec::H264);
        assert!(video.len() < vin.len() - 1, "two frames lost");
        assert!(video.len() >= vin.len() - 3);
        for f in &video {
            assert!(
                vin.iter().any(|i| i.data == f.data && i.dts == f.dts),
                "corrupt frame at {}",
                f.dts
            );
        }
        assert_eq!(of(&events, Codec::Aac).len(), input.len() - vin.len());
    }

    #[test]
    fn video_without_sprop_is_announced_in_band() {
        let tracks =
            vec![sdp::Track::offer(&TrackInfo::new(Codec::H264, Bytes::new()), 0).expect("video")];
        let mut d = Demuxer::new(&tracks, &RtspConfig::default());
        assert!(d.pull().is_none());
        let mut p = h264::Packetizer::new(1400, 96, 1, 0);
        p.push(0, &avcc(&[&[0x41, 1]])).expect("valid");
        p.push(3000, &avcc(&[SPS, PPS, &[0x65, 1]])).expect("valid");
        p.push(6000, &avcc(&[&[0x41, 2]])).expect("valid");
        let mut events = Vec::new();
        while let Some(pk) = p.pull() {
            d.push(0, pk.to_bytes(), 0).expect("ok");
            events.extend(std::iter::from_fn(|| d.pull()));
        }
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0], DemuxEvent::Track(infos()[0].clone()));
        assert!(matches!(&events[1], DemuxEvent::Frame(f) if f.keyframe && f.dts == 33));
        assert!(matches!(&events[2], DemuxEvent::Frame(f) if !f.keyframe && f.dts == 67));
    }
}
