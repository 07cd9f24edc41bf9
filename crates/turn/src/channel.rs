//! ChannelData messages (RFC 8656 §12.4) and telling them apart from STUN: [`classify`] for UDP
//! datagrams (RFC 7983 first-byte ranges) and [`next_frame`], which splits a TCP byte stream
//! into STUN messages and ChannelData messages (RFC 8656 §12.5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Channel Number        |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! /                   Application Data (padded to 4 over TCP)     /
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::attr::pad;
use crate::stun::{Header, HEADER_LEN};
use crate::Error;

/// First usable channel number (RFC 8656 §12).
pub const MIN_CHANNEL: u16 = 0x4000;
/// Last usable channel number: 0x7FFF, RFC 5766 §11's range. RFC 8656 §12 narrows it to
/// 0x4FFF (reserving the rest for DTLS-SRTP demultiplexing, RFC 7983), but coturn's own
/// `turnutils_uclient` (4.6) and other RFC 5766 clients still pick channels up to 0x7FFF. A TURN
/// port carries no DTLS-SRTP, so accepting the old range costs nothing and keeps them working.
pub const MAX_CHANNEL: u16 = 0x7FFF;
/// Size of the ChannelData header.
pub const CHANNEL_HEADER_LEN: usize = 4;

/// True for channel numbers a client may bind, 0x4000–0x7FFF (see [`MAX_CHANNEL`]).
pub fn is_valid_channel(channel: u16) -> bool {
    (MIN_CHANNEL..=MAX_CHANNEL).contains(&channel)
}

/// A ChannelData message, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// Channel number, 0x4000–0x7FFF.
    pub channel: u16,
    /// Application data.
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Decodes a ChannelData message from one UDP datagram. Bytes past the length (padding,
    /// which RFC 8656 §12.5 allows over UDP) are ignored.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, Error> {
        let [c0, c1, l0, l1] = datagram
            .get(..CHANNEL_HEADER_LEN)
            .and_then(|h| <[u8; 4]>::try_from(h).ok())
            .ok_or(Error::malformed(datagram.len(), "ChannelData header"))?;
        let channel = u16::from_be_bytes([c0, c1]);
        if !is_valid_channel(channel) {
            return Err(Error::violation(
                0,
                "ChannelData on a reserved channel number",
            ));
        }
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let data = datagram
            .get(CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + len)
            .ok_or(Error::malformed(2, "ChannelData length"))?;
        Ok(ChannelData { channel, data })
    }

    /// Appends the message to `out`, padded to a multiple of 4 when `padded` (required over
    /// TCP, optional over UDP; RFC 8656 §12.5).
    pub fn encode(&self, padded: bool, out: &mut Vec<u8>) -> Result<(), Error> {
        if !is_valid_channel(self.channel) {
            return Err(Error::violation(
                0,
                "ChannelData on a reserved channel number",
            ));
        }
        let len = u16::try_from(self.data.len())
            .map_err(|_| Error::limit("ChannelData length", self.data.len(), 0xFFFF))?;
        out.extend_from_slice(&self.channel.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.data);
        if padded {
            out.resize(out.len() + pad(self.data.len()), 0);
        }
        Ok(())
    }
}

/// What a datagram on a TURN port holds, by its first byte (RFC 7983 §7, RFC 8656 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 0x00–0x03: a STUN message.
    Stun,
    /// 0x40–0x7F: a ChannelData message (0x50–0x7F are reserved channels, which
    /// [`ChannelData::decode`] rejects).
    ChannelData,
    /// Anything else (DTLS, RTP, ZRTP, empty): drop it.
    Other,
}

/// Classifies a UDP datagram by its first byte.
pub fn classify(datagram: &[u8]) -> Kind {
    match datagram.first() {
        Some(0x00..=0x03) => Kind::Stun,
        Some(0x40..=0x7F) => Kind::ChannelData,
        _ => Kind::Other,
    }
}

/// One message cut from a TCP stream by [`next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole STUN message, header included: hand it to
    /// [`Message::decode`](crate::stun::Message::decode).
    Stun(&'a [u8]),
    /// A ChannelData message (its padding consumed too).
    ChannelData(ChannelData<'a>),
}

/// Cuts the next message off the front of a TCP byte stream (RFC 8656 §12.5). Returns the frame
/// and how many bytes it used, or `None` when `buf` holds only part of it (keep the bytes and
/// call again when more arrive). An error means the stream is not STUN/TURN framing any more:
/// close the connection. Offsets in errors count from the start of `buf`.
pub fn next_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, Error> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match first {
        0x00..=0x3F => {
            let Some(len) = buf.get(2..4) else {
                return Ok(None);
            };
            let total = HEADER_LEN + usize::from(u16::from_be_bytes([len[0], len[1]]));
            if buf.len() < HEADER_LEN {
                // Reject a missing magic cookie as soon as it can be seen.
                if let Some(cookie) = buf.get(4..8) {
                    if cookie != crate::stun::MAGIC_COOKIE.to_be_bytes() {
                        return Err(Error::malformed(4, "STUN magic cookie"));
                    }
                }
                return Ok(None);
            }
            Header::decode(buf)?;
            match buf.get(..total) {
                Some(msg) => Ok(Some((Frame::Stun(msg), total))),
                None => Ok(None),
            }
        }
        0x40..=0x7F => {
            let Some(h) = buf.get(..CHANNEL_HEADER_LEN) else {
                if let Some(c) = buf.get(..2) {
                    if !is_valid_channel(u16::from_be_bytes([c[0], c[1]])) {
                        return Err(Error::violation(
                            0,
                            "ChannelData on a reserved channel number",
                        ));
                    }
                }
                return Ok(None);
            };
            let channel = u16::from_be_bytes([h[0], h[1]]);
            if !is_valid_channel(channel) {
                return Err(Error::violation(
                    0,
                    "ChannelData on a reserved channel number",
                ));
            }
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let total = CHANNEL_HEADER_LEN + len + pad(len);
            if buf.len() < total {
                return Ok(None);
            }
            let data = buf
                .get(CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + len)
                .ok_or(Error::malformed(2, "ChannelData length"))?;
            Ok(Some((
                Frame::ChannelData(ChannelData { channel, data }),
                total,
            )))
        }
        _ => Err(Error::malformed(
            0,
            "TCP frame (neither STUN nor ChannelData)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_first_byte() {
        assert_eq!(classify(&[0x00, 0x01]), Kind::Stun);
        assert_eq!(classify(&[0x40, 0x00]), Kind::ChannelData);
        assert_eq!(classify(&[0x7F, 0xFF]), Kind::ChannelData);
        assert_eq!(classify(&[0x16, 0xFE]), Kind::Other); // DTLS
        assert_eq!(classify(&[0x80, 0x60]), Kind::Other); // RTP
        assert_eq!(classify(&[]), Kind::Other);
    }

    #[test]
    fn channel_data_round_trip_udp_and_tcp() {
        let cd = ChannelData {
            channel: 0x4001,
            data: b"hello",
        };
        let mut udp = Vec::new();
        cd.encode(false, &mut udp).expect("encodes");
        assert_eq!(udp, b"\x40\x01\x00\x05hello");
        assert_eq!(ChannelData::decode(&udp), Ok(cd));
        let mut tcp = Vec::new();
        cd.encode(true, &mut tcp).expect("encodes");
        assert_eq!(tcp.len(), 12);
        assert_eq!(ChannelData::decode(&tcp), Ok(cd));
        assert_eq!(next_frame(&tcp), Ok(Some((Frame::ChannelData(cd), 12))));
        for cut in 0..tcp.len() {
            assert_eq!(next_frame(&tcp[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn reserved_and_invalid_channels_are_errors() {
        for ch in [0x8000u16, 0xBFFF, 0x3FFF, 0xFFFF] {
            let bytes = [ch.to_be_bytes(), [0, 0]].concat();
            assert!(ChannelData::decode(&bytes).is_err(), "{ch:#x}");
            let cd = ChannelData {
                channel: ch,
                data: &[],
            };
            assert!(cd.encode(true, &mut Vec::new()).is_err());
        }
        // RFC 5766's 0x5000–0x7FFF are channels too (see MAX_CHANNEL): a partial frame.
        assert_eq!(next_frame(&[0x50, 0x00]), Ok(None));
        assert!(matches!(next_frame(&[0x80]), Err(Error::Malformed { .. })));
        assert!(matches!(
            next_frame(&[0, 1, 0, 0, 1, 2, 3, 4]),
            Err(Error::Malformed { offset: 4, .. })
        ));
        assert!(matches!(
            ChannelData::decode(&[0x40, 0, 0, 9, 1]),
            Err(Error::Malformed { .. })
        ));
    }
}
