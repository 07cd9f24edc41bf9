//! What HLS, LL-HLS and MP4 recording cost per stream (`scripts/bench-outputs`, or
//! `cargo bench -p server --bench outputs`).
//!
//! STREAMS ffmpeg processes publish a ~1 Mbit/s 640x360 H.264 + AAC file (made once with
//! ffmpeg) in a loop to an in-process server. The server's CPU (this process's utime+stime from
//! /proc) is sampled over SECONDS in two phases: publishing only; then with each stream's
//! MPEG-TS HLS and LL-HLS fetched by a client polling like a player (playlist, then every new
//! segment) and MP4 recording on. The difference, per stream, is what the outputs add. The
//! pollers run in this process too, so the figure is an upper bound.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use media::StreamKey;
use server::{Options, Server};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's CPU time so far (utime + stime, /proc/self/stat fields 14 and 15).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn sample(dir: &Path) -> PathBuf {
    let path = dir.join("bench.flv");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-t", "20", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "900k", "-g", "50",
        ])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-f", "flv",
        ])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg could not make the sample");
    path
}

/// Fetches `playlist` and every segment it lists, as a player would, until `stop`.
async fn poll_hls(client: reqwest::Client, base: String, playlist: String, stop: Instant) -> u64 {
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    // The viewer id the server puts on every URI: sent back on reloads, as players do.
    let mut id = String::new();
    while Instant::now() < stop {
        if let Ok(resp) = client.get(format!("{base}/{playlist}{id}")).send().await {
            let text = resp.text().await.unwrap_or_default();
            let uris: Vec<String> = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(str::to_owned)
                .chain(
                    text.lines()
                        .filter(|l| l.starts_with("#EXT-X-MAP"))
                        .filter_map(|l| l.split("URI=\"").nth(1))
                        .filter_map(|u| u.split('"').next())
                        .map(str::to_owned),
                )
                .collect();
            for uri in uris {
                let (name, query) = uri.split_once('?').unwrap_or((&uri, ""));
                if id.is_empty() && !query.is_empty() {
                    id = format!("?{query}");
                }
                if seen.insert(name.to_owned()) {
                    if let Ok(r) = client.get(format!("{base}/{uri}")).send().await {
                        bytes += r.bytes().await.map(|b| b.len() as u64).unwrap_or(0);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bytes
}

/// A server with STREAMS looping publishers, ready to play.
async fn start(
    file: &Path,
    streams: usize,
    record: Option<&Path>,
) -> (Server, Vec<tokio::process::Child>) {
    let mut options = Options::from_config(&server::config::Config::default());
    options.rtmp_addr = Some("127.0.0.1:0".parse().unwrap());
    options.http_addr = Some("127.0.0.1:0".parse().unwrap());
    options.rtsp_addr = None;
    options.turn_addr = None;
    if let Some(dir) = record {
        options.protocol.enable_mp4 = true;
        options.protocol.mp4_save_path = dir.to_owned();
    }
    let server = Server::start(options).await.unwrap();
    let rtmp = server.rtmp_addr.unwrap();
    let publishers = (0..streams)
        .map(|i| {
            tokio::process::Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-re",
                    "-stream_loop",
                    "-1",
                    "-i",
                ])
                .arg(file)
                .args([
                    "-c",
                    "copy",
                    "-f",
                    "flv",
                    &format!("rtmp://{rtmp}/live/s{i}"),
                ])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        })
        .collect();
    for i in 0..streams {
        let key = StreamKey::new("live", format!("s{i}")).expect("key");
        while server
            .registry
            .stream(&key)
            .is_none_or(|s| s.tracks.len() < 2)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (server, publishers)
}

/// The server's CPU (% of one core) over `seconds`.
async fn measure(label: &str, seconds: u64) -> f64 {
    let (cpu0, t0) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = (cpu_time() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    println!("{label:<52} {cpu:6.1} % of one core");
    cpu
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let streams = env("STREAMS", 4) as usize;
    let seconds = env("SECONDS", 15);
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path());

    let (server, publishers) = start(&file, streams, None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = measure(&format!("{streams} streams, publishing only"), seconds).await;
    drop(publishers);
    server.shutdown().await;

    let record = dir.path().join("www");
    let (server, publishers) = start(&file, streams, Some(&record)).await;
    let http = server.http_addr.unwrap();
    let stop = Instant::now() + Duration::from_secs(seconds + 8);
    let client = reqwest::Client::new();
    let mut pollers = Vec::new();
    for i in 0..streams {
        for playlist in ["hls.m3u8", "hls.fmp4.m3u8"] {
            let base_url = format!("http://{http}/live/s{i}");
            pollers.push(tokio::spawn(poll_hls(
                client.clone(),
                base_url,
                playlist.to_owned(),
                stop,
            )));
        }
    }
    // Let every output start (the first playlist waits for a whole segment).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let with = measure(
        &format!("{streams} streams + HLS + LL-HLS viewer + MP4 recording"),
        seconds,
    )
    .await;
    let mut fetched = 0;
    for p in pollers {
        fetched += p.await.unwrap_or(0);
    }
    println!(
        "HLS + LL-HLS + recording add per stream:             {:6.1} % of one core  ({} MB of segments fetched)",
        (with - base) / streams as f64,
        fetched / 1_000_000
    );
    drop(publishers);
    server.shutdown().await;
}
