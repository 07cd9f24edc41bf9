//! HTTP-FLV and WS-FLV: a live stream as an FLV byte stream (Adobe FLV spec v10.1 Annex E),
//! the stream's [`outputs::FlvOutput`] tags as they are, after a file header.

use crate::viewing::{admit, Viewing};
use crate::AppState;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use registry::Protocol;
use std::net::SocketAddr;

pub(crate) const SUFFIX: &str = ".live.flv";

/// Whether a `GET` of `path` is a plain HTTP-FLV play, which the HTTP listener may serve
/// itself through [`open_live_flv`] instead of through the router (the API and metrics keep
/// their paths, as in [`crate::router`]'s dispatch).
pub fn is_live_flv(path: &str) -> bool {
    path.ends_with(SUFFIX) && !crate::rest::is_api(path) && path != crate::metrics::PATH
}

/// An admitted HTTP-FLV viewer, for a driver that writes the bytes itself: the file header,
/// then the stream's tags as they come, shared with every other viewer.
pub struct LiveFlv {
    viewing: Viewing<outputs::FlvReader>,
    span: tracing::Span,
}

impl LiveFlv {
    /// The next bytes to send; `None` once the play has ended (unpublished, kicked, lagged
    /// past the ring), said in the session's log.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.viewing.next().await
    }

    /// The next tag if one is ready now, for gathering a burst into one write.
    pub fn try_next(&mut self) -> Option<Bytes> {
        self.viewing.try_next()
    }

    /// The session's span (proto, id, peer, stream), for the driver's own log lines.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}

/// Admits `GET {path}?{query}` as the router's HTTP-FLV route does (stream name, on_play, the
/// stream's FLV output) for a driver outside the router; the refusal is the response that
/// route would give.
pub async fn open_live_flv(
    state: &AppState,
    peer: SocketAddr,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Result<LiveFlv, Response> {
    let Some(stem) = path.strip_suffix(SUFFIX) else {
        return Err((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let key = crate::stream_key(state, stem, query, headers).map_err(|e| crate::bad_name(&e))?;
    let (viewer, span) = admit(state, &key, Protocol::HttpFlv, peer, query.to_owned()).await?;
    let Some(output) = state.outputs.flv(&key).await else {
        return Err((StatusCode::NOT_FOUND, "stream not found").into_response());
    };
    let reader = output.reader();
    let header = reader.file_header();
    span.in_scope(|| tracing::info!("play started"));
    Ok(LiveFlv {
        viewing: Viewing::new(viewer, reader, Some(header)),
        span,
    })
}

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
