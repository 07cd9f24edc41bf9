//! WebRTC signalling on the HTTP port, with ZLMediaKit's paths (DESIGN.md §1 WebRTC):
//!
//! - `POST /index/api/whep?app=&stream=` (play) and `/index/api/whip?app=&stream=` (publish):
//!   an SDP offer (`application/sdp`) in, `201 Created` with the answer
//!   (`Content-Type: application/sdp`), `Location: /index/api/delete_webrtc?id=…&token=…`
//!   and, when the embedded TURN relay runs, RFC 9725 `Link: <turn:…>; rel="ice-server"`
//!   headers out. Refusals carry no SDP: 400 (no or a malformed offer, a bad stream name), 413
//!   (an offer over [`MAX_OFFER`]), 403 (on_play / on_publish denied), 404 (no such stream),
//!   409 (the stream is already published), 503 (`rtc.maxPeers` reached or WebRTC off).
//! - `DELETE /index/api/delete_webrtc?id=&token=`: ends the session: 200 with `{"code":0}`, or
//!   404 with code -500 when no session has that id and token.
//! - `POST /index/api/webrtc?app=&stream=&type=play|push`: ZLMediaKit's JSON flavour: HTTP 200
//!   with `{"code":0,"id":…,"sdp":…,"type":"answer"}`, or a non-zero `code` and `msg` (-300
//!   for a missing argument, -400 for anything the offer could not get).
//!
//! None of these asks for `api.secret` (ZLMediaKit's rule: a browser calls them); on_play and
//! on_publish (`schema: "rtc"`) authorize them like every other protocol. The WebRTC engine
//! itself (sockets, DTLS, RTP) is the server's: it is behind the [`WebRtc`] trait, so this
//! crate stays HTTP only.

use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// The largest SDP offer read; a larger one is refused with 413 (a browser's offer with every
/// codec is under 10 KiB).
pub const MAX_OFFER: usize = 64 * 1024;

/// Whether a peer plays or publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcKind {
    /// WHEP: the peer plays the stream.
    Play,
    /// WHIP: the peer publishes the stream.
    Publish,
}

/// An offer, as the signalling routes hand it to the engine.
#[derive(Debug, Clone)]
pub struct RtcOffer {
    /// Play or publish.
    pub kind: RtcKind,
    /// The stream.
    pub key: media::StreamKey,
    /// The SDP offer (at most [`MAX_OFFER`] bytes, UTF-8).
    pub sdp: String,
    /// The signalling client's address (the session's peer until ICE picks one).
    pub peer: SocketAddr,
    /// The HTTP listener's address.
    pub local: SocketAddr,
    /// The request's query string (ZLMediaKit's `params` in the hooks).
    pub params: String,
    /// The host name the client used (`Host` without the port), for TURN URLs in the answer.
    pub host: Option<String>,
}

/// One ICE server handed to the client with an answer (RFC 9725 §4.4, the `Link` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `turn:host:port?transport=udp` (or `tcp`).
    pub url: String,
    /// The TURN username.
    pub username: String,
    /// The TURN password.
    pub credential: String,
}

/// The engine's answer to an offer.
#[derive(Debug, Clone)]
pub struct RtcAnswer {
    /// The session's id (its `id` in getAllSession).
    pub id: String,
    /// The secret that lets the client end the session (`delete_webrtc`).
    pub token: String,
    /// The SDP answer.
    pub sdp: String,
    /// ICE servers for the client (the embedded TURN relay), in `Link` headers.
    pub ice_servers: Vec<IceServer>,
}

/// Why an offer got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcRefusal {
    /// on_play or on_publish refused.
    #[error("{0}")]
    Denied(String),
    /// The stream to play is not live.
    #[error("stream not found")]
    NotFound,
    /// The stream to publish is already published.
    #[error("stream already publishing")]
    AlreadyPublishing,
    /// The offer cannot be answered (malformed, no codec or transport in common).
    #[error("bad offer: {0}")]
    BadOffer(String),
    /// Too many peers, or WebRTC is off.
    #[error("{0}")]
    Unavailable(String),
}

impl RtcRefusal {
    fn status(&self) -> StatusCode {
        match self {
            RtcRefusal::Denied(_) => StatusCode::FORBIDDEN,
            RtcRefusal::NotFound => StatusCode::NOT_FOUND,
            RtcRefusal::AlreadyPublishing => StatusCode::CONFLICT,
            RtcRefusal::BadOffer(_) => StatusCode::BAD_REQUEST,
            RtcRefusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// A boxed future, so [`WebRtc`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The WebRTC engine (the server's driver): admits, answers and ends sessions.
pub trait WebRtc: Send + Sync + 'static {
    /// Asks on_play / on_publish, then answers `offer` and starts the session.
    fn offer(&self, offer: RtcOffer) -> BoxFuture<'_, Result<RtcAnswer, RtcRefusal>>;
    /// Ends the session `id` if `token` is its token; false when there is no such session.
    fn delete(&self, id: &str, token: &str) -> bool;
}

/// The signalling paths, lower case, after `/index/api/`.
pub(crate) const PATHS: [&str; 4] = ["whep", "whip", "webrtc", "delete_webrtc"];

/// Whether `name` (the API path after `/index/api/`, lower case) is a signalling path.
pub(crate) fn is_signalling(name: &str) -> bool {
    PATHS.contains(&name)
}

/// Answers a signalling request (`name` as for [`is_signalling`]).
pub(crate) async fn serve(
    state: &AppState,
    peer: SocketAddr,
    name: &str,
    req: Request<Body>,
) -> Response {
    if req.method() == Method::OPTIONS {
        // A CORS preflight: a player on another origin posts `application/sdp`.
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, authorization"),
        );
        return resp;
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    let args: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .take(64)
        .collect();
    let arg = |name: &str| {
        args.iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    if name == "delete_webrtc" {
        if req.method() != Method::DELETE {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let (Some(id), Some(token)) = (arg("id"), arg("token")) else {
            return json_status(
                StatusCode::BAD_REQUEST,
                json!({"code": -300, "msg": "Required parameter missed: \"id\",\"token\""}),
            );
        };
        let deleted = state
            .webrtc
            .as_ref()
            .is_some_and(|rtc| rtc.delete(&id, &token));
        return if deleted {
            json_status(StatusCode::OK, json!({"code": 0, "msg": "success"}))
        } else {
            json_status(
                StatusCode::NOT_FOUND,
                json!({"code": -500, "msg": "webrtc session not found"}),
            )
        };
    }
    if req.method() != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let zlm_json = name == "webrtc";
    let kind = if zlm_json {
        match arg("type").as_deref() {
            Some("play") => RtcKind::Play,
            Some("push") => RtcKind::Publish,
            Some(other) => {
                return zlm_error(-300, &format!("unsupported webrtc type: {other:?}"));
            }
            None => return zlm_error(-300, "Required parameter missed: \"type\""),
        }
    } else if name == "whep" {
        RtcKind::Play
    } else {
        RtcKind::Publish
    };
    let (Some(app), Some(stream)) = (arg("app"), arg("stream")) else {
        let msg = "Required parameter missed: \"app\",\"stream\"";
        return if zlm_json {
            zlm_error(-300, msg)
        } else {
            (StatusCode::BAD_REQUEST, msg).into_response()
        };
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let key = match stream_key(
        state,
        &app,
        &stream,
        arg("vhost").as_deref(),
        host.as_deref(),
    ) {
        Ok(key) => key,
        Err(e) => {
            return if zlm_json {
                zlm_error(-300, &format!("bad stream name: {e}"))
            } else {
                crate::bad_name(&e)
            };
        }
    };
    let sdp = match axum::body::to_bytes(req.into_body(), MAX_OFFER).await {
        Ok(body) if body.trim_ascii().is_empty() => {
            let msg = "http body(webrtc offer sdp) is empty";
            return if zlm_json {
                zlm_error(-1, msg)
            } else {
                (StatusCode::BAD_REQUEST, msg).into_response()
            };
        }
        Ok(body) => match String::from_utf8(body.to_vec()) {
            Ok(sdp) => sdp,
            Err(_) => {
                let msg = "the offer is not UTF-8 text";
                return if zlm_json {
                    zlm_error(-400, msg)
                } else {
                    (StatusCode::BAD_REQUEST, msg).into_response()
                };
            }
        },
        Err(_) => {
            let msg = format!("the offer is larger than {MAX_OFFER} bytes");
            return if zlm_json {
                zlm_error(-400, &msg)
            } else {
                (StatusCode::PAYLOAD_TOO_LARGE, msg).into_response()
            };
        }
    };
    let Some(rtc) = state.webrtc.as_ref() else {
        let refusal = RtcRefusal::Unavailable("WebRTC is off (rtc.port=0)".into());
        return refuse(zlm_json, &refusal);
    };
    let offer = RtcOffer {
        kind,
        key,
        sdp,
        peer,
        local: state.options.local_addr,
        params: query,
        host: host.map(|h| host_name(&h).to_owned()),
    };
    match rtc.offer(offer).await {
        Ok(answer) if zlm_json => json_status(
            StatusCode::OK,
            json!({"code": 0, "id": answer.id, "sdp": answer.sdp, "type": "answer"}),
        ),
        Ok(answer) => created(&answer),
        Err(refusal) => {
            tracing::info!(peer = %peer, "webrtc offer refused: {refusal}");
            refuse(zlm_json, &refusal)
        }
    }
}

/// The stream `app`/`stream` names, under `vhost` (or the Host's when vhosts are on).
fn stream_key(
    state: &AppState,
    app: &str,
    stream: &str,
    vhost: Option<&str>,
    host: Option<&str>,
) -> Result<media::StreamKey, media::KeyError> {
    let stem = format!("/{app}/{stream}");
    let query = vhost
        .map(|v| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("vhost", v)
                .finish()
        })
        .unwrap_or_default();
    media::StreamKey::from_url(state.options.enable_vhost, &stem, &query, host)
}

/// `host` without its port (`[v6]:port` keeps its brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// The WHIP/WHEP `201 Created`.
fn created(answer: &RtcAnswer) -> Response {
    let location = format!(
        "/index/api/delete_webrtc?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("id", &answer.id)
            .append_pair("token", &answer.token)
            .finish()
    );
    let mut resp = (StatusCode::CREATED, answer.sdp.clone()).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    // Browsers read Location and Link from another origin only when exposed.
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link"),
    );
    for server in &answer.ice_servers {
        if let Ok(v) = HeaderValue::from_str(&link(server)) {
            headers.append(header::LINK, v);
        }
    }
    resp
}

/// An RFC 9725 §4.4 `Link` header value for `server`.
pub fn link(server: &IceServer) -> String {
    format!(
        "<{}>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
        server.url,
        quoted(&server.username),
        quoted(&server.credential)
    )
}

/// `text` as the inside of a quoted-string (RFC 9110 §5.6.4).
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

fn refuse(zlm_json: bool, refusal: &RtcRefusal) -> Response {
    if zlm_json {
        zlm_error(-400, &refusal.to_string())
    } else {
        (refusal.status(), refusal.to_string()).into_response()
    }
}

fn zlm_error(code: i32, msg: &str) -> Response {
    json_status(StatusCode::OK, json!({"code": code, "msg": msg}))
}

fn json_status(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_quote_what_they_carry() {
        let server = IceServer {
            url: "turn:example.com:3478?transport=udp".into(),
            username: "1700000000:rtc\"x".into(),
            credential: "abc\\=".into(),
        };
        assert_eq!(
            link(&server),
            "<turn:example.com:3478?transport=udp>; rel=\"ice-server\"; \
             username=\"1700000000:rtc\\\"x\"; credential=\"abc\\\\=\"; \
             credential-type=\"password\""
        );
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("example.com:8080"), "example.com");
        assert_eq!(host_name("example.com"), "example.com");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
    }
}
