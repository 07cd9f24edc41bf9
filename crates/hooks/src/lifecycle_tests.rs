//! The lifecycle task against [`RecordingHooks`]: which hooks registry events become, their
//! bodies and order keys, and what the answers do. Time is paused: the task's timers (late
//! track, no reader, keepalive) run on tokio's clock.

use super::*;
use crate::{Answer, Call, HookClient, Hooks, RecordingHooks};
use bytes::Bytes;
use media::{Codec, TrackInfo};
use registry::{Protocol, PublisherGuard, StreamOptions};
use serde_json::{Map, Value};
use std::sync::Arc;

const WAIT: Duration = Duration::from_secs(30);
const ORDER: &str = "__defaultVhost__/live/a";

fn session(id: u64, protocol: Protocol, params: &str) -> SessionInfo {
    SessionInfo {
        id,
        protocol,
        peer: "192.0.2.10:4000".parse().expect("addr"),
        local: "192.0.2.1:1935".parse().expect("addr"),
        params: params.into(),
    }
}

fn key() -> StreamKey {
    StreamKey::new("live", "a").expect("key")
}

fn track(codec: Codec) -> TrackInfo {
    TrackInfo::new(codec, Bytes::new())
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn config(none_reader_delay: Duration, alive_interval: Duration) -> LifecycleConfig {
    LifecycleConfig {
        outputs: vec!["rtmp", "rtsp", "hls"],
        flow_threshold: 100,
        none_reader_delay,
        alive_interval,
    }
}

/// A live `live/a` published over RTMP with `params`, its lifecycle task running.
fn start(
    recording: &Arc<RecordingHooks>,
    config: LifecycleConfig,
) -> (Registry, PublisherGuard, LifecycleTask) {
    let hooks = Hooks::from_client(Arc::clone(recording) as Arc<dyn HookClient>);
    let registry = Registry::default();
    let task = spawn_lifecycle(hooks, registry.clone(), config);
    let guard = registry
        .publish_with(
            key(),
            session(1, Protocol::Rtmp, "token=abc"),
            StreamOptions::default(),
        )
        .expect("live");
    (registry, guard, task)
}

/// `(schema, regist)` of each on_stream_changed.
fn changes(recording: &RecordingHooks) -> Vec<(String, bool)> {
    recording
        .bodies(Hook::OnStreamChanged)
        .iter()
        .map(|b| {
            (
                b["schema"].as_str().unwrap_or("").to_owned(),
                b["regist"] == true,
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_stream_registers_its_outputs_and_reports_its_sessions() {
    let recording = Arc::new(RecordingHooks::new());
    recording.answer(Hook::OnStreamChanged, Answer::allow());
    recording.answer(Hook::OnFlowReport, Answer::allow());
    let (registry, guard, task) = start(
        &recording,
        config(Duration::from_secs(3600), Duration::ZERO),
    );
    guard.set_track(track(Codec::H264));
    guard.set_track(track(Codec::Aac));
    // Both kinds of track: registered at once, one call per output schema the stream has.
    let registered = recording.wait_for(Hook::OnStreamChanged, 3, WAIT).await;
    assert_eq!(
        changes(&recording),
        [("rtmp", true), ("rtsp", true), ("hls", true)].map(|(s, r)| (s.to_owned(), r))
    );
    let rtmp = &registered[0];
    for (field, value) in [
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "a"),
        ("params", "token=abc"),
        ("originTypeStr", "rtmp_push"),
        ("originUrl", "rtmp://__defaultVhost__/live/a?token=abc"),
    ] {
        assert_eq!(rtmp[field], value, "{field} in {rtmp:?}");
    }
    assert_eq!(rtmp["tracks"].as_array().map(Vec::len), Some(2), "{rtmp:?}");

    // A viewer that moved 5000 bytes gets a flow report, one under the threshold does not.
    let viewer = session(2, Protocol::HttpFlv, "who=v");
    let sub = registry.join(&key(), viewer.clone()).expect("sub");
    sub.add_bytes(5000);
    drop(sub);
    let small = registry
        .join(&key(), session(3, Protocol::Rtmp, ""))
        .expect("sub");
    small.add_bytes(99);
    drop(small);
    let flow = recording.wait_for(Hook::OnFlowReport, 1, WAIT).await;
    let mut expected = Request::new(key(), &viewer).json();
    expected.extend(map(
        serde_json::json!({"totalBytes": 5000, "duration": 0, "player": true}),
    ));
    assert_eq!(flow, vec![expected]);

    // The publisher leaves: every schema unregistered; it sent no media, so no flow report.
    drop(guard);
    recording.wait_for(Hook::OnStreamChanged, 6, WAIT).await;
    task.stop().await;
    let unregistered: Vec<Map<String, Value>> = recording
        .bodies(Hook::OnStreamChanged)
        .into_iter()
        .skip(3)
        .collect();
    let gone = |schema: &str| {
        map(serde_json::json!({
            "schema": schema, "vhost": "__defaultVhost__", "app": "live", "stream": "a",
            "params": "token=abc", "regist": false,
        }))
    };
    assert_eq!(unregistered, vec![gone("rtmp"), gone("rtsp"), gone("hls")]);
    // One stream's hooks, all behind its order key, in the order they happened.
    let calls: Vec<(Hook, Option<String>)> = recording
        .calls()
        .into_iter()
        .map(|Call { hook, order, .. }| (hook, order))
        .collect();
    let mut expected = vec![(Hook::OnStreamChanged, Some(ORDER.to_owned())); 3];
    expected.push((Hook::OnFlowReport, Some(ORDER.to_owned())));
    expected.extend(vec![(Hook::OnStreamChanged, Some(ORDER.to_owned())); 3]);
    assert_eq!(calls, expected);
}

#[tokio::test(start_paused = true)]
async fn a_stream_with_one_kind_of_track_registers_a_second_later() {
    let recording = Arc::new(RecordingHooks::new());
    recording.answer(Hook::OnStreamChanged, Answer::allow());
    let (_registry, guard, task) = start(
        &recording,
        config(Duration::from_secs(3600), Duration::ZERO),
    );
    let began = tokio::time::Instant::now();
    guard.set_track(track(Codec::H264));
    let registered = recording.wait_for(Hook::OnStreamChanged, 1, WAIT).await;
    let waited = began.elapsed();
    // LATE_TRACK_WAIT, seen on the next TICK.
    assert!(
        waited >= LATE_TRACK_WAIT && waited <= LATE_TRACK_WAIT + TICK,
        "registered after {waited:?}"
    );
    assert_eq!(registered[0]["tracks"].as_array().map(Vec::len), Some(1));
    task.stop().await;
}

#[tokio::test(start_paused = true)]
async fn no_reader_asks_again_until_the_backend_says_close() {
    let recording = Arc::new(RecordingHooks::new());
    recording.answer(Hook::OnStreamChanged, Answer::allow());
    recording.answer(
        Hook::OnStreamNoneReader,
        Answer::reply(serde_json::json!({"close": false})),
    );
    let delay = Duration::from_secs(2);
    let (registry, mut guard, task) = start(&recording, config(delay, Duration::ZERO));
    guard.set_track(track(Codec::H264));
    guard.set_track(track(Codec::Aac));
    // `close: false` keeps the stream; it is asked again a delay later.
    let asked = recording.wait_for(Hook::OnStreamNoneReader, 2, WAIT).await;
    let body = map(serde_json::json!({
        "schema": "rtmp", "vhost": "__defaultVhost__", "app": "live", "stream": "a",
        "params": "token=abc",
    }));
    assert_eq!(asked, vec![body.clone(), body]);
    assert!(registry.is_live(&key()));
    // `close: true`: the publisher is asked to leave.
    recording.answer(
        Hook::OnStreamNoneReader,
        Answer::reply(serde_json::json!({"close": true})),
    );
    tokio::time::timeout(WAIT, guard.closed())
        .await
        .expect("closed by on_stream_none_reader");
    assert_eq!(recording.bodies(Hook::OnStreamNoneReader).len(), 3);
    assert!(recording
        .calls()
        .iter()
        .filter(|c| c.hook == Hook::OnStreamNoneReader)
        .all(|c| c.order.as_deref() == Some(ORDER)));
    task.stop().await;
}

#[tokio::test(start_paused = true)]
async fn keepalive_reports_the_counts_on_its_interval() {
    let recording = Arc::new(RecordingHooks::new());
    recording.answer(Hook::OnServerKeepalive, Answer::allow());
    let interval = Duration::from_secs(10);
    let began = tokio::time::Instant::now();
    let (_registry, _guard, task) = start(&recording, config(Duration::from_secs(3600), interval));
    let beats = recording.wait_for(Hook::OnServerKeepalive, 2, WAIT).await;
    assert!(began.elapsed() >= interval * 2, "{:?}", began.elapsed());
    let beat = map(serde_json::json!({"data": {
        "MediaSource": 3, "MultiMediaSourceMuxer": 1, "readers": 0, "hooksDropped": 0,
    }}));
    assert_eq!(beats, vec![beat.clone(), beat]);
    let orders: Vec<Option<String>> = recording.calls().into_iter().map(|c| c.order).collect();
    assert_eq!(orders, vec![Some(String::new()); 2]);
    task.stop().await;
}
