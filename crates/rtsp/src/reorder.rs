//! A small, bounded reordering of RTP packets by sequence number (RFC 3550 §5.1), for RTP that
//! arrives over UDP without RTSP (the GB28181 RTP server): packets come out in sequence order,
//! duplicates and packets older than the ones released are dropped, and a gap is waited for at
//! most [`Reorder::new`]'s `window` packets.
//!
//! The first packet is held until half a window more came, so that packets sent before it but
//! overtaken by it are not lost.
//!
//! A transform: [`Reorder::push`] a packet, then [`Reorder::pull`] until `None`.

use std::collections::VecDeque;

use crate::rtp::Packet;

/// A jump of more than this many windows is a new sequence (a device that restarted), not a
/// gap to wait for.
const RESET_WINDOWS: usize = 8;

/// Puts packets back in sequence order; see the [module docs](self).
#[derive(Debug)]
pub struct Reorder {
    /// Sequence number of `slots[0]`; `None` before the first packet.
    expected: Option<u16>,
    /// Packets `expected`, `expected + 1`, … still held (the front is always `None`).
    slots: VecDeque<Option<Packet>>,
    window: usize,
    /// Packets in order, each with whether packets were lost just before it.
    ready: VecDeque<(Packet, bool)>,
    /// A loss was given up on since the last packet went to `ready`.
    gap: bool,
    dropped: u64,
    lost: u64,
    /// A packet went out: empty slots before that were room for early packets, not losses.
    released: bool,
}

impl Reorder {
    /// Holds at most `window` packets (at least 1) while it waits for a missing one.
    pub fn new(window: usize) -> Self {
        Reorder {
            expected: None,
            slots: VecDeque::new(),
            window: window.max(1),
            ready: VecDeque::new(),
            gap: false,
            dropped: 0,
            lost: 0,
            released: false,
        }
    }

    /// One packet, as received. Then call [`Reorder::pull`] until `None`.
    pub fn push(&mut self, packet: Packet) {
        let back = (self.window / 2) as u16;
        let expected = *self
            .expected
            .get_or_insert(packet.sequence.wrapping_sub(back));
        let ahead = packet.sequence.wrapping_sub(expected);
        if ahead as i16 >= 0 && usize::from(ahead) > self.window * RESET_WINDOWS {
            // A new sequence: what is held goes out, then this one starts afresh.
            self.release_all();
            self.expected = Some(packet.sequence);
        } else if (ahead as i16) < 0 {
            if (ahead as i16).unsigned_abs() as usize > self.window * RESET_WINDOWS {
                self.release_all();
                self.expected = Some(packet.sequence);
            } else {
                // Late (its place was given up) or a duplicate.
                self.dropped += 1;
                return;
            }
        }
        let expected = self.expected.unwrap_or(packet.sequence);
        let mut at = usize::from(packet.sequence.wrapping_sub(expected));
        // Past the window: give up on the oldest missing packets until it fits.
        while at >= self.window {
            self.advance();
            at -= 1;
        }
        while self.slots.len() <= at {
            self.slots.push_back(None);
        }
        match self.slots.get_mut(at) {
            Some(slot @ None) => *slot = Some(packet),
            _ => self.dropped += 1,
        }
        while matches!(self.slots.front(), Some(Some(_))) {
            self.advance();
        }
    }

    /// The next packet in order, and whether packets were lost just before it (a reader of a
    /// byte stream cut into packets, such as MPEG-PS, must resynchronise there); `None` when
    /// the rest waits for a missing packet (or there is nothing).
    pub fn pull(&mut self) -> Option<(Packet, bool)> {
        self.ready.pop_front()
    }

    /// Packets dropped as duplicates or too late.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Sequence numbers given up on (never arrived within the window).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Releases the front slot (a packet, or a loss) and moves `expected` on.
    fn advance(&mut self) {
        match self.slots.pop_front() {
            Some(Some(p)) => {
                self.released = true;
                self.ready.push_back((p, std::mem::take(&mut self.gap)));
            }
            _ if self.released => {
                self.lost += 1;
                self.gap = true;
            }
            _ => {}
        }
        self.expected = self.expected.map(|e| e.wrapping_add(1));
    }

    /// Releases everything held: what follows is a new sequence, so there is a gap before it.
    fn release_all(&mut self) {
        while let Some(slot) = self.slots.pop_front() {
            if let Some(p) = slot {
                self.released = true;
                self.ready.push_back((p, std::mem::take(&mut self.gap)));
            }
        }
        self.gap = self.released;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(sequence: u16) -> Packet {
        Packet {
            marker: false,
            payload_type: 96,
            sequence,
            timestamp: 0,
            ssrc: 1,
            payload: Bytes::new(),
        }
    }

    fn run(r: &mut Reorder, seqs: &[u16]) -> Vec<u16> {
        let mut out = Vec::new();
        for &s in seqs {
            r.push(p(s));
            out.extend(std::iter::from_fn(|| r.pull()).map(|(p, _)| p.sequence));
        }
        out
    }

    #[test]
    fn swapped_packets_come_out_in_order_across_the_wrap() {
        let mut r = Reorder::new(4);
        // The first ones wait for half a window (room for packets sent before them).
        assert_eq!(run(&mut r, &[65534, 0, 65535]), Vec::<u16>::new());
        assert_eq!(
            run(&mut r, &[1, 3, 2, 4]),
            vec![65534, 65535, 0, 1, 2, 3, 4]
        );
        assert_eq!((r.lost(), r.dropped()), (0, 0));
    }

    #[test]
    fn a_packet_overtaken_by_the_first_is_kept() {
        let mut r = Reorder::new(4);
        assert_eq!(run(&mut r, &[11, 10, 12, 13, 14]), vec![10, 11, 12, 13, 14]);
        assert_eq!((r.lost(), r.dropped()), (0, 0));
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let mut r = Reorder::new(2);
        assert_eq!(run(&mut r, &[10, 10, 12, 13, 14, 11]), vec![10, 12, 13, 14]);
        assert_eq!(r.dropped(), 2);
        assert_eq!(r.lost(), 1);
    }

    #[test]
    fn a_gap_is_waited_for_at_most_the_window() {
        let mut r = Reorder::new(4);
        assert_eq!(run(&mut r, &[1, 2, 3, 5]), vec![1, 2, 3]);
        // 4 is waited for while 5, 6 and 7 come…
        assert_eq!(run(&mut r, &[6, 7]), Vec::<u16>::new());
        // …and given up on with the next.
        assert_eq!(run(&mut r, &[8, 9]), vec![5, 6, 7, 8, 9]);
        assert_eq!(r.lost(), 1);
    }

    #[test]
    fn the_packet_after_a_loss_says_so() {
        let mut r = Reorder::new(2);
        let mut marked = Vec::new();
        for s in [1, 2, 4, 5, 6] {
            r.push(p(s));
            marked.extend(std::iter::from_fn(|| r.pull()).map(|(p, gap)| (p.sequence, gap)));
        }
        assert_eq!(
            marked,
            vec![(1, false), (2, false), (4, true), (5, false), (6, false)]
        );
    }

    #[test]
    fn a_restarted_sequence_starts_afresh() {
        let mut r = Reorder::new(4);
        assert_eq!(run(&mut r, &[100, 101, 102]), Vec::<u16>::new());
        assert_eq!(
            run(&mut r, &[30000, 30001]),
            vec![100, 101, 102, 30000, 30001]
        );
    }
}
