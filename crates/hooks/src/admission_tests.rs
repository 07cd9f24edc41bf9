//! Admission against [`RecordingHooks`]: what each auth hook is sent, and what its answer does
//! to the registry. Time is paused, so the waits for a stream are exact.

use super::*;
use crate::{Answer, HookConfig, RecordingHooks};
use registry::Protocol;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio::time::Instant;

const MAX_WAIT: Duration = Duration::from_secs(10);

fn session(protocol: Protocol) -> SessionInfo {
    SessionInfo {
        id: 7,
        protocol,
        peer: "192.0.2.10:4000".parse().expect("addr"),
        local: "192.0.2.1:1935".parse().expect("addr"),
        params: "token=abc".into(),
    }
}

fn key(stream: &str) -> StreamKey {
    StreamKey::new("live", stream).expect("key")
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn recording() -> (Arc<RecordingHooks>, Hooks) {
    let recording = Arc::new(RecordingHooks::new());
    let hooks = Hooks::from_client(Arc::clone(&recording) as Arc<dyn crate::HookClient>);
    (recording, hooks)
}

/// The on_play / on_stream_not_found body of `session(protocol)` for `live/a`.
fn play_body(protocol: Protocol) -> Map<String, Value> {
    map(json!({
        "schema": protocol.schema(), "protocol": protocol.name(),
        "vhost": "__defaultVhost__", "app": "live", "stream": "a", "params": "token=abc",
        "ip": "192.0.2.10", "port": 4000, "id": "7",
    }))
}

#[tokio::test]
async fn a_denied_publish_never_goes_live() {
    let (recording, hooks) = recording();
    let registry = Registry::default();
    let defaults = StreamOptions::default();
    recording.answer(Hook::OnPublish, Answer::deny(-1, "bad token"));
    let refused = admit_publish(
        &hooks,
        &registry,
        key("a"),
        session(Protocol::Rtmp),
        &defaults,
    )
    .await
    .map(|_| ())
    .expect_err("denied");
    assert_eq!(refused, PublishRefusal::Denied("bad token".into()));
    assert!(!registry.is_live(&key("a")));
    let mut body = play_body(Protocol::Rtmp);
    body.insert("originType".into(), 1.into());
    body.insert("originTypeStr".into(), "rtmp_push".into());
    assert_eq!(recording.bodies(Hook::OnPublish), vec![body]);

    // A denial without a message, and a backend that cannot be asked: refused all the same.
    recording.answer(Hook::OnPublish, Answer::deny(3, ""));
    let refused = admit_publish(
        &hooks,
        &registry,
        key("a"),
        session(Protocol::Rtsp),
        &defaults,
    )
    .await
    .map(|_| ())
    .expect_err("denied");
    assert_eq!(
        refused,
        PublishRefusal::Denied("denied by on_publish (code 3)".into())
    );
    recording.answer(Hook::OnPublish, Answer::Fail);
    let refused = admit_publish(
        &hooks,
        &registry,
        key("a"),
        session(Protocol::Rtmp),
        &defaults,
    )
    .await
    .map(|_| ())
    .expect_err("failed closed");
    assert_eq!(
        refused,
        PublishRefusal::Denied("on_publish failed: authorization unavailable".into())
    );
    assert!(!registry.is_live(&key("a")));
}

#[tokio::test]
async fn the_publish_reply_sets_options_and_may_rename_the_stream() {
    let (recording, hooks) = recording();
    let registry = Registry::default();
    let defaults = StreamOptions::default();
    recording.answer(
        Hook::OnPublish,
        Answer::reply(json!({"enable_mp4": true, "stream_replace": "renamed"})),
    );
    let guard = admit_publish(
        &hooks,
        &registry,
        key("a"),
        session(Protocol::Rtmp),
        &defaults,
    )
    .await
    .expect("allowed");
    assert_eq!(guard.key(), &key("renamed"));
    assert!(guard.options().enable_mp4 && !defaults.enable_mp4);
    assert!(registry.is_live(&key("renamed")) && !registry.is_live(&key("a")));

    // The same name again: already publishing. An unusable name: refused, nothing live.
    let again = admit_publish(
        &hooks,
        &registry,
        key("b"),
        session(Protocol::Rtmp),
        &defaults,
    )
    .await
    .map(|_| ())
    .expect_err("taken");
    assert_eq!(again, PublishRefusal::AlreadyPublishing);
    recording.answer(
        Hook::OnPublish,
        Answer::reply(json!({"stream_replace": "../etc"})),
    );
    let bad = admit_publish(
        &hooks,
        &registry,
        key("c"),
        session(Protocol::Rtmp),
        &defaults,
    )
    .await
    .map(|_| ())
    .expect_err("bad name");
    assert!(matches!(bad, PublishRefusal::BadName(_)), "{bad:?}");
    assert!(!registry.is_live(&key("c")));
    assert_eq!(recording.bodies(Hook::OnPublish).len(), 3);
}

#[tokio::test]
async fn a_disabled_or_bypassed_publish_asks_nobody() {
    let registry = Registry::default();
    let defaults = StreamOptions::default();
    // No answer scripted: the hook is off, the defaults apply.
    let (recording, hooks) = recording();
    let guard = admit_publish(
        &hooks,
        &registry,
        key("a"),
        session(Protocol::Rtmp),
        &defaults,
    )
    .await
    .expect("allowed");
    assert_eq!(guard.options(), defaults);
    assert!(recording.calls().is_empty());
    drop(guard);

    // admin_params in the URL skips a hook that would deny.
    let config = HookConfig {
        admin_params: "token=abc".into(),
        ..HookConfig::default()
    };
    let recording = Arc::new(RecordingHooks::with_config(config));
    recording.answer(Hook::OnPublish, Answer::deny(1, "no"));
    recording.answer(Hook::OnPlay, Answer::deny(1, "no"));
    let hooks = Hooks::from_client(Arc::clone(&recording) as Arc<dyn crate::HookClient>);
    let _guard = admit_publish(
        &hooks,
        &registry,
        key("b"),
        session(Protocol::Rtmp),
        &defaults,
    )
    .await
    .expect("bypassed");
    admit_play(
        &hooks,
        &registry,
        &key("b"),
        session(Protocol::HttpFlv),
        MAX_WAIT,
    )
    .await
    .expect("bypassed");
    assert!(recording.calls().is_empty(), "{:?}", recording.calls());
}

#[tokio::test]
async fn a_denied_player_gets_nothing() {
    let (recording, hooks) = recording();
    let registry = Registry::default();
    let _guard = registry
        .publish(key("a"), session(Protocol::Rtmp))
        .expect("live");
    recording.answer(Hook::OnPlay, Answer::deny(1, "members only"));
    recording.answer(Hook::OnStreamNotFound, Answer::allow());
    let refused = admit_play(
        &hooks,
        &registry,
        &key("a"),
        session(Protocol::HttpFlv),
        MAX_WAIT,
    )
    .await
    .map(|_| ())
    .expect_err("denied");
    assert_eq!(refused, PlayRefusal::Denied("members only".into()));
    assert_eq!(registry.stream(&key("a")).expect("live").readers, 0);
    assert_eq!(
        recording.calls(),
        vec![crate::Call {
            hook: Hook::OnPlay,
            order: None,
            body: play_body(Protocol::HttpFlv)
        }]
    );
}

#[tokio::test]
async fn find_stream_skips_on_play_and_subscribes_a_live_stream() {
    let (recording, hooks) = recording();
    let registry = Registry::default();
    let _guard = registry
        .publish(key("a"), session(Protocol::Rtmp))
        .expect("live");
    recording.answer(Hook::OnPlay, Answer::deny(1, "not asked"));
    recording.answer(Hook::OnStreamNotFound, Answer::allow());
    let sub = find_stream(
        &hooks,
        &registry,
        &key("a"),
        session(Protocol::Rtsp),
        MAX_WAIT,
    )
    .await
    .expect("subscribed");
    assert_eq!(sub.key(), &key("a"));
    assert!(recording.calls().is_empty(), "{:?}", recording.calls());
}

#[tokio::test(start_paused = true)]
async fn not_found_with_close_fails_the_player_at_once() {
    let (recording, hooks) = recording();
    let registry = Registry::default();
    recording.answer(Hook::OnPlay, Answer::allow());
    recording.answer(
        Hook::OnStreamNotFound,
        Answer::reply(json!({"close": true})),
    );
    let start = Instant::now();
    let refused = admit_play(
        &hooks,
        &registry,
        &key("a"),
        session(Protocol::Rtmp),
        MAX_WAIT,
    )
    .await
    .map(|_| ())
    .expect_err("closed");
    assert_eq!(refused, PlayRefusal::NotFound);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "did not wait for the stream"
    );
    assert_eq!(
        recording.bodies(Hook::OnStreamNotFound),
        vec![play_body(Protocol::Rtmp)]
    );
}

#[tokio::test(start_paused = true)]
async fn not_found_without_close_waits_up_to_max_wait() {
    // An answer without `close`, a backend that fails, and no hook at all: the player waits
    // for the whole of max_wait, then is told the stream is not found.
    for answer in [Some(Answer::allow()), Some(Answer::Fail), None] {
        let (recording, hooks) = recording();
        let registry = Registry::default();
        if let Some(answer) = answer.clone() {
            recording.answer(Hook::OnStreamNotFound, answer);
        }
        let start = Instant::now();
        let refused = admit_play(
            &hooks,
            &registry,
            &key("a"),
            session(Protocol::Rtmp),
            MAX_WAIT,
        )
        .await
        .map(|_| ())
        .expect_err("not found");
        assert_eq!(refused, PlayRefusal::NotFound, "{answer:?}");
        assert_eq!(start.elapsed(), MAX_WAIT, "{answer:?}");
        let asked = usize::from(answer.is_some());
        assert_eq!(recording.bodies(Hook::OnStreamNotFound).len(), asked);
    }
}

#[tokio::test(start_paused = true)]
async fn a_waiting_player_gets_the_stream_when_it_goes_live() {
    let (recording, hooks) = recording();
    let registry = Registry::default();
    recording.answer(
        Hook::OnStreamNotFound,
        Answer::reply(json!({"close": false})),
    );
    let player = tokio::spawn({
        let (hooks, registry) = (hooks.clone(), registry.clone());
        async move {
            admit_play(
                &hooks,
                &registry,
                &key("a"),
                session(Protocol::Rtmp),
                MAX_WAIT,
            )
            .await
        }
    });
    // The backend has been told before the publisher comes (it might start a pull).
    let asked = recording
        .wait_for(Hook::OnStreamNotFound, 1, Duration::from_secs(1))
        .await;
    assert_eq!(asked, vec![play_body(Protocol::Rtmp)]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _guard = registry
        .publish(key("a"), session(Protocol::Rtmp))
        .expect("live");
    let sub = player.await.expect("task").expect("subscribed");
    assert_eq!(sub.key(), &key("a"));
    assert_eq!(registry.stream(&key("a")).expect("live").readers, 1);
}

/// A cluster stand-in: "another node has" the streams in `has`, and bringing one here
/// publishes it (as the edge's pull does once it plays).
struct Elsewhere {
    registry: Registry,
    has: Vec<StreamKey>,
    guards: std::sync::Mutex<Vec<PublisherGuard>>,
}

impl RemoteStreams for Elsewhere {
    fn fetch<'a>(&'a self, key: &'a StreamKey) -> crate::BoxFuture<'a, bool> {
        Box::pin(async move {
            if !self.has.contains(key) {
                return false;
            }
            let mut puller = session(Protocol::Pull);
            puller.id = 99;
            let guard = self.registry.publish(key.clone(), puller).expect("pulled");
            self.guards.lock().expect("lock").push(guard);
            true
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_another_node_has_is_joined_without_on_stream_not_found() {
    let (recording, hooks) = recording();
    let registry = Registry::default();
    hooks.set_remote(Arc::new(Elsewhere {
        registry: registry.clone(),
        has: vec![key("a")],
        guards: std::sync::Mutex::default(),
    }));
    recording.answer(Hook::OnStreamNotFound, Answer::allow());
    let viewer = find_stream(
        &hooks,
        &registry,
        &key("a"),
        session(Protocol::Rtmp),
        MAX_WAIT,
    )
    .await
    .expect("joined the pulled stream");
    assert_eq!(viewer.key(), &key("a"));
    assert!(recording.calls().is_empty(), "{:?}", recording.calls());

    // A stream no node has: on_stream_not_found, then not found after the wait.
    let start = Instant::now();
    let refused = find_stream(
        &hooks,
        &registry,
        &key("b"),
        session(Protocol::Rtmp),
        MAX_WAIT,
    )
    .await
    .map(|_| ())
    .expect_err("not found");
    assert_eq!(refused, PlayRefusal::NotFound);
    assert_eq!(start.elapsed(), MAX_WAIT);
    let hooks_called: Vec<Hook> = recording.calls().iter().map(|c| c.hook).collect();
    assert_eq!(hooks_called, [Hook::OnStreamNotFound]);
}
