//! The one error type of the crate, split by whose fault it is (rustls' categories).
//!
//! The muxer and the playlist never fail: frames they cannot carry are skipped and logged at
//! `debug`. Only the TS [`reader`](crate::reader), which parses bytes from outside, returns
//! errors.

/// Everything that can go wrong while reading MPEG-TS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not parse: they end early or hold an impossible value.
    ///
    /// `offset` counts from the start of whatever was being parsed (for
    /// [`reader::Demuxer`](crate::reader::Demuxer), the byte offset in the stream).
    #[error("malformed {context} at byte {offset}")]
    Malformed {
        /// Byte offset of the fault.
        offset: usize,
        /// What was being parsed.
        context: &'static str,
    },
    /// The bytes parse, but break a rule of ISO/IEC 13818-1 (a continuity counter that jumps,
    /// a CRC that does not match).
    #[error("protocol violation: {context} on PID {pid:#x}")]
    ProtocolViolation {
        /// The PID of the offending packet.
        pid: u16,
        /// What rule was broken.
        context: &'static str,
    },
    /// The input would need more memory than the reader allows (a PES that never ends).
    #[error("limit exceeded: {what} is {value}, limit {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The value reached.
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
}
