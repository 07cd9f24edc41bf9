//! The address of a live stream.

use std::fmt;

/// The vhost used when `general.enableVhost=0` (ZLMediaKit's name for it).
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// `{vhost, app, stream}`: the address of a live stream, as ZLMediaKit forms it.
///
/// The first path segment of a URL is `app`; everything after it, slashes included, is `stream`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Virtual host; [`DEFAULT_VHOST`] unless vhosts are enabled.
    pub vhost: String,
    /// Application, the first path segment.
    pub app: String,
    /// Stream id, the rest of the path.
    pub stream: String,
}

impl StreamKey {
    /// A key on the default vhost.
    pub fn new(app: impl Into<String>, stream: impl Into<String>) -> Self {
        StreamKey {
            vhost: DEFAULT_VHOST.to_owned(),
            app: app.into(),
            stream: stream.into(),
        }
    }

    /// A key on `vhost`.
    pub fn with_vhost(vhost: impl Into<String>, app: impl Into<String>, stream: impl Into<String>) -> Self {
        StreamKey {
            vhost: vhost.into(),
            app: app.into(),
            stream: stream.into(),
        }
    }

    /// Splits a URL path (`/app/stream/with/slashes`) into app and stream. `None` when either is
    /// empty.
    pub fn split_path(path: &str) -> Option<(&str, &str)> {
        let path = path.trim_start_matches('/');
        let (app, stream) = path.split_once('/')?;
        if app.is_empty() || stream.is_empty() {
            return None;
        }
        Some((app, stream))
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.vhost, self.app, self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_splits_at_first_slash() {
        assert_eq!(StreamKey::split_path("/live/obs"), Some(("live", "obs")));
        assert_eq!(StreamKey::split_path("live/a/b"), Some(("live", "a/b")));
        assert_eq!(StreamKey::split_path("/live"), None);
        assert_eq!(StreamKey::split_path("/live/"), None);
    }
}
