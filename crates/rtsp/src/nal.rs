//! What the H.264 (RFC 6184) and H.265 (RFC 7798) payload formats share: splitting an AVCC
//! access unit into NAL units, cutting them into single-NAL or fragmentation-unit payloads under
//! a size limit, and gathering NAL units from RTP packets back into access units with loss
//! detection. The codec modules only know their NAL header layouts.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use crate::rtp::Packet;
use crate::Error;

/// One access unit rebuilt from RTP packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// RTP timestamp shared by the access unit's packets (90 kHz for video).
    pub timestamp: u32,
    /// The access unit is a random access point (an IDR picture for H.264, an IRAP picture for
    /// H.265).
    pub keyframe: bool,
    /// NAL units with 4-byte big-endian length prefixes (AVCC), as [`media::Codec`] documents.
    pub data: Bytes,
}

/// What a video depacketizer hands out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Parameter sets changed in band: the new decoder configuration record (`avcC` or `hvcC`)
    /// for the track's [`media::TrackInfo::config`]. Comes before the access unit that carried
    /// them.
    Config(Bytes),
    /// A complete, intact access unit.
    AccessUnit(AccessUnit),
}

/// Splits an AVCC payload (4-byte lengths) into its NAL units without copying.
pub(crate) fn split_avcc(data: &Bytes) -> Result<Vec<Bytes>, Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len = data
            .get(pos..pos + 4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .ok_or(Error::malformed(pos, "AVCC NAL length"))?;
        let end = pos
            .checked_add(4 + len)
            .filter(|&e| e <= data.len())
            .ok_or(Error::malformed(pos, "AVCC NAL unit"))?;
        if len > 0 {
            out.push(data.slice(pos + 4..end));
        }
        pos = end;
    }
    Ok(out)
}

/// Cuts NAL units into RTP payloads: a NAL unit that fits goes alone (single NAL unit packet),
/// a larger one is fragmented. The two formats differ only in their header sizes and bits,
/// which `fu_headers` supplies.
#[derive(Debug)]
pub(crate) struct Packetizer {
    max_payload: usize,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    /// NAL header length: 1 (H.264) or 2 (H.265).
    header_len: usize,
    /// Builds the FU indicator/payload header and FU header from the NAL header.
    fu_headers: fn(&[u8], bool, bool) -> Vec<u8>,
    queue: VecDeque<Packet>,
}

impl Packetizer {
    pub(crate) fn new(
        max_payload: usize,
        payload_type: u8,
        ssrc: u32,
        first_sequence: u16,
        header_len: usize,
        fu_headers: fn(&[u8], bool, bool) -> Vec<u8>,
    ) -> Self {
        Packetizer {
            // Room for the FU headers and at least one byte of NAL data per fragment.
            max_payload: max_payload.max(header_len + 2),
            payload_type,
            ssrc,
            sequence: first_sequence,
            header_len,
            fu_headers,
            queue: VecDeque::new(),
        }
    }

    pub(crate) fn next_sequence(&self) -> u16 {
        self.sequence
    }

    pub(crate) fn push(&mut self, timestamp: u32, data: &Bytes) -> Result<(), Error> {
        let nals = split_avcc(data)?;
        if nals.iter().any(|n| n.len() < self.header_len) {
            return Err(Error::malformed(0, "NAL unit shorter than its header"));
        }
        let count = nals.len();
        for (i, nal) in nals.into_iter().enumerate() {
            let last_nal = i + 1 == count;
            if nal.len() <= self.max_payload {
                self.emit(timestamp, last_nal, nal);
                continue;
            }
            let (header, body) = nal.split_at(self.header_len);
            let room = self.max_payload - self.header_len - 1;
            let mut chunks = body.chunks(room).peekable();
            let mut first = true;
            while let Some(chunk) = chunks.next() {
                let end = chunks.peek().is_none();
                let mut p = BytesMut::with_capacity(self.header_len + 1 + chunk.len());
                p.put_slice(&(self.fu_headers)(header, first, end));
                p.put_slice(chunk);
                self.emit(timestamp, last_nal && end, p.freeze());
                first = false;
            }
        }
        Ok(())
    }

    fn emit(&mut self, timestamp: u32, marker: bool, payload: Bytes) {
        self.queue.push_back(Packet {
            marker,
            payload_type: self.payload_type,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            payload,
        });
        self.sequence = self.sequence.wrapping_add(1);
    }

    pub(crate) fn pull(&mut self) -> Option<Packet> {
        self.queue.pop_front()
    }
}

/// Gathers NAL units into access units, detecting loss by sequence number. An access unit with
/// a gap, a broken fragment or an oversize is dropped whole; the next one starts clean.
#[derive(Debug)]
pub(crate) struct Assembler {
    max_access_unit: usize,
    is_keyframe: fn(&[u8]) -> bool,
    last_sequence: Option<u16>,
    timestamp: Option<u32>,
    nals: Vec<Bytes>,
    size: usize,
    broken: bool,
    fragment: Option<BytesMut>,
    events: VecDeque<Event>,
}

impl Assembler {
    pub(crate) fn new(max_access_unit: usize, is_keyframe: fn(&[u8]) -> bool) -> Self {
        Assembler {
            max_access_unit,
            is_keyframe,
            last_sequence: None,
            timestamp: None,
            nals: Vec::new(),
            size: 0,
            broken: false,
            fragment: None,
            events: VecDeque::new(),
        }
    }

    /// Starts a packet. Returns `false` for a duplicate or late (reordered) packet, which the
    /// caller ignores: its access unit has already been given up or finished.
    pub(crate) fn begin(&mut self, packet: &Packet) -> bool {
        let lost = match self.last_sequence {
            Some(last) => {
                let delta = packet.sequence.wrapping_sub(last) as i16;
                if delta <= 0 {
                    tracing::trace!(sequence = packet.sequence, "late or duplicate RTP packet");
                    return false;
                }
                delta != 1
            }
            None => false,
        };
        self.last_sequence = Some(packet.sequence);
        if lost {
            // The missing packets belong to the unfinished access unit or to this one; neither
            // can be trusted.
            tracing::debug!(sequence = packet.sequence, "RTP loss; dropping access unit");
            self.broken = true;
            self.fragment = None;
        }
        if self.timestamp.is_some_and(|t| t != packet.timestamp) {
            // A new timestamp starts a new access unit even without a marker (some senders
            // never set it).
            self.finish();
        }
        self.timestamp = Some(packet.timestamp);
        self.broken |= lost;
        true
    }

    /// A complete NAL unit of the current access unit.
    pub(crate) fn nal(&mut self, nal: Bytes) {
        if self.fragment.is_some() {
            // A fragmented NAL unit never ended.
            self.broken = true;
            self.fragment = None;
        }
        self.add(nal);
    }

    fn add(&mut self, nal: Bytes) {
        if nal.is_empty() {
            return;
        }
        self.size += 4 + nal.len();
        if self.size > self.max_access_unit {
            self.broken = true;
        }
        if !self.broken {
            self.nals.push(nal);
        }
    }

    /// A fragment of a NAL unit; `header` is the rebuilt NAL header on the first fragment.
    /// Returns the NAL unit when `end` completes it.
    pub(crate) fn fragment(
        &mut self,
        header: &[u8],
        start: bool,
        end: bool,
        data: &[u8],
    ) -> Option<Bytes> {
        if start {
            if self.fragment.is_some() {
                self.broken = true;
            }
            let mut b = BytesMut::with_capacity(header.len() + data.len());
            b.put_slice(header);
            self.fragment = Some(b);
        }
        let Some(buf) = self.fragment.as_mut() else {
            // A middle or end fragment whose start was lost.
            self.broken = true;
            return None;
        };
        if buf.len() + data.len() > self.max_access_unit {
            self.broken = true;
            self.fragment = None;
            return None;
        }
        buf.put_slice(data);
        if !end {
            return None;
        }
        let nal = self.fragment.take()?.freeze();
        self.add(nal.clone());
        Some(nal)
    }

    /// Marks the current access unit as unusable.
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Ends a packet; the marker bit ends the access unit.
    pub(crate) fn end(&mut self, marker: bool) {
        if marker {
            self.finish();
            self.timestamp = None;
        }
    }

    /// Queues an event (a configuration change) ahead of the access unit in progress.
    pub(crate) fn event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn finish(&mut self) {
        let nals = std::mem::take(&mut self.nals);
        let intact = !self.broken && self.fragment.is_none() && !nals.is_empty();
        self.broken = false;
        self.fragment = None;
        self.size = 0;
        let Some(timestamp) = self.timestamp.filter(|_| intact) else {
            return;
        };
        let keyframe = nals.iter().any(|n| (self.is_keyframe)(n));
        let mut data = BytesMut::with_capacity(nals.iter().map(|n| 4 + n.len()).sum());
        for nal in &nals {
            data.put_u32(nal.len() as u32);
            data.put_slice(nal);
        }
        self.events.push_back(Event::AccessUnit(AccessUnit {
            timestamp,
            keyframe,
            data: data.freeze(),
        }));
    }

    pub(crate) fn pull(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_avcc_checks_lengths() {
        let data = Bytes::from_static(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x41]);
        let nals = split_avcc(&data).expect("valid");
        assert_eq!(
            nals,
            vec![Bytes::from_static(&[0x65, 1]), Bytes::from_static(&[0x41])]
        );
        assert!(split_avcc(&Bytes::from_static(&[0, 0, 0, 5, 1])).is_err());
        assert!(split_avcc(&Bytes::from_static(&[0, 0])).is_err());
        assert!(split_avcc(&Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1])).is_err());
    }
}
