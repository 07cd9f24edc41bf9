//! The HTTP-TS and HLS pulls against real sources: ffmpeg serving a live MPEG-TS over HTTP
//! (`-listen 1`), and ffmpeg writing live and VOD HLS into a temp dir that a small axum file
//! server serves. Each pull goes through [`proxy::Pulls`] (the addStreamProxy manager) into a
//! real registry; the test reads the stream back as an output does and checks its tracks (the
//! encoder's real picture size and sample rate) and frames (all there, timestamps in order).
//!
//! Needs ffmpeg with libx264: skipped when missing, except under `CI`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use media::{Codec, Frame, StreamKey, TrackInfo};
use proxy::{AttemptOptions, Context, PullRequest, Pulls};
use registry::{Item, Registry, RegistryConfig, StreamOptions};
use tokio::time::{timeout, Instant};

fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg missing in CI: scripts/test must install it"
        );
        eprintln!("skipped: ffmpeg not installed");
    }
    ok
}

/// A child process killed (and reaped) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ffmpeg(args: &[&str]) -> Process {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg");
    Process(child)
}

/// The pull manager on a registry of its own; no hooks, no HLS or MP4 files written.
fn pulls() -> (Pulls, Registry) {
    let registry = Registry::new(RegistryConfig::default());
    let hooks = hooks::Hooks::new(hooks::HookConfig::default());
    let outputs = outputs::Outputs::new(registry.clone(), outputs::OutputsConfig::default());
    let protocol = StreamOptions {
        enable_hls: false,
        enable_mp4: false,
        ..StreamOptions::default()
    };
    let ctx = Context {
        registry: registry.clone(),
        hooks,
        outputs,
        protocol: Arc::new(move || protocol.clone()),
    };
    (Pulls::new(ctx), registry)
}

fn request(stream: &str, url: &str, timeout: Duration) -> PullRequest {
    PullRequest {
        key: StreamKey::new("pull", stream).expect("key"),
        url: url.to_owned(),
        retry_count: 0,
        attempt: AttemptOptions {
            timeout,
            ..AttemptOptions::default()
        },
        options: serde_json::Map::new(),
    }
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Waits until something listens on 127.0.0.1:`port` (read from /proc/net/tcp: connecting
/// would use up ffmpeg's single `-listen 1` client).
async fn wait_listening(port: u16) {
    let needle = format!("0100007F:{port:04X} 00000000:0000 0A");
    for _ in 0..200 {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        if table.contains(&needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// What an output reads of `key` until `until` or the stream's end: tracks, frames, and
/// whether the stream ended.
async fn read_stream(
    registry: &Registry,
    key: &StreamKey,
    until: Duration,
) -> (Vec<TrackInfo>, Vec<Frame>, bool) {
    let mut reader = registry.subscribe_output(key).expect("stream is live");
    let deadline = Instant::now() + until;
    let mut tracks = Vec::new();
    let mut frames = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, reader.recv()).await {
            Err(_) => return (tracks, frames, false),
            Ok(Err(_)) => return (tracks, frames, true),
            Ok(Ok(Item::Track(t))) => tracks.push(t),
            Ok(Ok(Item::Frame(f))) => frames.push(f),
            Ok(Ok(Item::Metadata(_))) => {}
        }
    }
}

/// The tracks by codec, with what a user sees of them.
fn summary(tracks: &[TrackInfo]) -> Vec<(Codec, u32, u32, u32, u8)> {
    let mut s: Vec<_> = tracks
        .iter()
        .map(|t| (t.codec, t.width, t.height, t.sample_rate, t.channels))
        .collect();
    s.sort_by_key(|t| t.0.zlm_id());
    s.dedup();
    s
}

/// Per track: decode timestamps never go back, and video comes 40 ms apart (25 fps).
fn check_timing(frames: &[Frame]) {
    for codec in [Codec::H264, Codec::Aac] {
        let of: Vec<&Frame> = frames.iter().filter(|f| f.codec == codec).collect();
        for pair in of.windows(2) {
            assert!(
                pair[1].dts >= pair[0].dts,
                "{codec:?} dts went back: {} then {}",
                pair[0].dts,
                pair[1].dts
            );
            if codec == Codec::H264 {
                assert_eq!(pair[1].dts - pair[0].dts, 40, "video frame spacing");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ts_from_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/live.ts");
    let _source = ffmpeg(&[
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-bf",
        "0",
        "-c:a",
        "aac",
        "-ac",
        "2",
        "-f",
        "mpegts",
        "-listen",
        "1",
        &url,
    ]);
    wait_listening(port).await;
    let (pulls, registry) = pulls();
    let key = pulls
        .add(request("ts", &url, Duration::from_secs(5)))
        .await
        .expect("the pull plays");
    assert_eq!(key, "__defaultVhost__/pull/ts");
    let stream = StreamKey::new("pull", "ts").expect("key");
    let (tracks, frames, ended) = read_stream(&registry, &stream, Duration::from_secs(3)).await;
    assert!(!ended);
    assert_eq!(
        summary(&tracks),
        [(Codec::H264, 640, 360, 0, 0), (Codec::Aac, 0, 0, 48000, 2)]
    );
    let video = frames.iter().filter(|f| f.codec == Codec::H264).count();
    let audio = frames.iter().filter(|f| f.codec == Codec::Aac).count();
    // 3 s of a real-time source: about 75 pictures and 140 AAC frames.
    assert!((40..=110).contains(&video), "{video} video frames");
    assert!((70..=200).contains(&audio), "{audio} audio frames");
    assert!(frames.iter().any(|f| f.codec == Codec::H264 && f.keyframe));
    check_timing(&frames);
    let info = pulls.get(&key).expect("listed");
    assert_eq!(info.status, 0);
    assert!(info.total_bytes > 10_000, "{}", info.total_bytes);
    assert!(pulls.remove(&key).await);
    assert!(!registry.is_live(&stream));
}

/// The source goes away (its body ends: the attempt ends with `Ended`) and comes back: the
/// proxy pulls again and the stream stays live, its viewers attached, its timeline going on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ts_source_restart_is_survived() {
    if !have_ffmpeg() {
        return;
    }
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/live.ts");
    let source = |url: &str| {
        ffmpeg(&[
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=48000",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-bf",
            "0",
            "-c:a",
            "aac",
            "-f",
            "mpegts",
            "-listen",
            "1",
            url,
        ])
    };
    let first = source(&url);
    wait_listening(port).await;
    let (pulls, registry) = pulls();
    let mut req = request("restart", &url, Duration::from_secs(5));
    req.retry_count = 5;
    let key = pulls.add(req).await.expect("the pull plays");
    let stream = StreamKey::new("pull", "restart").expect("key");
    let mut reader = registry.subscribe_output(&stream).expect("live");
    let mut before = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(item)) = timeout(
        until.saturating_duration_since(Instant::now()),
        reader.recv(),
    )
    .await
    {
        if let Item::Frame(f) = item {
            before.push(f);
        }
    }
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _second = source(&url);
    let mut after = Vec::new();
    let until = Instant::now() + Duration::from_secs(8);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match timeout(left, reader.recv()).await {
            Ok(Ok(Item::Frame(f))) => {
                after.push(f);
                if after.iter().filter(|f| f.codec == Codec::H264).count() >= 50 {
                    break;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the stream ended: {e:?}"),
            Err(_) => break,
        }
    }
    assert!(before.iter().filter(|f| f.codec == Codec::H264).count() >= 25);
    assert!(
        after.iter().filter(|f| f.codec == Codec::H264).count() >= 50,
        "{} frames after the restart",
        after.len()
    );
    let mut all = before;
    all.extend(after);
    for codec in [Codec::H264, Codec::Aac] {
        let dts: Vec<u64> = all
            .iter()
            .filter(|f| f.codec == codec)
            .map(|f| f.dts)
            .collect();
        assert!(
            dts.windows(2).all(|w| w[1] >= w[0]),
            "{codec:?} timeline went back: {dts:?}"
        );
    }
    let info = pulls.get(&key).expect("still listed");
    assert!(info.retries >= 1, "{}", info.retries);
    assert_eq!(info.status, 0);
}

/// Serves the files of `dir` over HTTP (what a CDN or nginx does for HLS).
async fn file_server(dir: PathBuf) -> SocketAddr {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    async fn file(
        State(dir): State<Arc<PathBuf>>,
        UrlPath(name): UrlPath<String>,
    ) -> axum::response::Response {
        if name.contains("..") {
            return StatusCode::BAD_REQUEST.into_response();
        }
        match tokio::fs::read(dir.join(&name)).await {
            Ok(bytes) => {
                let kind = if name.ends_with(".m3u8") {
                    "application/vnd.apple.mpegurl"
                } else {
                    "video/mp2t"
                };
                ([(axum::http::header::CONTENT_TYPE, kind)], bytes).into_response()
            }
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }

    // `/moved/master.m3u8` redirects to the master playlist, as CDNs send players to an edge.
    let app = axum::Router::new()
        .route("/hls/{*name}", axum::routing::get(file))
        .route(
            "/moved/master.m3u8",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("/hls/master.m3u8")
            }),
        )
        .with_state(Arc::new(dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Waits until `playlist` lists at least `segments` segments.
async fn wait_segments(playlist: &Path, segments: usize) {
    for _ in 0..300 {
        let text = std::fs::read_to_string(playlist).unwrap_or_default();
        if text.matches("#EXTINF").count() >= segments {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never listed {segments} segments", playlist.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_hls_from_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let playlist = dir.path().join("live.m3u8");
    let playlist_arg = playlist.to_str().expect("utf-8 path");
    let _source = ffmpeg(&[
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=44100",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-bf",
        "0",
        "-c:a",
        "aac",
        "-f",
        "hls",
        "-hls_time",
        "1",
        "-hls_list_size",
        "5",
        "-hls_flags",
        "delete_segments",
        playlist_arg,
    ]);
    wait_segments(&playlist, 3).await;
    let addr = file_server(dir.path().to_owned()).await;
    let (pulls, registry) = pulls();
    let url = format!("http://{addr}/hls/live.m3u8");
    let key = pulls
        .add(request("hls", &url, Duration::from_secs(5)))
        .await
        .expect("the pull plays");
    let stream = StreamKey::new("pull", "hls").expect("key");
    // Long enough to need several playlist reloads.
    let (tracks, frames, ended) = read_stream(&registry, &stream, Duration::from_secs(6)).await;
    assert!(!ended, "a live playlist goes on");
    assert_eq!(
        summary(&tracks),
        [(Codec::H264, 640, 360, 0, 0), (Codec::Aac, 0, 0, 44100, 1)]
    );
    let video: Vec<&Frame> = frames.iter().filter(|f| f.codec == Codec::H264).collect();
    // Paced at 25 fps: about 150 pictures in 6 s, not the whole window at once.
    assert!(
        (100..=190).contains(&video.len()),
        "{} video frames",
        video.len()
    );
    check_timing(&frames);
    assert!(pulls.remove(&key).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_hls_plays_through_and_ends() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let playlist = dir.path().join("vod.m3u8");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3",
        ])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000:duration=3"])
        .args(["-c:v", "libx264", "-g", "25", "-c:a", "aac"])
        .args(["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"])
        .arg(&playlist)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    // A master playlist in front of it, as a CDN serves: the higher BANDWIDTH is taken.
    std::fs::write(
        dir.path().join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nmissing.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=320x240\nvod.m3u8\n",
    )
    .expect("write master");
    let addr = file_server(dir.path().to_owned()).await;
    let (pulls, registry) = pulls();
    // Through a redirect: the variant's relative URI resolves against where the master
    // playlist really is.
    let url = format!("http://{addr}/moved/master.m3u8");
    let started = Instant::now();
    let key = pulls
        .add(request("vod", &url, Duration::from_secs(5)))
        .await
        .expect("the pull plays");
    let stream = StreamKey::new("pull", "vod").expect("key");
    let (tracks, frames, ended) = read_stream(&registry, &stream, Duration::from_secs(10)).await;
    assert!(
        ended,
        "ENDLIST ends the pull (retry_count 0: the proxy is gone)"
    );
    // Played at its own pace: 3 s of media take about 3 s.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    assert_eq!(
        summary(&tracks),
        [(Codec::H264, 320, 240, 0, 0), (Codec::Aac, 0, 0, 48000, 1)]
    );
    // Every picture, once, in order.
    let video = frames.iter().filter(|f| f.codec == Codec::H264).count();
    assert_eq!(video, 75);
    let audio = frames.iter().filter(|f| f.codec == Codec::Aac).count();
    assert!((138..=144).contains(&audio), "{audio} audio frames");
    check_timing(&frames);
    assert!(!registry.is_live(&stream));
    assert!(pulls.get(&key).is_none());
}

/// A live playlist that stops changing is a stalled server: the attempt times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_hls_times_out() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25:duration=1",
        ])
        .args(["-c:v", "libx264", "-g", "25", "-f", "mpegts"])
        .arg(dir.path().join("0.ts"))
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    std::fs::write(
        dir.path().join("stalled.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\n0.ts\n",
    )
    .expect("write playlist");
    let addr = file_server(dir.path().to_owned()).await;
    let (pulls, registry) = pulls();
    let url = format!("http://{addr}/hls/stalled.m3u8");
    let started = Instant::now();
    pulls
        .add(request("stalled", &url, Duration::from_secs(2)))
        .await
        .expect("the pull plays its one segment");
    let stream = StreamKey::new("pull", "stalled").expect("key");
    let (tracks, frames, ended) = read_stream(&registry, &stream, Duration::from_secs(10)).await;
    assert!(ended);
    assert_eq!(summary(&tracks), [(Codec::H264, 160, 120, 0, 0)]);
    assert_eq!(frames.len(), 25);
    // Not at the end of the segment: after reloads that brought nothing for three target
    // durations (at least the 2 s timeout).
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3), "{took:?}");
}

/// An HTTP source that is no transport stream fails the add call, and the proxy is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_a_transport_stream_fails_the_add() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("junk.ts"), vec![0x55u8; 100_000]).expect("write");
    std::fs::write(dir.path().join("junk.m3u8"), "not a playlist").expect("write");
    let addr = file_server(dir.path().to_owned()).await;
    let (pulls, registry) = pulls();
    for (name, path) in [
        ("junk_ts", "junk.ts"),
        ("junk_m3u8", "junk.m3u8"),
        ("absent", "nope.ts"),
    ] {
        let url = format!("http://{addr}/hls/{path}");
        let err = pulls
            .add(request(name, &url, Duration::from_secs(2)))
            .await
            .expect_err("no stream in it");
        let expected = match name {
            "junk_ts" => "the body ended without an MPEG-TS program",
            "junk_m3u8" => "HLS playlist: malformed #EXTM3U",
            _ => "HTTP 404 Not Found",
        };
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!registry.is_live(&StreamKey::new("pull", name).expect("key")));
        // The failed proxy removes itself just after the add call is answered.
        for _ in 0..100 {
            if pulls.list().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(pulls.list().is_empty(), "{name}: {err}");
    }
}

/// Two segments from two encoder runs (both start at the same timestamps) with
/// EXT-X-DISCONTINUITY between them: played as one timeline, the second segment just after
/// the first rather than back over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discontinuity_continues_the_timeline() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, size) in [("a.ts", "320x240"), ("b.ts", "160x120")] {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=25:duration=1"))
            .args(["-c:v", "libx264", "-g", "25", "-bf", "0", "-f", "mpegts"])
            .arg(dir.path().join(name))
            .status()
            .expect("ffmpeg");
        assert!(status.success());
    }
    std::fs::write(
        dir.path().join("disc.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\na.ts\n\
         #EXT-X-DISCONTINUITY\n#EXTINF:1.0,\nb.ts\n#EXT-X-ENDLIST\n",
    )
    .expect("write playlist");
    let addr = file_server(dir.path().to_owned()).await;
    let (pulls, registry) = pulls();
    let url = format!("http://{addr}/hls/disc.m3u8");
    pulls
        .add(request("disc", &url, Duration::from_secs(5)))
        .await
        .expect("the pull plays");
    let stream = StreamKey::new("pull", "disc").expect("key");
    let (tracks, frames, ended) = read_stream(&registry, &stream, Duration::from_secs(10)).await;
    assert!(ended);
    // The picture size changed with the second encoder: the track was announced again.
    assert_eq!(
        summary(&tracks),
        [(Codec::H264, 320, 240, 0, 0), (Codec::H264, 160, 120, 0, 0)]
    );
    assert_eq!(frames.len(), 50);
    check_timing(&frames);
    assert_eq!(frames[49].dts - frames[0].dts, 49 * 40);
}
