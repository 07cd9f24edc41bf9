//! RTP packets (RFC 3550 §5.1) and the RTCP sender and receiver reports (RFC 3550 §6.4) an RTSP
//! server reads from publishers and sends to players.
//!
//! Parsing never copies the payload: [`Packet::parse`] slices the [`Bytes`] it is given.
//! Nothing here reads a clock: the NTP time of a sender report is passed in
//! ([`ntp_timestamp`] converts from a duration since the Unix epoch).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

/// Length of the fixed RTP header.
pub const HEADER_LEN: usize = 12;

/// One RTP packet: the fixed header fields a depacketizer needs and the payload, with CSRCs,
/// header extension and padding removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The marker bit: last packet of a video access unit (RFC 6184 §5.1), last fragment of
    /// an AAC frame (RFC 3640 §3.2.1).
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp, in the track's clock rate.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload.
    pub payload: Bytes,
}

impl Packet {
    /// Parses an RTP packet (RFC 3550 §5.1), skipping CSRCs and the header extension (§5.3.1)
    /// and removing padding.
    pub fn parse(data: Bytes) -> Result<Packet, Error> {
        let head = data
            .get(..HEADER_LEN)
            .ok_or(Error::malformed(data.len(), "RTP header"))?;
        if head[0] >> 6 != 2 {
            return Err(Error::malformed(0, "RTP version"));
        }
        let padding = head[0] & 0x20 != 0;
        let extension = head[0] & 0x10 != 0;
        let csrc_count = usize::from(head[0] & 0x0f);
        let marker = head[1] & 0x80 != 0;
        let payload_type = head[1] & 0x7f;
        let sequence = u16::from_be_bytes([head[2], head[3]]);
        let timestamp = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let ssrc = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        let mut start = HEADER_LEN + 4 * csrc_count;
        if extension {
            let ext = data
                .get(start..start + 4)
                .ok_or(Error::malformed(start, "RTP header extension"))?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        let mut end = data.len();
        if padding {
            let pad = usize::from(*data.last().ok_or(Error::malformed(end, "RTP padding"))?);
            if pad == 0 {
                return Err(Error::malformed(end - 1, "RTP padding"));
            }
            end = end.saturating_sub(pad);
        }
        if start > end {
            return Err(Error::malformed(start.min(data.len()), "RTP packet length"));
        }
        Ok(Packet {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            payload: data.slice(start..end),
        })
    }

    /// Writes the packet: a 12-byte header (no CSRC, no extension, no padding) and the payload.
    pub fn write(&self, out: &mut BytesMut) {
        write_header(
            out,
            self.marker,
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
        );
        out.put_slice(&self.payload);
    }

    /// The serialised packet.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + self.payload.len());
        self.write(&mut out);
        out.freeze()
    }
}

/// Writes a 12-byte RTP header (version 2, no padding, no extension, no CSRC).
pub fn write_header(
    out: &mut BytesMut,
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out.put_u8(0x80);
    out.put_u8((u8::from(marker) << 7) | (payload_type & 0x7f));
    out.put_u16(sequence);
    out.put_u32(timestamp);
    out.put_u32(ssrc);
}

/// RTCP packet type of a sender report (RFC 3550 §6.4.1).
pub const RTCP_SR: u8 = 200;
/// RTCP packet type of a receiver report (RFC 3550 §6.4.2).
pub const RTCP_RR: u8 = 201;

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

/// A sender report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderReport {
    /// The sender.
    pub ssrc: u32,
    /// 64-bit NTP timestamp of this report.
    pub ntp_time: u64,
    /// The same instant on the RTP clock of the stream.
    pub rtp_time: u32,
    /// Packets sent so far.
    pub packet_count: u32,
    /// Payload octets sent so far.
    pub octet_count: u32,
    /// Reception reports (at most 31).
    pub reports: Vec<ReportBlock>,
}

/// A receiver report (RFC 3550 §6.4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverReport {
    /// The receiver.
    pub ssrc: u32,
    /// Reception reports (at most 31).
    pub reports: Vec<ReportBlock>,
}

/// The RTCP packets this crate reads; others in a compound packet are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rtcp {
    /// A sender report.
    SenderReport(SenderReport),
    /// A receiver report.
    ReceiverReport(ReceiverReport),
}

/// The NTP timestamp (RFC 3550 §4: seconds since 1900 in the high 32 bits, fraction in the low
/// 32) of an instant given as a duration since the Unix epoch.
pub fn ntp_timestamp(since_unix_epoch: Duration) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let secs = since_unix_epoch.as_secs().wrapping_add(UNIX_TO_NTP);
    let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Parses a compound RTCP packet (RFC 3550 §6.1): every SR and RR in it, skipping SDES, BYE,
/// APP and feedback packets.
pub fn parse_rtcp(data: &[u8]) -> Result<Vec<Rtcp>, Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let head = data
            .get(pos..pos + 4)
            .ok_or(Error::malformed(pos, "RTCP header"))?;
        if head[0] >> 6 != 2 {
            return Err(Error::malformed(pos, "RTCP version"));
        }
        let count = usize::from(head[0] & 0x1f);
        let packet_type = head[1];
        let len = 4 * (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1);
        let body = data
            .get(pos + 4..pos + len)
            .ok_or(Error::malformed(pos, "RTCP length"))?;
        match packet_type {
            RTCP_SR => {
                let f = body
                    .get(..24)
                    .ok_or(Error::malformed(pos + 4, "RTCP sender info"))?;
                out.push(Rtcp::SenderReport(SenderReport {
                    ssrc: be32(f, 0),
                    ntp_time: (u64::from(be32(f, 4)) << 32) | u64::from(be32(f, 8)),
                    rtp_time: be32(f, 12),
                    packet_count: be32(f, 16),
                    octet_count: be32(f, 20),
                    reports: report_blocks(body, 24, count, pos + 4)?,
                }));
            }
            RTCP_RR => {
                let f = body
                    .get(..4)
                    .ok_or(Error::malformed(pos + 4, "RTCP receiver report"))?;
                out.push(Rtcp::ReceiverReport(ReceiverReport {
                    ssrc: be32(f, 0),
                    reports: report_blocks(body, 4, count, pos + 4)?,
                }));
            }
            _ => {}
        }
        pos += len;
    }
    Ok(out)
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn report_blocks(
    body: &[u8],
    start: usize,
    count: usize,
    offset: usize,
) -> Result<Vec<ReportBlock>, Error> {
    (0..count)
        .map(|i| {
            let at = start + 24 * i;
            let b = body
                .get(at..at + 24)
                .ok_or(Error::malformed(offset + at, "RTCP report block"))?;
            // Sign-extend the 24-bit cumulative loss.
            let lost = (i32::from_be_bytes([b[4], b[5], b[6], b[7]]) << 8) >> 8;
            Ok(ReportBlock {
                ssrc: be32(b, 0),
                fraction_lost: b[4],
                cumulative_lost: lost,
                highest_sequence: be32(b, 8),
                jitter: be32(b, 12),
                last_sr: be32(b, 16),
                delay_since_last_sr: be32(b, 20),
            })
        })
        .collect()
}

fn write_blocks(out: &mut BytesMut, reports: &[ReportBlock]) {
    for r in reports.iter().take(31) {
        out.put_u32(r.ssrc);
        out.put_u8(r.fraction_lost);
        let lost = r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff);
        out.put_slice(&lost.to_be_bytes()[1..]);
        out.put_u32(r.highest_sequence);
        out.put_u32(r.jitter);
        out.put_u32(r.last_sr);
        out.put_u32(r.delay_since_last_sr);
    }
}

impl SenderReport {
    /// Writes the SR (up to 31 report blocks).
    pub fn write(&self, out: &mut BytesMut) {
        let n = self.reports.len().min(31);
        out.put_u8(0x80 | n as u8);
        out.put_u8(RTCP_SR);
        out.put_u16((6 + 6 * n) as u16);
        out.put_u32(self.ssrc);
        out.put_u64(self.ntp_time);
        out.put_u32(self.rtp_time);
        out.put_u32(self.packet_count);
        out.put_u32(self.octet_count);
        write_blocks(out, &self.reports);
    }
}

impl ReceiverReport {
    /// Writes the RR (up to 31 report blocks).
    pub fn write(&self, out: &mut BytesMut) {
        let n = self.reports.len().min(31);
        out.put_u8(0x80 | n as u8);
        out.put_u8(RTCP_RR);
        out.put_u16((1 + 6 * n) as u16);
        out.put_u32(self.ssrc);
        write_blocks(out, &self.reports);
    }
}

/// The CNAME every report of ours carries in its SDES (RFC 3550 §6.5.1).
pub const CNAME: &[u8] = b"ferrostream";

/// Writes an SDES packet with one chunk: `ssrc` and its [`CNAME`] (RFC 3550 §6.5), which
/// every compound RTCP packet must carry after its report (§6.1).
pub fn write_sdes(out: &mut BytesMut, ssrc: u32) {
    // SSRC, CNAME item (type, length, text), then at least one null octet up to a 32-bit
    // boundary.
    let chunk = 4 + 2 + CNAME.len();
    let padded = (chunk + 4) & !3;
    out.put_u8(0x81);
    out.put_u8(202);
    out.put_u16((padded / 4) as u16);
    out.put_u32(ssrc);
    out.put_u8(1);
    out.put_u8(CNAME.len() as u8);
    out.put_slice(CNAME);
    out.put_bytes(0, padded - chunk);
}

/// What a receiver counts of one source for its reception reports (RFC 3550 §6.4.1, with the
/// sequence bookkeeping of §A.1 and the loss fraction of §A.3; jitter is not estimated and
/// reported as 0). Times are the caller's, in ms.
#[derive(Debug, Clone, Default)]
pub struct Reception {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Middle 32 bits of the last SR's NTP time, and when it arrived.
    last_sr: Option<(u32, u64)>,
}

impl Reception {
    /// An RTP packet of `ssrc` with sequence number `seq` arrived. A new SSRC starts over.
    pub fn on_rtp(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc != Some(ssrc) {
            *self = Reception {
                ssrc: Some(ssrc),
                base_seq: u32::from(seq),
                max_seq: seq,
                received: 1,
                ..Reception::default()
            };
            return;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta != 0 && delta < 0x8000 {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        }
        self.received = self.received.wrapping_add(1);
    }

    /// A sender report of the source with NTP time `ntp_time` arrived at `now_ms`.
    pub fn on_sender_report(&mut self, ntp_time: u64, now_ms: u64) {
        self.last_sr = Some(((ntp_time >> 16) as u32, now_ms));
    }

    /// The report block for a receiver report sent at `now_ms`, `None` before any packet;
    /// the loss fraction counts since the previous block.
    pub fn block(&mut self, now_ms: u64) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let extended = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            // DLSR in 1/65536 s.
            Some((lsr, at)) => (lsr, (now_ms.saturating_sub(at) * 65_536 / 1000) as u32),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_sequence: extended,
            jitter: 0,
            last_sr,
            delay_since_last_sr,
        })
    }
}

/// A compound RTCP receiver report from `ssrc` with `blocks` and our SDES CNAME (RFC 3550
/// §6.1, §6.4.2): what a player sends its source now and then.
pub fn receiver_report(ssrc: u32, blocks: Vec<ReportBlock>) -> Bytes {
    let mut out = BytesMut::new();
    ReceiverReport {
        ssrc,
        reports: blocks,
    }
    .write(&mut out);
    write_sdes(&mut out, ssrc);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reception_counts_loss_wraps_and_the_last_sr() {
        let mut r = Reception::default();
        assert_eq!(r.block(0), None);
        for seq in [65_533u16, 65_534, 65_535, 1, 2] {
            r.on_rtp(7, seq); // 0 is lost across the wrap
        }
        r.on_sender_report(0x1122_3344_5566_7788, 1000);
        let b = r.block(1500).expect("block");
        assert_eq!(b.ssrc, 7);
        assert_eq!(b.highest_sequence, (1 << 16) + 2);
        assert_eq!(b.cumulative_lost, 1);
        assert_eq!(b.fraction_lost, 42, "1 lost of 6, in 1/256");
        assert_eq!((b.last_sr, b.delay_since_last_sr), (0x3344_5566, 32_768));
        // Nothing lost since: the fraction is for the interval only.
        r.on_rtp(7, 3);
        r.on_rtp(7, 2); // a late duplicate counts as received, not as a step back
        let b = r.block(2000).expect("block");
        assert_eq!(
            (b.fraction_lost, b.cumulative_lost, b.highest_sequence),
            (0, 0, (1 << 16) + 3)
        );
        r.on_rtp(9, 100);
        let b = r.block(2000).expect("block");
        assert_eq!((b.ssrc, b.highest_sequence, b.cumulative_lost), (9, 100, 0));
        let rr = receiver_report(0x55, vec![b]);
        let parsed = parse_rtcp(&rr).expect("parses");
        assert_eq!(
            parsed,
            [Rtcp::ReceiverReport(ReceiverReport {
                ssrc: 0x55,
                reports: vec![b]
            })]
        );
    }

    #[test]
    fn rtp_round_trip() {
        let p = Packet {
            marker: true,
            payload_type: 96,
            sequence: 0xfffe,
            timestamp: 0x1234_5678,
            ssrc: 0xdead_beef,
            payload: Bytes::from_static(&[1, 2, 3]),
        };
        let bytes = p.to_bytes();
        assert_eq!(&bytes[..2], &[0x80, 0x80 | 96]);
        assert_eq!(Packet::parse(bytes), Ok(p));
    }

    #[test]
    fn csrc_extension_and_padding_are_removed() {
        let mut v = vec![0xb1, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        v.extend_from_slice(&[0xbe, 0xde, 0, 1, 7, 7, 7, 7]); // extension, one word
        v.extend_from_slice(&[0xaa, 0xbb]); // payload
        v.extend_from_slice(&[0, 0, 3]); // padding of 3
        let p = Packet::parse(Bytes::from(v)).expect("parses");
        assert_eq!(&p.payload[..], &[0xaa, 0xbb]);
        assert_eq!(
            (p.payload_type, p.sequence, p.timestamp, p.ssrc),
            (0x60, 1, 2, 3)
        );
    }

    #[test]
    fn bad_packets_are_errors() {
        for bad in [
            &[0x80, 0x60, 0, 1][..],
            &[0x40, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
            &[0x8f, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
            &[0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0xff, 0xff],
            &[0xa0, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 0],
            &[0xa0, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 200],
        ] {
            assert!(
                Packet::parse(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rtcp_round_trip_and_skip() {
        let block = ReportBlock {
            ssrc: 5,
            fraction_lost: 3,
            cumulative_lost: -2,
            highest_sequence: 70_000,
            jitter: 12,
            last_sr: 0x1111_2222,
            delay_since_last_sr: 65536,
        };
        let sr = SenderReport {
            ssrc: 1,
            ntp_time: ntp_timestamp(Duration::from_millis(1_700_000_000_500)),
            rtp_time: 90_000,
            packet_count: 10,
            octet_count: 10_000,
            reports: vec![block],
        };
        let rr = ReceiverReport {
            ssrc: 2,
            reports: vec![block, block],
        };
        let mut out = BytesMut::new();
        sr.write(&mut out);
        // An SDES with one empty chunk, to be skipped.
        out.put_slice(&[0x81, 202, 0, 1, 0, 0, 0, 1]);
        rr.write(&mut out);
        let parsed = parse_rtcp(&out).expect("parses");
        assert_eq!(
            parsed,
            vec![Rtcp::SenderReport(sr.clone()), Rtcp::ReceiverReport(rr)]
        );
        assert_eq!(sr.ntp_time & 0xffff_ffff, 1 << 31);
        assert_eq!(sr.ntp_time >> 32, 1_700_000_000 + 2_208_988_800);
        assert!(parse_rtcp(&out[..out.len() - 1]).is_err());
        assert!(parse_rtcp(&[0x81, 200, 0, 1, 0, 0, 0, 1]).is_err());
        assert!(parse_rtcp(&[0x41, 200, 0, 0]).is_err());
    }
}
