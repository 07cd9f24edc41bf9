//! What every continuous live response shares (HTTP-FLV, WS-FLV, `.live.ts`, `.live.mp4`,
//! plain or over a WebSocket): admitting the viewer, and turning an output's reader into a body.

use crate::AppState;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hooks::PlayRefusal;
use media::StreamKey;
use registry::{Ended, Protocol, SessionInfo, Viewer};
use std::future::Future;
use std::net::SocketAddr;

/// An output's reader, as a live response sends it: one chunk of bytes at a time.
pub(crate) trait Source: Send + 'static {
    /// The next chunk, or why the stream is over for this viewer.
    fn recv(&mut self) -> impl Future<Output = Result<Bytes, Ended>> + Send;
    /// The next chunk if one is ready now.
    fn try_recv(&mut self) -> Option<Result<Bytes, Ended>>;
}

impl Source for outputs::FlvReader {
    async fn recv(&mut self) -> Result<Bytes, Ended> {
        outputs::FlvReader::recv(self).await.map(|tag| tag.tag)
    }

    fn try_recv(&mut self) -> Option<Result<Bytes, Ended>> {
        outputs::FlvReader::try_recv(self).map(|r| r.map(|tag| tag.tag))
    }
}

impl Source for outputs::LiveReader {
    async fn recv(&mut self) -> Result<Bytes, Ended> {
        outputs::LiveReader::recv(self).await
    }

    fn try_recv(&mut self) -> Option<Result<Bytes, Ended>> {
        outputs::LiveReader::try_recv(self)
    }
}

/// Asks on_play for `key` over `protocol` and joins the viewer to the stream (waiting for it
/// up to `maxStreamWaitMS`), or the answer to send: 401 with the backend's message, 404.
pub(crate) async fn admit(
    state: &AppState,
    key: &StreamKey,
    protocol: Protocol,
    peer: SocketAddr,
    params: String,
) -> Result<(Viewer, tracing::Span), Response> {
    let session = SessionInfo {
        id: state.registry.next_session_id(),
        protocol,
        peer,
        local: state.options.local_addr,
        params,
    };
    let span = tracing::info_span!("session", proto = protocol.name(), schema = protocol.schema(), id = session.id, %peer, stream = %key);
    let admitted = hooks::admit_play(
        &state.hooks,
        &state.registry,
        key,
        session,
        state.options.max_stream_wait,
    )
    .await;
    match admitted {
        Ok(viewer) => Ok((viewer, span)),
        Err(PlayRefusal::Denied(msg)) => {
            span.in_scope(|| tracing::info!("play refused: {msg}"));
            Err((StatusCode::UNAUTHORIZED, msg).into_response())
        }
        Err(_) => {
            span.in_scope(|| tracing::info!("play refused: stream not found"));
            Err((StatusCode::NOT_FOUND, "stream not found").into_response())
        }
    }
}

/// One viewer's live bytes: `first` (a file header), then the source's chunks, until the
/// stream ends, the viewer falls behind too often or is kicked.
pub(crate) struct Viewing<S> {
    viewer: Viewer,
    source: S,
    first: Option<Bytes>,
}

impl<S: Source> Viewing<S> {
    pub(crate) fn new(viewer: Viewer, source: S, first: Option<Bytes>) -> Self {
        Viewing {
            viewer,
            source,
            first,
        }
    }

    /// The next bytes if they are ready now (no kick check: the next [`Viewing::next`] makes
    /// it); `None` when nothing is, or the play ended (the next `next` says so).
    pub(crate) fn try_next(&mut self) -> Option<Bytes> {
        if self.first.is_some() {
            return None;
        }
        let bytes = self.source.try_recv()?.ok()?;
        self.viewer.add_bytes(bytes.len() as u64);
        Some(bytes)
    }

    pub(crate) async fn next(&mut self) -> Option<Bytes> {
        let bytes = match self.first.take() {
            Some(first) => first,
            None => {
                let chunk = tokio::select! {
                    // A kick is looked at first: a viewer that is always behind (its source
                    // always ready) must still be ended by it.
                    biased;
                    () = self.viewer.kicked() => {
                        tracing::info!("play ended: the session was kicked");
                        return None;
                    }
                    chunk = self.source.recv() => chunk,
                };
                match chunk {
                    Ok(bytes) => bytes,
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
        self.viewer.add_bytes(bytes.len() as u64);
        Some(bytes)
    }

    fn chunks(self) -> impl futures_util::Stream<Item = Bytes> + Send {
        futures_util::stream::unfold(self, |mut viewing| async move {
            let bytes = viewing.next().await?;
            Some((bytes, viewing))
        })
    }

    /// The response: over the WebSocket when `ws` (one binary message per chunk, the viewer's
    /// socket read meanwhile: see [`crate::ws::send_live`]), else an endless body of
    /// `content_type`.
    pub(crate) fn respond(
        self,
        ws: Option<WebSocketUpgrade>,
        content_type: &'static str,
        span: tracing::Span,
    ) -> Response {
        span.in_scope(|| tracing::info!("play started"));
        match ws {
            Some(ws) => crate::ws::bounded(ws)
                .on_upgrade(move |socket| {
                    tracing::Instrument::instrument(
                        crate::ws::send_live(socket, self.chunks()),
                        span,
                    )
                })
                .into_response(),
            None => {
                let body =
                    futures_util::StreamExt::map(self.chunks(), Ok::<_, std::convert::Infallible>);
                let mut resp = Body::from_stream(body).into_response();
                let h = resp.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                resp
            }
        }
    }
}
