//! `general.mergeWriteMS`: RTMP and HTTP-FLV viewers get a stream's tags once per merge window
//! in one write, and still play it whole. ffmpeg publishes; ffprobe and ffmpeg play it back
//! over RTMP and HTTP-FLV; a raw HTTP-FLV reader counts the chunks (one per write on the
//! socket path) against a server that does not merge.

use e2e::*;
use media::StreamKey;
use server::Server;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// HTTP chunks and FLV tags of a play whose chunk-size line arrived in the window from
/// `from` to `until` after the request.
async fn chunks_and_tags(server: &Server, from: Duration, until: Duration) -> (usize, usize) {
    let addr = server.http_addr.expect("http");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(b"GET /live/obs.live.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let start = Instant::now();
    // Every byte, and when the read that brought it came.
    let mut body = Vec::new();
    let mut arrivals: Vec<(usize, Duration)> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while start.elapsed() < until {
        let left = until.saturating_sub(start.elapsed());
        let Ok(read) = tokio::time::timeout(left, socket.read(&mut buf)).await else {
            break;
        };
        let n = read.expect("read");
        assert_ne!(n, 0, "the server ended the play");
        arrivals.push((body.len(), start.elapsed()));
        body.extend_from_slice(&buf[..n]);
    }
    let head_end = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4;
    assert!(body.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let arrived = |offset: usize| {
        arrivals
            .iter()
            .rev()
            .find(|(at, _)| *at <= offset)
            .map_or(Duration::ZERO, |(_, t)| *t)
    };
    // Walk the chunks; the FLV body (after its 13-byte header) is a run of tags.
    let (mut at, mut chunks, mut tags) = (head_end, 0, 0);
    let mut flv = Vec::new();
    let mut counted_from = None;
    while let Some(line_end) = body[at..].windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&body[at..at + line_end]).expect("size line");
        let size = usize::from_str_radix(size_text, 16).expect("hex size");
        let data = at + line_end + 2;
        if data + size + 2 > body.len() {
            break; // cut by the end of the window
        }
        let when = arrived(at);
        if when >= from {
            chunks += 1;
            counted_from.get_or_insert(flv.len());
        }
        flv.extend_from_slice(&body[data..data + size]);
        at = data + size + 2;
    }
    // Tags in the counted chunks: walk from the FLV header and count those that start at or
    // after the first counted chunk's bytes.
    let counted_from = counted_from.expect("chunks in the window");
    let mut tag = 13;
    while tag + 11 <= flv.len() {
        let size = usize::from(flv[tag + 1]) << 16
            | usize::from(flv[tag + 2]) << 8
            | usize::from(flv[tag + 3]);
        if tag >= counted_from {
            tags += 1;
        }
        tag += 11 + size + 4;
    }
    (chunks, tags)
}

async fn serve(merge_write_ms: u32) -> (Server, tokio::process::Child) {
    let server = start_server_with(|o| o.flv_merge_write_ms = merge_write_ms).await;
    let publisher = ffmpeg_publish(&rtmp_url(&server, "live/obs"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "obs").expect("key"), 2).await;
    (server, publisher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_writes_play_whole_in_fewer_writes() {
    if !have_ffmpeg() {
        return;
    }
    let window = (Duration::from_secs(1), Duration::from_secs(4));
    let (server, mut publisher) = serve(0).await;
    let (unmerged_chunks, unmerged_tags) = chunks_and_tags(&server, window.0, window.1).await;
    let _ = publisher.kill().await;
    server.shutdown().await;

    let (server, mut publisher) = serve(200).await;
    // Both players see exactly the stream's two tracks and decode it.
    for url in [
        rtmp_url(&server, "live/obs"),
        http_url(&server, "live/obs.live.flv"),
    ] {
        let probe = ffprobe(&url, 0).await;
        assert_eq!(codecs(&probe), ["aac", "h264"], "{url}: {probe}");
        assert!(decode_frames(&url, 60).await >= 60, "{url}");
    }
    let (chunks, tags) = chunks_and_tags(&server, window.0, window.1).await;
    let _ = publisher.kill().await;
    server.shutdown().await;

    // Unmerged, a write is a tag or the few that came together; merged, 3 s of media is
    // about 15 windows of 200 ms (a keyframe closes one early, and ends a write), carrying as
    // many tags.
    eprintln!("unmerged: {unmerged_chunks} chunks, {unmerged_tags} tags; merged: {chunks} chunks, {tags} tags");
    assert!(chunks <= 30, "{chunks} chunks merged");
    assert!(
        chunks * 3 <= unmerged_chunks,
        "{chunks} chunks merged, {unmerged_chunks} unmerged"
    );
    assert!(tags >= 100, "{tags} tags merged");
    assert!(
        tags * 10 >= unmerged_tags * 9,
        "{tags} tags merged, {unmerged_tags} unmerged"
    );
}
