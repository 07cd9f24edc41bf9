//! `ferrostream-load`: the load generator behind `scripts/bench-fanout`.
//!
//! ```text
//! ferrostream-load publish <rtmp-url> <file.flv>   publish a file in real time, looped
//! ferrostream-load view <url> <n> <seconds>        n viewers of an rtmp:// or http://….flv URL
//! ```
//!
//! It speaks RTMP through the same sans-IO `rtmp::client::Session` that pull proxies use, so
//! the load costs a few tasks instead of a swarm of ffmpeg processes, and it loads any RTMP
//! server alike (`scripts/bench-fanout` runs it against ferrostream and nginx-rtmp). `view`
//! prints one line of JSON: viewers connected and failed, bytes received over the measured
//! window, the delivered Mbit/s in all and per viewer, and the time from each viewer's connect
//! to the play's start (RTMP `NetStream.Play.Start`, the HTTP-FLV response head; p50, p99) and
//! to its first video keyframe (p50, p99, max).
#![allow(clippy::print_stdout)] // the report goes to stdout

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use rtmp::client::{Config, Event, Session};
use rtmp::flv::FlvReader;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Runtime::new()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["publish", url, file] => rt.block_on(publish(url, file)),
        ["view", url, n, secs] => {
            let n: usize = n.parse().context("viewer count")?;
            let secs: u64 = secs.parse().context("seconds")?;
            rt.block_on(view(url, n, Duration::from_secs(secs)))
        }
        _ => bail!(
            "usage: ferrostream-load publish <rtmp-url> <file.flv>\n       \
             ferrostream-load view <rtmp-or-flv-url> <n> <seconds>"
        ),
    }
}

/// `rtmp://host:port/app/stream?query` → (host:port, app, stream?query, tcUrl).
fn split_rtmp_url(url: &str) -> anyhow::Result<(String, String, String, String)> {
    let rest = url
        .strip_prefix("rtmp://")
        .ok_or_else(|| anyhow!("not an rtmp:// URL"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| anyhow!("no app in URL"))?;
    let (app, stream) = path
        .split_once('/')
        .ok_or_else(|| anyhow!("no stream in URL"))?;
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:1935")
    };
    Ok((
        host.clone(),
        app.to_owned(),
        stream.to_owned(),
        format!("rtmp://{host}/{app}"),
    ))
}

/// An RTMP client connection: a socket driven through the sans-IO session.
struct Client {
    socket: TcpStream,
    session: Session,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(url: &str) -> anyhow::Result<(Client, String)> {
        let (host, app, stream, tc_url) = split_rtmp_url(url)?;
        let socket = TcpStream::connect(&host)
            .await
            .with_context(|| format!("connect {host}"))?;
        socket.set_nodelay(true)?;
        let mut session = Session::new(Config::default(), rand_bytes());
        session.connect(&app, &tc_url);
        let mut client = Client {
            socket,
            session,
            buf: vec![0; 64 * 1024],
        };
        client.flush().await?;
        client.wait_for(|e| matches!(e, Event::Connected)).await?;
        Ok((client, stream))
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        let mut out = bytes::BytesMut::new();
        if self.session.poll_transmit(&mut out) {
            self.socket.write_all(&out).await?;
        }
        Ok(())
    }

    /// Reads until an event matching `want` arrives; media events are skipped.
    async fn wait_for(&mut self, want: impl Fn(&Event) -> bool) -> anyhow::Result<()> {
        loop {
            while let Some(event) = self.session.poll_event() {
                if let Event::Rejected { code, description } = &event {
                    bail!("rejected: {code} {description}");
                }
                if want(&event) {
                    return Ok(());
                }
            }
            let n = self.socket.read(&mut self.buf).await?;
            if n == 0 {
                bail!("server closed the connection");
            }
            self.session.handle_input(&self.buf[..n])?;
            self.flush().await?;
        }
    }
}

fn rand_bytes() -> [u8; 1528] {
    // Handshake randomness need not be secure for a load tool; vary it per connection anyway.
    static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = SEED.fetch_add(0x6a09_e667_f3bc_c909, Ordering::Relaxed);
    let mut out = [0u8; 1528];
    for b in out.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    out
}

/// Publishes an FLV file in real time, forever (looping with continuous timestamps).
async fn publish(url: &str, file: &str) -> anyhow::Result<()> {
    let data = Bytes::from(std::fs::read(file).with_context(|| format!("read {file}"))?);
    let (mut client, stream) = Client::connect(url).await?;
    client.session.publish(&stream);
    client.flush().await?;
    client
        .wait_for(|e| matches!(e, Event::PublishStarted))
        .await?;
    let start = Instant::now();
    let mut base: u64 = 0;
    loop {
        let mut last_ts = 0u64;
        let mut reader = FlvReader::new(data.clone())?;
        while let Some(tag) = reader.next_tag()? {
            let ts = base + u64::from(tag.timestamp);
            last_ts = last_ts.max(ts);
            let due = start + Duration::from_millis(ts);
            tokio::time::sleep_until(due.into()).await;
            match tag.tag_type {
                8 => client.session.send_audio(ts as u32, &tag.body),
                9 => client.session.send_video(ts as u32, &tag.body),
                18 => client.session.send_metadata(&tag.body),
                _ => {}
            }
            client.flush().await?;
            // Drain acknowledgements and pings so the server's window never fills.
            let mut scratch = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::ZERO, client.socket.read(&mut scratch)).await
            {
                if n == 0 {
                    bail!("server closed the connection");
                }
                client.session.handle_input(&scratch[..n])?;
                while client.session.poll_event().is_some() {}
            }
        }
        base = last_ts + 40;
    }
}

#[derive(Default)]
struct Totals {
    bytes: AtomicU64,
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Microseconds from connect to the first video keyframe, one per viewer that got one.
    first_keyframe_us: std::sync::Mutex<Vec<u64>>,
    /// Microseconds from connect to the play's start (RTMP `NetStream.Play.Start`, the
    /// HTTP-FLV response head), one per viewer that got there.
    started_us: std::sync::Mutex<Vec<u64>>,
}

impl Totals {
    fn keyframe(&self, since: Instant) {
        record(&self.first_keyframe_us, since);
    }

    fn started(&self, since: Instant) {
        record(&self.started_us, since);
        self.connected.fetch_add(1, Ordering::Relaxed);
    }
}

fn lock_len(list: &std::sync::Mutex<Vec<u64>>) -> usize {
    list.lock().unwrap_or_else(|e| e.into_inner()).len()
}

fn record(list: &std::sync::Mutex<Vec<u64>>, since: Instant) {
    let us = since.elapsed().as_micros() as u64;
    list.lock().unwrap_or_else(|e| e.into_inner()).push(us);
}

/// The sorted samples' p50, p99 and max, in milliseconds.
fn percentiles(list: &std::sync::Mutex<Vec<u64>>) -> (f64, f64, f64) {
    let mut us = list.lock().unwrap_or_else(|e| e.into_inner()).clone();
    us.sort_unstable();
    let pct = |p: f64| {
        us.get(((us.len() as f64 * p) as usize).min(us.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    (
        pct(0.5),
        pct(0.99),
        us.last().map_or(0.0, |us| *us as f64 / 1000.0),
    )
}

async fn view(url: &str, n: usize, run_for: Duration) -> anyhow::Result<()> {
    let totals = Arc::new(Totals::default());
    let rtmp = url.starts_with("rtmp://");
    let mut tasks = Vec::new();
    for i in 0..n {
        let totals = Arc::clone(&totals);
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let result = if rtmp {
                view_rtmp(&url, &totals).await
            } else {
                view_flv(&url, &totals).await
            };
            if let Err(e) = result {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("viewer {i}: {e:#}");
            }
        }));
        // Spread the joins a little so the accept queue is not the thing measured.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Let every viewer get past its GOP-cache burst, then measure a steady window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = totals.bytes.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(run_for).await;
    let bytes = totals.bytes.load(Ordering::Relaxed) - before;
    let secs = started.elapsed().as_secs_f64();
    for t in &tasks {
        t.abort();
    }
    let connected = totals.connected.load(Ordering::Relaxed);
    let keyframes = lock_len(&totals.first_keyframe_us);
    let (key_p50, key_p99, key_max) = percentiles(&totals.first_keyframe_us);
    let (start_p50, start_p99, _) = percentiles(&totals.started_us);
    let mbps = bytes as f64 * 8.0 / secs / 1e6;
    println!(
        "{{\"viewers\":{n},\"connected\":{connected},\"failed\":{},\"bytes\":{bytes},\
         \"seconds\":{secs:.1},\"mbit_per_s\":{mbps:.1},\"mbit_per_viewer\":{:.3},\
         \"started_ms_p50\":{start_p50:.2},\"started_ms_p99\":{start_p99:.2},\
         \"keyframes\":{keyframes},\"first_keyframe_ms_p50\":{key_p50:.2},\
         \"first_keyframe_ms_p99\":{key_p99:.2},\"first_keyframe_ms_max\":{key_max:.2}}}",
        totals.failed.load(Ordering::Relaxed),
        mbps / connected.max(1) as f64,
    );
    Ok(())
}

async fn view_rtmp(url: &str, totals: &Totals) -> anyhow::Result<()> {
    let since = Instant::now();
    let (mut client, stream) = Client::connect(url).await?;
    client.session.play(&stream);
    client.flush().await?;
    client.wait_for(|e| matches!(e, Event::PlayStarted)).await?;
    totals.started(since);
    let mut keyframe_seen = false;
    loop {
        let n = client.socket.read(&mut client.buf).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
        client.session.handle_input(&client.buf[..n])?;
        while let Some(event) = client.session.poll_event() {
            match event {
                Event::StreamEof => bail!("end of stream"),
                // A video keyframe that is not a sequence header (AVC/HEVC packet type 1, or an
                // Enhanced RTMP coded-frames packet).
                Event::Video { payload, .. } if !keyframe_seen && is_keyframe(&payload) => {
                    keyframe_seen = true;
                    totals.keyframe(since);
                }
                _ => {}
            }
        }
        client.flush().await?;
    }
}

/// Whether an FLV video tag body is a keyframe's coded data (not a sequence header).
fn is_keyframe(body: &[u8]) -> bool {
    match body {
        // Enhanced RTMP: IsExHeader, FrameType 1, PacketType 1 (CodedFrames) or 3 (…X).
        [b, ..] if b & 0x80 != 0 => (b >> 4) & 0x07 == 1 && matches!(b & 0x0f, 1 | 3),
        [b, packet, ..] => b >> 4 == 1 && *packet == 1,
        _ => false,
    }
}

async fn view_flv(url: &str, totals: &Totals) -> anyhow::Result<()> {
    let since = Instant::now();
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("not an http:// URL"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| anyhow!("no path in URL"))?;
    let mut socket = TcpStream::connect(host)
        .await
        .with_context(|| format!("connect {host}"))?;
    socket
        .write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = socket.read(&mut buf).await?;
    if !buf[..n].starts_with(b"HTTP/1.1 200") {
        bail!(
            "HTTP-FLV refused: {}",
            String::from_utf8_lossy(&buf[..n.min(80)])
        );
    }
    totals.started(since);
    totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
    // Until the first keyframe: the bytes after the response head, parsed as FLV tags.
    let head_end = buf[..n]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(n, |i| i + 4);
    let mut scan = FlvScan::default();
    let mut keyframe_seen = scan.feed(&buf[head_end..n]);
    if keyframe_seen {
        totals.keyframe(since);
    }
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if !keyframe_seen && scan.feed(&buf[..n]) {
            keyframe_seen = true;
            totals.keyframe(since);
        }
    }
}

/// Finds the first video keyframe in an HTTP-FLV body: undoes the chunked transfer coding
/// (RFC 9112 §7.1) and walks the FLV tags (FLV spec §E.3) until one is a keyframe.
#[derive(Default)]
struct FlvScan {
    /// Body bytes (after de-chunking) not yet walked.
    flv: Vec<u8>,
    /// Raw bytes of a chunk-size line not yet complete.
    line: Vec<u8>,
    /// Bytes left in the current chunk's data; `None` while reading a size line.
    in_chunk: Option<usize>,
    /// CRLF bytes still to skip after a chunk's data.
    crlf: usize,
    /// Whether the 13-byte file header (and PreviousTagSize0) is past.
    header_done: bool,
}

impl FlvScan {
    /// Feeds raw response bytes; true once a keyframe tag was seen.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.crlf > 0 {
                let n = self.crlf.min(bytes.len());
                self.crlf -= n;
                bytes = &bytes[n..];
                continue;
            }
            match self.in_chunk {
                Some(left) => {
                    let n = left.min(bytes.len());
                    self.flv.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if left == n {
                        self.in_chunk = None;
                        self.crlf = 2;
                    } else {
                        self.in_chunk = Some(left - n);
                    }
                }
                None => match bytes.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        self.line.extend_from_slice(&bytes[..i]);
                        bytes = &bytes[i + 1..];
                        let line = String::from_utf8_lossy(&self.line).trim().to_owned();
                        self.line.clear();
                        let size = line.split(';').next().unwrap_or("");
                        self.in_chunk = Some(usize::from_str_radix(size, 16).unwrap_or(0));
                    }
                    None => {
                        self.line.extend_from_slice(bytes);
                        bytes = &[];
                    }
                },
            }
        }
        self.walk()
    }

    fn walk(&mut self) -> bool {
        if !self.header_done {
            if self.flv.len() < 13 {
                return false;
            }
            self.flv.drain(..13);
            self.header_done = true;
        }
        while self.flv.len() >= 11 {
            let size = usize::from(self.flv[1]) << 16
                | usize::from(self.flv[2]) << 8
                | usize::from(self.flv[3]);
            if self.flv.len() < 11 + size + 4 {
                return false;
            }
            if self.flv[0] & 0x1f == 9 && is_keyframe(&self.flv[11..11 + size]) {
                return true;
            }
            self.flv.drain(..11 + size + 4);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &[u8]) -> Vec<u8> {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    }

    fn tag(tag_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        rtmp::flv::write_tag(&mut out, tag_type, 0, body);
        out.to_vec()
    }

    #[test]
    fn the_first_keyframe_is_found_across_chunks_and_reads() {
        let mut stream = chunk(&rtmp::flv::file_header(true, true));
        stream.extend(chunk(&tag(9, &[0x17, 0x00, 0, 0, 0, 1, 2])));
        stream.extend(chunk(&tag(8, &[0xaf, 0x01, 9, 9])));
        stream.extend(chunk(&tag(9, &[0x27, 0x01, 0, 0, 0, 0x17, 0x01])));
        // Only the header, the sequence header and non-keyframes: not found, byte by byte.
        let mut scan = FlvScan::default();
        assert!(!stream.iter().any(|b| scan.feed(&[*b])));
        let key = chunk(&tag(9, &[0x17, 0x01, 0, 0, 0, 0x65]));
        let (a, b) = key.split_at(9);
        assert!(!scan.feed(a));
        assert!(scan.feed(b));
        // Enhanced RTMP: IsExHeader | FrameType 1 | PacketType 1.
        assert!(is_keyframe(&[0x90 | 0x01, b'h', b'v', b'c', b'1']));
        assert!(!is_keyframe(&[0x90, b'h', b'v', b'c', b'1']));
    }
}
