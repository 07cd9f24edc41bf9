//! Continuous HTTP streams in other containers: `/{app}/{stream}.live.ts` (MPEG-TS) and
//! `/{app}/{stream}.live.mp4` (fragmented MP4), plain or over a WebSocket (one message per
//! chunk), as ZLMediaKit serves them.
//!
//! Each (stream, container) is muxed once, by a task the first viewer starts, into chunks
//! shared by every viewer: a fragment or a frame's TS packets, flagged when it starts with a
//! keyframe. A new viewer gets the container header (fMP4's init segment), the chunks since the
//! last keyframe, then the live ones. A viewer that falls more than the ring behind skips to
//! the next keyframe; one that does so too often is dropped. The output ends with its stream or
//! its last viewer.

use crate::AppState;
use axum::body::Body;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use hls::TsMuxer;
use hooks::PlayRefusal;
use media::{StreamKey, TrackKind};
use mp4::Fmp4Muxer;
use registry::{Ended, Fanout, FanoutLimits, Item, Protocol, Registry, SessionInfo, Subscription};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;

/// fMP4 fragments are cut at least this often, for latency.
const FRAGMENT_MS: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Container {
    Ts,
    Fmp4,
}

impl Container {
    pub(crate) fn from_path(path: &str) -> Option<(&str, Container)> {
        if let Some(stem) = path.strip_suffix(".live.ts") {
            return Some((stem, Container::Ts));
        }
        path.strip_suffix(".live.mp4")
            .map(|stem| (stem, Container::Fmp4))
    }

    fn protocol(self, ws: bool) -> Protocol {
        match (self, ws) {
            (Container::Ts, false) => Protocol::HttpTs,
            (Container::Ts, true) => Protocol::WsTs,
            (Container::Fmp4, false) => Protocol::HttpFmp4,
            (Container::Fmp4, true) => Protocol::WsFmp4,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Container::Ts => "video/mp2t",
            Container::Fmp4 => "video/mp4",
        }
    }
}

/// The live outputs, by stream and container.
#[derive(Default)]
pub(crate) struct LiveOutputs {
    outputs: Mutex<HashMap<(StreamKey, Container), Weak<Output>>>,
}

/// One (stream, container): its chunks on a [`Fanout`] whose header is the container header
/// (fMP4's init segment), so a new viewer gets it, then the chunks since the last keyframe.
struct Output {
    fanout: Fanout<Bytes>,
    has_video: bool,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent; a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `…/stream.live.ts` or `.live.mp4`, plain or WebSocket.
pub(crate) async fn serve(state: AppState, peer: SocketAddr, req: Request<Body>) -> Response {
    let path = req.uri().path().to_owned();
    let Some((stem, container)) = Container::from_path(&path) else {
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
    let protocol = container.protocol(ws.is_some());
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
    let Some(output) = state
        .live
        .get(
            &state.registry,
            &key,
            container,
            state.registry.fanout_limits(),
        )
        .await
    else {
        return (StatusCode::NOT_FOUND, "no track this container carries").into_response();
    };
    span.in_scope(|| tracing::info!("play started"));
    let reader = Reader::new(output, sub);
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

impl LiveOutputs {
    async fn get(
        &self,
        registry: &Registry,
        key: &StreamKey,
        container: Container,
        limits: FanoutLimits,
    ) -> Option<Arc<Output>> {
        let existing = lock(&self.outputs)
            .get(&(key.clone(), container))
            .and_then(Weak::upgrade);
        if let Some(o) = existing.filter(|o| !o.fanout.is_closed()) {
            return Some(o);
        }
        let tracks: Vec<media::TrackInfo> = registry
            .tracks_ready(key, Duration::from_secs(1), Duration::from_secs(10))
            .await?
            .into_iter()
            .map(|t| t.info)
            .collect();
        let output_session = SessionInfo {
            id: registry.next_session_id(),
            protocol: container.protocol(false),
            peer: ([0, 0, 0, 0], 0).into(),
            local: ([0, 0, 0, 0], 0).into(),
            params: String::new(),
        };
        let sub = registry.subscribe_output(key, output_session)?;
        let (header, muxer) = match container {
            Container::Ts => (Bytes::new(), Muxer::Ts(TsMuxer::new(&tracks))),
            Container::Fmp4 => {
                let m = Fmp4Muxer::new(&tracks).ok()?;
                (m.init_segment(), Muxer::Fmp4(Box::new(m)))
            }
        };
        let fanout = Fanout::new(limits);
        if !header.is_empty() {
            fanout.set_header(vec![header]);
        }
        let output = Arc::new(Output {
            fanout,
            has_video: tracks.iter().any(|t| t.kind() == TrackKind::Video),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(run(Arc::downgrade(&output), sub, muxer));
        *lock(&output.task) = Some(task);
        let mut outputs = lock(&self.outputs);
        outputs.retain(|_, o| o.strong_count() > 0);
        outputs.insert((key.clone(), container), Arc::downgrade(&output));
        Some(output)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

enum Muxer {
    Ts(TsMuxer),
    Fmp4(Box<Fmp4Muxer>),
}

async fn run(output: Weak<Output>, mut sub: Subscription, mut muxer: Muxer) {
    loop {
        let item = sub.recv().await;
        let Some(out) = output.upgrade() else { return };
        let has_video = out.has_video;
        let packet = match item {
            Ok(Item::Packet(p)) => p,
            Ok(_) => continue,
            Err(_) => {
                out.fanout.close();
                return;
            }
        };
        let f = &packet.frame;
        let starts_gop = (f.kind() == TrackKind::Video && f.keyframe) || !has_video;
        let mut chunks = Vec::new();
        match &mut muxer {
            Muxer::Ts(ts) => {
                let mut data = BytesMut::new();
                ts.push(f, &mut data);
                if !data.is_empty() {
                    chunks.push((data.freeze(), starts_gop));
                }
            }
            Muxer::Fmp4(m) => {
                // A fragment ends before each keyframe, so a keyframe always starts one.
                if (starts_gop && has_video) || m.buffered_ms() >= FRAGMENT_MS {
                    if let Some(fragment) = m.fragment_before(f.dts) {
                        chunks.push((fragment.data, fragment.independent));
                    }
                }
                m.push(f);
            }
        }
        for (data, starts_gop) in chunks {
            let size = data.len();
            out.fanout.push(data, size, starts_gop);
        }
    }
}

/// One viewer: the header, the chunks since the last keyframe, then the live ones.
struct Reader {
    /// Keeps the output alive while the viewer reads.
    _output: Arc<Output>,
    sub: Subscription,
    reader: registry::Reader<Bytes>,
}

impl Reader {
    fn new(output: Arc<Output>, sub: Subscription) -> Reader {
        let reader = output.fanout.reader();
        Reader {
            _output: output,
            sub,
            reader,
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        let bytes = match self.reader.recv().await {
            Ok(bytes) => bytes,
            Err(Ended::TooSlow) => {
                tracing::warn!("viewer dropped: fell behind too often");
                return None;
            }
            Err(_) => return None,
        };
        self.sub.add_bytes(bytes.len() as u64);
        Some(bytes)
    }
}
