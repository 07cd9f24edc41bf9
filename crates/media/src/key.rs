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
    pub fn with_vhost(
        vhost: impl Into<String>,
        app: impl Into<String>,
        stream: impl Into<String>,
    ) -> Self {
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

impl StreamKey {
    /// The key a URL addresses, ZLMediaKit's way: `path` is split into app and stream; the
    /// vhost is `?vhost=` or else the host name (not an IP address, not localhost) when
    /// `enable_vhost`, and [`DEFAULT_VHOST`] otherwise.
    pub fn from_url(
        enable_vhost: bool,
        path: &str,
        query: &str,
        host: Option<&str>,
    ) -> Option<Self> {
        let (app, stream) = Self::split_path(path)?;
        let vhost = if enable_vhost {
            query_param(query, "vhost")
                .map(str::to_owned)
                .or_else(|| host.and_then(vhost_from_host))
                .unwrap_or_else(|| DEFAULT_VHOST.to_owned())
        } else {
            DEFAULT_VHOST.to_owned()
        };
        Some(StreamKey::with_vhost(vhost, app, stream))
    }
}

/// The host's name, unless it is an IP address or localhost (ZLMediaKit's rule).
fn vhost_from_host(host: &str) -> Option<String> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty()
        || bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<std::net::IpAddr>().is_ok()
    {
        return None;
    }
    Some(bare.to_owned())
}

/// The value of `name` in a URL query string (`a=1&b=2`); `None` when absent or empty.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
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

    #[test]
    fn vhost_only_when_enabled() {
        let k =
            StreamKey::from_url(true, "/live/s", "vhost=v1&x=1", Some("example.com")).expect("key");
        assert_eq!(k.vhost, "v1");
        let k = StreamKey::from_url(true, "/live/s", "", Some("example.com:8080")).expect("key");
        assert_eq!(k.vhost, "example.com");
        let k = StreamKey::from_url(true, "/live/s", "", Some("127.0.0.1:8080")).expect("key");
        assert_eq!(k.vhost, DEFAULT_VHOST);
        let k =
            StreamKey::from_url(false, "/live/a/b", "vhost=v1", Some("example.com")).expect("key");
        assert_eq!(k.vhost, DEFAULT_VHOST);
        assert_eq!(k.stream, "a/b");
        assert!(StreamKey::from_url(false, "/live", "", None).is_none());
    }
}
