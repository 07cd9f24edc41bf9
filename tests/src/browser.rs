//! Headless Chromium for the browser tests (and `benches/ll_hls.rs`): a page server inside the
//! test that serves the page and a vendored player script and collects the page's JSON reports
//! from `POST /report`, and Chromium itself with a throwaway profile.

use axum::extract::State;
use axum::http::header;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Whether Debian's `chromium` is installed. Missing, it skips the test locally and fails it in
/// CI (`CI` set), where `scripts/test` must have installed it.
pub fn have_chromium() -> bool {
    let ok = std::process::Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium missing in CI: scripts/test must install it"
        );
        eprintln!("skipped: chromium not installed");
    }
    ok
}

/// The page server: `/` (the page), `script_path` (the player, `script`) and `POST /report`,
/// whose JSON bodies go to the returned receiver. Returns its address and a handle that stops
/// it.
pub async fn serve_page(
    html: String,
    script_path: &'static str,
    script: &'static str,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Value>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/",
            get(move || async move { ([(header::CONTENT_TYPE, "text/html")], html) }),
        )
        .route(
            script_path,
            get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], script) }),
        )
        .route(
            "/report",
            post(
                |State(tx): State<mpsc::UnboundedSender<Value>>, body: String| async move {
                    let report = serde_json::from_str(&body).unwrap_or_else(
                        |e| serde_json::json!({ "bad": body, "error": e.to_string() }),
                    );
                    let _ = tx.send(report);
                },
            ),
        )
        .with_state(tx);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("page server");
    });
    (addr, rx, task)
}

/// The flags of a Chromium that does WebRTC in a test: fake camera and microphone granted
/// without a prompt, and host candidates on loopback.
pub const WEBRTC: &[&str] = &[
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
];

/// The flags every headless Chromium of the tests runs with: no sandbox or GPU (containers),
/// nothing that reaches for the (closed) network, media that plays without a user gesture.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
];

/// Headless Chromium on `url` with a fresh profile in `dir`, its stderr in `dir/chromium.log`.
/// The background-networking flags keep it off the (closed) network; killing this process takes
/// its renderer and GPU processes down with it.
pub fn chromium(url: &str, dir: &Path) -> Child {
    chromium_with(url, dir, &[])
}

/// [`chromium`] with `extra` flags (WebRTC: fake devices, loopback candidates).
pub fn chromium_with(url: &str, dir: &Path, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("chromium.log")).expect("log file");
    Command::new("chromium")
        .args(HEADLESS)
        .args(extra)
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chromium")
}

/// The last lines of Chromium's stderr, for failure messages.
pub fn chromium_log(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("chromium.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Opens `url` in Chromium (profile and log in `dir`) and collects one report per name in
/// `names` from `reports`; panics with Chromium's log if it exits first or `limit` passes.
pub async fn collect_reports(
    url: &str,
    dir: &Path,
    reports: &mut mpsc::UnboundedReceiver<Value>,
    names: &[&str],
    limit: std::time::Duration,
) -> HashMap<String, Value> {
    collect_reports_with(url, dir, &[], reports, names, limit).await
}

/// [`collect_reports`] from a Chromium started with `extra` flags.
pub async fn collect_reports_with(
    url: &str,
    dir: &Path,
    extra: &[&str],
    reports: &mut mpsc::UnboundedReceiver<Value>,
    names: &[&str],
    limit: std::time::Duration,
) -> HashMap<String, Value> {
    let mut browser = chromium_with(url, dir, extra);
    let deadline = tokio::time::Instant::now() + limit;
    let mut got: HashMap<String, Value> = HashMap::new();
    while got.len() < names.len() {
        tokio::select! {
            report = reports.recv() => {
                let report = report.expect("page server running");
                let name = report["name"].as_str().unwrap_or_default().to_owned();
                assert!(names.contains(&name.as_str()), "unexpected report {report}");
                eprintln!("{name}: {report}");
                got.insert(name, report);
            }
            status = browser.wait() => {
                panic!("chromium exited ({status:?}) with reports {got:?}:\n{}",
                    chromium_log(dir));
            }
            () = tokio::time::sleep_until(deadline) => {
                panic!("no report from the page in time; got {got:?}\nchromium:\n{}",
                    chromium_log(dir));
            }
        }
    }
    let _ = browser.kill().await;
    got
}

/// Serves `page` (see [`serve_page`]), opens it in a Chromium that does WebRTC ([`WEBRTC`]) and
/// collects one report per name in `names` within `limit`.
pub async fn run_webrtc_page(
    page: String,
    names: &[&str],
    limit: std::time::Duration,
) -> HashMap<String, Value> {
    let (addr, mut reports, page_server) = serve_page(page, "/unused.js", "").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let got = collect_reports_with(
        &format!("http://{addr}/"),
        dir.path(),
        WEBRTC,
        &mut reports,
        names,
        limit,
    )
    .await;
    page_server.abort();
    got
}
