//! `ferrostream-load`: the load generator behind `scripts/bench-fanout`.
//!
//! ```text
//! ferrostream-load publish <rtmp-url> <file.flv>             publish a file in real time, looped
//! ferrostream-load view <rtmp-url> <flv-url> <n> <seconds>   n RTMP + n HTTP-FLV viewers
//! ```
//!
//! It speaks RTMP through the same sans-IO `rtmp::client::Session` that pull proxies use, so
//! the load costs a few tasks instead of a swarm of ffmpeg processes. `view` prints one line of
//! JSON: viewers connected, bytes received and the delivered Mbit/s.
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
        ["view", rtmp_url, flv_url, n, secs] => {
            let n: usize = n.parse().context("viewer count")?;
            let secs: u64 = secs.parse().context("seconds")?;
            rt.block_on(view(rtmp_url, flv_url, n, Duration::from_secs(secs)))
        }
        _ => bail!(
            "usage: ferrostream-load publish <rtmp-url> <file.flv>\n       \
             ferrostream-load view <rtmp-url> <flv-url> <n> <seconds>"
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
}

async fn view(rtmp_url: &str, flv_url: &str, n: usize, run_for: Duration) -> anyhow::Result<()> {
    let totals = Arc::new(Totals::default());
    let mut tasks = Vec::new();
    for i in 0..2 * n {
        let totals = Arc::clone(&totals);
        let (rtmp_url, flv_url) = (rtmp_url.to_owned(), flv_url.to_owned());
        tasks.push(tokio::spawn(async move {
            let result = if i % 2 == 0 {
                view_rtmp(&rtmp_url, &totals).await
            } else {
                view_flv(&flv_url, &totals).await
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
    println!(
        "{{\"viewers\":{},\"connected\":{},\"failed\":{},\"bytes\":{},\"seconds\":{:.1},\"mbit_per_s\":{:.1}}}",
        2 * n,
        totals.connected.load(Ordering::Relaxed),
        totals.failed.load(Ordering::Relaxed),
        bytes,
        secs,
        bytes as f64 * 8.0 / secs / 1e6
    );
    Ok(())
}

async fn view_rtmp(url: &str, totals: &Totals) -> anyhow::Result<()> {
    let (mut client, stream) = Client::connect(url).await?;
    client.session.play(&stream);
    client.flush().await?;
    client.wait_for(|e| matches!(e, Event::PlayStarted)).await?;
    totals.connected.fetch_add(1, Ordering::Relaxed);
    loop {
        let n = client.socket.read(&mut client.buf).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
        client.session.handle_input(&client.buf[..n])?;
        while let Some(event) = client.session.poll_event() {
            if matches!(event, Event::StreamEof) {
                bail!("end of stream");
            }
        }
        client.flush().await?;
    }
}

async fn view_flv(url: &str, totals: &Totals) -> anyhow::Result<()> {
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
    totals.connected.fetch_add(1, Ordering::Relaxed);
    totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}
