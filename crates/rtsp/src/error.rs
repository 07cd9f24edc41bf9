//! The one error type of the crate, split by whose fault it is (rustls' categories).

/// Everything that can go wrong while parsing RTSP, SDP, RTP or RTCP.
///
/// A [`message::Decoder`](crate::message::Decoder) that returned an error has lost its place in
/// the TCP stream: the [`Session`](crate::session::Session) decoding it queues `400 Bad
/// Request` and ends, and the driver writes that and closes the connection. Depacketizers never return errors for
/// loss or corruption; they drop the broken access unit and carry on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not parse: they end early or hold an impossible value.
    ///
    /// `offset` counts from the start of whatever was being parsed; for the
    /// [`message::Decoder`](crate::message::Decoder) it is the byte offset in the TCP stream, so
    /// it leads to the packet in Wireshark.
    #[error("malformed {context} at byte {offset}")]
    Malformed {
        /// Byte offset of the fault.
        offset: usize,
        /// What was being parsed.
        context: &'static str,
    },
    /// The bytes parse, but the peer broke the protocol's rules (a response where a request
    /// must come, a header that contradicts another).
    #[error("protocol violation: {context}")]
    ProtocolViolation {
        /// What rule was broken.
        context: &'static str,
    },
    /// Valid input this crate does not implement (a codec, a transport, an auth scheme).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The peer sent more than the configured limits allow.
    #[error("limit exceeded: {what} is {value}, limit {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The value the peer reached.
        value: u64,
        /// The configured limit.
        limit: u64,
    },
}

impl Error {
    /// Shorthand for [`Error::Malformed`].
    pub(crate) fn malformed(offset: usize, context: &'static str) -> Self {
        Error::Malformed { offset, context }
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
