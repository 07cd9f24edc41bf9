//! Seed 004 over the NATS provider: a publish (ffmpeg) and a play (ffprobe) land in the
//! JetStream stream it created, on `{subject}.{event}`, every field and type the seed's.

use e2e::nats::{have_nats_server, stream_messages, NatsServer};
use e2e::{
    codecs, envelope, ffmpeg_publish, ffprobe, have_ffmpeg, rtmp_url, start_server_from, wait_live,
};
use media::StreamKey;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_and_a_play_reach_jetstream_as_seed_004_envelopes() {
    if !have_ffmpeg() || !have_nats_server() {
        return;
    }
    let nats = NatsServer::start().await;
    let mut config = server::config::Config::default();
    config.events.nats = Some(nats.url());
    config.events.node = 3;
    let server = start_server_from(config, |_| {}).await;

    let key = StreamKey::new("live", "nats").expect("key");
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/nats"), &[]);
    wait_live(&server, &key, 2).await;
    let probe = ffprobe(&rtmp_url(&server, "live/nats"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"]);
    assert!(e2e::exits_within(&mut publisher, Duration::from_secs(30)).await);

    // Everything the provider got acked is in the stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.events.figures()[0].queued > 0 || server.events.figures()[0].sent < 18 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            server.events.figures()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = nats.client().await;
    let info = async_nats::jetstream::new(client.clone())
        .get_stream("ferrostream")
        .await
        .expect("the provider created stream ferrostream")
        .info()
        .await
        .expect("stream info")
        .clone();
    assert_eq!(info.config.subjects, ["ferrostream.>"]);
    assert_eq!(info.config.max_age, Duration::from_secs(24 * 3600));
    assert_eq!(info.config.max_bytes, 256 << 20);

    let messages = stream_messages(&client, "ferrostream", Duration::from_secs(1)).await;
    let figures = &server.events.figures()[0];
    assert_eq!(figures.provider, "nats");
    assert_eq!(
        messages.len() as u64,
        figures.sent,
        "each acked envelope stored once"
    );
    let mut envs = Vec::new();
    for (subject, env) in messages {
        envelope::check(&env, 3);
        assert_eq!(
            subject,
            format!("ferrostream.{}", env["event"].as_str().unwrap_or(""))
        );
        envs.push(env);
    }
    envelope::check_publish_and_play(&envs, "__defaultVhost__/live/nats");
    server.shutdown().await;
}
