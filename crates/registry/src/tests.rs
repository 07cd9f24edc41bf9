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

fn video_track() -> TrackInfo {
    TrackInfo::new(Codec::H264, Bytes::from_static(b"seq"))
}

async fn next_frame(reader: &mut StreamReader) -> Frame {
    loop {
        match reader.recv().await {
            Ok(Item::Frame(f)) => return f,
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
    guard.set_metadata(media::Metadata(vec![(
        "encoder".into(),
        media::MetaValue::Text("test".into()),
    )]));
    guard.set_track(video_track());
    guard.push(video(1000, true));
    guard.push(video(1040, false));
    guard.push(video(1080, true));
    guard.push(audio(1090));
    guard.push(video(1120, false));

    let mut sub = reg.subscribe_output(&key).expect("live");
    assert!(matches!(sub.recv().await, Ok(Item::Metadata(_))));
    assert!(matches!(sub.recv().await, Ok(Item::Track(_))));
    let first = next_frame(&mut sub).await;
    assert!(first.keyframe);
    // Rebased to start at 0: 1080 - 1000.
    assert_eq!(first.dts, 80);
    assert_eq!(next_frame(&mut sub).await.codec, Codec::Aac);
    assert_eq!(next_frame(&mut sub).await.dts, 120);
    guard.push(video(1160, false));
    assert_eq!(next_frame(&mut sub).await.dts, 160);
}

#[tokio::test]
async fn unpublish_ends_viewers_after_what_is_queued() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "end").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("publish");
    let mut sub = reg.subscribe_output(&key).expect("live");
    guard.push(video(0, true));
    drop(guard);
    assert_eq!(next_frame(&mut sub).await.dts, 0);
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
    let mut sub = reg.subscribe_output(&key).expect("live");
    assert!(matches!(sub.recv().await, Ok(Item::Track(_))));
    // Overrun the ring: 40 frames, keyframe at 30.
    for i in 0..40u64 {
        guard.push(video(i * 40, i == 0 || i == 30));
    }
    let f = next_frame(&mut sub).await;
    assert!(f.keyframe, "skipped to a keyframe");
    assert_eq!(f.dts, 30 * 40);
    for i in 40..80u64 {
        guard.push(video(i * 40, false));
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
    let viewer = reg.join(&key, info(2)).expect("live");
    viewer.add_bytes(1234);
    drop(viewer);
    guard.push(video(0, true));
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
    // A new publisher (a proxy's reconnect) starts right after the last frame, not on it.
    r.resume();
    assert_eq!(r.rebase(0), 121);
    assert_eq!(r.rebase(40), 161);
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
    guard.push(video(1000, true));
    guard.push(video(1040, false));
    let mut sub = reg.subscribe_output(&key).expect("subscribe");
    assert_eq!(next_frame(&mut sub).await.dts, 0);
    assert_eq!(next_frame(&mut sub).await.dts, 40);

    drop(guard); // the connection failed: no finish()
    assert!(reg.stream(&key).is_some_and(|s| s.orphaned));
    let resumed = reg
        .publish_with(key.clone(), info(2), keep_for(5_000))
        .expect("takes the stream over");
    assert_eq!(reg.stream(&key).map(|s| s.publisher.id), Some(2));
    // The new publisher's clock restarts; the viewer's timeline goes on.
    resumed.push(video(0, true));
    let f = next_frame(&mut sub).await;
    assert!(f.dts >= 40, "{}", f.dts);

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
    let mut sub = reg.subscribe_output(&key).expect("subscribe");
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
    guard.set_track(TrackInfo::new(
        Codec::Aac,
        Bytes::from_static(&[0x12, 0x10]),
    ));
    guard.push(audio(0));
    let stream = reg.stream(&key).expect("live");
    assert!(stream.tracks.is_empty(), "audio dropped at ingest");
    assert!(reg.join(&key, info(2)).is_none(), "no RTMP output");
    let rtsp = SessionInfo {
        protocol: Protocol::Rtsp,
        ..info(3)
    };
    assert!(reg.join(&key, rtsp).is_some());
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
        guard.push(video(i * 40, i % 25 == 0));
    }
    let stats = reg.stream(&key).expect("live").stats;
    let v = stats.first().expect("video stats");
    assert_eq!(
        (v.frames, v.key_frames, v.gop_size, v.gop_interval_ms),
        (51, 3, 25, 1000)
    );
    assert!((v.fps() - 25.0).abs() < 0.01, "{}", v.fps());
}

#[tokio::test]
async fn the_session_table_lists_and_kicks_publishers_and_viewers() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "kick").expect("key");
    let mut guard = reg.publish(key.clone(), info(1)).expect("publish");
    guard.push(video(0, true));
    let mut viewer = reg.join(&key, info(2)).expect("join");
    viewer.add_bytes(77);
    let mut sessions = reg.sessions();
    sessions.sort_by_key(|s| s.info.id);
    let listed: Vec<(u64, Role, u64)> = sessions
        .iter()
        .map(|s| (s.info.id, s.role, s.bytes))
        .collect();
    assert_eq!(listed, [(1, Role::Publisher, 5), (2, Role::Viewer, 77)]);
    assert!(sessions.iter().all(|s| s.key == key));
    // Kicking the viewer ends its wait at once; the publisher is not affected.
    assert!(reg.kick(2));
    tokio::time::timeout(Duration::from_secs(1), viewer.kicked())
        .await
        .expect("kicked");
    drop(viewer);
    assert_eq!(reg.sessions().len(), 1);
    // Kicking the publisher asks it to leave, and the stream ends with it (no continue_push).
    assert!(reg.kick(1));
    tokio::time::timeout(Duration::from_secs(1), guard.closed())
        .await
        .expect("told to close");
    drop(guard);
    assert!(!reg.is_live(&key));
    assert!(reg.sessions().is_empty());
    assert!(!reg.kick(1));
}

#[tokio::test]
async fn kicked_is_one_wait_however_often_a_driver_polls_it() {
    let reg = Registry::default();
    let key = StreamKey::new("live", "kick-often").expect("key");
    let guard = reg.publish(key.clone(), info(1)).expect("publish");
    guard.push(video(0, true));
    let mut viewer = reg.join(&key, info(2)).expect("join");
    // A driver selects on `kicked()` beside its media once per packet and drops the future
    // each time the media wins.
    for _ in 0..1000 {
        tokio::select! {
            biased;
            () = viewer.kicked() => panic!("not kicked yet"),
            () = std::future::ready(()) => {}
        }
    }
    assert!(!viewer.is_kicked());
    // A kick from another task wakes a wait made before it.
    let kicker = {
        let reg = reg.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(reg.kick(2));
        })
    };
    tokio::time::timeout(Duration::from_secs(1), viewer.kicked())
        .await
        .expect("kicked");
    kicker.await.expect("kicker");
    // After the kick every call answers at once.
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_millis(10), viewer.kicked())
            .await
            .expect("still kicked");
    }
    assert!(viewer.is_kicked());
}
