//! A raw HTTP/1.1 client connection, for what reqwest hides from a test: exactly which bytes
//! go out and when, whether a keep-alive connection is reused, and when and how the server
//! closes it.

use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One response read off the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status line, e.g. `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// Header lines as sent, lowercased names, in order.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the server ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// An orderly close (FIN): the read returned 0.
    Eof,
    /// A reset: the server closed with bytes of ours still unread in its receive buffer,
    /// which the kernel answers with RST instead of FIN (RFC 9293 §3.6.1). What a user sees is
    /// the same: the connection is gone.
    Reset,
}

pub struct Conn {
    reader: OwnedReadHalf,
    writer: Option<OwnedWriteHalf>,
    buf: BytesMut,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let socket = TcpStream::connect(addr).await.expect("connect to HTTP");
        socket.set_nodelay(true).expect("nodelay");
        let (reader, writer) = socket.into_split();
        Conn {
            reader,
            writer: Some(writer),
            buf: BytesMut::new(),
        }
    }

    /// Sends `bytes` in one write.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer
            .as_mut()
            .expect("the writer was not taken")
            .write_all(bytes)
            .await
            .expect("write request");
    }

    /// The sending half, for a task that writes while this one reads.
    pub fn take_writer(&mut self) -> OwnedWriteHalf {
        self.writer.take().expect("the writer was not taken")
    }

    /// Reads one response whose body has a `Content-Length`; panics after `limit`.
    pub async fn response(&mut self, limit: Duration) -> Response {
        let deadline = Instant::now() + limit;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill(deadline).await;
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("UTF-8 head");
        self.buf.advance(head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no Content-Length in {head}"));
        while self.buf.len() < len {
            self.fill(deadline).await;
        }
        let body = self.buf.split_to(len).to_vec();
        Response {
            status_line,
            headers,
            body,
        }
    }

    /// Waits up to `limit` for the server to close the connection: how, how long it took, and
    /// any bytes it sent first. `None` if it is still open.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<(Closed, Duration, Vec<u8>)> {
        let start = Instant::now();
        let mut got = std::mem::take(&mut self.buf).to_vec();
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(start + limit, self.reader.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) => return Some((Closed::Eof, start.elapsed(), got)),
                Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Some((Closed::Reset, start.elapsed(), got))
                }
                Ok(Err(e)) => panic!("read: {e}"),
            }
        }
    }

    async fn fill(&mut self, deadline: Instant) {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout_at(deadline, self.reader.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read response");
        assert!(n > 0, "connection closed mid-response");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
