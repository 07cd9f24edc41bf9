//! HTTP-FLV plays served on the socket itself, outside hyper.
//!
//! A live FLV response is one endless chunked body of tags that every viewer shares. Through
//! hyper each such connection keeps a 16 KiB read buffer and an 8 KiB header buffer for as long
//! as it plays, and each tag passes through its body channel and encoder: for a thousand viewers
//! that is most of the server's memory and a good part of its CPU. So the listener looks at a
//! new connection's first request before hyper does (`peek`, nothing consumed): a complete
//! `GET ….live.flv HTTP/1.1` head without a body or an `Upgrade` is served here, with the
//! router's admission ([`api::flv::open_live_flv`]: the stream name, on_play, the stream's FLV
//! output) and the router's headers; the tags go out as chunks, what is ready gathered into one
//! `writev`. Anything else (WS-FLV, HTTP/1.0, a head split over several reads, any other path)
//! is left in the socket for hyper, so this path changes nothing but the cost.
//!
//! Bounded like the rest of the listener: the head is read only from what the kernel holds
//! (at most [`HEAD_MAX`] bytes and [`HEADERS_MAX`] headers, else hyper gets it), writes fail
//! after the listener's write timeout through [`StallGuard`], and what a viewer sends after its
//! request is read and discarded through a small stack buffer until it closes.

use crate::stall::StallGuard;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use bytes::Bytes;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument;

/// The longest request head served here; a longer one goes to hyper.
const HEAD_MAX: usize = 2048;
/// The most request headers served here; more go to hyper.
const HEADERS_MAX: usize = 32;
/// Bytes of ready tags gathered into one write.
const WRITE_BATCH: usize = 128 * 1024;
/// Tags gathered into one write at most (each is one `IoSlice`; Linux takes 1024).
const WRITE_SLICES: usize = 64;
/// The largest error body passed on from the router's answer.
const ERROR_BODY_MAX: usize = 4096;

/// A request head this path serves.
pub(super) struct Head {
    len: usize,
    path: String,
    query: String,
    headers: HeaderMap,
}

/// The first request of `socket`, if it is an HTTP-FLV play this path serves; `None` leaves it
/// to hyper. Nothing is consumed. The socket is readable, so this does not wait; the buffer is
/// on the heap only for the moment, not a part of the connection's task.
pub(super) async fn peek_head(socket: &TcpStream) -> Option<Head> {
    let mut buf = vec![0u8; HEAD_MAX];
    let n = socket.peek(&mut buf).await.ok()?;
    parse_head(buf.get(..n)?)
}

/// The fuzz target's checks on [`parse_head`] (see `crate::fuzzing`).
pub(crate) fn fuzz_head(data: &[u8]) {
    let data = data.get(..HEAD_MAX).unwrap_or(data);
    if let Some(head) = parse_head(data) {
        assert!(head.len <= data.len());
        // httparse ends a head at an empty line, CRLF or bare LF either side.
        assert!(data.get(..head.len).is_some_and(|h| h.ends_with(b"\n")));
        assert!(api::flv::is_live_flv(&head.path));
        assert!(head.headers.len() <= HEADERS_MAX);
    }
}

/// Parses `bytes` as a complete HTTP/1.1 `GET` of a live FLV path with no body and no upgrade.
fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = req.parse(bytes).ok()? else {
        return None;
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return None;
    }
    let uri: Uri = req.path?.parse().ok()?;
    if !api::flv::is_live_flv(uri.path()) {
        return None;
    }
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    let has_body = map.contains_key(axum::http::header::TRANSFER_ENCODING)
        || map
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body || map.contains_key(axum::http::header::UPGRADE) {
        return None;
    }
    Some(Head {
        len,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: map,
    })
}

/// Serves `socket`'s first request, `head` (as [`peek_head`] saw it), here, then closes it.
pub(super) async fn serve(
    socket: TcpStream,
    head: Head,
    peer: SocketAddr,
    state: &api::AppState,
    write_timeout: std::time::Duration,
    shutdown: &mut watch::Receiver<bool>,
    established: impl FnOnce(),
) {
    // The head is in the kernel's buffer (peek saw all of it): consume exactly it.
    let mut left = head.len;
    let mut sink = vec![0u8; head.len];
    while left > 0 {
        match socket.try_read(sink.get_mut(..left).unwrap_or_default()) {
            Ok(0) => return,
            Ok(n) => left -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if socket.readable().await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    drop(sink);
    established();
    let mut socket = StallGuard::new(socket, write_timeout);
    let opened = api::flv::open_live_flv(state, peer, &head.path, &head.query, &head.headers).await;
    drop(head);
    let mut live = match opened {
        Ok(live) => live,
        Err(resp) => {
            let _ = refuse(&mut socket, resp).await;
            return;
        }
    };
    let span = live.span().clone();
    async {
        let ended = stream(&mut socket, &mut live, shutdown).await;
        if let Err(e) = ended {
            tracing::debug!("HTTP-FLV connection ended: {e}");
        }
    }
    .instrument(span)
    .await;
}

/// The router's refusal (status, its headers, a short body), then the connection closes.
async fn refuse(
    socket: &mut StallGuard<TcpStream>,
    resp: axum::response::Response,
) -> io::Result<()> {
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, ERROR_BODY_MAX)
        .await
        .unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
    use axum::http::header;
    let ours = [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::DATE,
    ];
    for (name, value) in &parts.headers {
        if ours.contains(name) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "access-control-allow-origin: *\r\ncontent-length: {}\r\nconnection: close\r\ndate: {}\r\n\r\n",
        body.len(),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    ));
    write_all(
        socket,
        &mut [IoSlice::new(head.as_bytes()), IoSlice::new(&body)],
    )
    .await?;
    socket.shutdown().await
}

/// The response head, then the play's bytes as chunks until it ends (the last chunk is then
/// written), the viewer goes away, or the server stops.
async fn stream(
    socket: &mut StallGuard<TcpStream>,
    live: &mut api::flv::LiveFlv,
    shutdown: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {}\r\ncontent-type: video/x-flv\r\ncache-control: no-cache\r\n\
         access-control-allow-origin: *\r\ntransfer-encoding: chunked\r\ndate: {}\r\n\r\n",
        StatusCode::OK,
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    socket.write_all(head.as_bytes()).await?;
    let closed = shutdown.changed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            biased;
            _ = &mut closed => return Ok(()),
            ready = socket.get_ref().readable() => {
                ready?;
                // A player sends nothing after its request; whatever comes is dropped, and
                // the end of its stream ends the play.
                let mut sink = [0u8; 512];
                match socket.get_ref().try_read(&mut sink) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            next = live.next() => {
                let Some(first) = next else {
                    socket.write_all(b"0\r\n\r\n").await?;
                    return Ok(());
                };
                // Whatever else is ready goes out in the same chunk and the same write; a tag
                // alone (a viewer keeping up) needs no list. A keyframe ends the write and the
                // task yields after it or a full one: viewers joining together each get their
                // first keyframe before any gets the rest of its GOP.
                let mut keyframe = outputs::is_keyframe_tag(&first);
                let second = if keyframe { None } else { live.try_next() };
                let Some(second) = second else {
                    write_chunk(socket, std::slice::from_ref(&first)).await?;
                    if keyframe {
                        tokio::task::yield_now().await;
                    }
                    continue;
                };
                keyframe = outputs::is_keyframe_tag(&second);
                let mut batch = vec![first, second];
                let mut len: usize = batch.iter().map(Bytes::len).sum();
                while len < WRITE_BATCH && batch.len() < WRITE_SLICES && !keyframe {
                    let Some(more) = live.try_next() else { break };
                    len += more.len();
                    keyframe = outputs::is_keyframe_tag(&more);
                    batch.push(more);
                }
                write_chunk(socket, &batch).await?;
                if keyframe || len >= WRITE_BATCH || batch.len() >= WRITE_SLICES {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

/// One chunk (RFC 9112 §7.1) of `batch`'s bytes, in one vectored write where the socket takes
/// it; one tag allocates nothing.
async fn write_chunk(socket: &mut StallGuard<TcpStream>, batch: &[Bytes]) -> io::Result<()> {
    let len: usize = batch.iter().map(Bytes::len).sum();
    // At most 16 hex digits and CRLF.
    let mut size = [0u8; 18];
    let mut line = io::Cursor::new(&mut size[..]);
    io::Write::write_fmt(&mut line, format_args!("{len:X}\r\n"))?;
    let line_len = usize::try_from(line.position()).unwrap_or(0);
    let size = size.get(..line_len).unwrap_or_default();
    if let [one] = batch {
        let mut slices = [IoSlice::new(size), IoSlice::new(one), IoSlice::new(b"\r\n")];
        return write_all(socket, &mut slices).await;
    }
    let mut slices = Vec::with_capacity(batch.len() + 2);
    slices.push(IoSlice::new(size));
    slices.extend(batch.iter().map(|b| IoSlice::new(b)));
    slices.push(IoSlice::new(b"\r\n"));
    write_all(socket, &mut slices).await
}

/// Writes every slice, however much each write takes.
async fn write_all(
    socket: &mut StallGuard<TcpStream>,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !slices.is_empty() {
        let n = socket.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Option<Head> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn a_plain_flv_play_is_taken() {
        let h =
            head("GET /live/a.live.flv?token=1 HTTP/1.1\r\nHost: x:8080\r\nUser-Agent: t\r\n\r\n")
                .expect("taken");
        assert_eq!(h.path, "/live/a.live.flv");
        assert_eq!(h.query, "token=1");
        assert_eq!(
            h.headers.get("host").map(|v| v.as_bytes()),
            Some(&b"x:8080"[..])
        );
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.len, 70);
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        for text in [
            // Another path, the API, metrics under a flv name.
            "GET /live/a.live.ts HTTP/1.1\r\n\r\n",
            "GET /index/api/x.live.flv HTTP/1.1\r\n\r\n",
            // WS-FLV, another method, HTTP/1.0, a body.
            "GET /live/a.live.flv HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "POST /live/a.live.flv HTTP/1.1\r\n\r\n",
            "HEAD /live/a.live.flv HTTP/1.1\r\n\r\n",
            "GET /live/a.live.flv HTTP/1.0\r\n\r\n",
            "GET /live/a.live.flv HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /live/a.live.flv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            // Incomplete, malformed, a bad header value.
            "GET /live/a.live.flv HTTP/1.1\r\nHost: x\r\n",
            "GET /live/a.live.flv\r\n\r\n",
            "GET /live/a b.live.flv HTTP/1.1\r\n\r\n",
            "GET /live/a.live.flv HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        ] {
            assert!(head(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn too_many_headers_go_to_hyper() {
        let mut text = String::from("GET /live/a.live.flv HTTP/1.1\r\n");
        for i in 0..=HEADERS_MAX {
            text.push_str(&format!("X-{i}: v\r\n"));
        }
        text.push_str("\r\n");
        assert!(head(&text).is_none());
    }
}
