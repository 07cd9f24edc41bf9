//! A stream no node of the cluster has is not found: B looks in the directory, finds nothing,
//! fires on_stream_not_found, and its players get `NetStream.Play.StreamNotFound` (RTMP) and
//! 404 (HTTP-FLV) once `maxStreamWaitMS` has passed. A stream another node has but whose
//! on_play refuses the edge's pull is not played either: the origin's auth decides.

use e2e::backend::{Backend, Reply};
use e2e::client::RtmpClient;
use e2e::nats::{have_nats_server, NatsServer};
use e2e::{ffmpeg_publish, have_ffmpeg, http_url, rtmp_url, start_server_from, wait_live};
use media::StreamKey;
use serde_json::json;
use server::Server;
use std::time::Duration;

async fn node(nats: &NatsServer, id: u32, backend: &Backend) -> Server {
    let mut config = server::config::Config::default();
    config.cluster.nats = Some(nats.url());
    config.events.node = id;
    let hooks = backend.config();
    start_server_from(config, move |o| {
        o.hooks = hooks;
        o.max_stream_wait = Duration::from_secs(2);
    })
    .await
}

/// Nodes 1 and 2 on `nats`, once both reach the directory.
async fn two_nodes(
    nats: &NatsServer,
    backend_a: &Backend,
    backend_b: &Backend,
) -> (Server, Server) {
    let a = node(nats, 1, backend_a).await;
    let b = node(nats, 2, backend_b).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(a.cluster.as_ref().is_some_and(|c| c.connected())
        && b.cluster.as_ref().is_some_and(|c| c.connected()))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both nodes reach the directory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_no_node_has_is_not_found() {
    if !have_nats_server() {
        return;
    }
    let nats = NatsServer::start().await;
    let (backend_a, backend_b) = (Backend::start().await, Backend::start().await);
    let (a, b) = two_nodes(&nats, &backend_a, &backend_b).await;

    let rtmp = async {
        let mut client = RtmpClient::connect(b.rtmp_addr.expect("rtmp"), "live").await;
        client.try_play("nowhere").await
    };
    let flv = async {
        reqwest::get(http_url(&b, "live/nowhere-flv.live.flv"))
            .await
            .expect("GET")
    };
    let (rtmp, flv) = tokio::join!(rtmp, flv);
    let (code, _) = rtmp.expect_err("the RTMP play is refused");
    assert_eq!(code, "NetStream.Play.StreamNotFound");
    assert_eq!(flv.status(), reqwest::StatusCode::NOT_FOUND);

    let calls = backend_b
        .wait_for("on_stream_not_found", 2, Duration::from_secs(5), |_| true)
        .await;
    let mut streams: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.body["stream"].as_str())
        .collect();
    streams.sort();
    assert_eq!(streams, ["nowhere", "nowhere-flv"]);
    // Neither node pulled anything, and A was not asked.
    assert!(b.registry.streams().is_empty());
    assert!(backend_a.calls("on_play").is_empty());
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origins_on_play_decides_an_edge_pull() {
    if !have_ffmpeg() || !have_nats_server() {
        return;
    }
    let nats = NatsServer::start().await;
    let (backend_a, backend_b) = (Backend::start().await, Backend::start().await);
    let (a, b) = two_nodes(&nats, &backend_a, &backend_b).await;
    let key = StreamKey::new("live", "private").expect("key");
    let mut publisher = ffmpeg_publish(&rtmp_url(&a, "live/private"), &["-stream_loop", "-1"]);
    wait_live(&a, &key, 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let cluster_b = b.cluster.as_ref().expect("B is in the cluster");
    while cluster_b.remote_streams().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "B sees A's stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    backend_a.reply(
        "on_play",
        Reply::Json(json!({"code": -1, "msg": "not for edges"})),
    );

    let mut client = RtmpClient::connect(b.rtmp_addr.expect("rtmp"), "live").await;
    let (code, _) = client
        .try_play("private")
        .await
        .expect_err("the edge's play is refused");
    assert_eq!(code, "NetStream.Play.StreamNotFound");
    // A was asked about B's pull and refused it; B then asked its own backend.
    let plays = backend_a
        .wait_for("on_play", 1, Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(plays[0].body["stream"], "private");
    assert_eq!(plays[0].body["schema"], "rtmp");
    let missing = backend_b
        .wait_for("on_stream_not_found", 1, Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(missing[0].body["stream"], "private");
    assert!(b.registry.streams().is_empty(), "B holds no pulled copy");
    publisher.kill().await.expect("kill the publisher");
    b.shutdown().await;
    a.shutdown().await;
}
