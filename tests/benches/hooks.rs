//! Hook benchmark (`scripts/bench-hooks`, or `cargo bench -p server --bench hooks`):
//!
//! 1. What on_play adds to a viewer's first byte: an in-process server with a live stream
//!    (ffmpeg publishing a test pattern over RTMP), then `REQUESTS` HTTP-FLV requests one after
//!    another, timing request-sent to first response byte, with hooks off and then with on_play
//!    answered by a local axum backend. Prints p50/p99 of each and the difference.
//! 2. Hooks per second the client sustains: `CONCURRENCY` tasks calling on_play against the same
//!    backend for `SECONDS`; and lifecycle hooks queued and flushed through the ordered workers.
//!
//! Needs ffmpeg. Figures are for loopback on this machine: backend, server and ffmpeg share
//! its cores.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use axum::Json;
use hooks::{Hook, HookConfig, Hooks, Request};
use media::StreamKey;
use registry::{Protocol, SessionInfo};
use serde_json::{json, Value};
use server::{Options, Server};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn backend() -> SocketAddr {
    let app =
        axum::Router::new().fallback(|Json(_): Json<Value>| async { Json(json!({"code": 0})) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn hook_config(backend: SocketAddr) -> HookConfig {
    let mut config = HookConfig::default();
    config.enable = true;
    for hook in Hook::ALL {
        config.set_url(
            hook,
            Some(format!("http://{backend}/index/hook/{}", hook.name())),
        );
    }
    config
}

async fn start(hooks: HookConfig) -> Server {
    let mut options = Options::from_config(&server::config::Config::default());
    options.rtmp_addr = Some("127.0.0.1:0".parse().unwrap());
    options.http_addr = Some("127.0.0.1:0".parse().unwrap());
    options.turn_addr = None;
    options.rtsp_addr = None;
    options.hooks = hooks;
    Server::start(options).await.unwrap()
}

/// Milliseconds from sending a GET for `path` to the first byte of the answer.
async fn first_byte(addr: SocketAddr, path: &str) -> f64 {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.set_nodelay(true).unwrap();
    let started = Instant::now();
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    socket.read_exact(&mut buf).await.unwrap();
    started.elapsed().as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn first_byte_run(label: &str, hooks: HookConfig, requests: u64) -> (f64, f64) {
    let server = start(hooks).await;
    let url = format!("rtmp://{}/live/bench", server.rtmp_addr.unwrap());
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-f",
            "flv",
        ])
        .arg(&url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg");
    let key = StreamKey::new("live", "bench").expect("key");
    while server
        .registry
        .stream(&key)
        .is_none_or(|s| s.tracks.is_empty())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = server.http_addr.unwrap();
    let mut times = Vec::new();
    for _ in 0..requests {
        times.push(first_byte(http, "/live/bench.live.flv").await);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("first byte, {label:<28} p50 {p50:7.3} ms   p99 {p99:7.3} ms   ({requests} requests)");
    let _ = ffmpeg.kill().await;
    server.shutdown().await;
    (p50, p99)
}

fn request() -> Request {
    let session = SessionInfo {
        id: 1,
        protocol: Protocol::HttpFlv,
        peer: "127.0.0.1:5000".parse().unwrap(),
        local: "127.0.0.1:8080".parse().unwrap(),
        params: "token=abc".into(),
    };
    Request::new(StreamKey::new("live", "bench").expect("key"), &session)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let requests = env("REQUESTS", 500);
    let concurrency = env("CONCURRENCY", 32);
    let seconds = env("SECONDS", 5);
    let backend = backend().await;

    let (off50, off99) = first_byte_run("hooks off", HookConfig::default(), requests).await;
    let (on50, on99) =
        first_byte_run("on_play, local backend", hook_config(backend), requests).await;
    println!(
        "on_play adds                             p50 {:7.3} ms   p99 {:7.3} ms",
        on50 - off50,
        on99 - off99
    );

    let hooks = Hooks::new(hook_config(backend));
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (hooks, done) = (hooks.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let req = request();
                while Instant::now() < deadline {
                    hooks.on_play(&req).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "on_play calls/s, {concurrency} concurrent:          {:9.0}  ({n} in {seconds} s)",
        n as f64 / seconds as f64
    );

    let queued = 20_000u64;
    let started = Instant::now();
    for i in 0..queued {
        let body = json!({"stream": format!("s{}", i % 64), "regist": true});
        let Value::Object(body) = body else {
            unreachable!()
        };
        hooks.notify(Hook::OnStreamChanged, &format!("s{}", i % 64), body);
        if i % 1000 == 999 {
            // Stay under the queue bound: this measures sending, not dropping.
            hooks.flush(Duration::from_secs(60)).await;
        }
    }
    hooks.flush(Duration::from_secs(60)).await;
    println!(
        "lifecycle hooks/s (4 ordered workers):   {:9.0}  ({queued} queued, {} dropped)",
        queued as f64 / started.elapsed().as_secs_f64(),
        hooks.dropped()
    );
}
