//! The one error type of the crate, split by whose fault it is (rustls' categories).

/// Everything that can go wrong while parsing or driving RTMP.
///
/// A [`server::Session`](crate::server::Session) or [`client::Session`](crate::client::Session)
/// that returned an error is dead: the driver should log it and close the socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not parse: they end early or hold an impossible value.
    ///
    /// `offset` counts from the start of whatever was being parsed; for the chunk stream it is
    /// the byte offset in the connection after the handshake, so it leads to the packet in
    /// Wireshark.
    #[error("malformed {context} at byte {offset}")]
    Malformed {
        /// Byte offset of the fault.
        offset: usize,
        /// What was being parsed.
        context: &'static str,
    },
    /// The bytes parse, but the peer broke the protocol's rules (a message that cannot come
    /// now, a header that refers to state that does not exist).
    #[error("protocol violation at byte {offset}: {context}")]
    ProtocolViolation {
        /// Byte offset in the connection (after the handshake) where it was detected.
        offset: usize,
        /// What rule was broken.
        context: &'static str,
    },
    /// Valid RTMP or FLV that this crate does not implement (RTMPE, AMF3 values, AV1, …).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The peer asked for more than the configured limits allow.
    #[error("limit exceeded: {what} is {value}, limit {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The value the peer asked for.
        value: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The session already failed; it accepts no more input.
    #[error("session closed after an earlier error")]
    Closed,
}

impl Error {
    /// Shorthand for [`Error::Malformed`].
    pub(crate) fn malformed(offset: usize, context: &'static str) -> Self {
        Error::Malformed { offset, context }
    }

    /// Shorthand for [`Error::LimitExceeded`].
    pub(crate) fn limit(what: &'static str, value: impl Into<u64>, limit: impl Into<u64>) -> Self {
        Error::LimitExceeded {
            what,
            value: value.into(),
            limit: limit.into(),
        }
    }
}
