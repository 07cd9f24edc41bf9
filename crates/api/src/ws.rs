//! The WebSocket side every live output shares (WS-FLV, `.live.ts` and `.live.mp4` over a
//! WebSocket): one binary message per chunk, while the viewer's socket is read at the same
//! time, so a viewer that leaves is noticed at once rather than when a write to it fails or
//! the stream ends.
//!
//! What a viewer sends (RFC 6455): a Close frame is answered and ends the stream (§5.5.1,
//! §7.1.2); a read error or the end of its TCP stream ends it too; a Ping is answered with a
//! Pong by tungstenite as it reads (§5.5.2); any other message is read and dropped, and none
//! may be larger than [`MAX_VIEWER_MESSAGE`], so a viewer cannot make us buffer much.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use std::time::Duration;

/// Largest message, and frame, a viewer may send. Players send nothing but control frames
/// (at most 125 bytes, §5.5); a larger message is a protocol error that ends the stream.
pub(crate) const MAX_VIEWER_MESSAGE: usize = 64 << 10;

/// How long the closing handshake may take once the stream is over for this viewer.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// `ws` with the limits on what the viewer may send.
pub(crate) fn bounded(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_VIEWER_MESSAGE)
        .max_frame_size(MAX_VIEWER_MESSAGE)
}

/// Why the stream ended for this viewer.
enum End {
    /// The chunks ran out (the stream ended): we start the closing handshake.
    Finished,
    /// The viewer sent a Close frame: tungstenite has queued the reply.
    Closed,
    /// The viewer's TCP stream ended without a Close frame.
    Eof,
    Read(axum::Error),
    Write(axum::Error),
}

/// Sends `chunks` to the viewer on `socket`, one binary message each, until they end or the
/// viewer leaves. `chunks` (and with it the viewer's subscription) is dropped as soon as the
/// stream is over for the viewer, before the closing handshake, so the viewer has left the
/// stream even if that handshake then takes its time.
pub(crate) async fn send_live(socket: WebSocket, chunks: impl Stream<Item = Bytes>) {
    let mut chunks = Box::pin(chunks);
    let (mut sink, mut incoming) = socket.split();
    let end = {
        let send = async {
            while let Some(bytes) = chunks.next().await {
                if let Err(e) = sink.send(Message::Binary(bytes)).await {
                    return End::Write(e);
                }
            }
            End::Finished
        };
        let read = async {
            loop {
                match incoming.next().await {
                    Some(Ok(Message::Close(_))) => return End::Closed,
                    // Pongs to pings are queued by tungstenite while it reads; the rest is
                    // not for us.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return End::Read(e),
                    None => return End::Eof,
                }
            }
        };
        tokio::select! {
            end = send => end,
            end = read => end,
        }
    };
    drop(chunks);
    // A message `sink` took but had not yet handed to tungstenite is dropped with it: the
    // viewer gets no more media. A frame tungstenite had begun writing still goes out whole
    // before the Close frame.
    let Ok(mut socket) = incoming.reunite(sink) else {
        return;
    };
    match end {
        End::Finished => {
            let _ = tokio::time::timeout(CLOSE_WAIT, socket.send(Message::Close(None))).await;
        }
        End::Closed => {
            tracing::info!("play ended: the viewer closed the WebSocket");
            // Flushes the queued reply, which echoes the viewer's status code (§5.5.1).
            let _ = tokio::time::timeout(CLOSE_WAIT, SinkExt::close(&mut socket)).await;
        }
        End::Eof => tracing::info!("play ended: the viewer's connection closed"),
        End::Read(e) => tracing::warn!("play ended: reading from the viewer failed: {e}"),
        End::Write(e) => tracing::info!("play ended: writing to the viewer failed: {e}"),
    }
}
