//! The TURN web hooks (seed 000) against a real HTTP backend (axum on 127.0.0.1:0):
//! `GET /password` with its query and headers and what each answer means, `POST /events` with
//! every kind's body in order, the bounded queue dropping what a slow backend cannot take, and
//! one pooled keep-alive client.

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use hooks::{HttpTurnHooks, TurnEvent, TurnHookConfig, TurnHooks};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENT: &str = "192.0.2.7:5000";

/// One request the backend received.
#[derive(Debug, Clone)]
struct Seen {
    /// `password` or `events`.
    path: &'static str,
    query: HashMap<String, String>,
    /// `realm`, `rid`, `content-type` (empty when absent).
    realm: String,
    rid: String,
    content_type: String,
    body: Value,
    /// The client's port: the same port means the same (kept-alive) connection.
    port: u16,
}

#[derive(Clone, Default)]
struct Backend {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// How long `POST /events` takes to answer.
    events_delay: Duration,
}

impl Backend {
    fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// The `POST /events` bodies once there are `n`, or what there is after 20 s.
    async fn events(&self, n: usize) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let events = self.seen("events");
            if events.len() >= n || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn seen(
    path: &'static str,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: Value,
    peer: SocketAddr,
) -> Seen {
    Seen {
        path,
        query,
        realm: header(headers, "realm"),
        rid: header(headers, "rid"),
        content_type: header(headers, "content-type"),
        body,
        port: peer.port(),
    }
}

/// Passwords by name: `alice` has one (with the whitespace a text file would give it), `huge`
/// answers 100 KiB, `slow` answers after 3 s, anybody else is 404.
async fn password(
    State(backend): State<Backend>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> axum::response::Response {
    let name = query.get("name").cloned().unwrap_or_default();
    backend
        .seen
        .lock()
        .expect("lock")
        .push(seen("password", query, &headers, Value::Null, peer));
    match name.as_str() {
        "alice" | "a b&c=d" => " alicepw\n".into_response(),
        "huge" => "x".repeat(100 << 10).into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late".into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn events(
    State(backend): State<Backend>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    tokio::time::sleep(backend.events_delay).await;
    backend
        .seen
        .lock()
        .expect("lock")
        .push(seen("events", HashMap::new(), &headers, body, peer));
    StatusCode::OK
}

async fn start_backend(events_delay: Duration) -> (SocketAddr, Backend) {
    let backend = Backend {
        events_delay,
        ..Backend::default()
    };
    let app = Router::new()
        .route("/hooks/password", get(password))
        .route("/hooks/events", post(events))
        .with_state(backend.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    (addr, backend)
}

fn hooks(backend: SocketAddr, tweak: impl FnOnce(&mut TurnHookConfig)) -> HttpTurnHooks {
    // A trailing `/` as users write it: the hooks are still `/hooks/password` and `/events`.
    let mut config = TurnHookConfig::new(format!("http://{backend}/hooks/"), "turn.example");
    tweak(&mut config);
    HttpTurnHooks::new(config).expect("client")
}

fn client() -> SocketAddr {
    CLIENT.parse().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_lookups_send_the_query_and_headers_and_read_the_answer() {
    let (addr, backend) = start_backend(Duration::ZERO).await;
    let hooks = hooks(addr, |c| c.timeout = Duration::from_millis(500));
    let rid = hooks.rid().to_owned();
    assert!(
        rid.len() == 16 && rid.chars().all(|c| c.is_ascii_alphanumeric()),
        "rid {rid:?}"
    );

    // 200: the body, trimmed. 404, a reply over 64 KiB, no answer in time: unknown user.
    assert_eq!(
        hooks.password("alice", client()).await.as_deref(),
        Some("alicepw")
    );
    assert_eq!(hooks.password("bob", client()).await, None);
    // (Its length only, so a failure does not print 100 KiB.)
    assert_eq!(
        hooks.password("huge", client()).await.map(|p| p.len()),
        None
    );
    let start = Instant::now();
    assert_eq!(hooks.password("slow", client()).await, None);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "timeout: {:?}",
        start.elapsed()
    );
    // The name is query-encoded, whatever it holds.
    assert_eq!(
        hooks.password("a b&c=d", client()).await.as_deref(),
        Some("alicepw")
    );

    let asked = backend.seen("password");
    let names: Vec<&str> = asked.iter().map(|s| s.query["name"].as_str()).collect();
    assert_eq!(names, ["alice", "bob", "huge", "slow", "a b&c=d"]);
    for s in &asked {
        let mut query: Vec<(&str, &str)> = s
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        query.sort_unstable();
        assert_eq!(query, [("addr", CLIENT), ("name", &s.query["name"])]);
        assert_eq!(
            (s.realm.as_str(), s.rid.as_str()),
            ("turn.example", rid.as_str())
        );
    }

    // Another start, another rid.
    let again = self::hooks(addr, |_| {});
    assert_ne!(again.rid(), rid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_posted_in_order_with_the_seed_000_bodies() {
    let (addr, backend) = start_backend(Duration::ZERO).await;
    let hooks = hooks(addr, |_| {});
    let name = || "alice".to_owned();
    let addr = client();
    for event in [
        TurnEvent::Binding { addr },
        TurnEvent::Allocated {
            name: name(),
            addr,
            port: 50000,
        },
        TurnEvent::CreatePermission {
            name: name(),
            addr,
            relay: 6000,
        },
        TurnEvent::ChannelBind {
            name: name(),
            addr,
            channel: 0x4000,
        },
        TurnEvent::Refresh {
            name: name(),
            addr,
            expiration: 600,
        },
        TurnEvent::Abort { name: name(), addr },
    ] {
        hooks.event(event);
    }
    let posted = backend.events(6).await;
    let bodies: Vec<Value> = posted.iter().map(|s| s.body.clone()).collect();
    assert_eq!(
        bodies,
        vec![
            json!({"kind": "binding", "addr": CLIENT}),
            json!({"kind": "allocated", "name": "alice", "addr": CLIENT, "port": 50000}),
            json!({"kind": "create_permission", "name": "alice", "addr": CLIENT, "relay": 6000}),
            json!({"kind": "channel_bind", "name": "alice", "addr": CLIENT, "channel": 16384}),
            json!({"kind": "refresh", "name": "alice", "addr": CLIENT, "expiration": 600}),
            json!({"kind": "abort", "name": "alice", "addr": CLIENT}),
        ]
    );
    for s in &posted {
        assert_eq!(
            (s.realm.as_str(), s.rid.as_str(), s.content_type.as_str()),
            ("turn.example", hooks.rid(), "application/json")
        );
    }
    assert_eq!(hooks.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_events_backend_gets_what_the_queue_holds_and_the_rest_is_dropped() {
    let (addr, backend) = start_backend(Duration::from_millis(200)).await;
    let hooks = hooks(addr, |c| c.queue_capacity = 2);
    let start = Instant::now();
    for port in 0..20 {
        hooks.event(TurnEvent::Allocated {
            name: "alice".into(),
            addr: client(),
            port,
        });
    }
    // Queuing never waits on the backend.
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    // Two queued and at most one taken off the queue by the sender meanwhile.
    let dropped = hooks.dropped();
    assert!((17..=18).contains(&dropped), "dropped {dropped}");
    let kept = 20 - dropped as usize;
    let posted = backend.events(kept).await;
    let ports: Vec<u64> = posted
        .iter()
        .map(|s| s.body["port"].as_u64().unwrap_or(u64::MAX))
        .collect();
    assert_eq!(
        ports,
        (0..kept as u64).collect::<Vec<_>>(),
        "the first ones, in order"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        backend.seen("events").len(),
        kept,
        "nothing after the drops"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_events_share_one_pooled_client() {
    let (addr, backend) = start_backend(Duration::ZERO).await;
    let hooks = hooks(addr, |_| {});
    for _ in 0..10 {
        assert!(hooks.password("alice", client()).await.is_some());
    }
    hooks.event(TurnEvent::Binding { addr: client() });
    backend.events(1).await;
    let ports: std::collections::HashSet<u16> = backend
        .seen
        .lock()
        .expect("lock")
        .iter()
        .map(|s| s.port)
        .collect();
    // hyper hands a connection back to its pool a moment after the caller has the answer, so
    // a loaded machine may open a second one; without pooling it would be 11.
    assert!(
        ports.len() <= 2,
        "11 requests on {} connections: {ports:?}",
        ports.len()
    );
}
