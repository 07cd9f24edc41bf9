//! `http.keepAliveSecond`: a connection with no request in flight is closed once it has been
//! quiet that long: one that never sends a byte, and a keep-alive connection after its last
//! response (which it may reuse until then).

use e2e::http1::{Closed, Conn, Response};
use e2e::*;
use std::time::Duration;

const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// Timers fire late, never early; a loaded CI machine may add a lot.
const LATE: Duration = Duration::from_secs(2);

const GET_HELLO: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

fn assert_closed_after_keep_alive(closed: Option<(Closed, Duration, Vec<u8>)>, what: &str) {
    let (how, after, sent) = closed.unwrap_or_else(|| panic!("{what}: never closed"));
    assert_eq!(how, Closed::Eof, "{what}: an orderly close");
    assert!(
        sent.is_empty(),
        "{what}: nothing sent: {:?}",
        String::from_utf8_lossy(&sent)
    );
    // The server's clock starts a moment before ours (it sent the response first).
    assert!(
        after >= KEEP_ALIVE - Duration::from_millis(200),
        "{what}: closed after {after:?}, before keepAliveSecond"
    );
    assert!(
        after < KEEP_ALIVE + LATE,
        "{what}: closed only after {after:?}"
    );
    eprintln!("{what}: closed after {after:?}");
}

fn assert_hello(resp: &Response) {
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.body, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_keep_alive_connections_are_closed_after_keep_alive_second() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join("hello.txt"), "hello").expect("write");
    let server = start_server_with(|o| {
        o.file_root = Some(root.path().to_owned());
        o.http.keep_alive = KEEP_ALIVE;
    })
    .await;
    let addr = server.http_addr.expect("http");

    // A client that connects and sends nothing.
    let mut silent = Conn::connect(addr).await;
    let closed = silent.closed_within(KEEP_ALIVE + LATE + LATE).await;
    assert_closed_after_keep_alive(closed, "silent connection");

    // A keep-alive client: a response, a second request on the same connection within
    // keepAliveSecond, then silence.
    let mut idle = Conn::connect(addr).await;
    idle.send(GET_HELLO).await;
    assert_hello(&idle.response(Duration::from_secs(10)).await);
    tokio::time::sleep(KEEP_ALIVE / 2).await;
    idle.send(GET_HELLO).await;
    assert_hello(&idle.response(Duration::from_secs(10)).await);
    let closed = idle.closed_within(KEEP_ALIVE + LATE + LATE).await;
    assert_closed_after_keep_alive(closed, "idle keep-alive connection");
    server.shutdown().await;
}
