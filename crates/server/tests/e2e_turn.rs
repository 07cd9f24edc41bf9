//! The embedded STUN/TURN relay against coturn's own clients (Debian's `coturn` package):
//! `turnutils_stunclient` for a Binding, `turnutils_uclient` allocating over UDP and TCP with a
//! static user, REST credentials and a hook-supplied password, relaying through to
//! `turnutils_peer` (an echo server on 127.0.0.1, a peer the default policy refuses).
//!
//! coturn 4.6's uclient picks channel numbers across RFC 5766's 0x4000–0x7FFF while we accept
//! RFC 8656's 0x4000–0x4FFF, so the relaying runs use `-s` (Send/Data indications); channels
//! are covered by the `turn` crate's tests.

mod common;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{output_within, start_server_with};
use server::Server;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};

/// Messages each relaying run sends (and expects echoed).
const MESSAGES: usize = 10;
/// Their size.
const LEN: usize = 100;

/// Whether coturn's client tools are installed; missing tools skip a test locally and fail it
/// in CI (`CI` set), where `scripts/test` must have installed them.
fn have_coturn() -> bool {
    let ok = [
        "turnutils_uclient",
        "turnutils_peer",
        "turnutils_stunclient",
    ]
    .iter()
    .all(|tool| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "coturn's turnutils missing in CI: scripts/test must install the coturn package"
        );
        eprintln!("skipped: coturn (turnutils_uclient) not installed");
    }
    ok
}

/// A server with only TURN on, on 127.0.0.1 (UDP and TCP on one ephemeral port).
async fn turn_server(tweak: impl FnOnce(&mut ::turn::server::Config)) -> Server {
    start_server_with(|o| {
        o.rtmp_addr = None;
        o.http_addr = None;
        o.turn_addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.turn.server.users = vec![("alice".into(), "alicepw".into())];
        tweak(&mut o.turn.server);
    })
    .await
}

fn allow_loopback(c: &mut ::turn::server::Config) {
    c.allow_peers = vec!["127.0.0.1/32".parse().expect("cidr")];
}

/// `turnutils_peer` echoing on 127.0.0.1, once it answers.
async fn start_peer() -> (Child, u16) {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    };
    let child = Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn turnutils_peer");
    let probe = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut buf = [0u8; 16];
    for _ in 0..50 {
        probe
            .send_to(b"ping", ("127.0.0.1", port))
            .await
            .expect("send");
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(100), probe.recv_from(&mut buf)).await
        {
            if &buf[..n] == b"ping" {
                return (child, port);
            }
        }
    }
    panic!("turnutils_peer did not start on port {port}");
}

/// What one `turnutils_uclient` run reported.
struct Run {
    success: bool,
    text: String,
}

impl Run {
    /// `tot_recv_bytes ~ N` of the summary: payload bytes echoed back through the relay.
    fn received_bytes(&self) -> Option<usize> {
        self.text
            .lines()
            .filter_map(|l| l.split("tot_recv_bytes ~ ").nth(1))
            .filter_map(|n| n.trim().parse().ok())
            .next_back()
    }

    /// `Total lost packets N` of the summary.
    fn lost(&self) -> Option<usize> {
        self.text
            .lines()
            .filter_map(|l| l.split("Total lost packets ").nth(1))
            .filter_map(|n| n.split_whitespace().next()?.parse().ok())
            .next_back()
    }
}

/// `turnutils_uclient` sending MESSAGES Send indications through `server` to the peer on
/// 127.0.0.1:`peer_port`; `args` add credentials and `-t`.
async fn uclient(server: &Server, peer_port: u16, args: &[&str]) -> Run {
    uclient_with(server, peer_port, &["-s"], args).await
}

/// Like [`uclient`], but over a bound channel: ChannelBind, then ChannelData both ways.
async fn uclient_channels(server: &Server, peer_port: u16, args: &[&str]) -> Run {
    uclient_with(server, peer_port, &[], args).await
}

async fn uclient_with(server: &Server, peer_port: u16, mode: &[&str], args: &[&str]) -> Run {
    let turn = server.turn_addr.expect("turn on");
    let mut cmd = Command::new("turnutils_uclient");
    // -s: Send indications (else channels); -c: no RTCP allocation; -z 5: 5 ms apart.
    cmd.args(mode)
        .args(["-c", "-m", "1", "-z", "5"])
        .args(["-n", &MESSAGES.to_string(), "-l", &LEN.to_string()])
        .args(["-e", "127.0.0.1", "-r", &peer_port.to_string()])
        .args(["-p", &turn.port().to_string()])
        .args(args)
        .arg(turn.ip().to_string());
    let out = output_within(&mut cmd, Duration::from_secs(10)).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        success: out.status.success(),
        text,
    }
}

fn assert_relayed(run: &Run) {
    assert!(run.success, "uclient failed:\n{}", run.text);
    assert_eq!(run.lost(), Some(0), "{}", run.text);
    assert_eq!(run.received_bytes(), Some(MESSAGES * LEN), "{}", run.text);
}

#[tokio::test]
async fn stun_binding_answers_the_reflexive_address() {
    if !have_coturn() {
        return;
    }
    let server = turn_server(|_| {}).await;
    let turn = server.turn_addr.expect("turn on");
    let mut cmd = Command::new("turnutils_stunclient");
    cmd.args(["-p", &turn.port().to_string(), "127.0.0.1"]);
    let out = output_within(&mut cmd, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("UDP reflexive addr: 127.0.0.1:"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn udp_allocation_with_a_static_user_relays_to_an_allowed_peer() {
    if !have_coturn() {
        return;
    }
    let server = turn_server(allow_loopback).await;
    let (_peer, port) = start_peer().await;
    let run = uclient(&server, port, &["-u", "alice", "-w", "alicepw"]).await;
    assert_relayed(&run);
    server.shutdown().await;
    // ChannelBind + ChannelData, on a fresh server so nothing of the first run is left.
    let server = turn_server(allow_loopback).await;
    let run = uclient_channels(&server, port, &["-u", "alice", "-w", "alicepw"]).await;
    assert_relayed(&run);
    server.shutdown().await;
}

#[tokio::test]
async fn tcp_allocation_with_a_static_user_relays_to_an_allowed_peer() {
    if !have_coturn() {
        return;
    }
    let server = turn_server(allow_loopback).await;
    let (_peer, port) = start_peer().await;
    let run = uclient(&server, port, &["-t", "-u", "alice", "-w", "alicepw"]).await;
    assert_relayed(&run);
    server.shutdown().await;
    // ChannelData over TCP (4-byte framing with padding), on a fresh server.
    let server = turn_server(allow_loopback).await;
    let run = uclient_channels(&server, port, &["-t", "-u", "alice", "-w", "alicepw"]).await;
    assert_relayed(&run);
    server.shutdown().await;
}

#[tokio::test]
async fn rest_credentials_from_the_shared_secret() {
    if !have_coturn() {
        return;
    }
    let server = turn_server(|c| {
        allow_loopback(c);
        c.users.clear();
        c.auth_secret = Some("north-secret".into());
    })
    .await;
    let (_peer, port) = start_peer().await;
    // uclient makes `expiry:bob` and its HMAC-SHA1 password itself from -W.
    let run = uclient(&server, port, &["-u", "bob", "-W", "north-secret"]).await;
    assert_relayed(&run);
    let run = uclient(&server, port, &["-u", "bob", "-W", "wrong-secret"]).await;
    assert!(!run.success, "a wrong secret must fail:\n{}", run.text);
    assert_eq!(run.received_bytes(), None, "{}", run.text);
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_refused() {
    if !have_coturn() {
        return;
    }
    let server = turn_server(allow_loopback).await;
    let (_peer, port) = start_peer().await;
    for transport in [&[][..], &["-t"][..]] {
        let mut args = transport.to_vec();
        args.extend(["-u", "alice", "-w", "not-the-password"]);
        let run = uclient(&server, port, &args).await;
        assert!(!run.success, "{args:?} must fail:\n{}", run.text);
        assert!(
            run.text.contains("Cannot complete Allocation"),
            "{args:?}:\n{}",
            run.text
        );
        assert_eq!(run.received_bytes(), None, "{}", run.text);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn loopback_peer_is_refused_unless_allowed() {
    if !have_coturn() {
        return;
    }
    let server = turn_server(|_| {}).await;
    let (_peer, port) = start_peer().await;
    let run = uclient(&server, port, &["-u", "alice", "-w", "alicepw"]).await;
    assert!(
        !run.success,
        "a loopback peer must be refused by default:\n{}",
        run.text
    );
    assert!(run.text.contains("403"), "{}", run.text);
    assert_eq!(run.received_bytes(), None, "{}", run.text);
    server.shutdown().await;
}

/// What the hook backend saw.
#[derive(Default)]
struct Seen {
    /// `(name, addr, realm, rid)` of each `GET /password`.
    passwords: Vec<(String, String, String, String)>,
    /// `(body, realm, rid)` of each `POST /events`.
    events: Vec<(serde_json::Value, String, String)>,
}

type Backend = Arc<Mutex<Seen>>;

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn password(
    State(seen): State<Backend>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let name = q.get("name").cloned().unwrap_or_default();
    let addr = q.get("addr").cloned().unwrap_or_default();
    seen.lock().expect("lock").passwords.push((
        name.clone(),
        addr,
        header(&headers, "realm"),
        header(&headers, "rid"),
    ));
    match name.as_str() {
        "carol" => (StatusCode::OK, "carolpw\n".into()),
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}

async fn events(
    State(seen): State<Backend>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> StatusCode {
    seen.lock().expect("lock").events.push((
        body,
        header(&headers, "realm"),
        header(&headers, "rid"),
    ));
    StatusCode::OK
}

/// The seed 000 backend on 127.0.0.1:0: carol's password is `carolpw`, everyone else is
/// unknown.
async fn start_backend() -> (SocketAddr, Backend) {
    let seen = Backend::default();
    let app = Router::new()
        .route("/hooks/password", get(password))
        .route("/hooks/events", post(events))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

fn kinds(seen: &Backend) -> Vec<String> {
    seen.lock()
        .expect("lock")
        .events
        .iter()
        .filter_map(|(b, _, _)| b["kind"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn hook_password_and_events() {
    if !have_coturn() {
        return;
    }
    let (backend, seen) = start_backend().await;
    let server = start_server_with(|o| {
        o.rtmp_addr = None;
        o.http_addr = None;
        o.turn_addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.turn.server.realm = "hooked.example".into();
        allow_loopback(&mut o.turn.server);
        o.turn.hook_url = Some(format!("http://{backend}/hooks/"));
    })
    .await;
    let (_peer, port) = start_peer().await;
    // Over TCP: closing the connection ends the allocation, which the abort event shows.
    let run = uclient(&server, port, &["-t", "-u", "carol", "-w", "carolpw"]).await;
    assert_relayed(&run);
    let run = uclient(&server, port, &["-u", "dave", "-w", "whatever"]).await;
    assert!(!run.success, "an unknown user must fail:\n{}", run.text);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let want = ["allocated", "refresh", "create_permission", "abort"];
    while !want.iter().all(|k| kinds(&seen).iter().any(|s| s == k)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events seen: {:?}",
            kinds(&seen)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
    let seen = seen.lock().expect("lock");
    let names: Vec<&str> = seen.passwords.iter().map(|p| p.0.as_str()).collect();
    assert!(
        names.contains(&"carol") && names.contains(&"dave"),
        "{names:?}"
    );
    let rid = &seen.passwords[0].3;
    assert_eq!(rid.len(), 16, "rid: {rid:?}");
    for (_, addr, realm, r) in &seen.passwords {
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        assert_eq!(realm, "hooked.example");
        assert_eq!(r, rid, "one rid per start");
    }
    for (body, realm, r) in &seen.events {
        assert_eq!(realm, "hooked.example");
        assert_eq!(r, rid);
        assert!(
            body["addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{body}"
        );
        if body["kind"] != "binding" {
            assert_eq!(body["name"], "carol", "{body}");
        }
    }
    let find = |kind: &str| {
        seen.events
            .iter()
            .map(|(b, _, _)| b)
            .find(|b| b["kind"] == kind)
            .cloned()
            .expect("event")
    };
    assert!(find("allocated")["port"].as_u64().is_some_and(|p| p > 0));
    assert_eq!(find("create_permission")["relay"], u64::from(port));
    assert!(find("refresh")["expiration"].as_u64().is_some());
}

/// A TCP client that connects and never speaks is closed (after 10 s), and garbage on TCP or
/// UDP is dropped without disturbing a real client.
#[tokio::test]
async fn silent_and_garbage_clients_are_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !have_coturn() {
        return;
    }
    let server = turn_server(allow_loopback).await;
    let turn = server.turn_addr.expect("turn on");
    let mut silent = tokio::net::TcpStream::connect(turn).await.expect("connect");
    let mut garbage = tokio::net::TcpStream::connect(turn).await.expect("connect");
    garbage
        .write_all(&[0xffu8; 64])
        .await
        .expect("write garbage");
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for junk in [
        &[0u8; 3][..],
        &[0x00, 0x01, 0x00, 0x08, 1, 2, 3, 4][..],
        &[0x40; 40][..],
    ] {
        udp.send_to(junk, turn).await.expect("send junk");
    }
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), garbage.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "garbage TCP connection closed: {closed:?}"
    );
    // Meanwhile a real client relays as usual.
    let (_peer, port) = start_peer().await;
    assert_relayed(&uclient(&server, port, &["-u", "alice", "-w", "alicepw"]).await);
    let closed = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "silent TCP connection closed: {closed:?}"
    );
    server.shutdown().await;
}
