//! A client that trickles its request head one byte per second is closed once the header
//! deadline has passed since its first byte, although every byte is far inside
//! `http.keepAliveSecond`: trickling cannot hold a socket open.

use e2e::http1::{Closed, Conn};
use e2e::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Half-way between two bytes of the trickle, so the server has read every byte it was sent
/// when it closes and closes with FIN rather than RST (unread data, RFC 9293 §3.6.1).
const HEADER_TIMEOUT: Duration = Duration::from_millis(3500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_head_is_cut_at_the_deadline_from_its_first_byte() {
    let server = start_server_with(|o| {
        o.http.header_timeout = HEADER_TIMEOUT;
        // Far longer than the test: only the header deadline can close the connection.
        o.http.keep_alive = Duration::from_secs(60);
    })
    .await;
    let mut conn = Conn::connect(server.http_addr.expect("http")).await;
    let mut writer = conn.take_writer();
    // Long enough that it would still be arriving when the test gives up.
    let head =
        b"GET /index/api/version HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n\r\n";
    let trickle = tokio::spawn(async move {
        for byte in head {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    // The first byte goes out at once; measure from then.
    let closed = conn
        .closed_within(HEADER_TIMEOUT + Duration::from_secs(5))
        .await;
    trickle.abort();
    let (how, after, sent) = closed.expect("the trickling connection was never closed");
    assert_eq!(how, Closed::Eof, "an orderly close");
    assert!(
        sent.is_empty(),
        "nothing answered: {:?}",
        String::from_utf8_lossy(&sent)
    );
    assert!(
        after >= HEADER_TIMEOUT - Duration::from_millis(100),
        "closed after {after:?}, before the {HEADER_TIMEOUT:?} deadline"
    );
    assert!(
        after < HEADER_TIMEOUT + Duration::from_secs(2),
        "closed only after {after:?}"
    );
    eprintln!("trickling connection closed after {after:?} ({how:?})");
    server.shutdown().await;
}
