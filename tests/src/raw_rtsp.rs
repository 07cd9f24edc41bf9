//! A raw RTSP client for tests that need what ffmpeg will not send: repeated or trickled
//! requests. It writes requests as text and reads answers, skipping interleaved frames.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One RTSP answer: status code, the head (status line and headers) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (exact spelling, as the server writes it).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }
}

/// A raw RTSP connection.
pub struct RawRtsp {
    pub socket: TcpStream,
    buf: Vec<u8>,
    /// Interleaved frames skipped while reading answers.
    pub interleaved: usize,
}

impl RawRtsp {
    pub async fn connect(addr: SocketAddr) -> RawRtsp {
        let socket = TcpStream::connect(addr).await.expect("connect");
        RawRtsp {
            socket,
            buf: Vec::new(),
            interleaved: 0,
        }
    }

    /// Sends `method url` with CSeq `cseq` and `headers` (each ending in CRLF) and reads the
    /// answer.
    pub async fn request(&mut self, method: &str, url: &str, cseq: u32, headers: &str) -> Answer {
        let req = format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{headers}\r\n");
        self.socket.write_all(req.as_bytes()).await.expect("write");
        self.answer().await
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), self.socket.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next answer, skipping interleaved frames before it.
    pub async fn answer(&mut self) -> Answer {
        loop {
            if self.buf.first() == Some(&b'$') {
                if self.buf.len() >= 4 {
                    let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                    if self.buf.len() >= 4 + len {
                        self.buf.drain(..4 + len);
                        self.interleaved += 1;
                        continue;
                    }
                }
                self.fill().await;
                continue;
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let body =
                        String::from_utf8_lossy(&self.buf[end + 4..end + 4 + length]).into_owned();
                    self.buf.drain(..end + 4 + length);
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .expect("status");
                    return Answer { status, head, body };
                }
            }
            self.fill().await;
        }
    }
}
