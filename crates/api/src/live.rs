//! Continuous HTTP streams in other containers: `/{app}/{stream}.live.ts` (MPEG-TS) and
//! `/{app}/{stream}.live.mp4` (fragmented MP4), plain or over a WebSocket (one message per
//! chunk), as ZLMediaKit serves them: the chunks of the stream's [`outputs::LiveOutput`], muxed
//! once for every viewer.

use crate::AppState;
use axum::body::Body;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hooks::PlayRefusal;
use outputs::{Container, LiveReader};
use registry::{Ended, Protocol, SessionInfo, Viewer};
use std::net::SocketAddr;

/// The stream and container a path names (`…/stream.live.ts`, `….live.mp4`).
pub(crate) fn from_path(path: &str) -> Option<(&str, Container)> {
    if let Some(stem) = path.strip_suffix(".live.ts") {
        return Some((stem, Container::Ts));
    }
    path.strip_suffix(".live.mp4")
        .map(|stem| (stem, Container::Fmp4))
}

fn protocol(container: Container, ws: bool) -> Protocol {
    match (container, ws) {
        (Container::Ts, false) => Protocol::HttpTs,
        (Container::Ts, true) => Protocol::WsTs,
        (Container::Fmp4, false) => Protocol::HttpFmp4,
        (Container::Fmp4, true) => Protocol::WsFmp4,
    }
}

/// Serves `…/stream.live.ts` or `.live.mp4`, plain or WebSocket.
pub(crate) async fn serve(state: AppState, peer: SocketAddr, req: Request<Body>) -> Response {
    let path = req.uri().path().to_owned();
    let Some((stem, container)) = from_path(&path) else {
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
    let protocol = protocol(container, ws.is_some());
    let viewer = SessionInfo {
        id: state.registry.next_session_id(),
        protocol,
        peer,
        local: state.options.local_addr,
        params: query,
    };
    let span = tracing::info_span!("session", proto = protocol.name(), schema = protocol.schema(), id = viewer.id, %peer, stream = %key);
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
    let Some(output) = state.outputs.live(&key, container).await else {
        return (StatusCode::NOT_FOUND, "no track this container carries").into_response();
    };
    span.in_scope(|| tracing::info!("play started"));
    let reader = Reader {
        reader: output.reader(),
        viewer,
    };
    match ws {
        Some(ws) => crate::ws::bounded(ws)
            .on_upgrade(move |socket| {
                tracing::Instrument::instrument(serve_ws(socket, reader), span)
            })
            .into_response(),
        None => {
            let body = futures_util::stream::unfold(reader, |mut reader| async move {
                let bytes = reader.next().await?;
                Some((Ok::<Bytes, std::convert::Infallible>(bytes), reader))
            });
            let mut resp = Body::from_stream(body).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(container.content_type()),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
    }
}

/// One message per chunk, until the stream ends or the viewer leaves (a Close frame, a read
/// error, EOF: see [`crate::ws::send_live`]).
async fn serve_ws(socket: WebSocket, reader: Reader) {
    let chunks = futures_util::stream::unfold(reader, |mut reader| async move {
        let bytes = reader.next().await?;
        Some((bytes, reader))
    });
    crate::ws::send_live(socket, chunks).await;
}

/// One viewer: the container header, the chunks since the last keyframe, then the live ones.
struct Reader {
    reader: LiveReader,
    viewer: Viewer,
}

impl Reader {
    async fn next(&mut self) -> Option<Bytes> {
        let chunk = tokio::select! {
            chunk = self.reader.recv() => chunk,
            () = self.viewer.kicked() => {
                tracing::info!("play ended: the session was kicked");
                return None;
            }
        };
        let bytes = match chunk {
            Ok(bytes) => bytes,
            Err(Ended::TooSlow) => {
                tracing::warn!("viewer dropped: fell behind too often");
                return None;
            }
            Err(_) => return None,
        };
        self.viewer.add_bytes(bytes.len() as u64);
        Some(bytes)
    }
}
