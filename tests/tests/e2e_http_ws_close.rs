//! A WebSocket viewer of `.live.flv` or `.live.ts` that leaves is gone at once, not when the
//! stream ends: its pings are answered while media flows; its Close frame is answered (echoing
//! its status code) and its viewer slot released (ViewerLeft, `readers` back to 0) while the
//! stream goes on; a viewer whose TCP stream ends without a Close frame is released as fast.

use e2e::*;
use futures_util::{SinkExt, StreamExt};
use media::StreamKey;
use registry::{Event, Protocol};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

/// "At once", with room for a loaded CI machine; the stream itself goes on for minutes.
const AT_ONCE: Duration = Duration::from_secs(1);

type Ws = tokio_tungstenite::WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn start() -> (server::Server, StreamKey, tokio::process::Child) {
    let server = start_server().await;
    let publisher = ffmpeg_publish(&rtmp_url(&server, "live/ws"), &["-stream_loop", "-1"]);
    let key = StreamKey::new("live", "ws").expect("key");
    wait_live(&server, &key, 2).await;
    (server, key, publisher)
}

/// Connects to `suffix` over a WebSocket and reads media until there is some.
async fn watch(server: &server::Server, suffix: &str) -> Ws {
    let url = format!("ws://{}/live/ws.{suffix}", server.http_addr.expect("http"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let mut binary = 0;
    while binary < 5 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("media in time")
            .expect("open")
            .expect("ok");
        binary += usize::from(msg.is_binary());
    }
    ws
}

fn readers(server: &server::Server, key: &StreamKey) -> Option<usize> {
    server.registry.stream(key).map(|s| s.readers)
}

/// Waits for `protocol`'s ViewerLeft on `events`; panics after [`AT_ONCE`].
async fn viewer_left(events: &mut tokio::sync::broadcast::Receiver<Event>, protocol: Protocol) {
    tokio::time::timeout(AT_ONCE, async {
        loop {
            match events.recv().await {
                Ok(Event::ViewerLeft { viewer, .. }) if viewer.protocol == protocol => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no ViewerLeft for {protocol:?} within {AT_ONCE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_frame_is_answered_and_ends_the_viewer_at_once() {
    if !have_ffmpeg() {
        return;
    }
    let (server, key, _publisher) = start().await;
    for (suffix, protocol) in [("live.flv", Protocol::WsFlv), ("live.ts", Protocol::WsTs)] {
        let mut ws = watch(&server, suffix).await;
        assert_eq!(readers(&server, &key), Some(1), "{suffix}");
        // A ping is answered while media flows.
        ws.send(Message::Ping("are you there".into()))
            .await
            .expect("send Ping");
        let pong = tokio::time::timeout(AT_ONCE, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Pong(data))) => return data,
                    Some(Ok(_)) => {}
                    other => panic!("{suffix}: {other:?} before the Pong"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{suffix}: no Pong within {AT_ONCE:?}"));
        assert_eq!(&pong[..], b"are you there", "{suffix}");
        let mut events = server.registry.events();
        let sent = Instant::now();
        let bye = CloseFrame {
            code: CloseCode::Away,
            reason: "bye".into(),
        };
        ws.send(Message::Close(Some(bye.clone())))
            .await
            .expect("send Close");
        // Media already on its way may come first; then the server's Close.
        let reply = tokio::time::timeout(AT_ONCE, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    other => panic!("{suffix}: {other:?} before the Close reply"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{suffix}: no Close reply within {AT_ONCE:?}"));
        assert_eq!(
            reply,
            Some(bye),
            "{suffix}: the reply echoes our status code"
        );
        viewer_left(&mut events, protocol).await;
        assert_eq!(readers(&server, &key), Some(0), "{suffix}");
        // Then the server closes the TCP connection.
        let end = tokio::time::timeout(AT_ONCE, ws.next())
            .await
            .expect("TCP closed");
        assert!(end.is_none(), "{suffix}: {end:?}");
        eprintln!(
            "{suffix}: Close answered and viewer gone {:?} after our Close",
            sent.elapsed()
        );
    }
    assert!(server.registry.is_live(&key), "the stream goes on");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_the_viewers_tcp_stream_ends_the_viewer_at_once() {
    if !have_ffmpeg() {
        return;
    }
    let (server, key, _publisher) = start().await;
    for (suffix, protocol) in [("live.flv", Protocol::WsFlv), ("live.ts", Protocol::WsTs)] {
        let mut ws = watch(&server, suffix).await;
        let mut events = server.registry.events();
        // Half-close: the viewer sends FIN but would go on reading, so the server's writes keep
        // succeeding and only reading the socket can tell that the viewer has gone.
        match ws.get_mut() {
            MaybeTlsStream::Plain(tcp) => tcp.shutdown().await.expect("shutdown"),
            _ => unreachable!("ws:// is plain TCP"),
        }
        viewer_left(&mut events, protocol).await;
        assert_eq!(readers(&server, &key), Some(0), "{suffix}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_messages_are_ignored_up_to_a_bound() {
    if !have_ffmpeg() {
        return;
    }
    let (server, key, _publisher) = start().await;
    let mut ws = watch(&server, "live.flv").await;
    for i in 0..100 {
        ws.send(Message::Text(format!("chatter {i}").into()))
            .await
            .expect("send text");
    }
    // Still a viewer, still getting media.
    let mut binary = 0;
    while binary < 5 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("media in time")
            .expect("open")
            .expect("ok");
        binary += usize::from(msg.is_binary());
    }
    assert_eq!(readers(&server, &key), Some(1));
    // A message past the bound (64 KiB) ends the viewer instead of being buffered.
    let mut events = server.registry.events();
    // The server may cut us off before all of it is written (a reset): that is the point.
    let big = Message::Binary(vec![0u8; 1 << 20].into());
    let _ = tokio::time::timeout(AT_ONCE, ws.send(big)).await;
    viewer_left(&mut events, Protocol::WsFlv).await;
    assert_eq!(readers(&server, &key), Some(0));
    server.shutdown().await;
}
