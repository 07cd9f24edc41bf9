//! A webhook that answers each envelope after 2 s holds up the events, not the media: a play
//! starts while the provider's buffer is backed up, and gets its first frame as usual.

use e2e::backend::{Backend, Reply};
use e2e::client::play_rtmp;
use e2e::{ffmpeg_publish, have_ffmpeg, start_server_from, wait_live};
use media::StreamKey;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_does_not_slow_a_play() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    backend.reply(
        "slow",
        Reply::Delay(Duration::from_secs(2), Box::new(Reply::Json(json!({})))),
    );
    let mut config = server::config::Config::default();
    config.events.webhook = Some(format!("http://{}/slow", backend.addr));
    let server = start_server_from(config, |_| {}).await;

    let key = StreamKey::new("live", "slow").expect("key");
    let _publisher = ffmpeg_publish(
        &e2e::rtmp_url(&server, "live/slow"),
        &["-stream_loop", "-1"],
    );
    wait_live(&server, &key, 2).await;
    // The publish's envelopes are still waiting behind the first, unanswered POST.
    let queued = server.events.figures()[0].queued;
    assert!(queued >= 3, "the webhook is behind: {queued} waiting");

    let rtmp = server.rtmp_addr.expect("rtmp");
    let start = Instant::now();
    let got = play_rtmp(rtmp, "live", "slow", Duration::from_secs(10), |r| {
        !r.video.is_empty()
    })
    .await;
    let first_frame = start.elapsed();
    assert!(!got.video.is_empty(), "the play got no video within 10 s");
    assert!(got.video[0].keyframe, "a play starts at a keyframe");
    let figures = &server.events.figures()[0];
    eprintln!(
        "first frame of a play with a 2 s webhook behind: {first_frame:?}; the provider has \
         sent {} and holds {}",
        figures.sent, figures.queued
    );
    assert!(
        figures.queued > 0,
        "the play's envelopes wait behind the slow webhook"
    );
    assert_eq!(figures.dropped, 0);
    // The webhook gets them all the same, in time.
    backend
        .wait_for("slow", 3, Duration::from_secs(20), |_| true)
        .await;
}
