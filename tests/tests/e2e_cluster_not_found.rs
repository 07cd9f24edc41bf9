//! A stream no node of the cluster has is not found: B looks in the directory, finds nothing,
//! fires on_stream_not_found, and its players get `NetStream.Play.StreamNotFound` (RTMP) and
//! 404 (HTTP-FLV) once `maxStreamWaitMS` has passed.

use e2e::backend::Backend;
use e2e::client::RtmpClient;
use e2e::nats::{have_nats_server, NatsServer};
use e2e::{http_url, start_server_from};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_no_node_has_is_not_found() {
    if !have_nats_server() {
        return;
    }
    let nats = NatsServer::start().await;
    let (backend_a, backend_b) = (Backend::start().await, Backend::start().await);
    let a = node(&nats, 1, &backend_a).await;
    let b = node(&nats, 2, &backend_b).await;
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
