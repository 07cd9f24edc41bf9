//! The events pipeline against a real HTTP receiver (axum on 127.0.0.1:0): the `record` and
//! `turn` kinds carry their hook bodies, a receiver that is down gets the buffered envelopes in
//! order once it is back, and beyond the buffer the oldest are dropped and counted.

use axum::extract::State;
use axum::http::StatusCode;
use registry::Registry;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Value>>,
    down: AtomicBool,
}

async fn ingest(State(r): State<Arc<Receiver>>, body: axum::body::Bytes) -> StatusCode {
    if r.down.load(Ordering::Relaxed) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let value: Value = serde_json::from_slice(&body).expect("an envelope is JSON");
    r.got.lock().expect("lock").push(value);
    StatusCode::NO_CONTENT
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/events", axum::routing::post(ingest))
        .with_state(Arc::clone(&r));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/events", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn config(url: &str, buffer: usize) -> events::EventsConfig {
    events::EventsConfig {
        webhook: Some(url.to_owned()),
        nats: None,
        subject: "ferrostream".into(),
        node: 9,
        buffer,
        sign_token: None,
        timeout: Duration::from_secs(2),
    }
}

async fn wait_for(r: &Receiver, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = r.got.lock().expect("lock").clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n}: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn recorded() -> outputs::RecordedFile {
    outputs::RecordedFile {
        key: media::StreamKey::new("live", "a").expect("key"),
        params: "token=1".into(),
        start_time: 1_700_000_000,
        file_size: 1234,
        time_len: 10.5,
        file_path: "/www/record/live/a/2026-12-03/10-00-00.mp4".into(),
        file_name: "10-00-00.mp4".into(),
        folder: "/www/record/live/a/2026-12-03".into(),
        url: "record/live/a/2026-12-03/10-00-00.mp4".into(),
    }
}

#[tokio::test]
async fn record_and_turn_events_carry_their_hook_bodies() {
    let (r, url) = receiver().await;
    let events = events::Events::start(config(&url, 100), &Registry::default());
    events.record(&recorded());
    let addr = "127.0.0.1:5000".parse().expect("addr");
    events.turn(&hooks::TurnEvent::Binding { addr });
    let got = wait_for(&r, 2).await;
    assert_eq!(got[0]["event"], "record");
    assert_eq!(got[0]["node"], 9);
    assert_eq!(
        Value::Object(hooks::record_json(&recorded())),
        got[0]["payload"]
    );
    assert_eq!(got[1]["event"], "turn");
    assert_eq!(
        got[1]["payload"],
        serde_json::json!({"kind": "binding", "addr": "127.0.0.1:5000"})
    );
    events.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_the_newest_buffered_in_order() {
    let (r, url) = receiver().await;
    r.down.store(true, Ordering::Relaxed);
    let events = events::Events::start(config(&url, 5), &Registry::default());
    let addr = "127.0.0.1:1".parse().expect("addr");
    for port in 1..=8u16 {
        events.turn(&hooks::TurnEvent::Allocated {
            name: "alice".into(),
            addr,
            port,
        });
    }
    let figures = events.figures();
    assert_eq!((figures[0].queued, figures[0].dropped), (5, 3));
    r.down.store(false, Ordering::Relaxed);
    let got = wait_for(&r, 5).await;
    let ports: Vec<u64> = got
        .iter()
        .filter_map(|e| e["payload"]["port"].as_u64())
        .collect();
    assert_eq!(ports, [4, 5, 6, 7, 8]);
    let figures = events.figures();
    assert_eq!(figures[0].sent, 5);
    assert_eq!(figures[0].dropped, 3);
    events.stop(Duration::from_secs(1)).await;
}
