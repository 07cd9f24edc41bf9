//! A second, independent WebRTC stack plays WHEP: GStreamer's webrtcbin (libnice ICE, its own
//! DTLS-SRTP, RTP depayloader and H.264 decoder), driven by `tests/data/whep_gst.py`, decodes
//! an ffmpeg RTMP publish, so the server is not tuned to one browser.

use e2e::*;
use std::time::Duration;
use tokio::process::Command;

/// Debian's python3 (with python3-gi), not a pyenv one.
const PYTHON: &str = "/usr/bin/python3";

/// webrtcbin, libnice and the GObject bindings are installed; else the test is skipped
/// (failed in CI).
fn have_webrtcbin() -> bool {
    let ok = std::process::Command::new(PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('GstWebRTC', '1.0'); gi.require_version('GstSdp', '1.0')",
        ])
        .status()
        .is_ok_and(|s| s.success())
        && ["webrtcbin", "avdec_h264"].iter().all(|e| {
            std::process::Command::new("gst-inspect-1.0")
                .args(["--exists", e])
                .status()
                .is_ok_and(|s| s.success())
        })
        && std::process::Command::new("gst-inspect-1.0")
            .arg("nice")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "GStreamer webrtcbin missing in CI: scripts/test must install it"
        );
        eprintln!("skipped: GStreamer webrtcbin (gstreamer1.0-nice, gir1.2-gst-plugins-bad-1.0)");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_webrtcbin_plays_whep() {
    if !have_ffmpeg() || !have_webrtcbin() {
        return;
    }
    // libnice leaves loopback out of its candidates: the server advertises the address of
    // its default-route interface (rtc.externIP empty), which both ends reach.
    let server = start_server_with(|o| {
        o.rtc.addr = Some("0.0.0.0:0".parse().expect("addr"));
        o.rtc.extern_ip = None;
    })
    .await;
    let mut publisher = publish_looped(&server, "live/gst").await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/data/whep_gst.py");
    let url = http_url(&server, "index/api/whep?app=live&stream=gst");
    let out = output_within(
        Command::new(PYTHON).args([script, &url, "50", "20"]),
        Duration::from_secs(40),
    )
    .await;
    let line = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
        panic!(
            "no result from webrtcbin ({e}): {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(result["status"], 201, "{result:#}");
    assert!(
        result["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("/index/api/delete_webrtc?id=")),
        "{result:#}"
    );
    assert_eq!(result["error"], serde_json::Value::Null, "{result:#}");
    assert!(
        result["frames"].as_u64().is_some_and(|f| f >= 50),
        "{result:#}"
    );
    assert_eq!(
        (&result["width"], &result["height"]),
        (&320.into(), &240.into())
    );
    assert!(out.status.success());
    let _ = publisher.kill().await;
    server.shutdown().await;
}
