//! Why a pull or push attempt ended.

/// Why one attempt of a proxy (a pull from a source, a push to a server) ended. The manager
/// retries the ones [`ProxyError::retryable`] says may go better next time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The URL cannot be used (scheme, host, path).
    #[error("unusable URL: {0}")]
    BadUrl(String),
    /// A socket failed: connect refused, reset, DNS.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The peer sent nothing for too long, or a step took too long.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The source or server refused (an RTSP/HTTP status, an RTMP `_error`).
    #[error("refused by the peer: {0}")]
    Refused(String),
    /// The peer broke its protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The source ended its stream (EOF, RTMP `NetStream.Play.Stop`, RTSP TEARDOWN, the last
    /// segment of an HLS playlist with `#EXT-X-ENDLIST`).
    #[error("the source ended")]
    Ended,
    /// The stream was closed here (close_stream, kick, on_stream_none_reader): never retried.
    #[error("the stream was closed")]
    Closed,
    /// on_publish refused the stream, or its name is taken: never retried.
    #[error("on_publish refused: {0}")]
    Denied(String),
}

impl ProxyError {
    /// Whether another attempt may succeed (a camera that reboots, a network that drops).
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            ProxyError::Closed | ProxyError::Denied(_) | ProxyError::BadUrl(_)
        )
    }

    /// An IO error while doing `context`.
    pub fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> ProxyError {
        move |source| ProxyError::Io { context, source }
    }
}
