//! Every codec and track layout ffmpeg 5.1's FLV muxer can publish reaches RTMP and HTTP-FLV
//! players as published: audio-only AAC, video-only H.264, G.711 A-law and MP3 next to H.264,
//! and the publisher's `onMetaData`; the codecs RTP carries reach RTSP players too, and
//! audio-only and video-only streams play over HLS and LL-HLS.

use e2e::*;
use media::{Codec, StreamKey};
use server::Server;
use std::time::Duration;
use tokio::process::{Child, Command};

const VIDEO_SOURCE: &str = "testsrc=size=320x240:rate=25";
const AUDIO_SOURCE: &str = "sine=frequency=440:sample_rate=44100";
const H264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "25",
    "-pix_fmt",
    "yuv420p",
];

/// ffmpeg encoding lavfi `sources` in real time with `codec_args` and publishing them to
/// `url` until killed.
fn ffmpeg_publish_lavfi(url: &str, sources: &[&str], codec_args: &[&str]) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error"]);
    for source in sources {
        cmd.args(["-re", "-f", "lavfi", "-i", source]);
    }
    cmd.args(codec_args)
        .args(["-f", "flv", url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().expect("spawn ffmpeg")
}

/// Starts a server and an ffmpeg publisher on `live/{name}`, and waits until the stream has
/// `tracks` tracks.
async fn publish(
    name: &str,
    sources: &[&str],
    codec_args: &[&str],
    tracks: usize,
) -> (Server, Child) {
    let server = start_server().await;
    let publisher = ffmpeg_publish_lavfi(
        &rtmp_url(&server, &format!("live/{name}")),
        sources,
        codec_args,
    );
    wait_live(&server, &StreamKey::new("live", name).expect("key"), tracks).await;
    (server, publisher)
}

/// Runs `check` on the RTMP and the HTTP-FLV URL of `live/{name}` at the same time. ffprobe
/// and ffmpeg wait out their 5 s `-analyzeduration` on a one-track FLV stream (as on a
/// one-track FLV file: the FLV header does not tell them no other track is coming), so the
/// two players run side by side rather than one after the other.
async fn for_each_player(server: &Server, name: &str, check: impl AsyncFn(&str)) {
    let rtmp = rtmp_url(server, &format!("live/{name}"));
    let flv = http_url(server, &format!("live/{name}.live.flv"));
    tokio::join!(check(&rtmp), check(&flv));
}

/// Like [`for_each_player`], and over RTSP too (for codecs RTP carries: not MP3).
async fn for_each_player_and_rtsp(server: &Server, name: &str, check: impl AsyncFn(&str)) {
    let rtsp = rtsp_url(server, &format!("live/{name}"));
    tokio::join!(for_each_player(server, name, &check), check(&rtsp));
}

/// Like [`for_each_player_and_rtsp`], and over HLS (MPEG-TS) and LL-HLS (fMP4) too, for
/// H.264 and AAC.
async fn for_every_output(server: &Server, name: &str, check: impl AsyncFn(&str)) {
    let hls = http_url(server, &format!("live/{name}/hls.m3u8"));
    let ll = http_url(server, &format!("live/{name}/hls.fmp4.m3u8"));
    tokio::join!(
        for_each_player_and_rtsp(server, name, &check),
        check(&hls),
        check(&ll)
    );
}

/// Decodes `frames` audio frames of `url` with ffmpeg; returns the decoded duration (the
/// `out_time` of `-progress`).
async fn decode_audio(url: &str, frames: usize) -> Duration {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-i", url, "-map", "0:a:0"])
        .args(["-frames:a", &frames.to_string(), "-f", "null", "-"])
        .args(["-progress", "pipe:1"]);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "ffmpeg audio decode of {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let micros = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0u64);
    Duration::from_micros(micros)
}

/// Every test decodes 50 audio frames: at least 1 s of audio for AAC (1024 samples a frame),
/// MP3 (1152) and the G.711 packets ffmpeg writes from `sine` (1024 samples at 44.1 kHz,
/// resampled).
async fn assert_audio_decodes(url: &str) {
    let decoded = decode_audio(url, 50).await;
    assert!(
        decoded >= Duration::from_secs(1),
        "{url}: only {decoded:?} of audio decoded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aac_audio_only_plays_over_every_output() {
    if !have_ffmpeg() {
        return;
    }
    let codec_args = ["-c:a", "aac", "-b:a", "64k"];
    let (server, mut publisher) = publish("aac", &[AUDIO_SOURCE], &codec_args, 1).await;
    let info = server
        .registry
        .stream(&StreamKey::new("live", "aac").expect("key"))
        .expect("live");
    let tracks: Vec<Codec> = info.tracks.iter().map(|t| t.codec).collect();
    assert_eq!(tracks, [Codec::Aac]);
    assert_eq!(info.tracks[0].sample_rate, 44100);

    for_every_output(&server, "aac", async |url| {
        let probe = ffprobe(url, 0).await;
        assert_eq!(codecs(&probe), ["aac"], "{url}: {probe}");
        assert_audio_decodes(url).await;
    })
    .await;
    let _ = publisher.kill().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_video_only_plays_over_every_output() {
    if !have_ffmpeg() {
        return;
    }
    let (server, mut publisher) = publish("h264", &[VIDEO_SOURCE], H264, 1).await;
    let info = server
        .registry
        .stream(&StreamKey::new("live", "h264").expect("key"))
        .expect("live");
    let tracks: Vec<Codec> = info.tracks.iter().map(|t| t.codec).collect();
    assert_eq!(tracks, [Codec::H264]);

    for_every_output(&server, "h264", async |url| {
        let probe = ffprobe(url, 0).await;
        assert_eq!(codecs(&probe), ["h264"], "{url}: {probe}");
        assert!(decode_frames(url, 30).await >= 30, "{url}");
    })
    .await;
    let _ = publisher.kill().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g711_alaw_with_h264_plays_over_rtmp_http_flv_and_rtsp() {
    if !have_ffmpeg() {
        return;
    }
    let codec_args = [H264, &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"]].concat();
    let sources = [VIDEO_SOURCE, AUDIO_SOURCE];
    let (server, mut publisher) = publish("alaw", &sources, &codec_args, 2).await;
    let info = server
        .registry
        .stream(&StreamKey::new("live", "alaw").expect("key"))
        .expect("live");
    let audio = info
        .tracks
        .iter()
        .find(|t| t.codec == Codec::G711A)
        .expect("a G.711 A-law track");
    assert_eq!((audio.sample_rate, audio.channels), (8000, 1));

    for_each_player_and_rtsp(&server, "alaw", async |url| {
        let probe = ffprobe(url, 0).await;
        assert_eq!(codecs(&probe), ["h264", "pcm_alaw"], "{url}: {probe}");
        assert_audio_decodes(url).await;
    })
    .await;
    let _ = publisher.kill().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_with_h264_plays_over_rtmp_and_http_flv() {
    if !have_ffmpeg() {
        return;
    }
    let codec_args = [H264, &["-c:a", "libmp3lame", "-ar", "44100"]].concat();
    let sources = [VIDEO_SOURCE, AUDIO_SOURCE];
    let (server, mut publisher) = publish("mp3", &sources, &codec_args, 2).await;
    let info = server
        .registry
        .stream(&StreamKey::new("live", "mp3").expect("key"))
        .expect("live");
    assert!(
        info.tracks.iter().any(|t| t.codec == Codec::Mp3),
        "{:?}",
        info.tracks
    );

    for_each_player(&server, "mp3", async |url| {
        let probe = ffprobe(url, 0).await;
        assert_eq!(codecs(&probe), ["h264", "mp3"], "{url}: {probe}");
        assert_audio_decodes(url).await;
    })
    .await;
    let _ = publisher.kill().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_metadata_reaches_rtmp_and_http_flv_players() {
    if !have_ffmpeg() {
        return;
    }
    // ffmpeg's FLV muxer writes every format tag into onMetaData, and its FLV demuxer turns
    // onMetaData's unknown keys back into format tags: this value can only reach ffprobe
    // through the publisher's metadata.
    let comment = "ferrostream-metadata-check";
    let tag = format!("comment={comment}");
    let codec_args = [H264, &["-c:a", "aac", "-metadata", &tag]].concat();
    let sources = [VIDEO_SOURCE, AUDIO_SOURCE];
    let (server, mut publisher) = publish("meta", &sources, &codec_args, 2).await;

    for_each_player(&server, "meta", async |url| {
        let mut cmd = Command::new("ffprobe");
        cmd.args(["-v", "error", "-of", "json", "-show_format", url]);
        let out = output_within(&mut cmd, Duration::from_secs(30)).await;
        assert!(
            out.status.success(),
            "ffprobe {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let probe: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let tags = &probe["format"]["tags"];
        assert_eq!(tags["comment"], comment, "{url}: {probe}");
        // ffmpeg names itself in onMetaData's `encoder` (Lavf59.27.100 for ffmpeg 5.1).
        let encoder = tags["encoder"].as_str().unwrap_or_default();
        assert!(encoder.starts_with("Lavf"), "{url}: {probe}");
    })
    .await;
    let _ = publisher.kill().await;
    server.shutdown().await;
}
