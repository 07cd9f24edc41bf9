//! HTTP-FLV and WS-FLV: a live stream as an FLV byte stream (Adobe FLV spec v10.1 Annex E).

use crate::AppState;
use axum::body::Body;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hooks::PlayRefusal;
use media::TrackKind;
use registry::{flv_tag, Ended, Item, Protocol, SessionInfo, Subscription};
use std::convert::Infallible;
use std::net::SocketAddr;

pub(crate) const SUFFIX: &str = ".live.flv";
const TAG_AUDIO: u8 = 0x08;
const TAG_VIDEO: u8 = 0x09;
const TAG_SCRIPT: u8 = 0x12;

/// Serves `GET …/stream.live.flv` (plain or WebSocket).
pub(crate) async fn live(state: AppState, peer: SocketAddr, req: Request<Body>) -> Response {
    if req.method() != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = req.uri().path().to_owned();
    let Some(stem) = path.strip_suffix(SUFFIX) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    let key = match crate::stream_key(&state, stem, &query, req.headers()) {
        Ok(key) => key,
        Err(e) => return crate::bad_name(&e),
    };
    let (mut parts, _body) = req.into_parts();
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .ok();
    let protocol = if ws.is_some() {
        Protocol::WsFlv
    } else {
        Protocol::HttpFlv
    };
    let viewer = SessionInfo {
        id: state.registry.next_session_id(),
        protocol,
        peer,
        local: state.options.local_addr,
        params: query,
    };
    let span = tracing::info_span!("session", proto = protocol.name(), id = viewer.id, %peer, stream = %key);
    let admitted = hooks::admit_play(
        &state.hooks,
        &state.registry,
        &key,
        viewer,
        state.options.max_stream_wait,
    )
    .await;
    let sub = match admitted {
        Ok(sub) => sub,
        Err(PlayRefusal::Denied(msg)) => {
            span.in_scope(|| tracing::info!("play refused: {msg}"));
            return (StatusCode::UNAUTHORIZED, msg).into_response();
        }
        Err(_) => {
            span.in_scope(|| tracing::info!("play refused: stream not found"));
            return (StatusCode::NOT_FOUND, "stream not found").into_response();
        }
    };
    span.in_scope(|| tracing::info!("play started"));
    match ws {
        Some(ws) => crate::ws::bounded(ws)
            .on_upgrade(move |socket| tracing::Instrument::instrument(serve_ws(socket, sub), span))
            .into_response(),
        None => http_response(sub),
    }
}

fn http_response(sub: Subscription) -> Response {
    let body = futures_util::stream::unfold(Tags::new(sub), |mut tags| async move {
        let bytes = tags.next().await?;
        Some((Ok::<Bytes, Infallible>(bytes), tags))
    });
    let mut resp = Body::from_stream(body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// WS-FLV: one tag per message, until the stream ends or the viewer leaves (a Close frame, a
/// read error, EOF: see [`crate::ws::send_live`]).
async fn serve_ws(socket: WebSocket, sub: Subscription) {
    let tags = futures_util::stream::unfold(Tags::new(sub), |mut tags| async move {
        let bytes = tags.next().await?;
        Some((bytes, tags))
    });
    crate::ws::send_live(socket, tags).await;
}

/// A subscription as a sequence of FLV byte chunks: the file header, then one tag per item.
struct Tags {
    sub: Subscription,
    header_sent: bool,
    last_ts: u32,
}

impl Tags {
    fn new(sub: Subscription) -> Self {
        Tags {
            sub,
            header_sent: false,
            last_ts: 0,
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        let bytes = if !self.header_sent {
            self.header_sent = true;
            let tracks = self.sub.tracks();
            let has = |kind| tracks.iter().any(|t| t.info.kind() == kind);
            // Before any track is known, announce both: players then wait for what comes.
            let (audio, video) = if tracks.is_empty() {
                (true, true)
            } else {
                (has(TrackKind::Audio), has(TrackKind::Video))
            };
            file_header(audio, video)
        } else {
            loop {
                match self.sub.recv().await {
                    Ok(Item::Packet(p)) => {
                        self.last_ts = p.frame.dts as u32;
                        break p.flv;
                    }
                    Ok(Item::Metadata(m)) => break flv_tag(TAG_SCRIPT, 0, &m),
                    // Codecs without a sequence header (G.711, MP3) announce nothing.
                    Ok(Item::Track(t)) if t.flv.is_empty() => continue,
                    Ok(Item::Track(t)) => {
                        let tag_type = match t.info.kind() {
                            TrackKind::Audio => TAG_AUDIO,
                            TrackKind::Video => TAG_VIDEO,
                        };
                        break flv_tag(tag_type, self.last_ts, &t.flv);
                    }
                    Err(Ended::Closed) => {
                        tracing::info!("play ended: stream unpublished");
                        return None;
                    }
                    Err(e) => {
                        tracing::warn!("play ended: {e}");
                        return None;
                    }
                }
            }
        };
        self.sub.add_bytes(bytes.len() as u64);
        Some(bytes)
    }
}

/// The FLV file header (§E.2) followed by PreviousTagSize0.
fn file_header(audio: bool, video: bool) -> Bytes {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    Bytes::from(vec![b'F', b'L', b'V', 0x01, flags, 0, 0, 0, 9, 0, 0, 0, 0])
}
