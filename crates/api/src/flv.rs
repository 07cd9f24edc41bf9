//! HTTP-FLV and WS-FLV: a live stream as an FLV byte stream (Adobe FLV spec v10.1 Annex E),
//! the stream's [`outputs::FlvOutput`] tags as they are, after a file header.

use crate::viewing::{admit, Viewing};
use crate::AppState;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::Protocol;
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
    let (viewer, span) = match admit(&state, &key, protocol, peer, query).await {
        Ok(admitted) => admitted,
        Err(resp) => return resp,
    };
    let Some(output) = state.outputs.flv(&key).await else {
        return (StatusCode::NOT_FOUND, "stream not found").into_response();
    };
    let reader = output.reader();
    let header = reader.file_header();
    Viewing::new(viewer, reader, Some(header)).respond(ws, "video/x-flv", span)
}
