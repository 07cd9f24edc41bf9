//! HTTP-FLV and WS-FLV: a live stream as an FLV byte stream (Adobe FLV spec v10.1 Annex E),
//! the stream's [`outputs::FlvOutput`] tags as they are, after a file header.

use crate::AppState;
use axum::body::Body;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hooks::PlayRefusal;
use outputs::FlvReader;
use registry::{Ended, Protocol, SessionInfo, Viewer};
use std::convert::Infallible;
use std::net::SocketAddr;

pub(crate) const SUFFIX: &str = ".live.flv";

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
    let viewer = match admitted {
        Ok(viewer) => viewer,
        Err(PlayRefusal::Denied(msg)) => {
            span.in_scope(|| tracing::info!("play refused: {msg}"));
            return (StatusCode::UNAUTHORIZED, msg).into_response();
        }
        Err(_) => {
            span.in_scope(|| tracing::info!("play refused: stream not found"));
            return (StatusCode::NOT_FOUND, "stream not found").into_response();
        }
    };
    let Some(output) = state.outputs.flv(&key).await else {
        return (StatusCode::NOT_FOUND, "stream not found").into_response();
    };
    let tags = Tags {
        viewer,
        reader: output.reader(),
        header_sent: false,
    };
    span.in_scope(|| tracing::info!("play started"));
    match ws {
        Some(ws) => crate::ws::bounded(ws)
            .on_upgrade(move |socket| tracing::Instrument::instrument(serve_ws(socket, tags), span))
            .into_response(),
        None => http_response(tags),
    }
}

fn http_response(tags: Tags) -> Response {
    let body = futures_util::stream::unfold(tags, |mut tags| async move {
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
async fn serve_ws(socket: WebSocket, tags: Tags) {
    let tags = futures_util::stream::unfold(tags, |mut tags| async move {
        let bytes = tags.next().await?;
        Some((bytes, tags))
    });
    crate::ws::send_live(socket, tags).await;
}

/// A viewer's FLV as a sequence of byte chunks: the file header, then one tag per chunk.
struct Tags {
    viewer: Viewer,
    reader: FlvReader,
    header_sent: bool,
}

impl Tags {
    async fn next(&mut self) -> Option<Bytes> {
        let bytes = if !self.header_sent {
            self.header_sent = true;
            self.reader.file_header()
        } else {
            let tag = tokio::select! {
                tag = self.reader.recv() => tag,
                () = self.viewer.kicked() => {
                    tracing::info!("play ended: the session was kicked");
                    return None;
                }
            };
            match tag {
                Ok(tag) => tag.tag,
                Err(Ended::Closed) => {
                    tracing::info!("play ended: stream unpublished");
                    return None;
                }
                Err(e) => {
                    tracing::warn!("play ended: {e}");
                    return None;
                }
            }
        };
        self.viewer.add_bytes(bytes.len() as u64);
        Some(bytes)
    }
}
