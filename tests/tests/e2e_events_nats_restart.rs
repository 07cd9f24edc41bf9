//! NATS goes down while viewers come and go: their envelopes wait in the provider's buffer and
//! reach the stream once NATS is back, in order, none lost and none twice.

use e2e::nats::{have_nats_server, stream_messages, NatsServer};
use e2e::{envelope, ffmpeg_publish, ffprobe, have_ffmpeg, rtmp_url, start_server_from, wait_live};
use media::StreamKey;
use std::time::Duration;

async fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_of_a_nats_outage_arrive_after_it_in_order() {
    if !have_ffmpeg() || !have_nats_server() {
        return;
    }
    let mut nats = NatsServer::start().await;
    let mut config = server::config::Config::default();
    config.events.nats = Some(nats.url());
    let server = start_server_from(config, |_| {}).await;
    let figures = || server.events.figures()[0].clone();

    let key = StreamKey::new("live", "outage").expect("key");
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/outage"), &["-stream_loop", "-1"]);
    wait_live(&server, &key, 2).await;
    wait_until(
        "the publish's envelopes acked",
        Duration::from_secs(20),
        || {
            let f = figures();
            f.sent >= 5 && f.queued == 0
        },
    )
    .await;
    let before = figures().sent;

    nats.down().await;
    for _ in 0..3 {
        ffprobe(&rtmp_url(&server, "live/outage"), 0).await;
    }
    // Three viewers, eight envelopes each, waiting for NATS.
    wait_until(
        "the outage's envelopes buffered",
        Duration::from_secs(10),
        || figures().queued >= 24,
    )
    .await;
    assert!(
        figures().sent <= before + 1,
        "nothing is acked while NATS is down"
    );

    nats.up().await;
    wait_until(
        "the buffer delivered after the outage",
        Duration::from_secs(60),
        || figures().queued == 0,
    )
    .await;
    publisher.kill().await.expect("stop ffmpeg");
    wait_until(
        "the stream's end delivered",
        Duration::from_secs(30),
        || {
            !server.registry.is_live(&key)
                && figures().queued == 0
                && figures().sent >= before + 24 + 5
        },
    )
    .await;

    let client = nats.client().await;
    let messages = stream_messages(&client, "ferrostream", Duration::from_secs(1)).await;
    let f = figures();
    assert_eq!(f.dropped, 0);
    assert_eq!(
        messages.len() as u64,
        f.sent,
        "every envelope stored, and once"
    );
    let envs: Vec<_> = messages.into_iter().map(|(_, env)| env).collect();
    for env in &envs {
        envelope::check(env, 0);
    }
    assert!(
        envs.windows(2)
            .all(|w| w[0]["ts"].as_u64() <= w[1]["ts"].as_u64()),
        "stored in the order they happened"
    );
    let viewers: Vec<u64> = envs
        .iter()
        .filter(|e| e["event"] == "peer" && e["payload"]["event"] == "peer_joined")
        .filter_map(|e| e["payload"]["session"].as_u64())
        .skip(1)
        .collect();
    assert_eq!(viewers.len(), 3, "the three viewers of the outage");
    for viewer in viewers {
        assert_eq!(
            envelope::sequence(&envs, viewer),
            [
                "session:connected",
                "peer:peer_joined",
                "local_track:local_track_attached",
                "local_track:local_track_attached",
                "local_track:local_track_detached",
                "local_track:local_track_detached",
                "peer:peer_leaved",
                "session:disconnected",
            ]
        );
    }
    server.shutdown().await;
}
