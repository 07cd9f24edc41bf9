//! Two nodes and one NATS as one system: a stream published on A is listed by B's
//! getMediaList `cluster=1`, plays from B over RTMP, HTTP-FLV and HLS (B pulls it from A as a
//! proxy, an ordinary on_play on A, and on_stream_not_found never fires on B), and its end on
//! A ends B's viewers and its directory entry.

use e2e::api::Api;
use e2e::backend::Backend;
use e2e::client::play_rtmp;
use e2e::nats::{have_nats_server, NatsServer};
use e2e::{
    codecs, ffmpeg_publish, ffmpeg_view, ffprobe, have_ffmpeg, http_url, rtmp_url,
    start_server_from, wait_live,
};
use media::StreamKey;
use serde_json::{json, Value};
use server::Server;
use std::time::Duration;
use tokio::time::Instant;

async fn node(nats: &NatsServer, id: u32, backend: &Backend) -> Server {
    let mut config = server::config::Config::default();
    config.cluster.nats = Some(nats.url());
    config.events.node = id;
    let hooks = backend.config();
    start_server_from(config, move |o| o.hooks = hooks).await
}

/// B's getMediaList `cluster=1` entries of other nodes, polled until `want` says so.
async fn cluster_list(api: &Api, what: &str, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = api.call("getMediaList", &[("cluster", "1")]).await;
        let remote: Vec<Value> = list["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter(|e| e.get("node").is_some())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if want(&remote) {
            return remote;
        }
        assert!(Instant::now() < deadline, "{what}: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_one_node_plays_from_another() {
    if !have_ffmpeg() || !have_nats_server() {
        return;
    }
    let nats = NatsServer::start().await;
    let (backend_a, backend_b) = (Backend::start().await, Backend::start().await);
    let a = node(&nats, 1, &backend_a).await;
    let b = node(&nats, 2, &backend_b).await;
    let a_rtmp = a.rtmp_addr.expect("rtmp");

    let key = StreamKey::new("live", "c").expect("key");
    let mut publisher = ffmpeg_publish(&rtmp_url(&a, "live/c"), &["-stream_loop", "-1"]);
    wait_live(&a, &key, 2).await;
    // A second stream, to compare a first play on the origin with one through the edge.
    let timing = StreamKey::new("live", "t").expect("key");
    let _timing_publisher = ffmpeg_publish(&rtmp_url(&a, "live/t"), &["-stream_loop", "-1"]);
    wait_live(&a, &timing, 2).await;

    let api_b = Api::of(&b);
    let remote = cluster_list(&api_b, "B lists A's streams", |r| r.len() == 2).await;
    assert_eq!(
        remote[0],
        json!({
            "vhost": "__defaultVhost__", "app": "live", "stream": "c", "schema": "rtmp",
            "originUrl": format!("rtmp://{a_rtmp}/live/c"), "node": 1,
        })
    );
    assert_eq!(remote[1]["stream"], "t");

    let first_frame = |addr| async move {
        let start = Instant::now();
        let got = play_rtmp(addr, "live", "t", Duration::from_secs(15), |r| {
            !r.video.is_empty()
        })
        .await;
        assert!(!got.video.is_empty(), "a first frame from {addr}");
        start.elapsed()
    };
    let origin = first_frame(a_rtmp).await;
    let edge = first_frame(b.rtmp_addr.expect("rtmp")).await;
    eprintln!(
        "first frame: origin play {origin:?}, edge play (pull from the origin first) {edge:?}, \
         extra {:?}",
        edge.saturating_sub(origin)
    );

    // Every player kind on B, each getting exactly the origin's tracks.
    let urls = [
        rtmp_url(&b, "live/c"),
        http_url(&b, "live/c.live.flv"),
        http_url(&b, "live/c/hls.m3u8"),
    ];
    let (rtmp, flv, hls) = tokio::join!(
        ffprobe(&urls[0], 0),
        ffprobe(&urls[1], 0),
        ffprobe(&urls[2], 0),
    );
    for (player, probe) in [("RTMP", rtmp), ("HTTP-FLV", flv), ("HLS", hls)] {
        assert_eq!(codecs(&probe), ["aac", "h264"], "{player} from B: {probe}");
    }
    let pulled = b.registry.stream(&key).expect("B has the stream");
    assert_eq!(hooks::origin_type(pulled.publisher.protocol), (4, "pull"));
    assert_eq!(
        pulled.origin_url.as_deref(),
        Some(format!("rtmp://{a_rtmp}/live/c").as_str())
    );
    // The pull is an ordinary play on A, which A's on_play decided.
    let plays = backend_a
        .wait_for("on_play", 1, Duration::from_secs(5), |c| {
            c.body["stream"] == "c"
        })
        .await;
    assert_eq!(plays[0].body["schema"], "rtmp");
    assert_eq!(plays[0].body["ip"], "127.0.0.1");
    assert!(
        backend_b.calls("on_stream_not_found").is_empty(),
        "B found it in the cluster"
    );
    // B's own pull is not in the directory: A stays the one origin.
    let remote = cluster_list(&api_b, "B still lists A's", |r| r.len() == 2).await;
    assert!(remote.iter().all(|r| r["node"] == 1), "{remote:?}");

    // The end on A ends B's viewers and the directory entry.
    let mut viewer_rtmp = ffmpeg_view(&rtmp_url(&b, "live/c"));
    let mut viewer_flv = ffmpeg_view(&http_url(&b, "live/c.live.flv"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.registry.stream(&key).map_or(0, |s| s.readers) < 2 {
        assert!(Instant::now() < deadline, "B's two viewers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.kill().await.expect("stop the publisher on A");
    for (player, viewer) in [("RTMP", &mut viewer_rtmp), ("HTTP-FLV", &mut viewer_flv)] {
        assert!(
            e2e::exits_within(viewer, Duration::from_secs(20)).await,
            "B's {player} viewer ends with A's stream"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.registry.is_live(&key) {
        assert!(Instant::now() < deadline, "B's pulled stream ends");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let remote = cluster_list(&api_b, "A's ended stream leaves the directory", |r| {
        r.len() == 1
    })
    .await;
    assert_eq!(remote[0]["stream"], "t");
    b.shutdown().await;
    a.shutdown().await;
}
