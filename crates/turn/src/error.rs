//! The one error type of the crate, split by whose fault it is (rustls' categories).

/// Everything that can go wrong while decoding or encoding STUN, TURN and ChannelData.
///
/// A decode error on a UDP datagram means "drop the datagram" (RFC 8489 §6.3: malformed
/// messages are discarded silently); on a TCP stream it means "close the connection", because
/// the framing is lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not parse: they end early or hold an impossible value.
    ///
    /// `offset` counts from the first byte of the message (or of the buffer handed to the TCP
    /// framer), so it leads to the byte in Wireshark.
    #[error("malformed {context} at byte {offset}")]
    Malformed {
        /// Byte offset of the fault.
        offset: usize,
        /// What was being parsed.
        context: &'static str,
    },
    /// The bytes parse, but break a rule of the protocol (an attribute after FINGERPRINT, a
    /// ChannelData message on a reserved channel number).
    #[error("protocol violation at byte {offset}: {context}")]
    ProtocolViolation {
        /// Byte offset where it was detected.
        offset: usize,
        /// What rule was broken.
        context: &'static str,
    },
    /// Valid STUN that this crate does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The peer (or the caller, when encoding) went past a limit.
    #[error("limit exceeded: {what} is {value}, limit {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The value met.
        value: u64,
        /// The limit.
        limit: u64,
    },
}

impl Error {
    /// Shorthand for [`Error::Malformed`].
    pub(crate) fn malformed(offset: usize, context: &'static str) -> Self {
        Error::Malformed { offset, context }
    }

    /// Shorthand for [`Error::ProtocolViolation`].
    pub(crate) fn violation(offset: usize, context: &'static str) -> Self {
        Error::ProtocolViolation { offset, context }
    }

    /// Shorthand for [`Error::LimitExceeded`].
    pub(crate) fn limit(what: &'static str, value: usize, limit: usize) -> Self {
        Error::LimitExceeded {
            what,
            value: value as u64,
            limit: limit as u64,
        }
    }
}
