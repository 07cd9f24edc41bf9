//! The one error type of the crate, split by whose fault it is (rustls' categories).

/// Everything that can go wrong building a muxer or reading boxes.
///
/// The muxer itself never fails once built: [`Fmp4Muxer::push`](crate::Fmp4Muxer::push) drops
/// what it cannot write (a frame of a track it does not carry) instead of returning an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not parse: a box header ends early or claims an impossible size.
    ///
    /// `offset` counts from the start of the slice given to [`boxes`](crate::boxes).
    #[error("malformed {context} at byte {offset}")]
    Malformed {
        /// Byte offset of the fault.
        offset: usize,
        /// What was being parsed.
        context: &'static str,
    },
    /// Valid input this crate does not implement: no track of the stream can go in an MP4.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// Shorthand for [`Error::Malformed`].
    pub(crate) fn malformed(offset: usize, context: &'static str) -> Self {
        Error::Malformed { offset, context }
    }
}
