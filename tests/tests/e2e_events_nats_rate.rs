//! How many envelopes a second the NATS provider gets acked by a local `nats-server -js`
//! (printed for the notes, not asserted beyond all of them arriving).

use e2e::nats::{have_nats_server, NatsServer};
use e2e::start_server_from;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::time::Instant;

const ENVELOPES: u64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_provider_rate_with_acks() {
    if !have_nats_server() {
        return;
    }
    let nats = NatsServer::start().await;
    let mut config = server::config::Config::default();
    config.events.nats = Some(nats.url());
    let server = start_server_from(config, |_| {}).await;
    // One envelope first: the connection and the stream are made before the clock starts.
    let mut payload = Map::new();
    payload.insert("file_path".into(), Value::from("/www/record/live/a/x.mp4"));
    server.events.emit(events::Kind::Record, payload.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.events.figures()[0].sent < 1 {
        assert!(Instant::now() < deadline, "NATS provider connects");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let start = Instant::now();
    for _ in 0..ENVELOPES {
        server.events.emit(events::Kind::Record, payload.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.events.figures()[0].sent < ENVELOPES + 1 {
        assert!(Instant::now() < deadline, "{:?}", server.events.figures());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    eprintln!(
        "NATS provider: {ENVELOPES} envelopes acked in {elapsed:?} = {:.0} envelopes/s",
        ENVELOPES as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(server.events.figures()[0].dropped, 0);
    server.shutdown().await;
}
