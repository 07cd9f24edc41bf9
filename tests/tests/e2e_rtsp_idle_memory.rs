//! An idle RTSP connection costs a few KiB of heap, not a 64 KiB read buffer, and a viewer set
//! up over UDP does not add 64 KiB per socket: heap is counted by a wrapper around the system
//! allocator while real sessions sit idle in the in-process server.

use cap::Cap;
use e2e::client::RtmpClient;
use e2e::raw_rtsp::RawRtsp;
use e2e::*;
use media::StreamKey;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

/// Connections opened per measurement; enough to drown the odd allocation elsewhere.
const CONNECTIONS: usize = 64;

/// Bytes the heap grew by while `open` ran, per connection it opened, once the server has
/// settled (the smallest of a few readings, so a transient buffer elsewhere does not count).
async fn heap_per_connection<F, Fut, T>(open: F) -> (usize, Vec<T>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let before = ALLOCATOR.allocated();
    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        held.push(open().await);
    }
    let mut after = usize::MAX;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = after.min(ALLOCATOR.allocated());
    }
    (after.saturating_sub(before) / CONNECTIONS, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_hold_small_buffers() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let addr = server.rtsp_addr.expect("rtsp");

    // A stream that goes live with one keyframe and then sends nothing, so nothing but the
    // connections below makes the heap grow: the sample's AVC sequence header and first frame.
    let sample = bytes::Bytes::from(std::fs::read(sample_flv()).expect("sample"));
    let mut video = rtmp::flv::FlvReader::new(sample)
        .expect("flv")
        .filter_map(Result::ok)
        .filter(|t| t.tag_type == rtmp::flv::TAG_VIDEO);
    let header = video.next().expect("sequence header");
    let keyframe = video.next().expect("keyframe");
    let mut publisher = RtmpClient::connect(server.rtmp_addr.expect("rtmp"), "live").await;
    publisher.publish("idle").await;
    publisher.send_tag(9, 0, &header.body).await;
    publisher.send_tag(9, 0, &keyframe.body).await;
    wait_live(&server, &StreamKey::new("live", "idle").expect("key"), 1).await;
    let url = rtsp_url(&server, "live/idle");

    // Warm up: the stream's shared RTP output and every lazily built part of the server.
    let mut warm = RawRtsp::connect(addr).await;
    assert_eq!(warm.request("DESCRIBE", &url, 1, "").await.status, 200);

    let (idle, _idle) = heap_per_connection(|| async {
        let mut c = RawRtsp::connect(addr).await;
        assert_eq!(c.request("OPTIONS", &url, 1, "").await.status, 200);
        c
    })
    .await;
    let (udp_viewer, _viewers) = heap_per_connection(|| async {
        let mut c = RawRtsp::connect(addr).await;
        assert_eq!(c.request("DESCRIBE", &url, 1, "").await.status, 200);
        let setup = c
            .request(
                "SETUP",
                &format!("{url}/trackID=0"),
                2,
                "Transport: RTP/AVP;unicast;client_port=40000-40001\r\n",
            )
            .await;
        assert_eq!(setup.status, 200);
        c
    })
    .await;
    eprintln!(
        "heap per idle RTSP connection: {idle} bytes; per viewer set up over UDP: {udp_viewer} \
         bytes"
    );
    assert!(
        idle < 16 * 1024,
        "an idle connection holds {idle} bytes of heap"
    );
    assert!(
        udp_viewer < 32 * 1024,
        "a viewer set up over UDP holds {udp_viewer} bytes of heap"
    );
    server.shutdown().await;
}
