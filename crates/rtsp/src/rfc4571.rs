//! RTP over a TCP connection (RFC 4571 §2): each packet is preceded by its length as a
//! big-endian 16-bit number. GB28181 devices in TCP mode (passive or active) send RTP so.
//!
//! A transform: [`Deframer::push`] the bytes read from the connection, then
//! [`Deframer::pull`] until `None`. Partial input is kept for the next push; a packet cut at
//! any offset comes out whole.
//!
//! ```text
//!  socket bytes ──push──▶ Deframer ──pull──▶ Ok(packet) | Err(bad length) ─▶ Packet::parse
//! ```

use bytes::{Buf, Bytes, BytesMut};

use crate::Error;

/// Writes `packet` with its RFC 4571 length prefix; an error if it is longer than 65 535 bytes.
pub fn write(packet: &[u8], out: &mut BytesMut) -> Result<(), Error> {
    let len = u16::try_from(packet.len())
        .map_err(|_| Error::limit("RFC 4571 packet length", packet.len(), 0xffff))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    Ok(())
}

/// Cuts a TCP byte stream into RTP packets; see the [module docs](self).
#[derive(Debug)]
pub struct Deframer {
    buf: BytesMut,
    /// Bytes read so far, for error offsets.
    offset: usize,
    /// Packets shorter than this are refused (an RTP header is 12 bytes).
    min_len: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer::new()
    }
}

/// The most bytes a [`Deframer`] holds: one whole packet of the largest length plus a prefix.
pub const MAX_BUFFERED: usize = 2 + u16::MAX as usize;

impl Deframer {
    /// An empty deframer.
    pub fn new() -> Self {
        Deframer {
            buf: BytesMut::new(),
            offset: 0,
            min_len: crate::rtp::HEADER_LEN,
        }
    }

    /// How many more bytes the deframer takes before it must be drained with
    /// [`Deframer::pull`]: never more than [`MAX_BUFFERED`] in all.
    pub fn room(&self) -> usize {
        MAX_BUFFERED.saturating_sub(self.buf.len())
    }

    /// Appends bytes read from the connection. Bytes beyond [`Deframer::room`] are an error
    /// (the caller reads at most `room()` bytes at a time, so this is a bug in the caller or
    /// a [`Deframer::pull`] skipped).
    pub fn push(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.len() > self.room() {
            return Err(Error::limit(
                "RFC 4571 buffered bytes",
                self.buf.len() + data.len(),
                MAX_BUFFERED,
            ));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next whole packet, `None` when more bytes are needed. A length shorter than an RTP
    /// header is an error ([`Error::Malformed`] at its offset): the stream has lost its
    /// framing and the connection must be closed.
    pub fn pull(&mut self) -> Option<Result<Bytes, Error>> {
        let head = self.buf.get(..2)?;
        let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
        if len < self.min_len {
            let at = self.offset;
            // Drop everything: there is no way to find the next packet boundary.
            self.offset += self.buf.len();
            self.buf.clear();
            return Some(Err(Error::malformed(
                at,
                "RFC 4571 length shorter than an RTP header",
            )));
        }
        if self.buf.len() < 2 + len {
            return None;
        }
        self.buf.advance(2);
        self.offset += 2 + len;
        Some(Ok(self.buf.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(n: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0x80, 96, 0, n, 0, 0, 0, 0, 0, 0, 0, 1];
        p.resize(len, n);
        p
    }

    #[test]
    fn packets_split_at_every_offset_come_out_whole() {
        let packets = [packet(1, 12), packet(2, 1400), packet(3, 300)];
        let mut stream = BytesMut::new();
        for p in &packets {
            write(p, &mut stream).expect("fits");
        }
        for cut in 0..=stream.len() {
            let mut d = Deframer::new();
            let mut out = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                d.push(part).expect("room");
                while let Some(p) = d.pull() {
                    out.push(p.expect("valid").to_vec());
                }
            }
            assert_eq!(out, packets.to_vec(), "cut at {cut}");
        }
    }

    #[test]
    fn a_short_length_is_an_error_and_the_buffer_is_dropped() {
        let mut d = Deframer::new();
        d.push(&[0, 4, 1, 2, 3, 4]).expect("room");
        assert!(matches!(
            d.pull(),
            Some(Err(Error::Malformed { offset: 0, .. }))
        ));
        assert!(d.pull().is_none());
        assert_eq!(d.room(), MAX_BUFFERED);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut d = Deframer::new();
        d.push(&[0xff, 0xff]).expect("room");
        d.push(&vec![0; u16::MAX as usize])
            .expect("exactly one packet fits");
        assert!(d.push(&[0]).is_err());
        assert_eq!(
            d.pull().map(|p| p.map(|p| p.len()).ok()),
            Some(Some(0xffff))
        );
        assert_eq!(d.room(), MAX_BUFFERED);
        assert!(write(&vec![0; 70_000], &mut BytesMut::new()).is_err());
    }
}
