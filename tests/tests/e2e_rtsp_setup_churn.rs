//! A client repeating UDP SETUPs of one track holds one port pair, not one per SETUP: each
//! repeat replaces and closes the pair before it, and past the session's SETUP cap the server
//! answers 453. Meanwhile another viewer plays over UDP.

use e2e::raw_rtsp::RawRtsp;
use e2e::*;
use media::StreamKey;
use std::time::Duration;
use tokio::process::Command;

/// The server runs in this process, so its sockets are among these.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Video frames ffmpeg decodes from `url` over UDP, up to `frames`.
async fn decode_udp(url: &str, frames: usize) -> usize {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostats",
        "-rtsp_transport",
        "udp",
        "-i",
        url,
    ])
    .args(["-map", "0:v:0", "-frames:v", &frames.to_string()])
    .args(["-f", "null", "-", "-progress", "pipe:1"]);
    let out = output_within(&mut cmd, Duration::from_secs(40)).await;
    assert!(
        out.status.success(),
        "ffmpeg over UDP failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_udp_setups_hold_one_port_pair() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/churn"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "churn").expect("key"), 2).await;
    let addr = server.rtsp_addr.expect("rtsp");
    let url = format!("rtsp://{addr}/live/churn");

    let mut c = RawRtsp::connect(addr).await;
    let describe = c
        .request("DESCRIBE", &url, 1, "Accept: application/sdp\r\n")
        .await;
    assert_eq!(describe.status, 200);
    let before = open_fds();

    let cap = rtsp::RtspConfig::default().max_setups;
    let mut statuses = Vec::new();
    let mut session = String::new();
    for cseq in 2..502u32 {
        let headers = format!(
            "Transport: RTP/AVP;unicast;client_port=40000-40001\r\n{}",
            if session.is_empty() {
                String::new()
            } else {
                format!("Session: {session}\r\n")
            }
        );
        let answer = c
            .request("SETUP", &format!("{url}/trackID=0"), cseq, &headers)
            .await;
        if answer.status == 200 {
            let id = answer.header("Session").expect("Session");
            session = id.split(';').next().unwrap_or(id).to_owned();
            let transport = answer.header("Transport").expect("Transport");
            assert!(transport.contains("server_port="), "{transport}");
        } else {
            assert_eq!(
                answer.head.lines().next(),
                Some("RTSP/1.0 453 Not Enough Bandwidth"),
                "{answer:?}"
            );
            assert_eq!(answer.header("CSeq"), Some(cseq.to_string().as_str()));
        }
        statuses.push(answer.status);
    }

    // Replaced pairs are closed as their reader tasks end: wait for that, within reason.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let held = loop {
        let held = open_fds().saturating_sub(before);
        if held <= 6 || tokio::time::Instant::now() >= deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("fds held by one connection after 500 UDP SETUPs: {held}");
    assert!(
        held <= 6,
        "one connection holds {held} more fds after 500 SETUPs"
    );
    let expected: Vec<u16> = (0..500).map(|i| if i < cap { 200 } else { 453 }).collect();
    assert_eq!(statuses, expected);

    // The churning connection is still open; a new viewer still gets a port pair and plays.
    assert!(decode_udp(&url, 25).await >= 25);
    // And the session itself still works: it plays what it set up.
    let play = c
        .request("PLAY", &url, 600, &format!("Session: {session}\r\n"))
        .await;
    assert_eq!(play.status, 200);
    server.shutdown().await;
}
