//! An MPEG-2 Program Stream demuxer (ISO/IEC 13818-1 §2.5), for the PS GB28181 devices send
//! over RTP and for `ffmpeg -f vob`/`-f mpeg` output.
//!
//! ```text
//!   RTP payloads / file chunks (any split) ──▶ PsDemuxer::push(bytes)
//!                                                   │
//!                                                   └─▶ pull() until None: one Pes per
//!                                                       complete audio or video PES
//!   end of the source ──▶ PsDemuxer::finish() ──▶ pull() the PES still open
//! ```
//!
//! Read: pack headers (MPEG-2, with their stuffing, and MPEG-1), system headers (skipped), the
//! program stream map (its `stream_type` per `elementary_stream_id`), PES packets of streams
//! `0xE0`–`0xEF` (video) and `0xC0`–`0xDF` (audio) with PTS/DTS (MPEG-2 and MPEG-1 PES headers),
//! the program end code. Private streams 1 and 2, padding and the other stream ids are skipped
//! by their length.
//!
//! Stream types: from the last program stream map. Until one came (ffmpeg writes none), a
//! stream's type is guessed from its first payload: video is H.265 (`0x24`) when its first NAL
//! unit has an H.265 parameter set, AUD or SEI header, H.264 (`0x1b`) otherwise; audio is AAC
//! (`0x0f`) when it starts with an ADTS syncword, MPEG audio (`0x03`) otherwise. A PSM arriving
//! later wins.
//!
//! A PES whose `PES_packet_length` is 0 (some cameras send video so) ends at the next pack,
//! system header, PSM or PES start code: those are `00 00 01` followed by a byte of `0xB9` or
//! more, which no H.264 or H.265 NAL unit header can be. A PES may span any number of pushes
//! and a push may carry any number of PES. Bytes that are no start code are skipped up to the
//! next one (an error is returned once per loss of sync). The buffer holds at most
//! [`MAX_BUFFER`] bytes.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use crate::reader::{read_timestamp, PesHeader};
use crate::Error;

/// The most bytes [`PsDemuxer`] keeps waiting for the end of a packet (an unbounded PES).
pub const MAX_BUFFER: usize = 8 << 20;

/// The most bytes [`PsDemuxer::push`] appends before reading what it can.
const PUSH_PIECE: usize = 64 << 10;

const PACK_START: u8 = 0xba;
const SYSTEM_HEADER: u8 = 0xbb;
const PSM: u8 = 0xbc;
const PROGRAM_END: u8 = 0xb9;

/// One PES of an audio or video stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    /// `stream_id` (`0xE0`–`0xEF` video, `0xC0`–`0xDF` audio).
    pub stream_id: u8,
    /// ISO/IEC 13818-1 `stream_type`: from the program stream map, or guessed (see the
    /// [module](self) docs).
    pub stream_type: u8,
    /// PTS, 90 kHz, 33 bits.
    pub pts: Option<u64>,
    /// DTS, 90 kHz, 33 bits.
    pub dts: Option<u64>,
    /// The elementary stream bytes after the PES header.
    pub payload: Bytes,
}

/// Reads a program stream; see the [module](self) docs.
#[derive(Debug)]
pub struct PsDemuxer {
    buf: BytesMut,
    /// Bytes consumed before `buf`, for error offsets.
    offset: u64,
    /// Where the search for the end of an unbounded PES at the start of `buf` goes on.
    scan_from: usize,
    /// `stream_type` per `stream_id` from the PSM; 0 = none given.
    psm: [u8; 256],
    /// The guess for streams the PSM does not name, made on their first PES.
    guessed: [u8; 256],
    psm_seen: bool,
    in_sync: bool,
    ready: VecDeque<Pes>,
}

impl Default for PsDemuxer {
    fn default() -> Self {
        PsDemuxer::new()
    }
}

/// What is at the start of the buffer.
enum Step {
    /// Not enough bytes yet.
    Wait,
    /// `n` bytes were used.
    Used(usize),
}

impl PsDemuxer {
    /// A demuxer at the start of a stream.
    pub fn new() -> Self {
        PsDemuxer {
            buf: BytesMut::new(),
            offset: 0,
            scan_from: 0,
            psm: [0; 256],
            guessed: [0; 256],
            psm_seen: false,
            in_sync: true,
            ready: VecDeque::new(),
        }
    }

    /// Takes the next bytes of the stream (any split). Every complete packet in them is read;
    /// the first error met is returned, and reading goes on after the packet that caused it.
    pub fn push(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut first_error = None;
        // In pieces, so that one large push cannot take the buffer past its bound either.
        for piece in data.chunks(PUSH_PIECE) {
            if let Err(e) = self.push_piece(piece) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn push_piece(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut first_error = None;
        if self.buf.len() + data.len() > MAX_BUFFER {
            // Only an unbounded PES whose end never comes can fill it: give it up.
            let value = (self.buf.len() + data.len()) as u64;
            self.discard_bytes(self.buf.len());
            first_error = Some(Error::LimitExceeded {
                what: "program stream buffer",
                value,
                limit: MAX_BUFFER as u64,
            });
            self.in_sync = false;
        }
        self.buf.extend_from_slice(data);
        loop {
            match self.step(false) {
                Ok(Step::Wait) => break,
                Ok(Step::Used(n)) => self.discard_bytes(n),
                Err((n, e)) => {
                    self.discard_bytes(n);
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Ends the stream: a PES without a length still open is handed out; an incomplete packet
    /// is an error.
    pub fn finish(&mut self) -> Result<(), Error> {
        let result = match self.step(true) {
            Ok(Step::Used(n)) => {
                self.discard_bytes(n);
                Ok(())
            }
            Ok(Step::Wait) if self.buf.is_empty() => Ok(()),
            Ok(Step::Wait) => Err(Error::malformed(
                self.offset as usize,
                "truncated PS packet",
            )),
            Err((_, e)) => Err(e),
        };
        self.discard_bytes(self.buf.len());
        result
    }

    /// Bytes were lost before the next push (an RTP sequence gap): the packet being read is
    /// dropped, and the next push looks for the next start code without reporting the bytes
    /// before it as an error. The program stream map is kept.
    pub fn discard(&mut self) {
        self.discard_bytes(self.buf.len());
        self.in_sync = false;
    }

    /// The next complete PES, in stream order.
    pub fn pull(&mut self) -> Option<Pes> {
        self.ready.pop_front()
    }

    /// Whether a program stream map was read.
    pub fn psm_seen(&self) -> bool {
        self.psm_seen
    }

    /// The `stream_type` the program stream map gives `stream_id`, if it named it.
    pub fn stream_type(&self, stream_id: u8) -> Option<u8> {
        Some(self.psm[usize::from(stream_id)]).filter(|&t| t != 0)
    }

    fn discard_bytes(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.offset += n as u64;
        self.scan_from = 0;
    }

    fn malformed(&self, at: usize, context: &'static str) -> Error {
        Error::malformed(self.offset as usize + at, context)
    }

    /// Reads what starts the buffer. `Err((n, e))`: `n` bytes are to be dropped.
    fn step(&mut self, at_end: bool) -> Result<Step, (usize, Error)> {
        let buf = &self.buf[..];
        if buf.len() < 4 {
            return Ok(Step::Wait);
        }
        if !(buf[..3] == [0, 0, 1] && buf[3] >= PROGRAM_END) {
            // Lost sync: skip to the next start code (keeping a possible partial one).
            let next = find_packet_start(buf, 1);
            let skip = next.unwrap_or(buf.len().saturating_sub(3));
            if skip == 0 {
                return Ok(Step::Wait);
            }
            if self.in_sync {
                self.in_sync = false;
                return Err((skip, self.malformed(0, "PS start code (sync lost)")));
            }
            return Ok(Step::Used(skip));
        }
        self.in_sync = true;
        match buf[3] {
            PROGRAM_END => Ok(Step::Used(4)),
            PACK_START => self.pack_header(),
            id => {
                let Some(len) = buf.get(4..6) else {
                    return Ok(Step::Wait);
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let is_media = matches!(id, 0xc0..=0xef);
                if len == 0 && is_media {
                    return self.unbounded_pes(at_end);
                }
                let total = 6 + len;
                if buf.len() < total {
                    return Ok(Step::Wait);
                }
                match id {
                    SYSTEM_HEADER => Ok(Step::Used(total)),
                    PSM => match self.psm(total) {
                        Ok(()) => Ok(Step::Used(total)),
                        Err(e) => Err((total, e)),
                    },
                    _ if is_media => match self.pes(total) {
                        Ok(()) => Ok(Step::Used(total)),
                        Err(e) => Err((total, e)),
                    },
                    // Private streams, padding, ECM/EMM, DSM-CC, …: not ours.
                    _ => Ok(Step::Used(total)),
                }
            }
        }
    }

    fn pack_header(&self) -> Result<Step, (usize, Error)> {
        let buf = &self.buf[..];
        let Some(&mode) = buf.get(4) else {
            return Ok(Step::Wait);
        };
        if mode & 0xc0 == 0x40 {
            // MPEG-2: SCR (6), program_mux_rate (3), pack_stuffing_length (low 3 bits).
            let Some(&stuffing) = buf.get(13) else {
                return Ok(Step::Wait);
            };
            let total = 14 + usize::from(stuffing & 0x07);
            if buf.len() < total {
                return Ok(Step::Wait);
            }
            Ok(Step::Used(total))
        } else if mode & 0xf0 == 0x20 {
            // MPEG-1: SCR (5), mux_rate (3).
            if buf.len() < 12 {
                return Ok(Step::Wait);
            }
            Ok(Step::Used(12))
        } else {
            Err((4, self.malformed(4, "pack header")))
        }
    }

    /// A PES with no length: it ends where the next packet starts.
    fn unbounded_pes(&mut self, at_end: bool) -> Result<Step, (usize, Error)> {
        let from = self.scan_from.max(6);
        let end = match find_packet_start(&self.buf, from) {
            Some(end) => end,
            None if at_end => self.buf.len(),
            None => {
                // Leave room for a start code cut by the push.
                self.scan_from = self.buf.len().saturating_sub(3).max(6);
                return Ok(Step::Wait);
            }
        };
        match self.pes(end) {
            Ok(()) => Ok(Step::Used(end)),
            Err(e) => Err((end, e)),
        }
    }

    /// The PES in the first `total` bytes of the buffer.
    fn pes(&mut self, total: usize) -> Result<(), Error> {
        let packet = &self.buf[..total];
        let stream_id = packet[3];
        let (pts, dts, data_offset) = match packet.get(6) {
            Some(b) if b & 0xc0 == 0x80 => {
                let h = PesHeader::parse(packet).map_err(|e| self.relocate(e))?;
                (h.pts, h.dts, h.data_offset)
            }
            Some(_) => mpeg1_pes_header(packet).map_err(|e| self.relocate(e))?,
            None => (None, None, 6),
        };
        if data_offset > total {
            return Err(self.malformed(8, "PES_header_data_length"));
        }
        let payload = Bytes::copy_from_slice(&packet[data_offset..]);
        let stream_type = match self.stream_type(stream_id) {
            Some(t) => t,
            None => {
                let slot = &mut self.guessed[usize::from(stream_id)];
                if *slot == 0 && !payload.is_empty() {
                    *slot = guess_stream_type(stream_id, &payload);
                }
                *slot
            }
        };
        if stream_type == 0 {
            return Ok(()); // nothing to guess from yet
        }
        self.ready.push_back(Pes {
            stream_id,
            stream_type,
            pts,
            dts,
            payload,
        });
        Ok(())
    }

    fn relocate(&self, e: Error) -> Error {
        match e {
            Error::Malformed { offset, context } => self.malformed(offset, context),
            other => other,
        }
    }

    /// The program stream map (§2.5.4) in the first `total` bytes of the buffer.
    fn psm(&mut self, total: usize) -> Result<(), Error> {
        let body = &self.buf[6..total];
        let info_len = body
            .get(2..4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or(self.malformed(6, "program_stream_map"))?;
        let map_at = 4 + info_len;
        let map_len = body
            .get(map_at..map_at + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or(self.malformed(6 + map_at, "program_stream_info_length"))?;
        let mut entries = body
            .get(map_at + 2..map_at + 2 + map_len)
            .ok_or(self.malformed(6 + map_at, "elementary_stream_map_length"))?;
        // The CRC_32 is not checked: GB28181 devices are known to get it wrong, and a bad map
        // shows up as streams of an unknown type, which are ignored.
        let mut map = [0u8; 256];
        while let Some(e) = entries.get(..4) {
            let info = usize::from(u16::from_be_bytes([e[2], e[3]]));
            map[usize::from(e[1])] = e[0];
            entries = entries
                .get(4 + info..)
                .ok_or(self.malformed(6 + map_at, "elementary_stream_info_length"))?;
        }
        self.psm = map;
        self.psm_seen = true;
        Ok(())
    }
}

/// Where the next `00 00 01 xx` with `xx >= 0xB9` (a pack, a system header, a PSM, a PES, the
/// end code) at or after `from` starts.
fn find_packet_start(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 4 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
            continue;
        }
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 && data[i + 3] >= PROGRAM_END {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// An MPEG-1 PES header (ISO/IEC 11172-1 §2.4.3.3): stuffing, STD buffer, PTS/DTS. Returns
/// PTS, DTS and where the data starts.
fn mpeg1_pes_header(packet: &[u8]) -> Result<(Option<u64>, Option<u64>, usize), Error> {
    let mut pos = 6;
    let mut stuffing = 0;
    while packet.get(pos) == Some(&0xff) {
        pos += 1;
        stuffing += 1;
        if stuffing > 16 {
            return Err(Error::malformed(pos, "MPEG-1 PES stuffing"));
        }
    }
    let byte = |at: usize| {
        packet
            .get(at)
            .copied()
            .ok_or(Error::malformed(at, "MPEG-1 PES header"))
    };
    if byte(pos)? & 0xc0 == 0x40 {
        pos += 2; // STD_buffer_scale and size
    }
    let b = byte(pos)?;
    match b >> 4 {
        0x2 => Ok((Some(read_timestamp(&packet[pos..], 0)?), None, pos + 5)),
        0x3 => Ok((
            Some(read_timestamp(&packet[pos..], 0)?),
            Some(read_timestamp(&packet[pos..], 5)?),
            pos + 10,
        )),
        _ if b == 0x0f => Ok((None, None, pos + 1)),
        _ => Err(Error::malformed(pos, "MPEG-1 PES header")),
    }
}

/// The stream type of a stream no PSM names, from its first payload.
fn guess_stream_type(stream_id: u8, payload: &[u8]) -> u8 {
    if (0xc0..=0xdf).contains(&stream_id) {
        return match payload {
            [0xff, b, ..] if b & 0xf6 == 0xf0 => crate::es::STREAM_TYPE_AAC,
            _ => crate::es::STREAM_TYPE_MPEG1_AUDIO,
        };
    }
    // The first NAL unit header after a start code.
    let header = (0..payload.len().saturating_sub(4))
        .find(|&i| payload[i..i + 3] == [0, 0, 1])
        .and_then(|i| payload.get(i + 3..i + 5));
    match header {
        Some(&[b0, b1]) if matches!((b0 >> 1) & 0x3f, 32..=35 | 39) && b1 == 0x01 => {
            crate::es::STREAM_TYPE_H265
        }
        _ => crate::es::STREAM_TYPE_H264,
    }
}

#[cfg(test)]
#[path = "ps_tests.rs"]
mod tests;
