//! An MPEG-TS reader (ISO/IEC 13818-1): packet headers and adaptation fields, PAT and PMT, PES
//! headers with PTS/DTS, continuity counters. The TS and HLS pull proxies demux with it, the
//! tests check [`TsMuxer`](crate::TsMuxer) output with it and the `hls_ts_reader` fuzz target
//! feeds it arbitrary bytes. It reads the first program of the PAT, PAT and PMT sections
//! spanning any number of packets, and no scrambled packets.
//!
//! A live source may lose bytes: after a packet without its sync byte the reader skips to the
//! next `0x47` that starts a packet (one error per loss of sync), and a PES whose packets'
//! continuity counter jumps is dropped (an error), the next PES starting clean.
//!
//! Drain rule: after [`Demuxer::push`], call [`Demuxer::pull`] until `None`; after the last
//! push, [`Demuxer::finish`] hands out the PES still being assembled.

use std::collections::{BTreeMap, VecDeque};

use crate::ts::{crc32_mpeg2, PACKET_SIZE, PID_PAT, SYNC_BYTE};
use crate::Error;

/// The longest PES the [`Demuxer`] assembles; a longer one is an error and is dropped.
pub const MAX_PES: usize = 8 << 20;
/// How many PCRs [`Demuxer::pcrs`] keeps (the first ones; a test's stream has fewer).
pub const MAX_PCRS: usize = 4096;

/// One 188-byte transport stream packet, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The PID.
    pub pid: u16,
    /// payload_unit_start_indicator: a PES or PSI section starts in this packet.
    pub pusi: bool,
    /// continuity_counter.
    pub cc: u8,
    /// Whether the packet has a payload (adaptation_field_control bit 0).
    pub has_payload: bool,
    /// The adaptation field's random_access_indicator.
    pub random_access: bool,
    /// The adaptation field's PCR, as its 33-bit 90 kHz base (the extension is dropped).
    pub pcr: Option<u64>,
    /// The payload after the header and adaptation field.
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses one packet; `data` must be exactly [`PACKET_SIZE`] bytes.
    pub fn parse(data: &'a [u8]) -> Result<Packet<'a>, Error> {
        if data.len() != PACKET_SIZE {
            return Err(Error::malformed(data.len(), "TS packet length"));
        }
        let [sync, b1, b2, b3, ..] = *data else {
            return Err(Error::malformed(0, "TS packet header"));
        };
        if sync != SYNC_BYTE {
            return Err(Error::malformed(0, "TS sync byte"));
        }
        let pid = u16::from_be_bytes([b1 & 0x1f, b2]);
        let control = (b3 >> 4) & 0x03;
        if control == 0 {
            return Err(Error::malformed(3, "TS adaptation_field_control"));
        }
        let mut packet = Packet {
            pid,
            pusi: b1 & 0x40 != 0,
            cc: b3 & 0x0f,
            has_payload: control & 0x01 != 0,
            random_access: false,
            pcr: None,
            payload: &[],
        };
        let mut pos = 4;
        if control & 0x02 != 0 {
            let len = usize::from(*data.get(4).ok_or(Error::malformed(4, "adaptation"))?);
            let field = data
                .get(5..5 + len)
                .ok_or(Error::malformed(4, "adaptation_field_length"))?;
            if let Some(&flags) = field.first() {
                packet.random_access = flags & 0x40 != 0;
                if flags & 0x10 != 0 {
                    let pcr = field.get(1..7).ok_or(Error::malformed(6, "PCR"))?;
                    let high = u64::from(u32::from_be_bytes([pcr[0], pcr[1], pcr[2], pcr[3]]));
                    packet.pcr = Some(high << 1 | u64::from(pcr[4] >> 7));
                }
            }
            pos = 5 + len;
        }
        if packet.has_payload {
            packet.payload = data.get(pos..).unwrap_or_default();
        }
        Ok(packet)
    }
}

/// The fields of a PES header (§2.4.3.6) a test checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// stream_id (0xe0 video, 0xc0 audio).
    pub stream_id: u8,
    /// PES_packet_length; 0 = unbounded.
    pub packet_length: u16,
    /// PTS, 90 kHz.
    pub pts: Option<u64>,
    /// DTS, 90 kHz.
    pub dts: Option<u64>,
    /// Where the elementary stream data starts.
    pub data_offset: usize,
}

impl PesHeader {
    /// Parses the header at the start of a PES.
    pub fn parse(data: &[u8]) -> Result<PesHeader, Error> {
        let head = data.get(..9).ok_or(Error::malformed(0, "PES header"))?;
        if head[..3] != [0, 0, 1] {
            return Err(Error::malformed(0, "PES start code"));
        }
        let stream_id = head[3];
        let packet_length = u16::from_be_bytes([head[4], head[5]]);
        if head[6] & 0xc0 != 0x80 {
            return Err(Error::malformed(6, "PES header marker"));
        }
        let flags = head[7] >> 6;
        let data_offset = 9 + usize::from(head[8]);
        let optional = data
            .get(9..data_offset)
            .ok_or(Error::malformed(8, "PES_header_data_length"))?;
        let (pts, dts) = match flags {
            0b10 => (Some(read_timestamp(optional, 0)?), None),
            0b11 => (
                Some(read_timestamp(optional, 0)?),
                Some(read_timestamp(optional, 5)?),
            ),
            0b00 => (None, None),
            _ => return Err(Error::malformed(7, "PTS_DTS_flags")),
        };
        Ok(PesHeader {
            stream_id,
            packet_length,
            pts,
            dts,
            data_offset,
        })
    }
}

/// A 5-byte PTS or DTS at `at` in the optional header fields.
pub(crate) fn read_timestamp(data: &[u8], at: usize) -> Result<u64, Error> {
    let b = data
        .get(at..at + 5)
        .ok_or(Error::malformed(9 + at, "PES timestamp"))?;
    if b[0] & 1 == 0 || b[2] & 1 == 0 || b[4] & 1 == 0 {
        return Err(Error::malformed(9 + at, "PES timestamp marker"));
    }
    Ok(u64::from(b[0] >> 1 & 0x07) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1))
}

/// The program map: the PCR PID and `(stream_type, pid)` per elementary stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pmt {
    /// PCR_PID.
    pub pcr_pid: u16,
    /// `(stream_type, elementary_PID)` in table order.
    pub streams: Vec<(u8, u16)>,
}

/// One reassembled PES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    /// The PID it came on.
    pub pid: u16,
    /// Its header.
    pub header: PesHeader,
    /// The first packet's random_access_indicator.
    pub random_access: bool,
    /// The elementary stream bytes after the header.
    pub data: Vec<u8>,
}

/// A PES being assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assembly {
    random_access: bool,
    bytes: Vec<u8>,
}

/// Reads a transport stream: tables, PES per elementary PID, continuity counters and PCRs.
#[derive(Debug, Clone)]
pub struct Demuxer {
    buffer: Vec<u8>,
    offset: usize,
    pmt_pid: Option<u16>,
    pmt: Option<Pmt>,
    last_cc: BTreeMap<u16, u8>,
    assembling: BTreeMap<u16, Assembly>,
    ready: VecDeque<Pes>,
    pcrs: Vec<(u16, u64)>,
    packets: usize,
    in_sync: bool,
    /// PSI sections being assembled, by PID.
    psi: BTreeMap<u16, Vec<u8>>,
}

impl Default for Demuxer {
    fn default() -> Self {
        Demuxer {
            buffer: Vec::new(),
            offset: 0,
            pmt_pid: None,
            pmt: None,
            last_cc: BTreeMap::new(),
            assembling: BTreeMap::new(),
            ready: VecDeque::new(),
            pcrs: Vec::new(),
            packets: 0,
            in_sync: true,
            psi: BTreeMap::new(),
        }
    }
}

impl Demuxer {
    /// A reader at the start of a stream.
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    /// Takes the next bytes of the stream (any split). Every whole packet is read; the first
    /// error met is returned, and reading carries on after the packet that caused it.
    pub fn push(&mut self, data: &[u8]) -> Result<(), Error> {
        self.buffer.extend_from_slice(data);
        self.read_packets(false)
    }

    /// Reads the whole packets in the buffer. A packet is taken when its sync byte is followed,
    /// 188 bytes on, by the next one's (so a stray `0x47` is not taken for a packet); the last
    /// packet waits for the next push, or for the end of the stream.
    fn read_packets(&mut self, at_end: bool) -> Result<(), Error> {
        let mut first_error = None;
        let mut used = 0;
        while let Some(packet) = self.buffer.get(used..used + PACKET_SIZE) {
            let next = self.buffer.get(used + PACKET_SIZE).copied();
            if next.is_none() && !at_end {
                break;
            }
            if packet[0] != SYNC_BYTE || next.is_some_and(|b| b != SYNC_BYTE) {
                // Lost sync: try the next sync byte.
                let skip = packet[1..]
                    .iter()
                    .position(|&b| b == SYNC_BYTE)
                    .map_or(PACKET_SIZE, |p| p + 1);
                if self.in_sync {
                    first_error.get_or_insert(Error::malformed(self.offset, "TS sync byte"));
                    self.in_sync = false;
                }
                used += skip;
                self.offset += skip;
                continue;
            }
            self.in_sync = true;
            let packet = packet.to_vec();
            if let Err(e) = self.packet(&packet) {
                first_error.get_or_insert(e);
            }
            used += PACKET_SIZE;
            self.offset += PACKET_SIZE;
        }
        self.buffer.drain(..used);
        first_error.map_or(Ok(()), Err)
    }

    /// The next complete PES, in the order they completed.
    pub fn pull(&mut self) -> Option<Pes> {
        self.ready.pop_front()
    }

    /// Ends the stream: each PES still being assembled is completed (an error names the first
    /// that does not parse), and bytes short of a whole packet are an error.
    pub fn finish(&mut self) -> Result<(), Error> {
        let mut first_error = self.read_packets(true).err();
        for pid in self.assembling.keys().copied().collect::<Vec<_>>() {
            if let Err(e) = self.complete(pid) {
                first_error.get_or_insert(e);
            }
        }
        if !self.buffer.is_empty() {
            first_error.get_or_insert(Error::malformed(self.offset, "truncated TS packet"));
            self.buffer.clear();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The program map, once read.
    pub fn pmt(&self) -> Option<&Pmt> {
        self.pmt.as_ref()
    }

    /// The PCRs seen (the first [`MAX_PCRS`]), with their PID, in stream order.
    pub fn pcrs(&self) -> &[(u16, u64)] {
        &self.pcrs
    }

    /// How many whole packets were read.
    pub fn packets(&self) -> usize {
        self.packets
    }

    fn packet(&mut self, data: &[u8]) -> Result<(), Error> {
        self.packets += 1;
        let packet = Packet::parse(data).map_err(|e| match e {
            Error::Malformed { offset, context } => Error::malformed(self.offset + offset, context),
            other => other,
        })?;
        if let Some(pcr) = packet.pcr.filter(|_| self.pcrs.len() < MAX_PCRS) {
            self.pcrs.push((packet.pid, pcr));
        }
        if let Err(e) = self.continuity(&packet) {
            // Packets of this PES were lost: what was assembled of it is no use.
            self.assembling.remove(&packet.pid);
            self.psi.remove(&packet.pid);
            return Err(e);
        }
        if !packet.has_payload {
            return Ok(());
        }
        if packet.pid == PID_PAT {
            for section in self.psi(packet.pid, packet.pusi, packet.payload) {
                self.pat(&section)?;
            }
            return Ok(());
        }
        if Some(packet.pid) == self.pmt_pid {
            for section in self.psi(packet.pid, packet.pusi, packet.payload) {
                self.pmt = Some(parse_pmt(packet.pid, &section)?);
            }
            return Ok(());
        }
        let elementary = self
            .pmt
            .as_ref()
            .is_some_and(|p| p.streams.iter().any(|(_, pid)| *pid == packet.pid));
        if !elementary {
            return Ok(());
        }
        if packet.pusi {
            let previous = self.complete(packet.pid);
            self.assembling.insert(
                packet.pid,
                Assembly {
                    random_access: packet.random_access,
                    bytes: packet.payload.to_vec(),
                },
            );
            previous?;
        } else if let Some(a) = self.assembling.get_mut(&packet.pid) {
            a.bytes.extend_from_slice(packet.payload);
            if a.bytes.len() > MAX_PES {
                let len = a.bytes.len();
                self.assembling.remove(&packet.pid);
                return Err(Error::LimitExceeded {
                    what: "PES length",
                    value: len as u64,
                    limit: MAX_PES as u64,
                });
            }
        }
        // A bounded PES is complete as soon as its length is reached.
        let done = self.assembling.get(&packet.pid).is_some_and(|a| {
            let declared = a
                .bytes
                .get(4..6)
                .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
            declared > 0 && a.bytes.len() >= 6 + declared
        });
        if done {
            self.complete(packet.pid)?;
        }
        Ok(())
    }

    /// Checks the continuity counter (§2.4.3.3): +1 per packet with payload, unchanged for
    /// adaptation-only packets, one duplicate allowed.
    fn continuity(&mut self, packet: &Packet<'_>) -> Result<(), Error> {
        if packet.pid == 0x1fff {
            return Ok(()); // null packets carry no counter
        }
        let previous = self.last_cc.insert(packet.pid, packet.cc);
        let Some(previous) = previous else {
            return Ok(());
        };
        let ok = if packet.has_payload {
            packet.cc == (previous + 1) & 0x0f || packet.cc == previous
        } else {
            packet.cc == previous
        };
        if ok {
            Ok(())
        } else {
            Err(Error::ProtocolViolation {
                pid: packet.pid,
                context: "continuity counter jumped",
            })
        }
    }

    /// The PSI sections a packet of `pid` completes, each as a payload with a zero
    /// pointer_field (what [`section`] reads). A section may span packets (§2.4.4.1); the
    /// bytes before a later section's start, which the pointer_field counts, end the one before.
    fn psi(&mut self, pid: u16, pusi: bool, payload: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        let mut rest = payload;
        if pusi {
            let Some((&pointer, after)) = payload.split_first() else {
                return done;
            };
            let (tail, start) = after.split_at(usize::from(pointer).min(after.len()));
            if let Some(mut open) = self.psi.remove(&pid) {
                open.extend_from_slice(tail);
                done.extend(complete_section(&open));
            }
            self.psi.insert(pid, Vec::new());
            rest = start;
        }
        if let Some(open) = self.psi.get_mut(&pid) {
            open.extend_from_slice(rest);
            if let Some(section) = complete_section(open) {
                done.push(section);
                self.psi.remove(&pid);
            } else if open.first() == Some(&0xff) || open.len() > MAX_SECTION {
                // Stuffing, or a section longer than any table may be.
                self.psi.remove(&pid);
            }
        }
        done
    }

    fn pat(&mut self, payload: &[u8]) -> Result<(), Error> {
        let body = section(PID_PAT, payload, 0x00)?;
        // After transport_stream_id, version and section numbers: 4 bytes per program.
        let programs = body.get(5..).unwrap_or_default();
        for entry in programs.chunks_exact(4) {
            let program = u16::from_be_bytes([entry[0], entry[1]]);
            if program != 0 {
                self.pmt_pid = Some(u16::from_be_bytes([entry[2] & 0x1f, entry[3]]));
                return Ok(());
            }
        }
        Ok(())
    }

    /// Hands out the PES assembled on `pid`, if any.
    fn complete(&mut self, pid: u16) -> Result<(), Error> {
        let Some(a) = self.assembling.remove(&pid) else {
            return Ok(());
        };
        let header = PesHeader::parse(&a.bytes)?;
        let end = match header.packet_length {
            0 => a.bytes.len(),
            len => (6 + usize::from(len)).min(a.bytes.len()),
        };
        let data = a
            .bytes
            .get(header.data_offset..end)
            .ok_or(Error::malformed(header.data_offset, "PES payload"))?
            .to_vec();
        self.ready.push_back(Pes {
            pid,
            header,
            random_access: a.random_access,
            data,
        });
        Ok(())
    }
}

/// The longest PSI section assembled (a private section's section_length may reach 4093).
const MAX_SECTION: usize = 4096;

/// The section at the start of `open`, once all of it is there, behind a zero pointer_field.
fn complete_section(open: &[u8]) -> Option<Vec<u8>> {
    let head = open.get(..3)?;
    if head[0] == 0xff {
        return None;
    }
    let len = 3 + usize::from(u16::from_be_bytes([head[1] & 0x0f, head[2]]));
    let section = open.get(..len)?;
    let mut payload = Vec::with_capacity(1 + len);
    payload.push(0);
    payload.extend_from_slice(section);
    Some(payload)
}

/// The body of the PSI section starting in `payload` (after its pointer_field), between
/// section_length and the CRC, once the table id and CRC check out.
fn section(pid: u16, payload: &[u8], table_id: u8) -> Result<&[u8], Error> {
    let pointer = usize::from(
        *payload
            .first()
            .ok_or(Error::malformed(0, "pointer_field"))?,
    );
    let start = 1 + pointer;
    let head = payload
        .get(start..start + 3)
        .ok_or(Error::malformed(start, "PSI section header"))?;
    if head[0] != table_id {
        return Err(Error::malformed(start, "PSI table_id"));
    }
    let len = usize::from(u16::from_be_bytes([head[1] & 0x0f, head[2]]));
    let whole = payload
        .get(start..start + 3 + len)
        .ok_or(Error::malformed(start + 1, "PSI section_length"))?;
    let (covered, crc) = whole
        .split_at_checked(whole.len().saturating_sub(4))
        .ok_or(Error::malformed(start, "PSI CRC"))?;
    let crc = <[u8; 4]>::try_from(crc).map_err(|_| Error::malformed(start, "PSI CRC"))?;
    if crc32_mpeg2(covered) != u32::from_be_bytes(crc) {
        return Err(Error::ProtocolViolation {
            pid,
            context: "PSI CRC mismatch",
        });
    }
    Ok(covered.get(3..).unwrap_or_default())
}

/// A PMT section (§2.4.4.8) on `pid`.
fn parse_pmt(pid: u16, payload: &[u8]) -> Result<Pmt, Error> {
    let body = section(pid, payload, 0x02)?;
    let fixed = body.get(..9).ok_or(Error::malformed(3, "PMT"))?;
    let pcr_pid = u16::from_be_bytes([fixed[5] & 0x1f, fixed[6]]);
    let info_len = usize::from(u16::from_be_bytes([fixed[7] & 0x0f, fixed[8]]));
    let mut rest = body
        .get(9 + info_len..)
        .ok_or(Error::malformed(12, "program_info_length"))?;
    let mut streams = Vec::new();
    while let Some(entry) = rest.get(..5) {
        let es_info = usize::from(u16::from_be_bytes([entry[3] & 0x0f, entry[4]]));
        streams.push((entry[0], u16::from_be_bytes([entry[1] & 0x1f, entry[2]])));
        rest = rest
            .get(5 + es_info..)
            .ok_or(Error::malformed(12, "ES_info_length"))?;
    }
    Ok(Pmt { pcr_pid, streams })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pes_header_timestamps() {
        // PTS 90 000 and DTS 86 400 (1 s and 0.96 s), as ISO/IEC 13818-1 §2.4.3.7 lays them out.
        let header = [
            0, 0, 1, 0xe0, 0, 0, 0x84, 0xc0, 10, 0x31, 0x00, 0x05, 0xbf, 0x21, 0x11, 0x00, 0x05,
            0xa3, 0x01,
        ];
        let h = PesHeader::parse(&header).expect("header");
        assert_eq!(h.stream_id, 0xe0);
        assert_eq!(h.pts, Some(90_000));
        assert_eq!(h.dts, Some(86_400));
        assert_eq!(h.data_offset, 19);
        assert!(PesHeader::parse(&header[..15]).is_err());
    }

    #[test]
    fn rejects_bad_sync_and_short_packets() {
        assert!(Packet::parse(&[0x47; 10]).is_err());
        let mut p = [0xffu8; PACKET_SIZE];
        assert!(Packet::parse(&p).is_err());
        p[0] = SYNC_BYTE;
        p[3] = 0x20; // adaptation only
        p[4] = 200; // longer than the packet
        assert!(Packet::parse(&p).is_err());
    }
}
