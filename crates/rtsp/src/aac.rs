//! AAC over RTP as RFC 3640 `mpeg4-generic` in `AAC-hbr` mode: `sizelength=13`,
//! `indexlength=3`, `indexdeltalength=3`, so each AU header is 16 bits (§3.3.6).
//!
//! G.711 and Opus need no helper: one frame is one RTP payload ([`crate::rtp::Packet`]) as
//! RFC 3551 §4.5.14 and RFC 7587 §4.2 define them.
//!
//! Both types are transforms with retina's contract: `push` one input, then `pull` until it
//! returns `None` before the next `push`.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use crate::rtp::Packet;
use crate::Error;

/// The largest AU a 13-bit AU-size can describe.
pub const MAX_AU: usize = 0x1fff;

/// Samples per AAC-LC frame, the RTP timestamp step between AUs of one packet.
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// One AAC access unit (raw, no ADTS header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// RTP timestamp (the track's sample rate).
    pub timestamp: u32,
    /// The raw access unit.
    pub data: Bytes,
}

/// Puts one AAC frame in each RTP packet (a 2-byte AU-headers-length, one AU header, the AU),
/// fragmenting frames larger than `max_payload` across packets (§3.2.3), marker on the last.
#[derive(Debug)]
pub struct Packetizer {
    max_payload: usize,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    queue: VecDeque<Packet>,
}

impl Packetizer {
    /// A packetizer writing payload type `payload_type` and `ssrc`, starting at
    /// `first_sequence`, with RTP payloads of at most `max_payload` bytes.
    pub fn new(max_payload: usize, payload_type: u8, ssrc: u32, first_sequence: u16) -> Self {
        Packetizer {
            max_payload: max_payload.max(5),
            payload_type,
            ssrc,
            sequence: first_sequence,
            queue: VecDeque::new(),
        }
    }

    /// Queues the packets of one raw AAC frame with RTP timestamp `timestamp`.
    pub fn push(&mut self, timestamp: u32, frame: &[u8]) -> Result<(), Error> {
        if frame.is_empty() || frame.len() > MAX_AU {
            return Err(Error::limit("AAC access unit", frame.len(), MAX_AU));
        }
        let header = ((frame.len() as u16) << 3).to_be_bytes();
        let mut chunks = frame.chunks(self.max_payload - 4).peekable();
        while let Some(chunk) = chunks.next() {
            let mut p = BytesMut::with_capacity(4 + chunk.len());
            p.put_u16(16); // AU-headers-length in bits: one 16-bit header
            p.put_slice(&header);
            p.put_slice(chunk);
            self.queue.push_back(Packet {
                marker: chunks.peek().is_none(),
                payload_type: self.payload_type,
                sequence: self.sequence,
                timestamp,
                ssrc: self.ssrc,
                payload: p.freeze(),
            });
            self.sequence = self.sequence.wrapping_add(1);
        }
        Ok(())
    }

    /// The next packet, in order.
    pub fn pull(&mut self) -> Option<Packet> {
        self.queue.pop_front()
    }

    /// The sequence number the next packet will carry (for `RTP-Info`).
    pub fn next_sequence(&self) -> u16 {
        self.sequence
    }
}

/// Reads AAC frames out of RFC 3640 AAC-hbr packets: several AUs per packet (timestamps
/// `SAMPLES_PER_FRAME` apart) or one AU fragmented across packets. A lost fragment drops that
/// frame; malformed packets are skipped whole.
#[derive(Debug, Default)]
pub struct Depacketizer {
    last_sequence: Option<u16>,
    /// A fragmented AU being gathered: its timestamp, its announced size and the bytes so far.
    fragment: Option<(u32, usize, BytesMut)>,
    frames: VecDeque<Frame>,
}

impl Depacketizer {
    /// A new depacketizer.
    pub fn new() -> Self {
        Depacketizer::default()
    }

    /// Takes one RTP packet of the track. Then call [`Depacketizer::pull`] until `None`.
    pub fn push(&mut self, packet: &Packet) {
        if let Some(last) = self.last_sequence {
            let delta = packet.sequence.wrapping_sub(last) as i16;
            if delta <= 0 {
                return;
            }
            if delta != 1 {
                self.fragment = None;
            }
        }
        self.last_sequence = Some(packet.sequence);
        if let Err(e) = self.parse(packet) {
            tracing::debug!(error = %e, sequence = packet.sequence, "bad AAC RTP packet");
            self.fragment = None;
        }
    }

    fn parse(&mut self, packet: &Packet) -> Result<(), Error> {
        let p = &packet.payload;
        let bits = p
            .get(..2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or(Error::malformed(0, "AU-headers-length"))?;
        if bits % 16 != 0 || bits == 0 {
            return Err(Error::malformed(0, "AU-headers-length"));
        }
        let count = bits / 16;
        let headers = p
            .get(2..2 + 2 * count)
            .ok_or(Error::malformed(2, "AU headers"))?;
        let sizes: Vec<usize> = headers
            .chunks_exact(2)
            .map(|h| usize::from(u16::from_be_bytes([h[0], h[1]]) >> 3))
            .collect();
        let mut pos = 2 + 2 * count;
        let rest = p.get(pos..).unwrap_or_default();
        let data_len = rest.len();

        if let Some((ts, size, mut buf)) = self.fragment.take() {
            // A continuation: same timestamp, one AU header with the whole AU's size.
            if ts != packet.timestamp || count != 1 || sizes.first() != Some(&size) {
                return Err(Error::ProtocolViolation {
                    context: "AAC fragment does not continue the AU",
                });
            }
            buf.put_slice(rest);
            return self.fragment_progress(ts, size, buf, packet.marker);
        }
        if count == 1 && sizes.first().is_some_and(|&s| s > data_len) {
            let size = sizes.first().copied().unwrap_or(0);
            let buf = BytesMut::from(rest);
            return self.fragment_progress(packet.timestamp, size, buf, packet.marker);
        }
        if sizes.iter().sum::<usize>() > data_len {
            return Err(Error::malformed(pos, "AAC AU sizes exceed the packet"));
        }
        let mut ts = packet.timestamp;
        for size in sizes {
            self.frames.push_back(Frame {
                timestamp: ts,
                data: p.slice(pos..pos + size),
            });
            pos += size;
            ts = ts.wrapping_add(SAMPLES_PER_FRAME);
        }
        Ok(())
    }

    fn fragment_progress(
        &mut self,
        ts: u32,
        size: usize,
        buf: BytesMut,
        marker: bool,
    ) -> Result<(), Error> {
        match buf.len().cmp(&size) {
            std::cmp::Ordering::Greater => Err(Error::malformed(0, "AAC fragment overflows")),
            std::cmp::Ordering::Equal if marker => {
                self.frames.push_back(Frame {
                    timestamp: ts,
                    data: buf.freeze(),
                });
                Ok(())
            }
            _ if marker => Err(Error::malformed(0, "AAC fragmented AU ends early")),
            _ => {
                self.fragment = Some((ts, size, buf));
                Ok(())
            }
        }
    }

    /// The next frame, `None` when the pushed packets are used up.
    pub fn pull(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(d: &mut Depacketizer, packets: &[Packet]) -> Vec<Frame> {
        let mut out = Vec::new();
        for p in packets {
            d.push(p);
            out.extend(std::iter::from_fn(|| d.pull()));
        }
        out
    }

    #[test]
    fn round_trip_including_fragments() {
        let mut p = Packetizer::new(100, 97, 3, 65535);
        let small: Vec<u8> = (0..60).collect();
        let big: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        p.push(1024, &small).expect("fits");
        p.push(2048, &big).expect("fits");
        let packets: Vec<Packet> = std::iter::from_fn(|| p.pull()).collect();
        assert_eq!(packets.len(), 4);
        assert_eq!(&packets[0].payload[..4], &[0, 16, 0x01, 0xe0]);
        assert_eq!(
            packets.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [true, false, false, true]
        );
        let mut d = Depacketizer::new();
        let got = frames(&mut d, &packets);
        assert_eq!(
            got,
            vec![
                Frame {
                    timestamp: 1024,
                    data: Bytes::from(small)
                },
                Frame {
                    timestamp: 2048,
                    data: Bytes::from(big)
                }
            ]
        );
        // A lost middle fragment drops the big frame only.
        let mut lossy = packets.clone();
        lossy.remove(2);
        let got = frames(&mut Depacketizer::new(), &lossy);
        assert_eq!(got.len(), 1);
        assert!(p.push(0, &[0; MAX_AU + 1]).is_err());
        assert!(p.push(0, &[]).is_err());
    }

    #[test]
    fn several_aus_in_one_packet() {
        // As ffmpeg 6 and GStreamer may send: two AUs of 3 and 2 bytes.
        let payload = vec![0, 32, 0, 3 << 3, 0, 2 << 3, 1, 2, 3, 4, 5];
        let pkt = Packet {
            marker: true,
            payload_type: 97,
            sequence: 1,
            timestamp: 100,
            ssrc: 1,
            payload: Bytes::from(payload),
        };
        let got = frames(&mut Depacketizer::new(), &[pkt]);
        assert_eq!(
            got,
            vec![
                Frame {
                    timestamp: 100,
                    data: Bytes::from_static(&[1, 2, 3])
                },
                Frame {
                    timestamp: 1124,
                    data: Bytes::from_static(&[4, 5])
                }
            ]
        );
    }

    #[test]
    fn bad_packets_are_skipped() {
        let mut d = Depacketizer::new();
        for (i, payload) in [
            &[][..],
            &[0, 0],
            &[0, 15, 0, 0],
            &[0, 32, 0, 8],
            &[0, 32, 0, 8, 0, 8, 1],
            &[0, 16, 0xff, 0xf8, 1],
        ]
        .into_iter()
        .enumerate()
        {
            d.push(&Packet {
                marker: true,
                payload_type: 97,
                sequence: i as u16,
                timestamp: 0,
                ssrc: 0,
                payload: Bytes::copy_from_slice(payload),
            });
            assert_eq!(d.pull(), None, "payload {payload:?}");
        }
    }
}
