//! The HTTP file server over `http.rootPath`: Range requests answered with 206 (ffmpeg seeks
//! into a recording over HTTP), MIME types, directory listings, traversal refused in every
//! spelling, and on_http_access with its decision remembered under a cookie.

use e2e::backend::{Backend, Reply};
use e2e::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 GET (no client-side path normalisation): status line and body.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    socket.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

fn root_with_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("record/live")).expect("mkdir");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("record/live/data.bin"), &data).expect("write");
    std::fs::write(dir.path().join("index.txt"), "hello").expect("write");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_mime_listing_and_traversal() {
    let dir = root_with_files();
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.txt"), "secret").expect("write");
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("link.txt"),
    )
    .expect("symlink");
    let server = start_server_with(|o| o.file_root = Some(dir.path().to_owned())).await;
    let base = http_url(&server, "");
    let client = reqwest::Client::new();

    let full = client
        .get(format!("{base}record/live/data.bin"))
        .send()
        .await
        .expect("GET");
    assert_eq!(full.status().as_u16(), 200);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.bytes().await.expect("body").len(), 100_000);

    let part = client
        .get(format!("{base}record/live/data.bin"))
        .header("Range", "bytes=1000-1099")
        .send()
        .await
        .expect("GET");
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1099/100000");
    let body = part.bytes().await.expect("body");
    let want: Vec<u8> = (1000..1100u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(&body[..], &want[..]);
    let tail = client
        .get(format!("{base}record/live/data.bin"))
        .header("Range", "bytes=-10")
        .send()
        .await
        .expect("GET");
    assert_eq!(tail.headers()["content-range"], "bytes 99990-99999/100000");
    let bad = client
        .get(format!("{base}record/live/data.bin"))
        .header("Range", "bytes=200000-")
        .send()
        .await
        .expect("GET");
    assert_eq!(bad.status().as_u16(), 416);

    let text = client
        .get(format!("{base}index.txt"))
        .send()
        .await
        .expect("GET");
    assert!(text.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/plain"));
    let listing = client
        .get(format!("{base}record/live/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(listing.status().as_u16(), 200);
    assert!(listing.text().await.expect("html").contains("data.bin"));

    let addr = server.http_addr.expect("http");
    for path in [
        "/../Cargo.toml",
        "/record/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/record/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/link.txt",
    ] {
        let answer = raw_get(addr, path).await;
        let status = answer.split_whitespace().nth(1).unwrap_or("");
        assert!(
            status == "403" || status == "404" || status == "400",
            "{path}: {answer}"
        );
        assert!(
            !answer.contains("secret") && !answer.contains("root:"),
            "{path}: {answer}"
        );
    }
    server.shutdown().await;

    // Listings off.
    let server = start_server_with(|o| {
        o.file_root = Some(dir.path().to_owned());
        o.dir_menu = false;
    })
    .await;
    let resp = reqwest::get(http_url(&server, "record/live/"))
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 403);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_http_access_decides_and_its_answer_is_remembered() {
    let dir = root_with_files();
    let backend = Backend::start().await;
    backend.reply(
        "on_http_access",
        Reply::Json(json!({"code": 0, "err": "", "path": "/record/", "second": 600})),
    );
    let server = start_server_with(|o| {
        o.file_root = Some(dir.path().to_owned());
        o.hooks = backend.config();
    })
    .await;
    let client = reqwest::Client::new();
    let url = http_url(&server, "record/live/data.bin?ticket=1");
    let mut cookie = String::new();
    for _ in 0..3 {
        let resp = client
            .get(&url)
            .header("X-Test", "yes")
            .header("Cookie", cookie.clone())
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 200);
        if let Some(set) = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
        {
            assert!(
                set.contains("Path=/record/") && set.contains("Max-Age=600"),
                "{set}"
            );
            cookie = set.split(';').next().unwrap_or("").to_owned();
        }
    }
    let calls = backend.calls("on_http_access");
    assert_eq!(calls.len(), 1, "the decision covers /record/ for 600 s");
    let b = &calls[0].body;
    assert_eq!(b["path"], "/record/live/data.bin");
    assert!(b["file_path"]
        .as_str()
        .is_some_and(|p| p.ends_with("record/live/data.bin")));
    assert_eq!(b["is_dir"], false);
    assert_eq!(b["params"], "ticket=1");
    assert_eq!(b["header.X-Test"], "yes");
    assert!(
        b["ip"] == "127.0.0.1" && b["port"].is_u64() && b["id"].is_string(),
        "{b}"
    );

    backend.reply(
        "on_http_access",
        Reply::Json(json!({"code": 0, "err": "members only"})),
    );
    let resp = reqwest::get(http_url(&server, "index.txt"))
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(resp.text().await.expect("text"), "members only");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_seeks_into_a_recording_over_http() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // A finished recording made by the server itself.
    let server = start_server_with(|o| {
        o.file_root = Some(dir.path().to_owned());
        o.protocol.enable_mp4 = true;
        o.protocol.mp4_save_path = dir.path().to_owned();
    })
    .await;
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/seek"), &[]);
    let _ = tokio::time::timeout(Duration::from_secs(40), publisher.wait()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let file = loop {
        let found = walk(dir.path());
        if let Some(f) = found.into_iter().find(|p| {
            std::fs::read(p).is_ok_and(|d| {
                mp4::boxes(&d)
                    .filter_map(Result::ok)
                    .any(|(k, _)| &k == b"moov")
                    && !mp4::boxes(&d)
                        .filter_map(Result::ok)
                        .any(|(k, _)| &k == b"moof")
            })
        }) {
            break f;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no finished recording"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rel = file
        .strip_prefix(dir.path())
        .expect("under root")
        .to_string_lossy()
        .into_owned();
    let url = http_url(&server, &rel);
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args([
        "-v",
        "error",
        "-ss",
        "6",
        "-i",
        &url,
        "-frames:v",
        "10",
        "-f",
        "null",
        "-",
    ]);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
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
