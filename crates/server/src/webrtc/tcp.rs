//! ICE-TCP passive (RFC 6544) on `rtc.tcpPort`: each accepted connection carries one peer's
//! STUN, DTLS, RTP and RTCP, each framed with a 16-bit length (RFC 4571, RFC 6544 §3). A task per
//! connection deframes (`rtsp::rfc4571::Deframer`) into the driver's command queue and writes
//! what the driver sends back; the peers themselves stay in the one driver task.
//!
//! Bounds: at most `rtc.maxPeers` connections at once (more are closed at accept); a connection
//! must send its first frame within `rtc.connectTimeoutSec` and is closed after
//! `rtc.timeoutSec` of silence; at most [`OUT_QUEUE`] frames wait to be written to one, past it
//! the driver drops frames (as a congested path would).

use super::Command;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

/// Frames waiting to be written to one connection.
pub(super) const OUT_QUEUE: usize = 256;
/// Read buffer of a connection.
const READ_BUF: usize = 0x4000;

/// Accepts ICE-TCP connections until `shutdown`.
pub(super) async fn accept(
    listener: TcpListener,
    driver: mpsc::Sender<Command>,
    max: usize,
    first_frame: Duration,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(max));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!("ICE-TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(%peer, "ICE-TCP connection refused: rtc.maxPeers connections");
            continue;
        };
        let driver = driver.clone();
        tokio::spawn(async move {
            serve(stream, peer, driver, first_frame, idle).await;
            drop(permit);
        });
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    driver: mpsc::Sender<Command>,
    first_frame: Duration,
    idle: Duration,
) {
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(OUT_QUEUE);
    if driver.send(Command::TcpOpen(peer, tx)).await.is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut deframer = rtsp::rfc4571::Deframer::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut deadline = first_frame;
    'read: loop {
        let n = match tokio::time::timeout(deadline, read.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) => {
                tracing::debug!(%peer, "ICE-TCP connection silent: closed");
                break;
            }
        };
        if deframer.push(&buf[..n]).is_err() {
            break;
        }
        while let Some(frame) = deframer.pull() {
            match frame {
                Ok(frame) => {
                    deadline = idle;
                    // Waiting here slows this peer down instead of growing a queue.
                    if driver.send(Command::TcpFrame(peer, frame)).await.is_err() {
                        break 'read;
                    }
                }
                Err(e) => {
                    tracing::debug!(%peer, "ICE-TCP framing: {e}");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
    let _ = driver.send(Command::TcpClosed(peer)).await;
}
