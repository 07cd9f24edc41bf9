//! The RTMP listener and its session driver: sockets, sleeping and registry calls around the
//! sans-IO [`::rtmp::server::Session`], which keeps the protocol's clocks itself.
//!
//! Drive loop per connection: read → `handle_input(now, ..)` → drain `poll_event` (publish/play
//! policy goes back in as `accept_*`/`reject_*`) → write `poll_transmit` → sleep until
//! `poll_timeout` → `handle_timeout(now)`; while playing, the next registry item is raced
//! against the next read and the timer.

use crate::limits::{ConnGuard, Listener};
use crate::stall::StallGuard;
use crate::Shared;
use ::rtmp::flv::{decode_metadata, DemuxEvent, Demuxer, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use ::rtmp::server::{Event, Session, Timeout};
use bytes::{Bytes, BytesMut};
use hooks::{PlayRefusal, PublishRefusal};
use media::StreamKey;
use outputs::{FlvReader, FlvTag};
use registry::{Ended, Protocol, PublisherGuard, SessionInfo, Viewer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{field, Instrument};

/// Read buffer of a publisher; media arrives in large messages.
const READ_BUF_PUBLISHER: usize = 64 * 1024;
/// Reads of a session that does not publish: the handshake and commands are small, and a
/// player only ever sends acknowledgements. They go through a buffer on the stack, used only
/// between the socket's readiness and the session's `handle_input`, so a thousand players hold
/// no read buffer at all while they wait.
const READ_BUF_SMALL: usize = 4 * 1024;

/// Accepts RTMP connections until `accept` turns true (the listener moves or the server stops);
/// its sessions end when `shutdown` does.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    accept: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = shared.limits.clone();
    let sessions = shutdown;
    crate::limits::accept_loop(
        listener,
        Listener::Rtmp,
        limits,
        accept,
        move |socket, peer, guard| {
            let id = shared.registry.next_session_id();
            let span =
                tracing::info_span!("session", proto = "rtmp", id, %peer, stream = field::Empty);
            let (shared, shutdown) = (Arc::clone(&shared), sessions.clone());
            async move {
                match run(socket, peer, id, shared, shutdown, guard).await {
                    Ok(()) => tracing::debug!("session closed"),
                    Err(e) if e.is_disconnect() => {
                        tracing::debug!("session closed by the peer: {e}")
                    }
                    Err(e) => tracing::warn!("session closed: {e}"),
                }
            }
            .instrument(span)
        },
    )
    .await;
}

/// Bytes of ready tags gathered into one socket write for a player.
const WRITE_BATCH: usize = 128 * 1024;

/// What a connection is doing.
enum Role {
    Idle,
    Publishing {
        stream_id: u32,
        guard: PublisherGuard,
        demuxer: Demuxer,
    },
    Playing {
        stream_id: u32,
        /// The viewer's place in the registry (readers, on_flow_report, kick).
        viewer: Viewer,
        /// The stream's FLV tags, muxed once for every RTMP and HTTP-FLV viewer.
        tags: FlvReader,
    },
}

/// Why a session ended, for the log line.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(#[from] ::rtmp::Error),
    #[error("no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("no data for {0:?}")]
    Idle(Duration),
}

/// The time as the sans-IO session counts it; tokio's clock, so paused-time tests move it too.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until `at`; never, when no clock runs.
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

impl SessionError {
    /// A peer that went away (reset, broken pipe) is an ordinary end, not a fault to warn of.
    fn is_disconnect(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        matches!(self, SessionError::Io(e)
            if matches!(e.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof))
    }
}

struct Conn {
    /// Writes to a peer that stops reading fail after `Shared::write_timeout`; the registry's
    /// ring moves on without it meanwhile.
    socket: StallGuard<TcpStream>,
    session: Session,
    peer: SocketAddr,
    local: SocketAddr,
    id: u64,
    app: String,
    tc_url: String,
    /// Set when the session should end once its output is flushed.
    closing: bool,
    /// What `poll_transmit` gave, being written.
    out: BytesMut,
}

impl Conn {
    async fn flush(&mut self) -> Result<u64, SessionError> {
        if !self.session.poll_transmit(&mut self.out) {
            return Ok(0);
        }
        let written = self.out.len() as u64;
        self.socket.write_all(&self.out).await?;
        // Dropped, not cleared: the next bytes come in a buffer of their own (see
        // `Session::poll_transmit`), so an idle player holds none.
        self.out = BytesMut::new();
        Ok(written)
    }
}

async fn run(
    socket: TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    guard: ConnGuard,
) -> Result<(), SessionError> {
    let local = socket.local_addr()?;
    let _ = socket.set_nodelay(true);
    // The session keeps the handshake deadline and the keep-alive (a publisher or a session
    // not yet started must keep talking; a player may be silent); the loop only sleeps.
    let config = ::rtmp::server::Config {
        handshake_timeout: shared.rtmp.handshake_timeout,
        keep_alive: shared.rtmp.keep_alive,
        ..::rtmp::server::Config::default()
    };
    let mut conn = Conn {
        socket: StallGuard::new(socket, shared.write_timeout),
        session: Session::new(config, rand::random(), now()),
        peer,
        local,
        id,
        app: String::new(),
        tc_url: String::new(),
        closing: false,
        out: BytesMut::new(),
    };
    let mut role = Role::Idle;
    // A publisher's read buffer; empty (no allocation) for every other session.
    let mut publisher_buf: Vec<u8> = Vec::new();
    // Made once, not once per wake-up: a player wakes for every tag, and a fresh `changed()`
    // would register a waiter on the shutdown channel each time.
    let shutdown = shutdown.changed();
    tokio::pin!(shutdown);
    loop {
        let deadline = conn.session.poll_timeout();
        tokio::select! {
            ready = conn.socket.get_ref().readable() => {
                ready?;
                // The stack buffer's scope ends before the next await, so it is no part of the
                // task's state.
                {
                    let mut small = [0u8; READ_BUF_SMALL];
                    let buf: &mut [u8] = if publisher_buf.is_empty() {
                        &mut small
                    } else {
                        &mut publisher_buf
                    };
                    let n = match conn.socket.get_ref().try_read(buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(e.into()),
                    };
                    conn.session.handle_input(now(), &buf[..n])?;
                }
                drain(&mut conn, &mut role, &shared, &guard).await?;
                if matches!(role, Role::Publishing { .. }) && publisher_buf.is_empty() {
                    publisher_buf.resize(READ_BUF_PUBLISHER, 0);
                }
                conn.flush().await?;
                if conn.closing {
                    return Ok(());
                }
            }
            () = sleep_until(deadline) => {
                conn.session.handle_timeout(now());
                drain(&mut conn, &mut role, &shared, &guard).await?;
                conn.flush().await?;
                if conn.closing {
                    return Ok(());
                }
            }
            next = next_for_role(&mut role) => {
                let item = match next {
                    RoleEvent::Tag(item) => item,
                    RoleEvent::Closed => {
                        tracing::info!("publish ended: the stream was closed by the server");
                        return Ok(());
                    }
                    RoleEvent::Kicked => {
                        tracing::info!("play ended: the session was kicked");
                        return Ok(());
                    }
                };
                let Role::Playing { stream_id, viewer, tags } = &mut role else { continue };
                let stream_id = *stream_id;
                match item {
                    Ok(tag) => {
                        // Whatever else is ready goes out in the same write: a burst (the GOP a
                        // new viewer starts with, a viewer catching up) costs one syscall, not
                        // one per tag. An end found here is reported again by the next recv.
                        // A keyframe ends the write and the task yields after a full one:
                        // viewers joining together each get their first keyframe before any
                        // gets the rest of its GOP.
                        let mut batch = tag.tag.len();
                        let mut keyframe = outputs::is_keyframe_tag(&tag.tag);
                        send_tag(&mut conn.session, stream_id, &tag);
                        while batch < WRITE_BATCH && !keyframe {
                            let Some(Ok(tag)) = tags.try_recv() else { break };
                            batch += tag.tag.len();
                            keyframe = outputs::is_keyframe_tag(&tag.tag);
                            send_tag(&mut conn.session, stream_id, &tag);
                        }
                        let n = conn.flush().await?;
                        viewer.add_bytes(n);
                        if batch >= WRITE_BATCH || keyframe {
                            tokio::task::yield_now().await;
                        }
                    }
                    Err(ended) => {
                        match ended {
                            Ended::Closed => tracing::info!("play ended: stream unpublished"),
                            other => tracing::warn!("play ended: {other}"),
                        }
                        conn.session.send_eof(stream_id);
                        conn.flush().await?;
                        return Ok(());
                    }
                }
            }
            _ = &mut shutdown => {
                // A server that stops ends its streams now: continue_push is for publishers
                // that drop, not for a server going away.
                if let Role::Publishing { guard, .. } = std::mem::replace(&mut role, Role::Idle) {
                    guard.finish();
                }
                return Ok(());
            }
        }
    }
}

/// Acts on every event the session has: policy, media, and a clock that ran out (which ends
/// the session, after what it still had to say is written).
async fn drain(
    conn: &mut Conn,
    role: &mut Role,
    shared: &Shared,
    guard: &ConnGuard,
) -> Result<(), SessionError> {
    while let Some(event) = conn.session.poll_event() {
        match event {
            Event::Connect { .. } => guard.established(),
            Event::TimedOut { reason } => {
                let _ = conn.flush().await;
                return Err(match reason {
                    Timeout::Handshake => {
                        SessionError::HandshakeTimeout(shared.rtmp.handshake_timeout)
                    }
                    _ => SessionError::Idle(shared.rtmp.keep_alive),
                });
            }
            _ => {}
        }
        // Boxed: the hooks' HTTP calls behind a publish or play are deep futures, needed for
        // a moment; inline they would size every session's task, held for as long as it plays.
        Box::pin(on_event(conn, role, event, shared)).await;
    }
    Ok(())
}

enum RoleEvent {
    /// The next tag for a player.
    Tag(Result<FlvTag, Ended>),
    /// A publisher's stream was closed (on_stream_none_reader, the API).
    Closed,
    /// A player was kicked (the API).
    Kicked,
}

/// What a playing or publishing session must act on besides its socket; never resolves for
/// an idle session.
async fn next_for_role(role: &mut Role) -> RoleEvent {
    match role {
        Role::Playing { tags, viewer, .. } => tokio::select! {
            // The kick first (a cheap check), so a player that is always behind still ends.
            biased;
            () = viewer.kicked() => RoleEvent::Kicked,
            tag = tags.recv() => RoleEvent::Tag(tag),
        },
        Role::Publishing { guard, .. } => {
            guard.closed().await;
            RoleEvent::Closed
        }
        Role::Idle => std::future::pending().await,
    }
}

/// Writes one FLV tag to a player as the RTMP message its body is (the body is a slice of the
/// tag every viewer shares; the session copies it once into its chunks).
fn send_tag(session: &mut Session, stream_id: u32, tag: &FlvTag) {
    let body = tag.body();
    match tag.tag_type {
        TAG_VIDEO => session.send_video(stream_id, tag.timestamp, &body),
        TAG_AUDIO => session.send_audio(stream_id, tag.timestamp, &body),
        TAG_SCRIPT => session.send_metadata(stream_id, &body),
        _ => {}
    }
}

fn stream_key(
    shared: &Shared,
    conn: &Conn,
    name: &str,
    query: &str,
) -> Result<StreamKey, media::KeyError> {
    let host = conn
        .tc_url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    let app = conn.app.split('?').next().unwrap_or("");
    StreamKey::from_url(shared.enable_vhost, &format!("/{app}/{name}"), query, host)
}

/// The stream and session a publish or play request names, or why it cannot be served.
fn request(
    conn: &Conn,
    role: &Role,
    shared: &Shared,
    name: &str,
    query: String,
) -> Result<(StreamKey, SessionInfo), String> {
    if !matches!(role, Role::Idle) {
        return Err("session is already publishing or playing".into());
    }
    let key = stream_key(shared, conn, name, &query).map_err(|e| {
        tracing::info!("refused: {e}");
        e.to_string()
    })?;
    tracing::Span::current().record("stream", field::display(&key));
    let info = SessionInfo {
        id: conn.id,
        protocol: Protocol::Rtmp,
        peer: conn.peer,
        local: conn.local,
        params: query,
    };
    Ok((key, info))
}

async fn on_event(conn: &mut Conn, role: &mut Role, event: Event, shared: &Shared) {
    match event {
        Event::Connect { app, tc_url } => {
            // Peer text: `?` escapes it, so it cannot forge a log line.
            tracing::debug!(?app, ?tc_url, "connect");
            conn.app = app;
            conn.tc_url = tc_url;
        }
        Event::PublishRequested {
            stream_id,
            name,
            query,
            ..
        } => {
            let (key, info) = match request(conn, role, shared, &name, query) {
                Ok(request) => request,
                Err(why) => {
                    conn.session.reject_publish(
                        now(),
                        stream_id,
                        "NetStream.Publish.BadName",
                        &why,
                    );
                    conn.closing = true;
                    return;
                }
            };
            match hooks::admit_publish(
                &shared.hooks,
                &shared.registry,
                key,
                info,
                &shared.protocol(),
            )
            .await
            {
                Ok(guard) => {
                    tracing::info!(stream = %guard.key(), "publish started");
                    conn.session.accept_publish(now(), stream_id);
                    *role = Role::Publishing {
                        stream_id,
                        guard,
                        demuxer: Demuxer::default(),
                    };
                }
                Err(refusal) => {
                    tracing::info!("publish refused: {refusal}");
                    let code = match refusal {
                        PublishRefusal::Denied(_) => "NetStream.Publish.BadAuth",
                        _ => "NetStream.Publish.BadName",
                    };
                    conn.session
                        .reject_publish(now(), stream_id, code, &refusal.to_string());
                    conn.closing = true;
                }
            }
        }
        Event::PlayRequested {
            stream_id,
            name,
            query,
            ..
        } => {
            let (key, info) = match request(conn, role, shared, &name, query) {
                Ok(request) => request,
                Err(why) => {
                    conn.session
                        .reject_play(now(), stream_id, "NetStream.Play.Failed", &why);
                    conn.closing = true;
                    return;
                }
            };
            // Tell the player where it stands before a possibly long wait for the stream.
            let _ = conn.flush().await;
            let admitted = hooks::admit_play(
                &shared.hooks,
                &shared.registry,
                &key,
                info,
                shared.max_stream_wait,
            )
            .await;
            let output = match admitted {
                Ok(viewer) => shared
                    .outputs
                    .flv(viewer.key())
                    .await
                    .map(|output| (viewer, output.reader()))
                    .ok_or(PlayRefusal::NotFound),
                Err(refusal) => Err(refusal),
            };
            match output {
                Ok((viewer, tags)) => {
                    tracing::info!("play started");
                    conn.session.accept_play(now(), stream_id);
                    *role = Role::Playing {
                        stream_id,
                        viewer,
                        tags,
                    };
                }
                Err(PlayRefusal::Denied(msg)) => {
                    tracing::info!("play refused: {msg}");
                    conn.session
                        .reject_play(now(), stream_id, "NetStream.Play.BadAuth", &msg);
                    conn.closing = true;
                }
                Err(_) => {
                    tracing::info!("play refused: stream not found");
                    conn.session.reject_play(
                        now(),
                        stream_id,
                        "NetStream.Play.StreamNotFound",
                        "No such stream",
                    );
                    conn.closing = true;
                }
            }
        }
        Event::Metadata { stream_id, data } => {
            if let Role::Publishing {
                stream_id: s,
                guard,
                ..
            } = role
            {
                if *s == stream_id {
                    match decode_metadata(&data) {
                        Some(meta) => guard.set_metadata(meta),
                        None => tracing::debug!("onMetaData not understood; dropped"),
                    }
                }
            }
        }
        Event::Audio {
            stream_id,
            timestamp,
            payload,
        } => {
            publish_media(role, stream_id, timestamp, payload, false);
        }
        Event::Video {
            stream_id,
            timestamp,
            payload,
        } => {
            publish_media(role, stream_id, timestamp, payload, true);
        }
        Event::Unpublished { stream_id } => {
            if matches!(role, Role::Publishing { stream_id: s, .. } if *s == stream_id) {
                tracing::info!("publish ended by the publisher");
                // An explicit unpublish ends the stream now (continue_push is for drops).
                if let Role::Publishing { guard, .. } = std::mem::replace(role, Role::Idle) {
                    guard.finish();
                }
            }
        }
        Event::PlayStopped { stream_id } => {
            if matches!(role, Role::Playing { stream_id: s, .. } if *s == stream_id) {
                tracing::info!("play stopped by the player");
                *role = Role::Idle;
            }
        }
        _ => {}
    }
}

fn publish_media(role: &mut Role, stream_id: u32, timestamp: u32, payload: Bytes, video: bool) {
    let Role::Publishing {
        stream_id: s,
        guard,
        demuxer,
    } = role
    else {
        return;
    };
    if *s != stream_id {
        return;
    }
    let demuxed = if video {
        demuxer.push_video(timestamp, &payload)
    } else {
        demuxer.push_audio(timestamp, &payload)
    };
    let first = match demuxed {
        Ok(first) => first,
        // One undecodable tag is dropped; the stream goes on (a player would skip it too).
        Err(e) => {
            tracing::debug!("tag dropped: {e}");
            return;
        }
    };
    let second = demuxer.pull();
    for event in [first, second].into_iter().flatten() {
        match event {
            DemuxEvent::Track(info) => {
                tracing::info!(
                    codec = ?info.codec,
                    width = info.width,
                    height = info.height,
                    sample_rate = info.sample_rate,
                    "track"
                );
                guard.set_track(info);
            }
            DemuxEvent::Frame { frame, .. } => guard.push(frame),
        }
    }
}
