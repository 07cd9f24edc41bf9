//! The address of a live stream, validated where it is made.
//!
//! Names arrive from peers (RTMP `connect`/`publish`, RTSP Request-URIs, HTTP paths, `?vhost=`,
//! a hook's `stream_replace`) and end up in log lines, hook bodies and file paths (recordings,
//! HLS on disk). A [`StreamKey`] can only be made through a constructor that checks every part,
//! so holding one means each part is a plain relative name: no empty, `.` or `..` segment, no
//! NUL, control character or backslash, no leading slash, at most [`MAX_PART_LEN`] bytes.

use std::fmt;
use std::path::PathBuf;

/// The vhost used when `general.enableVhost=0` (ZLMediaKit's name for it).
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// The longest vhost, app or stream, in bytes.
pub const MAX_PART_LEN: usize = 256;

/// `{vhost, app, stream}`: the address of a live stream, as ZLMediaKit forms it.
///
/// The first path segment of a URL is `app`; everything after it, slashes included, is `stream`.
/// The fields are private so that every key went through [`StreamKey::with_vhost`]'s checks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    vhost: String,
    app: String,
    stream: String,
}

/// Which part of a key a [`KeyError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The virtual host.
    Vhost,
    /// The application.
    App,
    /// The stream id.
    Stream,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Vhost => "vhost",
            Part::App => "app",
            Part::Stream => "stream",
        })
    }
}

/// Why a name is not a valid stream address. The offending name is kept and shown escaped
/// (`{:?}`), so the message itself cannot forge a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The URL has no `app/stream` path.
    #[error("no app/stream in the path {0:?}")]
    NoPath(String),
    /// A part, or a segment of the stream, is empty (`live//a`, a trailing slash).
    #[error("empty {part} segment in {name:?}")]
    Empty {
        /// The part.
        part: Part,
        /// The name as received.
        name: String,
    },
    /// A segment is `.` or `..`.
    #[error("{part} {name:?} has a `.` or `..` segment")]
    DotSegment {
        /// The part.
        part: Part,
        /// The name as received.
        name: String,
    },
    /// A NUL, control character, backslash (or, outside the stream, a slash).
    #[error("{part} {name:?} holds the forbidden character {found:?}")]
    BadChar {
        /// The part.
        part: Part,
        /// The name as received.
        name: String,
        /// The first forbidden character.
        found: char,
    },
    /// Longer than [`MAX_PART_LEN`] bytes.
    #[error("{part} is {len} bytes long, at most {MAX_PART_LEN} are allowed")]
    TooLong {
        /// The part.
        part: Part,
        /// Its length in bytes.
        len: usize,
    },
}

/// Checks one part: `slashes` allows `/`-separated segments (the stream id).
fn check(part: Part, name: &str, slashes: bool) -> Result<(), KeyError> {
    if name.len() > MAX_PART_LEN {
        return Err(KeyError::TooLong {
            part,
            len: name.len(),
        });
    }
    if let Some(found) = name
        .chars()
        .find(|&c| c.is_control() || c == '\\' || (c == '/' && !slashes))
    {
        return Err(KeyError::BadChar {
            part,
            name: name.to_owned(),
            found,
        });
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return Err(KeyError::Empty {
                part,
                name: name.to_owned(),
            });
        }
        if segment == "." || segment == ".." {
            return Err(KeyError::DotSegment {
                part,
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}

impl StreamKey {
    /// A key on the default vhost.
    pub fn new(app: impl Into<String>, stream: impl Into<String>) -> Result<Self, KeyError> {
        Self::with_vhost(DEFAULT_VHOST, app, stream)
    }

    /// A key on `vhost`, once every part passed the checks of this module.
    pub fn with_vhost(
        vhost: impl Into<String>,
        app: impl Into<String>,
        stream: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let (vhost, app, stream) = (vhost.into(), app.into(), stream.into());
        check(Part::Vhost, &vhost, false)?;
        check(Part::App, &app, false)?;
        check(Part::Stream, &stream, true)?;
        Ok(StreamKey { vhost, app, stream })
    }

    /// The same vhost and app with another stream id (an on_publish `stream_replace`).
    pub fn with_stream(&self, stream: impl Into<String>) -> Result<Self, KeyError> {
        Self::with_vhost(self.vhost.clone(), self.app.clone(), stream)
    }

    /// The virtual host.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// The application, the first path segment.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The stream id, the rest of the path (may hold slashes).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// `[{vhost}/]{app}/{stream}` as a relative path: only plain segments (the checks above), so
    /// joined to a root it stays under it.
    pub fn relative_dir(&self, with_vhost: bool) -> PathBuf {
        let mut dir = PathBuf::new();
        if with_vhost {
            dir.push(&self.vhost);
        }
        dir.push(&self.app);
        for segment in self.stream.split('/') {
            dir.push(segment);
        }
        dir
    }

    /// Splits a URL path (`/app/stream/with/slashes`) into app and stream. `None` when either is
    /// empty.
    pub fn split_path(path: &str) -> Option<(&str, &str)> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let (app, stream) = path.split_once('/')?;
        if app.is_empty() || stream.is_empty() {
            return None;
        }
        Some((app, stream))
    }

    /// The key a URL addresses, ZLMediaKit's way: `path` is split into app and stream; the
    /// vhost is `?vhost=` or else the host name (not an IP address, not localhost) when
    /// `enable_vhost`, and [`DEFAULT_VHOST`] otherwise.
    pub fn from_url(
        enable_vhost: bool,
        path: &str,
        query: &str,
        host: Option<&str>,
    ) -> Result<Self, KeyError> {
        let (app, stream) =
            Self::split_path(path).ok_or_else(|| KeyError::NoPath(path.to_owned()))?;
        let vhost = if enable_vhost {
            query_param(query, "vhost")
                .map(str::to_owned)
                .or_else(|| host.and_then(vhost_from_host))
                .unwrap_or_else(|| DEFAULT_VHOST.to_owned())
        } else {
            DEFAULT_VHOST.to_owned()
        };
        StreamKey::with_vhost(vhost, app, stream)
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
        // Every part is free of control characters (checked at construction): safe in a log line.
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
        assert_eq!(k.vhost(), "v1");
        let k = StreamKey::from_url(true, "/live/s", "", Some("example.com:8080")).expect("key");
        assert_eq!(k.vhost(), "example.com");
        let k = StreamKey::from_url(true, "/live/s", "", Some("127.0.0.1:8080")).expect("key");
        assert_eq!(k.vhost(), DEFAULT_VHOST);
        let k =
            StreamKey::from_url(false, "/live/a/b", "vhost=v1", Some("example.com")).expect("key");
        assert_eq!(k.vhost(), DEFAULT_VHOST);
        assert_eq!(k.stream(), "a/b");
        assert_eq!(
            StreamKey::from_url(false, "/live", "", None),
            Err(KeyError::NoPath("/live".into()))
        );
    }

    #[test]
    fn plain_names_are_keys() {
        for (app, stream) in [
            ("live", "obs"),
            ("live", "a/b/c"),
            ("live", "cam-1_hd.main"),
            ("my app", "名前"),
            ("live", "..x"),
            ("live", "x.."),
            ("live", "%2e%2e"),
        ] {
            let key = StreamKey::new(app, stream).expect(stream);
            assert_eq!((key.app(), key.stream()), (app, stream));
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let long = "a".repeat(MAX_PART_LEN + 1);
        let refused = [
            ("live", ""),
            ("", "s"),
            ("live", ".."),
            ("live", "."),
            ("live", "../../etc/x"),
            ("live", "a/../../x"),
            ("live", "a/./b"),
            ("live", "/abs"),
            ("live", "a//b"),
            ("live", "a/"),
            ("..", "s"),
            ("../..", "s"),
            ("a/b", "s"),
            ("live", "a\\..\\b"),
            ("live", "nul\0x"),
            ("live", "line\nforged"),
            ("live", "esc\x1b[31m"),
            ("live", "c1\u{85}"),
            ("live", long.as_str()),
        ];
        for (app, stream) in refused {
            assert!(
                StreamKey::new(app, stream).is_err(),
                "{app:?}/{stream:?} was accepted"
            );
        }
        for vhost in ["", "..", "../..", "a/b", "v\r\n"] {
            assert!(
                StreamKey::with_vhost(vhost, "live", "s").is_err(),
                "{vhost:?}"
            );
        }
        assert_eq!(
            StreamKey::new("live", long.as_str()),
            Err(KeyError::TooLong {
                part: Part::Stream,
                len: MAX_PART_LEN + 1
            })
        );
    }

    #[test]
    fn errors_show_the_name_escaped() {
        let err = StreamKey::new("live", "x\nINFO forged line").expect_err("refused");
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains(r"x\nINFO forged line"), "{text}");
        let err = StreamKey::new("live", "\x1b[2J").expect_err("refused");
        assert!(!err.to_string().contains('\x1b'), "{err}");
    }

    #[test]
    fn the_relative_dir_has_only_plain_segments() {
        let key = StreamKey::with_vhost("v.example", "live", "a/b").expect("key");
        assert_eq!(key.relative_dir(true), PathBuf::from("v.example/live/a/b"));
        assert_eq!(key.relative_dir(false), PathBuf::from("live/a/b"));
        let with = key.with_stream("c").expect("key");
        assert_eq!(with.to_string(), "v.example/live/c");
        assert!(key.with_stream("../c").is_err());
    }

    #[test]
    fn vhosts_from_queries_are_checked() {
        assert!(StreamKey::from_url(true, "/live/s", "vhost=../..", None).is_err());
        assert!(StreamKey::from_url(true, "/live/s", "vhost=a%2F", None).is_ok());
    }
}
