//! ferrostream's HTTP side: axum routes for live playback over HTTP.
//!
//! - `GET /{app}/{stream}.live.flv`: HTTP-FLV, an endless chunked FLV body.
//! - The same path with a WebSocket upgrade: WS-FLV (what mpegts.js in a browser reads), one
//!   binary message per FLV tag.
//!
//! Each live response is a [`registry::Subscription`] turned into bytes: the stream's complete
//! FLV tags are made once per stream by the registry and handed to every viewer as shared
//! [`bytes::Bytes`]; the response pulls the next tag only when the socket took the last one, so
//! a slow viewer falls behind in the registry's bounded ring (and skips to a keyframe) instead of
//! growing a buffer here.
//!
//! The crate owns no listener: the server binds the socket and serves [`router`] on it with
//! `into_make_service_with_connect_info::<SocketAddr>()`.
//!
//! Layout:
//! - `lib.rs`: [`AppState`], [`ApiOptions`], [`router`], stream addressing.
//! - `flv.rs`: HTTP-FLV and WS-FLV responses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod flv;

use axum::Router;
use media::{StreamKey, DEFAULT_VHOST};
use registry::Registry;
use std::net::SocketAddr;
use std::time::Duration;

/// Settings the HTTP routes need.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `general.enableVhost`: take the vhost from the Host header or `?vhost=`.
    /// Default: false.
    pub enable_vhost: bool,
    /// `general.maxStreamWaitMS`: how long a viewer waits for a stream that is not live yet.
    /// Default: 15 s.
    pub max_stream_wait: Duration,
    /// The address the HTTP listener is bound to (reported as the session's local address).
    pub local_addr: SocketAddr,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            enable_vhost: false,
            max_stream_wait: Duration::from_millis(15_000),
            local_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }
}

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    /// The live streams.
    pub registry: Registry,
    /// Settings.
    pub options: ApiOptions,
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    // Stream paths may hold any number of slashes (`/app/a/b.live.flv`), so live paths are
    // matched by suffix in a fallback rather than by route patterns.
    Router::new().fallback(flv::live).with_state(state)
}

/// The stream a request addresses: the path without its suffix, split ZLMediaKit's way, on the
/// vhost from `?vhost=` or the Host header when vhosts are on.
pub(crate) fn stream_key(
    options: &ApiOptions,
    path: &str,
    query: &str,
    host: Option<&str>,
) -> Option<StreamKey> {
    let (app, stream) = StreamKey::split_path(path)?;
    let vhost = if options.enable_vhost {
        query_param(query, "vhost")
            .map(str::to_owned)
            .or_else(|| host.and_then(vhost_from_host))
            .unwrap_or_else(|| DEFAULT_VHOST.to_owned())
    } else {
        DEFAULT_VHOST.to_owned()
    };
    Some(StreamKey::with_vhost(vhost, app, stream))
}

/// The Host header's name, unless it is an IP address or localhost (ZLMediaKit's rule).
fn vhost_from_host(host: &str) -> Option<String> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() || bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    Some(bare.to_owned())
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_paths() {
        let opts = ApiOptions::default();
        let key = stream_key(&opts, "/live/a/b", "", None).expect("key");
        assert_eq!((key.app.as_str(), key.stream.as_str()), ("live", "a/b"));
        assert_eq!(key.vhost, DEFAULT_VHOST);
        assert!(stream_key(&opts, "/live", "", None).is_none());
    }

    #[test]
    fn vhost_only_when_enabled() {
        let on = ApiOptions {
            enable_vhost: true,
            ..ApiOptions::default()
        };
        let k = stream_key(&on, "/live/s", "vhost=v1&x=1", Some("example.com")).expect("key");
        assert_eq!(k.vhost, "v1");
        let k = stream_key(&on, "/live/s", "", Some("example.com:8080")).expect("key");
        assert_eq!(k.vhost, "example.com");
        let k = stream_key(&on, "/live/s", "", Some("127.0.0.1:8080")).expect("key");
        assert_eq!(k.vhost, DEFAULT_VHOST);
        let off = ApiOptions::default();
        let k = stream_key(&off, "/live/s", "vhost=v1", Some("example.com")).expect("key");
        assert_eq!(k.vhost, DEFAULT_VHOST);
    }
}
