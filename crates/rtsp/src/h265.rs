//! H.265 over RTP (RFC 7798): single NAL unit packets, aggregation packets (type 48) and
//! fragmentation units (type 49), with the 2-byte NAL unit header and without DONL fields
//! (`sprop-max-don-diff` absent or 0, which is what ffmpeg and GStreamer send).
//!
//! Both types are transforms with retina's contract: `push` one input, then `pull` until it
//! returns `None` before the next `push`.

use bytes::Bytes;
use media::hevc;

pub use crate::nal::{AccessUnit, Event};
use crate::nal::{Assembler, Packetizer as NalPacketizer};
use crate::rtp::Packet;
use crate::Error;

/// NAL unit type of an aggregation packet (RFC 7798 §4.4.2).
pub const AP: u8 = 48;
/// NAL unit type of a fragmentation unit (RFC 7798 §4.4.3).
pub const FU: u8 = 49;

fn fu_headers(header: &[u8], start: bool, end: bool) -> Vec<u8> {
    let (h0, h1) = match header {
        [a, b, ..] => (*a, *b),
        _ => (0, 1),
    };
    // PayloadHdr: F and LayerId of the NAL unit, type 49, same TID; FU header: S, E, type.
    let nal_type = (h0 >> 1) & 0x3f;
    vec![
        (h0 & 0x81) | (FU << 1),
        h1,
        (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type,
    ]
}

/// Cuts AVCC-framed (4-byte length) H.265 access units into RTP packets: single NAL unit
/// packets, FUs for NAL units over `max_payload`, marker on the last packet of each access
/// unit (RFC 7798 §4.1).
#[derive(Debug)]
pub struct Packetizer(NalPacketizer);

impl Packetizer {
    /// A packetizer writing payload type `payload_type` and `ssrc`, starting at
    /// `first_sequence`, with RTP payloads of at most `max_payload` bytes.
    pub fn new(max_payload: usize, payload_type: u8, ssrc: u32, first_sequence: u16) -> Self {
        Packetizer(NalPacketizer::new(
            max_payload,
            payload_type,
            ssrc,
            first_sequence,
            2,
            fu_headers,
        ))
    }

    /// Queues the packets of one access unit with RTP timestamp `timestamp`.
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
    nal.first().map_or(0xff, |h| (h >> 1) & 0x3f)
}

/// IRAP pictures (BLA, IDR, CRA: types 16 to 23) are random access points (H.265 §7.4.2.2).
fn is_keyframe(nal: &[u8]) -> bool {
    (16..=23).contains(&nal_type(nal))
}

/// Rebuilds access units (4-byte length-prefixed NAL units) from RTP packets.
///
/// Loss, a fragment without its start, PACI packets and oversize access units drop the access
/// unit whole. VPS, SPS and PPS seen in band that differ from the known ones produce an
/// [`Event::Config`] with a new `hvcC` once all three are known.
#[derive(Debug)]
pub struct Depacketizer {
    assembler: Assembler,
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
}

impl Depacketizer {
    /// A depacketizer for a track whose `hvcC` (from the SDP; may be empty) is `config`, giving
    /// up on access units larger than `max_access_unit` bytes.
    pub fn new(config: &[u8], max_access_unit: usize) -> Self {
        let known = hevc::DecoderConfig::parse(config).ok();
        let first = |t: u8| {
            known.as_ref().and_then(|c| {
                c.arrays
                    .iter()
                    .find(|(nt, _)| *nt == t)
                    .and_then(|(_, n)| n.first().cloned())
            })
        };
        Depacketizer {
            assembler: Assembler::new(max_access_unit, is_keyframe),
            vps: first(hevc::NAL_VPS),
            sps: first(hevc::NAL_SPS),
            pps: first(hevc::NAL_PPS),
        }
    }

    /// Takes one RTP packet of the track. Then call [`Depacketizer::pull`] until `None`.
    pub fn push(&mut self, packet: &Packet) {
        if !self.assembler.begin(packet) {
            return;
        }
        let payload = &packet.payload;
        if payload.len() < 2 {
            // Shorter than a NAL unit header.
            self.assembler.mark_broken();
            self.assembler.end(packet.marker);
            return;
        }
        match nal_type(payload) {
            0..=47 => self.complete(payload.clone()),
            AP => {
                let mut pos = 2;
                while pos < payload.len() {
                    let Some(len) = payload
                        .get(pos..pos + 2)
                        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    else {
                        self.assembler.mark_broken();
                        break;
                    };
                    if len < 2 || pos + 2 + len > payload.len() {
                        self.assembler.mark_broken();
                        break;
                    }
                    self.complete(payload.slice(pos + 2..pos + 2 + len));
                    pos += 2 + len;
                }
            }
            FU => match payload.get(..3) {
                Some(&[h0, h1, fu]) if fu & 0x3f < AP => {
                    let header = [(h0 & 0x81) | ((fu & 0x3f) << 1), h1];
                    let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                    let data = payload.get(3..).unwrap_or_default();
                    if let Some(nal) = self.assembler.fragment(&header, start, end, data) {
                        self.parameter_set(&nal);
                    }
                }
                // Too short, or a fragment of an AP, FU or PACI.
                _ => self.assembler.mark_broken(),
            },
            other => {
                // PACI (50) and reserved types.
                tracing::debug!(nal_type = other, "unsupported H.265 RTP packet type");
                self.assembler.mark_broken();
            }
        }
        self.assembler.end(packet.marker);
    }

    fn complete(&mut self, nal: Bytes) {
        if nal_type(&nal) >= AP {
            // Aggregation units hold only real NAL units (RFC 7798 §4.4.2).
            self.assembler.mark_broken();
            return;
        }
        self.parameter_set(&nal);
        self.assembler.nal(nal);
    }

    fn parameter_set(&mut self, nal: &Bytes) {
        let slot = match nal_type(nal) {
            hevc::NAL_VPS => &mut self.vps,
            hevc::NAL_SPS => &mut self.sps,
            hevc::NAL_PPS => &mut self.pps,
            _ => return,
        };
        if slot.as_ref() == Some(nal) {
            return;
        }
        *slot = Some(nal.clone());
        if let (Some(vps), Some(sps), Some(pps)) = (&self.vps, &self.sps, &self.pps) {
            match hevc::DecoderConfig::build(vps, sps, pps) {
                Ok(config) => self.assembler.event(Event::Config(config)),
                Err(e) => tracing::debug!(error = %e, "in-band H.265 parameter sets unusable"),
            }
        }
    }

    /// The next event, `None` when the pushed packets are used up.
    pub fn pull(&mut self) -> Option<Event> {
        self.assembler.pull()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    /// Parameter sets of an x265 4:2:0 stream (the vector crates/media's hevc tests use).
    pub(crate) const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    pub(crate) const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0b, 0x08, 0x04, 0x85, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0, 0x16,
        0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
    ];
    pub(crate) const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    fn avcc(nals: &[&[u8]]) -> Bytes {
        let mut b = BytesMut::new();
        for n in nals {
            b.put_u32(n.len() as u32);
            b.put_slice(n);
        }
        b.freeze()
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
    fn round_trip_with_fragmentation() {
        let mut idr = vec![0x26, 0x01];
        idr.extend((0..4000).map(|i| (i % 253) as u8));
        let key = avcc(&[VPS, SPS, PPS, &idr]);
        let trail = avcc(&[&[0x02, 0x01, 0xaa, 0xbb]]);
        let mut p = Packetizer::new(200, 97, 1, 10);
        p.push(0, &key).expect("valid");
        p.push(3600, &trail).expect("valid");
        let packets: Vec<Packet> = std::iter::from_fn(|| p.pull()).collect();
        assert!(packets.iter().all(|p| p.payload.len() <= 200));
        assert!(packets.iter().any(|p| nal_type(&p.payload) == FU));
        assert_eq!(packets.iter().filter(|p| p.marker).count(), 2);

        let mut d = Depacketizer::new(&[], 1 << 20);
        let events = depacketize(&mut d, &packets);
        assert_eq!(events.len(), 3, "{events:?}");
        let Event::Config(config) = &events[0] else {
            panic!("config first: {events:?}");
        };
        let parsed = hevc::DecoderConfig::parse(config).expect("hvcC");
        assert_eq!(parsed.sps().map(|s| &s[..]), Some(SPS));
        assert_eq!(
            events[1],
            Event::AccessUnit(AccessUnit {
                timestamp: 0,
                keyframe: true,
                data: key.clone()
            })
        );
        assert_eq!(
            events[2],
            Event::AccessUnit(AccessUnit {
                timestamp: 3600,
                keyframe: false,
                data: trail
            })
        );

        // Known parameter sets are not reported again; a lost FU drops the access unit only.
        let mut d = Depacketizer::new(config, 1 << 20);
        let mut lossy = packets.clone();
        lossy.remove(5);
        let events = depacketize(&mut d, &lossy);
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], Event::AccessUnit(au) if au.timestamp == 3600));
    }

    #[test]
    fn aggregation_packet_is_split() {
        let mut payload = vec![AP << 1, 0x01];
        for n in [VPS, SPS, PPS] {
            payload.extend_from_slice(&(n.len() as u16).to_be_bytes());
            payload.extend_from_slice(n);
        }
        let packets = [
            Packet {
                marker: false,
                payload_type: 97,
                sequence: 1,
                timestamp: 9,
                ssrc: 1,
                payload: Bytes::from(payload),
            },
            Packet {
                marker: true,
                payload_type: 97,
                sequence: 2,
                timestamp: 9,
                ssrc: 1,
                payload: Bytes::from_static(&[0x28, 0x01, 0xaf]),
            },
        ];
        let mut d = Depacketizer::new(&[], 1 << 20);
        let events = depacketize(&mut d, &packets);
        assert!(matches!(events[0], Event::Config(_)));
        assert_eq!(
            events[1],
            Event::AccessUnit(AccessUnit {
                timestamp: 9,
                keyframe: true,
                data: avcc(&[VPS, SPS, PPS, &[0x28, 0x01, 0xaf]])
            })
        );
    }

    #[test]
    fn bad_payloads_do_not_panic() {
        let mut d = Depacketizer::new(&[1, 2, 3], 1 << 16);
        for (i, payload) in [
            &[][..],
            &[FU << 1, 1],
            &[FU << 1, 1, 0x13, 5],
            &[FU << 1, 1, 0xf1, 5],
            &[AP << 1, 1, 0, 2, FU << 1, 1],
            &[AP << 1, 1, 0, 40, 1],
            &[AP << 1, 1, 0, 1, 1],
            &[50 << 1, 1, 0],
            &[0x7e, 1, 0],
        ]
        .into_iter()
        .enumerate()
        {
            d.push(&Packet {
                marker: true,
                payload_type: 97,
                sequence: i as u16,
                timestamp: i as u32,
                ssrc: 0,
                payload: Bytes::copy_from_slice(payload),
            });
            assert_eq!(d.pull(), None, "no event from a bad payload");
        }
    }
}
