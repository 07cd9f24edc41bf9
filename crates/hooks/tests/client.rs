//! The hook client against a real HTTP server (axum on 127.0.0.1:0): lifecycle hooks keep
//! their order and never hold up an auth call, a full queue drops and counts, and calls reuse
//! pooled keep-alive connections.

use axum::extract::{ConnectInfo, State};
use axum::Json;
use hooks::{Hook, HookConfig, Hooks, Request};
use media::StreamKey;
use registry::{Protocol, SessionInfo};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call the backend received.
#[derive(Debug, Clone)]
struct Seen {
    hook: String,
    n: u64,
    /// The client's port: the same port means the same (kept-alive) connection.
    port: u16,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A backend that answers on_stream_changed after `slow` and everything else at once.
async fn backend(slow: Duration) -> (SocketAddr, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State((log, slow)): State<(Log, Duration)>,
             ConnectInfo(peer): ConnectInfo<SocketAddr>,
             uri: axum::http::Uri,
             Json(body): Json<Value>| async move {
                let hook = uri.path().rsplit('/').next().unwrap_or("").to_owned();
                log.lock().expect("lock").push(Seen {
                    hook: hook.clone(),
                    n: body["n"].as_u64().unwrap_or(0),
                    port: peer.port(),
                });
                if hook == "on_stream_changed" {
                    tokio::time::sleep(slow).await;
                }
                Json(json!({"code": 0}))
            },
        )
        .with_state((Arc::clone(&log), slow));
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
    (addr, log)
}

fn config(addr: SocketAddr, workers: usize, capacity: usize) -> HookConfig {
    let mut config = HookConfig::default();
    config.enable = true;
    config.workers = workers;
    config.queue_capacity = capacity;
    for hook in Hook::ALL {
        config.set_url(
            hook,
            Some(format!("http://{addr}/index/hook/{}", hook.name())),
        );
    }
    config
}

fn session() -> SessionInfo {
    SessionInfo {
        id: 7,
        protocol: Protocol::Rtmp,
        peer: "127.0.0.1:4000".parse().expect("addr"),
        local: "127.0.0.1:1935".parse().expect("addr"),
        params: String::new(),
    }
}

fn request(stream: &str) -> Request {
    Request::new(StreamKey::new("live", stream).expect("key"), &session())
}

fn body(n: u64) -> Map<String, Value> {
    let Value::Object(map) = json!({"stream": "a", "n": n}) else {
        unreachable!()
    };
    map
}

fn changed(log: &Log) -> Vec<u64> {
    log.lock()
        .expect("lock")
        .iter()
        .filter(|s| s.hook == "on_stream_changed")
        .map(|s| s.n)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_order_is_kept_and_auth_never_waits_behind_it() {
    let (addr, log) = backend(Duration::from_millis(1500)).await;
    let hooks = Hooks::new(config(addr, 1, 64));
    // Four lifecycle hooks of one stream on a backend that takes 1.5 s for each...
    for n in 0..4 {
        hooks.notify(Hook::OnStreamChanged, "live/a", body(n));
    }
    // ...and an auth call meanwhile: it is answered while the first of them is still in
    // flight, not after the queue.
    hooks.on_play(&request("b")).await.expect("allowed");
    assert!(changed(&log).len() <= 1, "on_play waited behind the queue");
    hooks.flush(Duration::from_secs(20)).await;
    assert_eq!(changed(&log), (0..4).collect::<Vec<_>>(), "sent in order");
    assert_eq!(hooks.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts() {
    let (addr, log) = backend(Duration::from_millis(300)).await;
    let hooks = Hooks::new(config(addr, 1, 4));
    for n in 0..50 {
        hooks.notify(Hook::OnStreamChanged, "live/a", body(n));
    }
    // One in flight at most and four waiting: the rest are dropped, not buffered.
    assert!(hooks.dropped() >= 45, "dropped {}", hooks.dropped());
    hooks.flush(Duration::from_secs(10)).await;
    assert_eq!(changed(&log).len() as u64 + hooks.dropped(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reuse_keep_alive_connections() {
    let (addr, log) = backend(Duration::ZERO).await;
    let hooks = Hooks::new(config(addr, 1, 64));
    for _ in 0..20 {
        hooks.on_play(&request("k")).await.expect("allowed");
    }
    let ports: std::collections::HashSet<u16> =
        log.lock().expect("lock").iter().map(|s| s.port).collect();
    // hyper hands a connection back to the pool from its connection task, a moment after the
    // caller has the whole answer; on a loaded machine the next call may already have opened a
    // second one by then. Without pooling it would be 20.
    assert!(
        ports.len() <= 2,
        "20 sequential calls on one or two pooled connections: {ports:?}"
    );
}

/// A backend answering every hook with `reply` and keeping the last body.
async fn scripted(reply: Value) -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State((bodies, reply)): State<(Arc<Mutex<Vec<Value>>>, Value)>,
             Json(body): Json<Value>| async move {
                bodies.lock().expect("lock").push(body);
                Json(reply)
            },
        )
        .with_state((Arc::clone(&bodies), reply));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_and_http_access_calls_read_their_replies() {
    let (addr, bodies) = scripted(json!({
        "code": 0, "realm": "cams", "encrypted": true, "passwd": "0123abcd",
        "err": "", "path": "/record/", "second": 600,
    }))
    .await;
    let hooks = Hooks::new(config(addr, 1, 8));
    let req = request("cam");
    assert_eq!(hooks.on_rtsp_realm(&req).await, Ok(Some("cams".into())));
    let password = hooks
        .on_rtsp_auth(&req, "cams", "alice", false)
        .await
        .expect("password");
    assert_eq!(
        password,
        hooks::RtspPassword {
            encrypted: true,
            passwd: "0123abcd".into()
        }
    );
    let headers = [("User-Agent".to_owned(), "curl/8".to_owned())];
    let access = hooks
        .on_http_access(
            &session(),
            "/record/a.mp4",
            "/srv/www/record/a.mp4",
            false,
            &headers,
        )
        .await
        .expect("allowed")
        .expect("hook on");
    assert_eq!((access.path.as_str(), access.second), ("/record/", 600));
    let bodies = bodies.lock().expect("lock").clone();
    assert_eq!(bodies[0]["stream"], "cam");
    assert_eq!(bodies[1]["user_name"], "alice");
    assert_eq!(bodies[1]["realm"], "cams");
    assert_eq!(bodies[1]["must_no_encrypt"], false);
    let mut access_body = bodies[2].clone();
    assert!(access_body["hook_index"].is_u64(), "{access_body}");
    access_body["hook_index"] = json!(0);
    assert_eq!(
        access_body,
        json!({
            "ip": "127.0.0.1", "port": 4000, "id": "7", "path": "/record/a.mp4",
            "file_path": "/srv/www/record/a.mp4", "is_dir": false, "params": "",
            "header.User-Agent": "curl/8", "mediaServerId": "your_server_id", "hook_index": 0,
        })
    );

    // An `err` refuses the file; an empty realm means no RTSP auth.
    let (addr, _) = scripted(json!({"code": 0, "err": "members only", "realm": ""})).await;
    let hooks = Hooks::new(config(addr, 1, 8));
    assert_eq!(hooks.on_rtsp_realm(&req).await, Ok(None));
    let refused = hooks
        .on_http_access(&session(), "/a", "/srv/a", false, &[])
        .await
        .expect_err("refused");
    assert_eq!(refused.msg, "members only");
}
