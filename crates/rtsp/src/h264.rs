//! H.264 over RTP (RFC 6184), `packetization-mode=1`: single NAL unit packets, STAP-A and FU-A.
//!
//! Both types are transforms with retina's contract: `push` one input, then `pull` until it
//! returns `None` before the next `push`.

use bytes::Bytes;
use media::avc;

pub use crate::nal::{AccessUnit, Event};
use crate::nal::{Assembler, Packetizer as NalPacketizer};
use crate::rtp::Packet;
use crate::Error;

/// NAL unit type of a STAP-A aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 0x18;
/// NAL unit type of an FU-A fragment (RFC 6184 §5.8).
pub const FU_A: u8 = 0x1c;

/// Cuts AVCC access units into RTP packets: one NAL unit per packet when it fits in
/// `max_payload` bytes, FU-A fragments otherwise; the marker is set on the last packet of each
/// access unit (RFC 6184 §5.1).
#[derive(Debug)]
pub struct Packetizer(NalPacketizer);

fn fu_a_headers(header: &[u8], start: bool, end: bool) -> Vec<u8> {
    let nal = header.first().copied().unwrap_or(0);
    // FU indicator: F and NRI of the NAL unit, type 28; FU header: S, E, R=0, the NAL type.
    let indicator = (nal & 0xe0) | FU_A;
    let fu = (u8::from(start) << 7) | (u8::from(end) << 6) | (nal & 0x1f);
    vec![indicator, fu]
}

impl Packetizer {
    /// A packetizer writing payload type `payload_type` and `ssrc`, starting at
    /// `first_sequence`, with RTP payloads of at most `max_payload` bytes.
    pub fn new(max_payload: usize, payload_type: u8, ssrc: u32, first_sequence: u16) -> Self {
        Packetizer(NalPacketizer::new(
            max_payload,
            payload_type,
            ssrc,
            first_sequence,
            1,
            fu_a_headers,
        ))
    }

    /// Queues the packets of one AVCC access unit with RTP timestamp `timestamp`.
    pub fn push(&mut self, timestamp: u32, data: &Bytes) -> Result<(), Error> {
        self.0.push(timestamp, data)
    }

    /// The next packet, in order.
    pub fn pull(&mut self) -> Option<Packet> {
        self.0.pull()
    }

    /// The sequence number the next packet will carry (for `RTP-Info`).
    pub fn next_sequence(&self) -> u16 {
        self.0.next_sequence()
    }
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

fn is_keyframe(nal: &[u8]) -> bool {
    nal_type(nal) == avc::NAL_IDR
}

/// Rebuilds AVCC access units from RTP packets (single NAL, STAP-A, FU-A).
///
/// On a sequence gap, a fragment without its start, an unsupported packet type or an oversize
/// access unit, the access unit is dropped whole and the next one starts clean: no partial
/// frame is ever handed out. SPS and PPS seen in band that differ from the known ones produce
/// an [`Event::Config`] with a new `avcC`.
#[derive(Debug)]
pub struct Depacketizer {
    assembler: Assembler,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
}

impl Depacketizer {
    /// A depacketizer for a track whose `avcC` (from the SDP; may be empty) is `config`, giving
    /// up on access units larger than `max_access_unit` bytes.
    pub fn new(config: &[u8], max_access_unit: usize) -> Self {
        let known = avc::DecoderConfig::parse(config).ok();
        Depacketizer {
            assembler: Assembler::new(max_access_unit, is_keyframe),
            sps: known.as_ref().and_then(|c| c.sps.first().cloned()),
            pps: known.as_ref().and_then(|c| c.pps.first().cloned()),
        }
    }

    /// Takes one RTP packet of the track. Then call [`Depacketizer::pull`] until `None`.
    pub fn push(&mut self, packet: &Packet) {
        if !self.assembler.begin(packet) {
            return;
        }
        let payload = &packet.payload;
        match nal_type(payload) {
            1..=23 => self.complete(payload.clone()),
            STAP_A => {
                let mut pos = 1;
                while pos < payload.len() {
                    let Some(len) = payload
                        .get(pos..pos + 2)
                        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    else {
                        self.assembler.mark_broken();
                        break;
                    };
                    if len == 0 || pos + 2 + len > payload.len() {
                        self.assembler.mark_broken();
                        break;
                    }
                    self.complete(payload.slice(pos + 2..pos + 2 + len));
                    pos += 2 + len;
                }
            }
            FU_A => match payload.get(..2) {
                Some(&[indicator, fu]) => {
                    let header = [(indicator & 0xe0) | (fu & 0x1f)];
                    let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                    let data = payload.get(2..).unwrap_or_default();
                    if !(1..=23).contains(&(fu & 0x1f)) {
                        // A fragment of an aggregation or fragment: not a NAL unit.
                        self.assembler.mark_broken();
                    } else if let Some(nal) = self.assembler.fragment(&header, start, end, data) {
                        self.parameter_set(&nal);
                    }
                }
                _ => self.assembler.mark_broken(),
            },
            // Undefined types (and an empty payload): ignored, as RFC 6184 §5.2 asks.
            0 | 30 | 31 => {}
            other => {
                // STAP-B, MTAP and FU-B only occur in interleaved mode, which the SDP we
                // accept does not allow.
                tracing::debug!(nal_type = other, "unsupported H.264 RTP packet type");
                self.assembler.mark_broken();
            }
        }
        self.assembler.end(packet.marker);
    }

    fn complete(&mut self, nal: Bytes) {
        if !(1..=23).contains(&nal_type(&nal)) {
            // Inside a STAP-A only real NAL unit types may appear (RFC 6184 §5.7.1).
            self.assembler.mark_broken();
            return;
        }
        self.parameter_set(&nal);
        self.assembler.nal(nal);
    }

    fn parameter_set(&mut self, nal: &Bytes) {
        let slot = match nal_type(nal) {
            avc::NAL_SPS => &mut self.sps,
            avc::NAL_PPS => &mut self.pps,
            _ => return,
        };
        if slot.as_ref() == Some(nal) {
            return;
        }
        *slot = Some(nal.clone());
        if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
            if let Ok(config) = avc::DecoderConfig::build(sps, &[pps]) {
                self.assembler.event(Event::Config(config));
            }
        }
    }

    /// The next event, `None` when the pushed packets are used up.
    pub fn pull(&mut self) -> Option<Event> {
        self.assembler.pull()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn avcc(nals: &[&[u8]]) -> Bytes {
        let mut b = BytesMut::new();
        for n in nals {
            b.put_u32(n.len() as u32);
            b.put_slice(n);
        }
        b.freeze()
    }

    fn idr(len: usize) -> Vec<u8> {
        let mut v = vec![0x65];
        v.extend((0..len).map(|i| (i * 7 % 251) as u8));
        v
    }

    fn packetize(p: &mut Packetizer, ts: u32, au: &Bytes) -> Vec<Packet> {
        p.push(ts, au).expect("valid AVCC");
        std::iter::from_fn(|| p.pull()).collect()
    }

    fn depacketize(d: &mut Depacketizer, packets: &[Packet]) -> Vec<Event> {
        let mut out = Vec::new();
        for pkt in packets {
            d.push(pkt);
            out.extend(std::iter::from_fn(|| d.pull()));
        }
        out
    }

    #[test]
    fn round_trip_with_fu_a_under_small_mtu() {
        let key = avcc(&[SPS, PPS, &idr(5000)]);
        let inter = avcc(&[&[0x41, 1, 2, 3], &[0x41, 4, 5]]);
        let mut p = Packetizer::new(100, 96, 7, 65530);
        let mut packets = packetize(&mut p, 3000, &key);
        assert!(packets.len() > 50, "the IDR is fragmented");
        assert_eq!(packets.iter().filter(|p| p.marker).count(), 1);
        assert!(packets.last().is_some_and(|p| p.marker));
        assert!(packets.iter().all(|p| p.payload.len() <= 100));
        packets.extend(packetize(&mut p, 6000, &inter));
        assert_eq!(
            packets.len() - 1,
            usize::from(p.next_sequence().wrapping_sub(65531))
        );

        let mut d = Depacketizer::new(&[], 1 << 20);
        let events = depacketize(&mut d, &packets);
        let config = avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC");
        assert_eq!(
            events,
            vec![
                Event::Config(config.clone()),
                Event::AccessUnit(AccessUnit {
                    timestamp: 3000,
                    keyframe: true,
                    data: key
                }),
                Event::AccessUnit(AccessUnit {
                    timestamp: 6000,
                    keyframe: false,
                    data: inter
                }),
            ]
        );
        // Known parameter sets are not reported again.
        let mut d = Depacketizer::new(&config, 1 << 20);
        let events = depacketize(&mut d, &packets);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn stap_a_is_split() {
        let mut payload = vec![STAP_A];
        for n in [SPS, PPS, &[0x65, 9, 9][..]] {
            payload.extend_from_slice(&(n.len() as u16).to_be_bytes());
            payload.extend_from_slice(n);
        }
        let pkt = Packet {
            marker: true,
            payload_type: 96,
            sequence: 1,
            timestamp: 90,
            ssrc: 1,
            payload: Bytes::from(payload),
        };
        let mut d = Depacketizer::new(&[], 1 << 20);
        let events = depacketize(&mut d, &[pkt]);
        assert!(matches!(events[0], Event::Config(_)));
        assert_eq!(
            events[1],
            Event::AccessUnit(AccessUnit {
                timestamp: 90,
                keyframe: true,
                data: avcc(&[SPS, PPS, &[0x65, 9, 9]])
            })
        );
    }

    #[test]
    fn loss_and_reordering_drop_only_the_broken_access_unit() {
        let mut p = Packetizer::new(60, 96, 7, 0);
        let aus: Vec<Bytes> = (0..4u8)
            .map(|i| avcc(&[&[0x41, i, i, i], &idr(300)]))
            .collect();
        let per_au: Vec<Vec<Packet>> = aus
            .iter()
            .enumerate()
            .map(|(i, au)| packetize(&mut p, 1000 * i as u32, au))
            .collect();
        let frames = |events: Vec<Event>| -> Vec<u32> {
            events
                .into_iter()
                .filter_map(|e| match e {
                    Event::AccessUnit(au) => {
                        let i = (au.timestamp / 1000) as usize;
                        assert_eq!(au.data, aus[i], "no corrupt frame");
                        Some(au.timestamp)
                    }
                    Event::Config(_) => None,
                })
                .collect()
        };

        // A lost middle fragment of AU 1.
        let mut lossy: Vec<Packet> = per_au.concat();
        let drop_at = per_au[0].len() + 3;
        lossy.remove(drop_at);
        let mut d = Depacketizer::new(&[], 1 << 20);
        assert_eq!(frames(depacketize(&mut d, &lossy)), vec![0, 2000, 3000]);

        // AU 2's packets swapped pairwise: the late ones are dropped, AU 2 is lost.
        let mut reordered = per_au.concat();
        let start = per_au[0].len() + per_au[1].len();
        reordered.swap(start + 1, start + 2);
        let mut d = Depacketizer::new(&[], 1 << 20);
        assert_eq!(frames(depacketize(&mut d, &reordered)), vec![0, 1000, 3000]);

        // A lost marker packet: AU 0 never ends until AU 1's timestamp, and is dropped.
        let mut no_marker = per_au.concat();
        no_marker.remove(per_au[0].len() - 1);
        let mut d = Depacketizer::new(&[], 1 << 20);
        assert_eq!(frames(depacketize(&mut d, &no_marker)), vec![2000, 3000]);

        // Every packet duplicated: duplicates are ignored.
        let dup: Vec<Packet> = per_au
            .concat()
            .into_iter()
            .flat_map(|p| [p.clone(), p])
            .collect();
        let mut d = Depacketizer::new(&[], 1 << 20);
        assert_eq!(frames(depacketize(&mut d, &dup)), vec![0, 1000, 2000, 3000]);

        // An access unit over the size limit is dropped.
        let mut d = Depacketizer::new(&[], 200);
        assert_eq!(
            frames(depacketize(&mut d, &per_au.concat())),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn bad_payloads_do_not_panic() {
        let mut d = Depacketizer::new(&[], 1 << 16);
        for (i, payload) in [
            &[][..],
            &[FU_A],
            &[FU_A, 0x45, 1],
            &[STAP_A, 0, 9, 1],
            &[STAP_A, 0],
            &[0x19, 0, 1],
            &[0x00, 1],
        ]
        .into_iter()
        .enumerate()
        {
            d.push(&Packet {
                marker: true,
                payload_type: 96,
                sequence: i as u16,
                timestamp: i as u32,
                ssrc: 0,
                payload: Bytes::copy_from_slice(payload),
            });
            assert_eq!(d.pull(), None, "no event from a bad payload");
        }
        let mut p = Packetizer::new(1400, 96, 0, 0);
        assert!(p.push(0, &Bytes::from_static(&[0, 0, 0, 9, 1])).is_err());
        assert!(
            p.push(0, &Bytes::from_static(&[0, 0, 0, 0])).is_ok(),
            "empty NALs skipped"
        );
        p.push(0, &Bytes::from_static(&[0, 0, 0, 1, 0x0a]))
            .expect("a header-only NAL");
        assert_eq!(
            p.pull().map(|p| p.payload),
            Some(Bytes::from_static(&[0x0a]))
        );
    }
}
