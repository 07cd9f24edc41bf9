//! The embedded STUN/TURN relay against coturn's own clients (Debian's `coturn` package):
//! `turnutils_stunclient` for a Binding, `turnutils_uclient` allocating over UDP and TCP with a
//! static user, REST credentials and a hook-supplied password, relaying through to
//! `turnutils_peer` (an echo server on 127.0.0.1, a peer the default policy refuses).
//!
//! coturn 4.6's uclient picks channel numbers across RFC 5766's 0x4000–0x7FFF while we accept
//! RFC 8656's 0x4000–0x4FFF, so the relaying runs use `-s` (Send/Data indications); channels,
//! and the driver's ChannelData fast path, are covered by the `turn` crate's tests and by the
//! tests at the end of this file, which drive a UDP client made with the `turn` crate's codec.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use e2e::{output_within, start_server_with};
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
    turn_server_with(|o| tweak(&mut o.server)).await
}

/// Like [`turn_server`], with the driver's options (TCP deadlines and cap) at hand.
async fn turn_server_with(tweak: impl FnOnce(&mut server::TurnOptions)) -> Server {
    start_server_with(|o| {
        o.rtmp_addr = None;
        o.http_addr = None;
        o.turn_addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.turn.server.users = vec![("alice".into(), "alicepw".into())];
        tweak(&mut o.turn);
    })
    .await
}

/// [`turn_server`] for alice, relaying to loopback peers, with HTTP on (the API, `/metrics`).
async fn turn_server_with_api() -> Server {
    start_server_with(|o| {
        o.rtmp_addr = None;
        o.turn_addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.turn.server.users = vec![("alice".into(), "alicepw".into())];
        allow_loopback(&mut o.turn.server);
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
    uclient_run(server, peer_port, mode, &["-c"], args).await
}

/// `turnutils_uclient` with `rtcp` either `["-c"]` (no RTCP allocation) or empty: its default
/// mode, an RTP allocation with EVEN-PORT R=1 and an RTCP one redeeming the
/// RESERVATION-TOKEN (RFC 8656 §7.2).
async fn uclient_run(
    server: &Server,
    peer_port: u16,
    mode: &[&str],
    rtcp: &[&str],
    args: &[&str],
) -> Run {
    let turn = server.turn_addr_now().expect("turn on");
    let mut cmd = Command::new("turnutils_uclient");
    // -s: Send indications (else channels); -z 5: 5 ms apart.
    cmd.args(mode)
        .args(rtcp)
        .args(["-m", "1", "-z", "5"])
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

/// A TCP client that connects and never speaks is closed (after 5 s), and garbage on TCP or
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

/// Issue 10 item 7: coturn's uclient in its default mode reserves the RTCP port next to the
/// RTP one (EVEN-PORT with the R bit) and allocates it with the RESERVATION-TOKEN; both were
/// answered 508 before, so the run failed.
#[tokio::test]
async fn uclient_default_mode_gets_its_rtcp_port_reservation() {
    if !have_coturn() {
        return;
    }
    let (_peer, port) = start_peer().await;
    for transport in [&[][..], &["-t"][..]] {
        let server = turn_server(allow_loopback).await;
        let mut args = transport.to_vec();
        args.extend(["-u", "alice", "-w", "alicepw"]);
        let run = uclient_run(&server, port, &["-s"], &[], &args).await;
        assert!(run.success, "{args:?}:\n{}", run.text);
        assert_eq!(run.lost(), Some(0), "{}", run.text);
        // The RTP and the RTCP allocation each relay every message and get it echoed.
        assert_eq!(
            run.received_bytes(),
            Some(2 * MESSAGES * LEN),
            "{}",
            run.text
        );
        server.shutdown().await;
    }
}

/// Reads one STUN message from a TURN TCP connection (RFC 8656 §12.5 framing).
async fn read_stun(tcp: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> turn::stun::Message {
    use tokio::io::AsyncReadExt;
    loop {
        if let Ok(Some((turn::channel::Frame::Stun(raw), used))) = turn::channel::next_frame(buf) {
            let msg = turn::stun::Message::decode(raw).expect("STUN from the server");
            buf.drain(..used);
            return msg;
        }
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_buf(buf)).await;
        assert!(matches!(read, Ok(Ok(n)) if n > 0), "no answer: {read:?}");
    }
}

/// A request as alice (long-term credentials under `nonce`), or unauthenticated.
fn request(
    method: turn::stun::Method,
    n: u8,
    attrs: &[turn::attr::Attribute],
    nonce: Option<&str>,
) -> Vec<u8> {
    use turn::attr::Attribute;
    let mut b = turn::stun::MessageBuilder::new(
        turn::stun::Class::Request,
        method,
        turn::stun::TransactionId([n; 12]),
    );
    for a in attrs {
        b.add(a).expect("attribute");
    }
    if let Some(nonce) = nonce {
        b.add(&Attribute::Username("alice".into()))
            .expect("attribute");
        b.add(&Attribute::Realm("ferrostream".into()))
            .expect("attribute");
        b.add(&Attribute::Nonce(nonce.into())).expect("attribute");
        b.add_message_integrity(&turn::auth::long_term_key(
            "alice",
            "ferrostream",
            "alicepw",
        ))
        .expect("integrity");
    }
    b.finish()
}

/// A TCP connection holding an allocation (401 challenge, then the authenticated Allocate),
/// and the nonce for further requests.
async fn tcp_allocation(turn: SocketAddr) -> (tokio::net::TcpStream, Vec<u8>, String) {
    use tokio::io::AsyncWriteExt;
    use turn::attr::Attribute;
    let mut tcp = tokio::net::TcpStream::connect(turn).await.expect("connect");
    let mut buf = Vec::new();
    let udp = [Attribute::RequestedTransport(17)];
    tcp.write_all(&request(turn::stun::Method::Allocate, 1, &udp, None))
        .await
        .expect("write");
    let challenge = read_stun(&mut tcp, &mut buf).await;
    assert_eq!(challenge.error_code().map(|e| e.code), Some(401));
    let nonce = challenge.nonce().expect("nonce").to_owned();
    tcp.write_all(&request(
        turn::stun::Method::Allocate,
        2,
        &udp,
        Some(&nonce),
    ))
    .await
    .expect("write");
    let allocated = read_stun(&mut tcp, &mut buf).await;
    assert_eq!(allocated.class, turn::stun::Class::Success, "{allocated:?}");
    (tcp, buf, nonce)
}

/// Waits for the server to close `tcp`; returns how long that took, or `None` past `limit`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at(start + limit, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Issue 10 item 4: a TCP client that sent one byte was then allowed `max_lifetime` + 60 s
/// of silence (3660 s by default). Now the first complete message is due 5 s after the accept.
#[tokio::test]
async fn tcp_client_sending_one_byte_is_closed_at_the_first_message_deadline() {
    use tokio::io::AsyncWriteExt;
    if !have_coturn() {
        return;
    }
    let server = turn_server(|_| {}).await;
    let turn = server.turn_addr.expect("turn on");
    let mut tcp = tokio::net::TcpStream::connect(turn).await.expect("connect");
    tcp.write_all(&[0x00]).await.expect("write");
    let took = closed_within(&mut tcp, Duration::from_secs(10)).await;
    eprintln!("1-byte-then-silent TURN TCP client closed after {took:?}");
    let took = took.expect("closed within 10 s");
    assert!(
        took >= Duration::from_millis(4500),
        "closed after {took:?}, before the deadline"
    );
    server.shutdown().await;
}

/// A TCP client that keeps sending complete messages (Binding requests, each answered) but
/// never allocates is closed at the allocation deadline; one with an allocation is not, and
/// keeps its allocation past it.
#[tokio::test]
async fn tcp_client_without_allocation_is_closed_at_the_allocation_deadline() {
    use tokio::io::AsyncWriteExt;
    if !have_coturn() {
        return;
    }
    let server = turn_server_with(|o| {
        o.tcp_first_message_timeout = Duration::from_secs(1);
        o.tcp_allocation_timeout = Duration::from_secs(3);
    })
    .await;
    let turn = server.turn_addr.expect("turn on");
    let (mut allocated, mut allocated_buf, nonce) = tcp_allocation(turn).await;
    let mut chatty = tokio::net::TcpStream::connect(turn).await.expect("connect");
    let start = tokio::time::Instant::now();
    let mut buf = Vec::new();
    let mut n = 10;
    let closed = loop {
        n += 1;
        let binding = request(turn::stun::Method::Binding, n, &[], None);
        if chatty.write_all(&binding).await.is_err() {
            break start.elapsed();
        }
        let mut answer = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(500), {
            use tokio::io::AsyncReadExt;
            chatty.read(&mut answer)
        })
        .await
        {
            Ok(Ok(0) | Err(_)) => break start.elapsed(),
            Ok(Ok(got)) => buf.extend_from_slice(&answer[..got]),
            Err(_) => {}
        }
        assert!(start.elapsed() < Duration::from_secs(8), "never closed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(!buf.is_empty(), "the Bindings were answered");
    assert!(
        (Duration::from_millis(2500)..Duration::from_secs(6)).contains(&closed),
        "closed after {closed:?}"
    );
    // The allocated connection outlived the deadline and still has its allocation.
    let refresh = request(
        turn::stun::Method::Refresh,
        3,
        &[turn::attr::Attribute::Lifetime(600)],
        Some(&nonce),
    );
    allocated.write_all(&refresh).await.expect("write");
    let answer = read_stun(&mut allocated, &mut allocated_buf).await;
    assert_eq!(answer.class, turn::stun::Class::Success, "{answer:?}");
    server.shutdown().await;
}

/// The cap on TCP connections without an allocation: past it a new connection is closed at
/// once, a client allocating below it succeeds, and allocated clients do not count.
#[tokio::test]
async fn tcp_cap_refuses_unallocated_connections_past_it() {
    if !have_coturn() {
        return;
    }
    let server = turn_server_with(|o| {
        allow_loopback(&mut o.server);
        o.tcp_first_message_timeout = Duration::from_secs(30);
        o.tcp_allocation_timeout = Duration::from_secs(30);
        o.tcp_max_unallocated = 2;
    })
    .await;
    let turn = server.turn_addr.expect("turn on");
    let (_peer, port) = start_peer().await;
    let _silent1 = tokio::net::TcpStream::connect(turn).await.expect("connect");
    // One place left: a real client allocates (and leaves the count) and relays.
    let run = uclient(&server, port, &["-t", "-u", "alice", "-w", "alicepw"]).await;
    assert_relayed(&run);
    // Allocated connections do not count either.
    let (_allocated, _, _) = tcp_allocation(turn).await;
    let mut silent2 = tokio::net::TcpStream::connect(turn).await.expect("connect");
    // The accept queue is served in order: the third connection without an allocation is
    // closed at accept, the second is not.
    let mut excess = tokio::net::TcpStream::connect(turn).await.expect("connect");
    let refused = closed_within(&mut excess, Duration::from_secs(2)).await;
    assert!(refused.is_some(), "the connection past the cap was kept");
    assert_eq!(
        closed_within(&mut silent2, Duration::from_millis(500)).await,
        None
    );
    let run = uclient(&server, port, &["-t", "-u", "alice", "-w", "alicepw"]).await;
    assert!(
        !run.success,
        "a TCP client past the cap must be refused:\n{}",
        run.text
    );
    // Once a silent connection goes, a client gets in again.
    drop(silent2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let run = uclient(&server, port, &["-t", "-u", "alice", "-w", "alicepw"]).await;
        if run.success {
            assert_relayed(&run);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", run.text);
    }
    server.shutdown().await;
}

/// A TCP client that deletes its allocation (Refresh to 0) and stays connected is back to the
/// allocation deadline instead of `max_lifetime` + 60 s of idling.
#[tokio::test]
async fn tcp_client_that_deletes_its_allocation_gets_the_deadline_again() {
    use tokio::io::AsyncWriteExt;
    if !have_coturn() {
        return;
    }
    let server = turn_server_with(|o| o.tcp_allocation_timeout = Duration::from_secs(2)).await;
    let turn = server.turn_addr.expect("turn on");
    let (mut tcp, mut buf, nonce) = tcp_allocation(turn).await;
    // Past the deadline counted from the accept: the allocation keeps the connection.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let delete = request(
        turn::stun::Method::Refresh,
        3,
        &[turn::attr::Attribute::Lifetime(0)],
        Some(&nonce),
    );
    tcp.write_all(&delete).await.expect("write");
    let answer = read_stun(&mut tcp, &mut buf).await;
    assert_eq!(answer.class, turn::stun::Class::Success, "{answer:?}");
    let took = closed_within(&mut tcp, Duration::from_secs(6)).await;
    let took = took.expect("closed after its allocation ended");
    assert!(took >= Duration::from_millis(1500), "closed after {took:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn relayed_traffic_reaches_metrics() {
    if !have_coturn() {
        return;
    }
    let server = turn_server_with_api().await;
    let (_peer, port) = start_peer().await;
    let run = uclient(&server, port, &["-u", "alice", "-w", "alicepw"]).await;
    assert_relayed(&run);
    // /metrics counts what went through the relay (refreshed every second).
    let echoed = run.received_bytes().expect("summary") as f64;
    let metrics = format!("http://{}/metrics", server.http_addr.expect("http"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = reqwest::get(&metrics)
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        };
        let relayed = value("ferrostream_turn_relayed_bytes_total").unwrap_or(0.0);
        if relayed >= echoed {
            assert!(value("ferrostream_turn_allocations").is_some(), "{text}");
            assert!(value("ferrostream_turn_relayed_packets_total").unwrap_or(0.0) > 0.0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "relayed {relayed} < echoed {echoed}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn turn_users_change_through_set_server_config() {
    if !have_coturn() {
        return;
    }
    let server = turn_server_with_api().await;
    let (_peer, port) = start_peer().await;
    let api = e2e::api::Api::of(&server);
    let set = api
        .call("setServerConfig", &[("turn.users", "bob:bobpw")])
        .await;
    assert_eq!(set, serde_json::json!({"code": 0, "changed": 1}));
    // Applied while running: bob relays, alice is refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let run = uclient(&server, port, &["-u", "bob", "-w", "bobpw"]).await;
        if run.success {
            assert_relayed(&run);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob never got in:\n{}",
            run.text
        );
    }
    let alice = uclient(&server, port, &["-u", "alice", "-w", "alicepw"]).await;
    assert!(
        !alice.success,
        "a removed user still relays:\n{}",
        alice.text
    );
    server.shutdown().await;
}

#[tokio::test]
async fn turn_port_moves_and_the_old_port_drains() {
    if !have_coturn() {
        return;
    }
    let server = turn_server_with_api().await;
    let (_peer, port) = start_peer().await;
    let api = e2e::api::Api::of(&server);
    let old = server.turn_addr_now().expect("turn on");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let set = api
        .call("setServerConfig", &[("turn.port", &free.to_string())])
        .await;
    assert_eq!(set, serde_json::json!({"code": 0, "changed": 1}));
    let moved: std::net::SocketAddr = format!("127.0.0.1:{free}").parse().expect("addr");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.turn_addr_now() != Some(moved) {
        assert!(tokio::time::Instant::now() < deadline, "TURN did not move");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new port relays.
    let run = uclient(&server, port, &["-u", "alice", "-w", "alicepw"]).await;
    assert_relayed(&run);
    // The old one had no allocation: it ends (its TCP port closes).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(old).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old TURN port still accepts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}

// ChannelData fast path (issue 12): the listener task and the relay readers relay published
// channels themselves. These drive it with a UDP client built from the `turn` crate's codec
// and a plain UDP peer, so they need no coturn.

/// A TURN client over UDP with an allocation as alice.
struct UdpTurn {
    sock: UdpSocket,
    turn: SocketAddr,
    nonce: String,
    tid: u8,
    relay: SocketAddr,
}

impl UdpTurn {
    /// A 401 challenge, then the authenticated Allocate.
    async fn allocate(turn: SocketAddr) -> UdpTurn {
        use turn::attr::Attribute;
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let mut c = UdpTurn {
            sock,
            turn,
            nonce: String::new(),
            tid: 1,
            relay: turn,
        };
        let udp = [Attribute::RequestedTransport(17)];
        let challenge = c.call(turn::stun::Method::Allocate, &udp, false).await;
        assert_eq!(challenge.error_code().map(|e| e.code), Some(401));
        c.nonce = challenge.nonce().expect("nonce").to_owned();
        let allocated = c.call(turn::stun::Method::Allocate, &udp, true).await;
        assert_eq!(allocated.class, turn::stun::Class::Success, "{allocated:?}");
        match allocated.attribute(turn::attr::XOR_RELAYED_ADDRESS) {
            Some(Attribute::XorRelayedAddress(a)) => c.relay = *a,
            other => panic!("no relayed address: {other:?}"),
        }
        c
    }

    /// A request and its response (other datagrams meanwhile are skipped).
    async fn call(
        &mut self,
        method: turn::stun::Method,
        attrs: &[turn::attr::Attribute],
        authed: bool,
    ) -> turn::stun::Message {
        self.tid += 1;
        let tid = self.tid;
        let nonce = authed.then_some(self.nonce.as_str());
        let raw = request(method, tid, attrs, nonce);
        self.sock.send_to(&raw, self.turn).await.expect("send");
        loop {
            let bytes = self.recv(Duration::from_secs(5)).await.expect("a response");
            if let Ok(m) = turn::stun::Message::decode(&bytes) {
                if m.transaction_id == turn::stun::TransactionId([tid; 12]) {
                    return m;
                }
            }
        }
    }

    async fn ok(&mut self, method: turn::stun::Method, attrs: &[turn::attr::Attribute]) {
        let m = self.call(method, attrs, true).await;
        assert_eq!(m.class, turn::stun::Class::Success, "{method:?}: {m:?}");
    }

    async fn bind(&mut self, channel: u16, peer: SocketAddr) {
        use turn::attr::Attribute;
        let attrs = [
            Attribute::ChannelNumber(channel),
            Attribute::XorPeerAddress(peer),
        ];
        self.ok(turn::stun::Method::ChannelBind, &attrs).await;
    }

    async fn channel_data(&self, channel: u16, data: &[u8]) {
        let mut out = Vec::new();
        turn::channel::ChannelData { channel, data }
            .encode(false, &mut out)
            .expect("encode");
        self.sock.send_to(&out, self.turn).await.expect("send");
    }

    async fn recv(&self, within: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        match tokio::time::timeout(within, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
            _ => None,
        }
    }
}

/// The next datagram on `sock` within `within`.
async fn recv_within(sock: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(within, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
        _ => None,
    }
}

/// `/metrics`' `name`, once it is at least `at_least` (the figures refresh every second).
async fn metric_reaching(server: &Server, name: &str, at_least: f64) -> f64 {
    let url = format!("http://{}/metrics", server.http_addr.expect("http"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = reqwest::get(&url)
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if value >= at_least || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const SHORT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn channel_data_is_relayed_both_ways_and_counted() {
    let server = turn_server_with_api().await;
    let turn = server.turn_addr.expect("turn on");
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let peer_addr = peer.local_addr().expect("addr");
    let mut c = UdpTurn::allocate(turn).await;
    c.bind(0x4001, peer_addr).await;
    let (mut sent, mut packets) = (0usize, 0usize);
    for i in 0..50u8 {
        let out = vec![i; 10 + usize::from(i)];
        c.channel_data(0x4001, &out).await;
        let (got, from) = recv_within(&peer, Duration::from_secs(2))
            .await
            .expect("relayed to the peer");
        assert_eq!((got, from), (out.clone(), c.relay));
        let back = vec![i ^ 0xFF; 3 + usize::from(i)];
        peer.send_to(&back, c.relay).await.expect("send");
        let got = c
            .recv(Duration::from_secs(2))
            .await
            .expect("relayed to the client");
        let cd = turn::channel::ChannelData::decode(&got).expect("ChannelData");
        assert_eq!((cd.channel, cd.data), (0x4001, back.as_slice()));
        sent += out.len() + back.len();
        packets += 2;
    }
    // Every relayed payload byte is counted once, whichever path took it.
    let bytes = metric_reaching(&server, "ferrostream_turn_relayed_bytes_total", sent as f64).await;
    assert_eq!(bytes, sent as f64);
    let n = metric_reaching(
        &server,
        "ferrostream_turn_relayed_packets_total",
        packets as f64,
    )
    .await;
    assert_eq!(n, packets as f64);
    server.shutdown().await;
}

#[tokio::test]
async fn peers_without_a_channel_or_permission_do_not_get_channel_data() {
    let server = turn_server_with_api().await;
    let turn = server.turn_addr.expect("turn on");
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let other_port = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    // Another IP: no permission.
    let stranger = UdpSocket::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    let mut c = UdpTurn::allocate(turn).await;
    c.bind(0x4000, peer.local_addr().expect("addr")).await;
    stranger.send_to(b"intruder", c.relay).await.expect("send");
    assert_eq!(
        c.recv(SHORT).await,
        None,
        "a peer without permission is dropped"
    );
    // The permitted IP on a port without a channel: a Data indication from the owner.
    other_port.send_to(b"side", c.relay).await.expect("send");
    let got = c
        .recv(Duration::from_secs(2))
        .await
        .expect("Data indication");
    let m = turn::stun::Message::decode(&got).expect("STUN");
    assert_eq!(m.method, turn::stun::Method::Data);
    assert_eq!(
        m.xor_peer_addresses().next(),
        Some(other_port.local_addr().expect("addr"))
    );
    // ChannelData on a channel never bound goes nowhere.
    c.channel_data(0x4005, b"nowhere").await;
    assert_eq!(recv_within(&peer, SHORT).await, None);
    assert_eq!(recv_within(&other_port, SHORT).await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_channel_stops_relaying_at_once() {
    let server = start_server_with(|o| {
        o.rtmp_addr = None;
        o.http_addr = None;
        o.turn_addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.turn.server.users = vec![("alice".into(), "alicepw".into())];
        o.turn.server.channel_lifetime = Duration::from_secs(2);
        allow_loopback(&mut o.turn.server);
    })
    .await;
    let turn = server.turn_addr.expect("turn on");
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let peer_addr = peer.local_addr().expect("addr");
    let mut c = UdpTurn::allocate(turn).await;
    c.bind(0x4000, peer_addr).await;
    c.channel_data(0x4000, b"early").await;
    let got = recv_within(&peer, Duration::from_secs(2)).await;
    assert_eq!(got.map(|g| g.0), Some(b"early".to_vec()));
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Past the channel's lifetime: nothing reaches the peer, and the peer's datagrams come
    // back as Data indications (the permission lasts 300 s).
    c.channel_data(0x4000, b"late").await;
    assert_eq!(recv_within(&peer, SHORT).await, None);
    peer.send_to(b"back", c.relay).await.expect("send");
    let got = c
        .recv(Duration::from_secs(2))
        .await
        .expect("Data indication");
    let m = turn::stun::Message::decode(&got).expect("a Data indication, not ChannelData");
    assert_eq!(m.method, turn::stun::Method::Data);
    // Bound again: relayed again.
    c.bind(0x4000, peer_addr).await;
    c.channel_data(0x4000, b"again").await;
    let got = recv_within(&peer, Duration::from_secs(2)).await;
    assert_eq!(got.map(|g| g.0), Some(b"again".to_vec()));
    server.shutdown().await;
}

#[tokio::test]
async fn a_deleted_allocation_stops_relaying() {
    let server = turn_server_with_api().await;
    let turn = server.turn_addr.expect("turn on");
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let peer_addr = peer.local_addr().expect("addr");
    let mut c = UdpTurn::allocate(turn).await;
    c.bind(0x4000, peer_addr).await;
    c.channel_data(0x4000, b"one").await;
    assert!(recv_within(&peer, Duration::from_secs(2)).await.is_some());
    c.ok(
        turn::stun::Method::Refresh,
        &[turn::attr::Attribute::Lifetime(0)],
    )
    .await;
    c.channel_data(0x4000, b"two").await;
    assert_eq!(recv_within(&peer, SHORT).await, None);
    peer.send_to(b"back", c.relay).await.expect("send");
    assert_eq!(c.recv(SHORT).await, None);
    server.shutdown().await;
}
