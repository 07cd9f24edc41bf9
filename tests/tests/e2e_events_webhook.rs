//! Seed 004 over the webhook provider: a publish (ffmpeg) and a play (ffprobe) give envelopes
//! whose every field and type is the seed's, signed like the hooks, in the order they
//! happened; `/metrics` counts them.

use e2e::backend::Backend;
use e2e::{
    codecs, envelope, ffmpeg_publish, ffprobe, have_ffmpeg, rtmp_url, start_server_from, wait_live,
};
use media::StreamKey;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_and_a_play_reach_the_webhook_as_seed_004_envelopes() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let mut config = server::config::Config::default();
    config.events.webhook = Some(format!("http://{}/collector/ingest", backend.addr));
    config.events.node = 7;
    config.hook.sign_token = server::config::Secret::new("events-token");
    let server = start_server_from(config, |_| {}).await;

    let key = StreamKey::new("live", "ev").expect("key");
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/ev"), &[]);
    wait_live(&server, &key, 2).await;
    let probe = ffprobe(&rtmp_url(&server, "live/ev"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"]);
    assert!(
        e2e::exits_within(&mut publisher, Duration::from_secs(30)).await,
        "the 10 s publish ends"
    );
    // Both sessions' last envelope: the viewer's and the publisher's disconnect.
    backend
        .wait_for("ingest", 2, Duration::from_secs(20), |c| {
            c.body["event"] == "session" && c.body["payload"]["state"] == "disconnected"
        })
        .await;

    let calls = backend.calls("ingest");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut envs: Vec<Value> = Vec::new();
    for call in &calls {
        assert_eq!(call.path, "/collector/ingest");
        assert_eq!(
            call.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let signature = call
            .headers
            .get(hooks::sign::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        hooks::sign::verify(
            "events-token",
            &call.path,
            &call.query,
            signature,
            &call.raw,
            now,
            120,
        )
        .expect("signed like the hooks");
        envelope::check(&call.body, 7);
        envs.push(call.body.clone());
    }
    envelope::check_publish_and_play(&envs, "__defaultVhost__/live/ev");
    // In the order they happened: ts never goes back, and every uuid is new.
    assert!(envs
        .windows(2)
        .all(|w| w[0]["ts"].as_u64() <= w[1]["ts"].as_u64()));
    let mut uuids: Vec<&str> = envs.iter().filter_map(|e| e["uuid"].as_str()).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), envs.len());

    let figures = server.events.figures();
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].provider, "webhook");
    assert_eq!(figures[0].sent, envs.len() as u64);
    assert_eq!(figures[0].dropped, 0);
    let metrics = reqwest::get(e2e::http_url(&server, "metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(&format!(
            "ferrostream_events_sent_total{{provider=\"webhook\"}} {}",
            envs.len()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferrostream_events_dropped_total{provider=\"webhook\"} 0"),
        "{metrics}"
    );
    server.shutdown().await;
}
