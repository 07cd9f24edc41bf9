//! H.265 over RTMP, which ffmpeg 5.1 cannot publish (no Enhanced RTMP before 6.1): our own
//! client publishes a libx265 stream, as Enhanced RTMP `hvc1` and as legacy FLV CodecID 12;
//! an RTMP player and an HTTP-FLV player get it back, and ffprobe decodes what each got; ffmpeg
//! plays and decodes it over RTSP (RFC 7798).

use bytes::Bytes;
use e2e::client::*;
use e2e::*;
use media::{Codec, StreamKey, TrackInfo};
use rtmp::flv::{Muxer, TAG_VIDEO};
use std::sync::OnceLock;
use std::time::Duration;

/// Frames each player reads: two GOPs of the 25-frame sample, so at least one keyframe comes
/// after the first.
const WANT_FRAMES: usize = 50;

/// Four seconds of 352x288 libx265, encoded once per test binary.
async fn sample() -> &'static HevcSample {
    static SAMPLE: OnceLock<HevcSample> = OnceLock::new();
    tokio::task::spawn_blocking(|| SAMPLE.get_or_init(|| HevcSample::encode(4)))
        .await
        .expect("encode task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_enhanced_rtmp_plays_over_rtmp_and_http_flv() {
    if !have_ffmpeg() {
        return;
    }
    hevc_round_trip(false, false, "hevc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_legacy_codec_id_12_plays_over_rtmp_and_http_flv() {
    if !have_ffmpeg() {
        return;
    }
    hevc_round_trip(true, true, "hevc_legacy").await;
}

/// The FLV output writes H.265 one way for every player (`rtmp.enhanced`), whatever way the
/// publisher sent it: a legacy publisher reaches players as Enhanced RTMP by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_hevc_publisher_reaches_players_as_enhanced_rtmp_by_default() {
    if !have_ffmpeg() {
        return;
    }
    hevc_round_trip(true, false, "hevc_to_enhanced").await;
}

/// Publishes the sample on `live/{name}` with `Muxer::new(publish_legacy)` to a server whose
/// FLV output writes legacy CodecID 12 when `play_legacy` (`rtmp.enhanced=0`), looping it at 2.5×
/// real time until both players are done.
async fn hevc_round_trip(publish_legacy: bool, play_legacy: bool, name: &str) {
    let sample = sample().await;
    let server = start_server_with(|o| o.flv_legacy_hevc = play_legacy).await;
    let addr = server.rtmp_addr.expect("rtmp on");

    let mut mux = Muxer::new(publish_legacy);
    let track = TrackInfo::new(Codec::H265, sample.hvcc.clone());
    let sequence_header = mux
        .sequence_header(&track)
        .expect("an hvcC sequence header");
    let tags = sample
        .frames
        .iter()
        .map(|f| (TAG_VIDEO, f.dts as u32, mux.frame(f)))
        .collect();
    let period_ms = sample.frames.len() as u32 * 40;
    let publisher = Publisher::start(
        addr,
        "live",
        name,
        vec![(TAG_VIDEO, sequence_header)],
        tags,
        period_ms,
        Duration::from_millis(16),
    )
    .await;

    let key = StreamKey::new("live", name).expect("key");
    wait_live(&server, &key, 1).await;
    let info = server.registry.stream(&key).expect("live");
    let video = info
        .tracks
        .iter()
        .find(|t| t.codec == Codec::H265)
        .expect("an H.265 track");
    assert_eq!((video.width, video.height), (352, 288));
    assert_eq!(video.config, sample.hvcc);

    let enough = |r: &Received| r.video.len() >= WANT_FRAMES;
    let limit = Duration::from_secs(20);
    let rtmp = play_rtmp(addr, "live", name, limit, enough).await;
    check_playback("RTMP", &rtmp, play_legacy, &sample.hvcc).await;
    let url = http_url(&server, &format!("live/{name}.live.flv"));
    let flv = play_http_flv(&url, limit, enough).await;
    check_playback("HTTP-FLV", &flv, play_legacy, &sample.hvcc).await;

    // RTSP (RFC 7798): ffmpeg depacketizes and decodes it.
    let rtsp = rtsp_url(&server, &format!("live/{name}"));
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostats",
        "-rtsp_transport",
        "tcp",
        "-i",
        &rtsp,
    ])
    .args([
        "-map",
        "0:v:0",
        "-frames:v",
        "25",
        "-f",
        "null",
        "-",
        "-progress",
        "pipe:1",
    ]);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "RTSP: {log}");
    // Exactly one stream, HEVC, as ffprobe sees the RTSP output.
    let mut probe = tokio::process::Command::new("ffprobe");
    probe
        .args(["-v", "error", "-of", "json", "-show_streams"])
        .args(["-rtsp_transport", "tcp", &rtsp]);
    let probed = output_within(&mut probe, Duration::from_secs(30)).await;
    let probed: serde_json::Value = serde_json::from_slice(&probed.stdout).expect("ffprobe json");
    assert_eq!(codecs(&probed), ["hevc"], "RTSP: {probed}");
    let decoded = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    assert!(decoded >= 25, "RTSP: {decoded} frames decoded\n{log}");

    publisher.stop().await;
    server.shutdown().await;
}

/// What a player got is the published H.265, in the publisher's FLV flavour, starting at a
/// keyframe, and ffmpeg decodes every frame of it.
async fn check_playback(via: &str, got: &Received, legacy_hevc: bool, hvcc: &Bytes) {
    let track = got.video_track().expect("a video track");
    assert_eq!(track.codec, Codec::H265, "{via}");
    assert_eq!(&track.config, hvcc, "{via}: the publisher's hvcC");
    assert_eq!((track.width, track.height), (352, 288), "{via}");
    assert!(
        got.video.len() >= WANT_FRAMES,
        "{via}: {} frames",
        got.video.len()
    );
    let first = &got.video[0];
    let first_types: Vec<u8> = split_length_prefixed(&first.data)
        .iter()
        .map(|n| hevc_nal_type(n))
        .collect();
    assert!(
        first.keyframe && first_types.iter().copied().any(hevc_is_irap),
        "{via}: first frame is not a keyframe: NAL types {first_types:?}"
    );
    assert!(
        got.video.windows(2).all(|w| w[1].dts > w[0].dts),
        "{via}: timestamps go forward"
    );
    // Enhanced RTMP sets IsExHeader; legacy FLV carries CodecID 12 in the low nibble.
    let flavour_ok = |head: &u8| {
        if legacy_hevc {
            head & 0x0f == 12
        } else {
            head & 0x80 != 0
        }
    };
    assert!(
        got.video_tag_heads.iter().all(flavour_ok),
        "{via}: video tag headers {:x?}",
        &got.video_tag_heads[..got.video_tag_heads.len().min(8)]
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("received.hevc");
    std::fs::write(&path, hevc_annexb(&track.config, &got.video)).expect("write");
    let probe = ffprobe_hevc_file(&path).await;
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "hevc", "{via}: {probe}");
    assert_eq!(
        (&stream["width"], &stream["height"]),
        (&352.into(), &288.into())
    );
    let decoded: usize = stream["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("nb_read_frames");
    assert!(decoded >= 25, "{via}: {decoded} frames decoded");
    assert_eq!(
        decoded,
        got.video.len(),
        "{via}: every received frame decodes"
    );
}
