//! MP4 recording with real clients: ffmpeg publishes, the on_publish reply turns recording on,
//! segments are cut at keyframes after `mp4_max_second`, each closed file is a normal MP4 with
//! its index first that ffprobe plays for the duration on_record_mp4 reports; a server killed
//! with SIGKILL mid-recording leaves a file that still plays; a clean stop closes every segment
//! and sends its hook first.

use e2e::backend::{Backend, Reply};
use e2e::*;
use media::StreamKey;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// ffprobe's duration (s) and codecs of a file, and whether ffmpeg decodes it without errors.
async fn probe_file(path: &Path) -> (f64, Vec<String>, String) {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-of",
        "json",
        "-show_format",
        "-show_streams",
    ])
    .arg(path);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]);
    let decode = output_within(&mut cmd, Duration::from_secs(30)).await;
    let errors = String::from_utf8_lossy(&decode.stderr).into_owned();
    (duration, codecs(&json), errors)
}

/// The top-level box types of an MP4 file, in order.
fn top_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).expect("read");
    mp4::boxes(&data)
        .map(|b| {
            let (kind, _) = b.expect("well-formed box");
            String::from_utf8_lossy(&kind).into_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_segments_play_and_match_their_hooks() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let save = dir.path().to_string_lossy().into_owned();
    let backend = Backend::start().await;
    backend.reply(
        "on_publish",
        Reply::Json(
            json!({"code": 0, "enable_mp4": true, "mp4_max_second": 3, "mp4_save_path": save}),
        ),
    );
    let server = start_server_with(|o| o.hooks = backend.config()).await;
    // The 10 s sample (a keyframe every second), published once: 3 or 4 segments.
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/rec?who=cam"), &[]);
    let _ = tokio::time::timeout(Duration::from_secs(40), publisher.wait()).await;
    let hooks = backend
        .wait_for("on_record_mp4", 3, Duration::from_secs(20), |_| true)
        .await;
    let mut total = 0.0;
    for hook in &hooks {
        let b = &hook.body;
        let path = PathBuf::from(b["file_path"].as_str().expect("file_path"));
        assert!(path.starts_with(dir.path()), "{}", path.display());
        let meta = std::fs::metadata(&path).expect("the file is there");
        assert_eq!(b["file_size"].as_u64(), Some(meta.len()), "{b}");
        assert_eq!(
            b["file_name"].as_str(),
            path.file_name().and_then(|n| n.to_str())
        );
        assert_eq!(
            b["folder"].as_str().map(PathBuf::from).as_deref(),
            path.parent()
        );
        let url = b["url"].as_str().expect("url");
        assert!(
            url.starts_with("record/live/rec/") && url.ends_with(".mp4"),
            "{url}"
        );
        assert_eq!(dir.path().join(url), path);
        assert_eq!(
            (&b["app"], &b["stream"], &b["vhost"]),
            (&json!("live"), &json!("rec"), &json!("__defaultVhost__"))
        );
        assert_eq!(b["params"], "who=cam");
        assert!(
            b["start_time"].as_u64().is_some_and(|t| t > 1_600_000_000),
            "{b}"
        );
        let time_len = b["time_len"].as_f64().expect("time_len");
        assert!(
            (1.0..=6.0).contains(&time_len),
            "segment length {time_len}: {b}"
        );

        let boxes = top_boxes(&path);
        let moov = boxes.iter().position(|b| b == "moov").expect("moov");
        let mdat = boxes.iter().position(|b| b == "mdat").expect("mdat");
        assert!(
            moov < mdat && !boxes.contains(&"moof".to_owned()),
            "finished MP4: {boxes:?}"
        );
        let (duration, codecs, errors) = probe_file(&path).await;
        assert_eq!(codecs, ["aac", "h264"]);
        assert!(
            (duration - time_len).abs() < 0.5,
            "ffprobe {duration} s vs hook {time_len} s"
        );
        assert!(errors.is_empty(), "decode errors: {errors}");
        total += time_len;
    }
    assert!(total >= 8.0, "the segments hold the stream: {total} s");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_closes_segments_before_exit() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.protocol.enable_mp4 = true;
        o.protocol.mp4_save_path = dir.path().to_owned();
    })
    .await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/stop"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "stop").expect("key"), 2).await;
    // Stop once a couple of fragments are on disk.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while mp4_files(dir.path())
        .first()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len())
        < 100_000
    {
        assert!(tokio::time::Instant::now() < deadline, "nothing recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
    let hooks = backend.calls("on_record_mp4");
    assert_eq!(
        hooks.len(),
        1,
        "the open segment was closed and reported before exit"
    );
    let path = PathBuf::from(hooks[0].body["file_path"].as_str().expect("path"));
    let boxes = top_boxes(&path);
    assert!(boxes.iter().position(|b| b == "moov") < boxes.iter().position(|b| b == "mdat"));
    let (duration, codecs, errors) = probe_file(&path).await;
    assert_eq!(codecs, ["aac", "h264"]);
    assert!(duration >= 1.5, "{duration}");
    assert!(errors.is_empty(), "{errors}");
    let exited = backend.calls("on_server_exited");
    assert!(exited.len() == 1 && exited[0].at >= hooks[0].at);
}

/// Every `.mp4` file under `dir`.
fn mp4_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "mp4") {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_recording_leaves_a_playable_file() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut server = Command::new(e2e::ferrostream_bin())
        .env("FERROSTREAM__RTMP__PORT", port.to_string())
        .env("FERROSTREAM__HTTP__PORT", "0")
        .env("FERROSTREAM__RTSP__PORT", "0")
        .env("FERROSTREAM__TURN__PORT", "0")
        .env("FERROSTREAM__RTC__PORT", "0")
        .env("FERROSTREAM__PROTOCOL__ENABLE_MP4", "1")
        .env("FERROSTREAM__PROTOCOL__MP4_SAVE_PATH", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start ferrostream");
    let url = format!("rtmp://127.0.0.1:{port}/live/crash");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _publisher = ffmpeg_publish(&url, &["-stream_loop", "-1"]);
    // Let it record a few fragments (one a second), then kill it without warning.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let size = mp4_files(dir.path())
            .first()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        if size > 100_000 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.start_kill().expect("SIGKILL");
    let _ = server.wait().await;
    let files = mp4_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let boxes = top_boxes_lenient(&files[0]);
    assert!(
        boxes.contains(&"moof".to_owned()),
        "still the fragmented file: {boxes:?}"
    );
    let (duration, codecs, _) = probe_file(&files[0]).await;
    assert_eq!(codecs, ["aac", "h264"]);
    assert!(
        duration >= 1.0,
        "plays up to its last fragment: {duration} s"
    );
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-i"]).arg(&files[0]).args([
        "-map",
        "0:v",
        "-f",
        "null",
        "-",
        "-progress",
        "pipe:1",
    ]);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    assert!(
        frames >= 25,
        "decoded {frames} frames of the crashed recording"
    );
}

/// Top-level boxes up to the first malformed one (a crash may cut the last).
fn top_boxes_lenient(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).expect("read");
    mp4::boxes(&data)
        .map_while(Result::ok)
        .map(|(kind, _)| String::from_utf8_lossy(&kind).into_owned())
        .collect()
}
