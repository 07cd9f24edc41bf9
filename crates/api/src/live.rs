//! Continuous HTTP streams in other containers: `/{app}/{stream}.live.ts` (MPEG-TS) and
//! `/{app}/{stream}.live.mp4` (fragmented MP4), plain or over a WebSocket (one message per
//! chunk), as ZLMediaKit serves them: the chunks of the stream's [`outputs::LiveOutput`], muxed
//! once for every viewer.

use crate::viewing::{admit, Viewing};
use crate::AppState;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use outputs::Container;
use registry::Protocol;
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
    let (viewer, span) = match admit(&state, &key, protocol, peer, query).await {
        Ok(admitted) => admitted,
        Err(resp) => return resp,
    };
    let Some(output) = state.outputs.live(&key, container).await else {
        return (StatusCode::NOT_FOUND, "no track this container carries").into_response();
    };
    Viewing::new(viewer, output.reader(), None).respond(ws, container.content_type(), span)
}
