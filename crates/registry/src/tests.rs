use super::*;
use bytes::Bytes;
use media::{Codec, Frame, TrackInfo};

fn info(id: u64) -> SessionInfo {
    SessionInfo {
        id,
        protocol: Protocol::Rtmp,
        peer: "127.0.0.1:5000".parse().expect("addr"),
        local: "127.0.0.1:1935".parse().expect("addr"),
        params: String::new(),
    }
}

fn video(dts: u64, keyframe: bool) -> Frame {
    Frame {
        codec: Codec::H264,
        dts,
        cts: 0,
        keyframe,
        data: Bytes::from_static(b"frame"),
    }
}

fn audio(dts: u64) -> Frame {
    Frame {
        codec: Codec::Aac,
        dts,
        cts: 0,
        keyframe: true,
        data: Bytes::from_static(b"aac"),
    }
}

fn video_track() -> Track {
    Track {
        info: TrackInfo::new(Codec::H264, Bytes::new()),
        flv: Bytes::from_static(b"seq"),
    }
}

async fn next_packet(sub: &mut Subscription) -> Packet {
    loop {
        match sub.recv().await {
            Ok(Item::Packet(p)) => return p,
            Ok(_) => continue,
            Err(e) => panic!("ended: {e}"),
        }
    }
}

#[tokio::test]
async fn second_publisher_is_refused_and_first_goes_on() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "a").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("first");
    assert!(matches!(
        reg.publish(key.clone(), info(2)),
        Err(PublishError::AlreadyPublishing(_))
    ));
    assert!(reg.is_live(&key));
    drop(guard);
    assert!(!reg.is_live(&key));
    assert!(reg.publish(key, info(3)).is_ok());
}

#[tokio::test]
async fn late_viewer_starts_at_last_keyframe() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "gop").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("publish");
    guard.set_metadata(Bytes::from_static(b"meta"));
    guard.set_track(video_track());
    guard.push(video(1000, true), b"body");
    guard.push(video(1040, false), b"body");
    guard.push(video(1080, true), b"body");
    guard.push(audio(1090), b"body");
    guard.push(video(1120, false), b"body");

    let mut sub = reg.subscribe(&key, info(2)).expect("live");
    assert!(matches!(sub.recv().await, Ok(Item::Metadata(_))));
    assert!(matches!(sub.recv().await, Ok(Item::Track(_))));
    let first = next_packet(&mut sub).await;
    assert!(first.frame.keyframe);
    // Rebased to start at 0: 1080 - 1000.
    assert_eq!(first.frame.dts, 80);
    assert_eq!(next_packet(&mut sub).await.frame.codec, Codec::Aac);
    assert_eq!(next_packet(&mut sub).await.frame.dts, 120);
    guard.push(video(1160, false), b"body");
    assert_eq!(next_packet(&mut sub).await.frame.dts, 160);
}

#[tokio::test]
async fn unpublish_ends_viewers_after_what_is_queued() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "end").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("publish");
    let mut sub = reg.subscribe(&key, info(2)).expect("live");
    guard.push(video(0, true), b"body");
    drop(guard);
    assert_eq!(next_packet(&mut sub).await.frame.dts, 0);
    assert!(matches!(sub.recv().await, Err(Ended::Closed)));
}

#[tokio::test]
async fn slow_viewer_skips_to_keyframe_then_is_dropped() {
    let reg = Registry::new(RegistryConfig {
        fanout: FanoutLimits {
            max_items: 16,
            max_lags: 1,
            ..FanoutLimits::default()
        },
        ..RegistryConfig::default()
    });
    let key = StreamKey::new("live", "slow").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("publish");
    guard.set_track(video_track());
    let mut sub = reg.subscribe(&key, info(2)).expect("live");
    assert!(matches!(sub.recv().await, Ok(Item::Track(_))));
    // Overrun the ring: 40 packets, keyframe at 30.
    for i in 0..40u64 {
        guard.push(video(i * 40, i == 0 || i == 30), b"body");
    }
    let p = next_packet(&mut sub).await;
    assert!(p.frame.keyframe, "skipped to a keyframe");
    assert_eq!(p.frame.dts, 30 * 40);
    for i in 40..80u64 {
        guard.push(video(i * 40, false), b"body");
    }
    // The rest of the ring was overrun again: second lag within the window drops the viewer.
    let mut ended = None;
    for _ in 0..64 {
        match sub.recv().await {
            Ok(_) => continue,
            Err(e) => {
                ended = Some(e);
                break;
            }
        }
    }
    assert_eq!(ended, Some(Ended::TooSlow));
}

#[tokio::test]
async fn lifecycle_events_carry_byte_counts() {
    let reg = Registry::default();
    let mut events = reg.events();
    let key = StreamKey::new("live", "ev").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("publish");
    let sub = reg.subscribe(&key, info(2)).expect("live");
    sub.add_bytes(1234);
    drop(sub);
    guard.push(video(0, true), b"body");
    drop(guard);
    assert!(matches!(events.recv().await, Ok(Event::Published { .. })));
    assert!(matches!(
        events.recv().await,
        Ok(Event::ViewerJoined { .. })
    ));
    match events.recv().await {
        Ok(Event::ViewerLeft { bytes, viewer, .. }) => {
            assert_eq!(bytes, 1234);
            assert_eq!(viewer.id, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    match events.recv().await {
        Ok(Event::Unpublished { bytes, .. }) => assert_eq!(bytes, 5),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn viewer_may_arrive_before_publisher() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "wait").expect("key");
    let reg2 = reg.clone();
    let key2 = key.clone();
    let waiter = tokio::spawn(async move {
        reg2.wait_for(&key2, info(2), Duration::from_secs(5))
            .await
            .is_some()
    });
    tokio::task::yield_now().await;
    let _guard = reg.publish(key.clone(), info(1)).expect("publish");
    assert!(waiter.await.expect("join"));
    assert!(reg
        .wait_for(
            &StreamKey::new("live", "never").expect("key"),
            info(3),
            Duration::from_millis(20)
        )
        .await
        .is_none());
}

#[test]
fn rebaser_handles_wrap_and_jumps() {
    let mut r = stream::Rebaser::new(10_000);
    assert_eq!(r.rebase(u64::from(u32::MAX) - 100), 0);
    assert_eq!(r.rebase(u64::from(u32::MAX) - 60), 40);
    // 32-bit wrap: continues from the last output.
    assert_eq!(r.rebase(20), 40);
    assert_eq!(r.rebase(60), 80);
    // Small backwards steps (interleaved audio) pass through.
    assert_eq!(r.rebase(50), 70);
    // A forward jump of an hour is rebased too.
    assert_eq!(r.rebase(3_600_000), 80);
    assert_eq!(r.rebase(3_600_040), 120);
}

#[test]
fn flv_tag_layout() {
    let tag = flv_tag(9, 0x0102_0304, b"abc");
    assert_eq!(
        tag.as_ref(),
        &[9, 0, 0, 3, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, b'a', b'b', b'c', 0, 0, 0, 14]
    );
    let p = Packet {
        frame: video(0, true),
        flv: tag,
    };
    assert_eq!(p.flv_body().as_ref(), b"abc");
}

fn keep_for(ms: u64) -> StreamOptions {
    StreamOptions {
        continue_push: Duration::from_millis(ms),
        ..StreamOptions::default()
    }
}

#[tokio::test]
async fn a_dropped_publisher_may_resume_within_continue_push() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "resume").expect("key");
    let guard = reg
        .publish_with(key.clone(), info(1), keep_for(5_000))
        .expect("publish");
    guard.set_track(video_track());
    guard.push(video(1000, true), b"k");
    guard.push(video(1040, false), b"d");
    let mut sub = reg.subscribe(&key, info(9)).expect("subscribe");
    assert_eq!(next_packet(&mut sub).await.frame.dts, 0);
    assert_eq!(next_packet(&mut sub).await.frame.dts, 40);

    drop(guard); // the connection failed: no finish()
    assert!(reg.stream(&key).is_some_and(|s| s.orphaned));
    let resumed = reg
        .publish_with(key.clone(), info(2), keep_for(5_000))
        .expect("takes the stream over");
    assert_eq!(reg.stream(&key).map(|s| s.publisher.id), Some(2));
    // The new publisher's clock restarts; the viewer's timeline goes on.
    resumed.push(video(0, true), b"k");
    let p = next_packet(&mut sub).await;
    assert!(p.frame.dts >= 40, "{}", p.frame.dts);

    resumed.finish(); // an explicit unpublish ends it at once
    assert!(!reg.is_live(&key));
    assert_eq!(sub.recv().await.err(), Some(Ended::Closed));
}

#[tokio::test]
async fn an_orphaned_stream_ends_after_continue_push() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "gone").expect("key");
    let mut events = reg.events();
    let guard = reg
        .publish_with(key.clone(), info(1), keep_for(100))
        .expect("publish");
    let mut sub = reg.subscribe(&key, info(9)).expect("subscribe");
    drop(guard);
    assert!(reg.is_live(&key));
    let ended = tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("ends after the hold");
    assert_eq!(ended.err(), Some(Ended::Closed));
    assert!(!reg.is_live(&key));
    let mut unpublished = 0;
    while let Ok(e) = events.try_recv() {
        unpublished += usize::from(matches!(e, Event::Unpublished { .. }));
    }
    assert_eq!(unpublished, 1);
}

#[tokio::test]
async fn close_asks_the_publisher_to_leave() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "closing").expect("key");
    let mut guard = reg
        .publish_with(key.clone(), info(1), keep_for(60_000))
        .expect("publish");
    assert!(reg.close(&key));
    tokio::time::timeout(Duration::from_secs(1), guard.closed())
        .await
        .expect("told to close");
    drop(guard); // a closed stream is not kept for a reconnect
    assert!(!reg.is_live(&key));
    assert!(!reg.close(&key));
}

#[tokio::test]
async fn options_decide_outputs_and_audio() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "opts").expect("key");
    let options = StreamOptions {
        enable_rtmp: false,
        enable_audio: false,
        ..StreamOptions::default()
    };
    let guard = reg
        .publish_with(key.clone(), info(1), options)
        .expect("publish");
    guard.set_track(Track {
        info: TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10])),
        flv: Bytes::from_static(b"aac"),
    });
    guard.push(audio(0), b"a");
    let stream = reg.stream(&key).expect("live");
    assert!(stream.tracks.is_empty(), "audio dropped at ingest");
    assert!(reg.subscribe(&key, info(2)).is_none(), "no RTMP output");
    let rtsp = SessionInfo {
        protocol: Protocol::Rtsp,
        ..info(3)
    };
    assert!(reg.subscribe(&key, rtsp).is_some());
    assert_eq!(
        stream.options.schemas(&["rtmp", "rtsp", "hls"]),
        ["rtsp", "hls"]
    );
}

#[test]
fn track_stats_measure_fps_and_gop() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "stats").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("publish");
    guard.set_track(video_track());
    for i in 0..51u64 {
        guard.push(video(i * 40, i % 25 == 0), b"v");
    }
    let stats = reg.stream(&key).expect("live").stats;
    let v = stats.first().expect("video stats");
    assert_eq!(
        (v.frames, v.key_frames, v.gop_size, v.gop_interval_ms),
        (51, 3, 25, 1000)
    );
    assert!((v.fps() - 25.0).abs() < 0.01, "{}", v.fps());
}
