//! getSnap: a JPEG of a live stream's latest keyframe.
//!
//! ZLMediaKit runs ffmpeg on whatever `url` it is given; here the `url` only names a stream of
//! this server (`rtmp://host/app/stream`, `rtsp://…`, `http://host/app/stream.live.flv`,
//! `…/hls.m3u8`, …: the host is not contacted), so the API cannot be used to make the server
//! fetch other addresses. The stream's FLV output starts every new reader at its last
//! keyframe (the GOP cache): that header and keyframe go to `ffmpeg.bin` on its standard
//! input, and the JPEG it writes is the answer (`image/jpeg`).
//!
//! Bounds: at most [`MAX_RUNNING`] ffmpeg at once (more wait up to `timeout_sec`), at most
//! [`MAX_INPUT`] bytes fed and [`MAX_JPEG`] read, `timeout_sec` for the whole run (the child
//! is killed after it), and a JPEG younger than `expire_sec` is answered from a cache of at
//! most [`MAX_CACHED`] streams and [`MAX_CACHE_BYTES`].

use super::{Answer, ApiError, ApiResult, Call, Code};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use media::StreamKey;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// ffmpeg processes at once.
pub(crate) const MAX_RUNNING: usize = 2;
/// Bytes of FLV fed to one ffmpeg (a keyframe of a high-bitrate 4K stream fits).
pub(crate) const MAX_INPUT: usize = 16 * 1024 * 1024;
/// Bytes of JPEG read back.
pub(crate) const MAX_JPEG: usize = 8 * 1024 * 1024;
/// Streams whose last snapshot is kept.
pub(crate) const MAX_CACHED: usize = 256;
/// Bytes of snapshots kept (a 1080p JPEG is a few hundred KB).
pub(crate) const MAX_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// The longest `timeout_sec` honoured.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// The snapshot cache and the ffmpeg permits.
pub(crate) struct Snaps {
    cache: Mutex<HashMap<StreamKey, (Bytes, Instant)>>,
    running: Semaphore,
}

impl Default for Snaps {
    fn default() -> Self {
        Snaps {
            cache: Mutex::new(HashMap::new()),
            running: Semaphore::new(MAX_RUNNING),
        }
    }
}

impl Snaps {
    fn cached(&self, key: &StreamKey, expire: Duration) -> Option<Bytes> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(_, at)| at.elapsed() < expire)
            .map(|(jpeg, _)| jpeg.clone())
    }

    fn keep(&self, key: StreamKey, jpeg: Bytes) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(key, (jpeg, Instant::now()));
        // The oldest go first, until both bounds hold.
        while cache.len() > MAX_CACHED
            || cache.values().map(|(j, _)| j.len()).sum::<usize>() > MAX_CACHE_BYTES
        {
            let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.remove(&oldest);
        }
    }
}

/// The stream a snapshot `url` names on this server.
fn stream_of(call: &Call<'_>, url: &str) -> Result<StreamKey, ApiError> {
    let bad = || ApiError::bad_arg("url", "a URL of one of this server's streams");
    let (_, rest) = url.split_once("://").ok_or_else(bad)?;
    let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let stem = [
        "/hls.fmp4.m3u8",
        "/hls.m3u8",
        ".live.flv",
        ".live.ts",
        ".live.mp4",
    ]
    .iter()
    .find_map(|suffix| path.strip_suffix(suffix))
    .unwrap_or(path);
    StreamKey::from_url(
        call.state.options.enable_vhost,
        &format!("/{stem}"),
        query,
        Some(host),
    )
    .map_err(|e| ApiError::bad_arg("url", e))
}

/// Whether an FLV video tag body is a coded keyframe (not a sequence header), legacy or
/// Enhanced RTMP.
fn is_keyframe(body: &[u8]) -> bool {
    let Some(&first) = body.first() else {
        return false;
    };
    if first & 0x80 != 0 {
        // Enhanced RTMP: FrameType in bits 4-6, PacketType in the low nibble (0 = sequence start).
        (first >> 4) & 0x07 == 1 && first & 0x0f != 0
    } else {
        // FrameType, CodecID; AVC/HEVC packet type 0 = sequence header.
        first >> 4 == 1 && body.get(1).is_some_and(|&t| t != 0)
    }
}

/// getSnap: the JPEG.
pub(crate) async fn snap(call: &Call<'_>) -> ApiResult {
    let [url, timeout, expire] = call
        .args
        .require_spaced(["url", "timeout_sec", "expire_sec"])?;
    let parse = |name: &str, v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
            .ok_or_else(|| ApiError::bad_arg(name, "seconds"))
    };
    let timeout = parse("timeout_sec", timeout)?.min(MAX_TIMEOUT);
    let expire = parse("expire_sec", expire)?;
    let key = stream_of(call, url)?;
    let state = call.state;
    if let Some(jpeg) = state.snaps.cached(&key, expire) {
        return Ok(jpeg_answer(jpeg));
    }
    let jpeg = tokio::time::timeout(timeout, async {
        let _permit = state
            .snaps
            .running
            .acquire()
            .await
            .map_err(|_| ApiError::new(Code::Failed, "snapshots are shut down"))?;
        let input = keyframe_flv(call, &key).await?;
        let bin = state.config.get().ffmpeg.bin.clone();
        run_ffmpeg(&bin, input).await
    })
    .await
    .map_err(|_| ApiError::new(Code::Failed, "snapshot timed out"))??;
    state.snaps.keep(key, jpeg.clone());
    Ok(jpeg_answer(jpeg))
}

fn jpeg_answer(jpeg: Bytes) -> Answer {
    Answer::Raw(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            jpeg,
        )
            .into_response(),
    )
}

/// An FLV file of `key`'s header tags and its latest keyframe.
async fn keyframe_flv(call: &Call<'_>, key: &StreamKey) -> Result<Vec<u8>, ApiError> {
    let output = call
        .state
        .outputs
        .flv(key)
        .await
        .ok_or_else(ApiError::stream_not_found)?;
    let mut reader = output.reader();
    let mut flv = reader.file_header().to_vec();
    loop {
        let tag = reader
            .recv()
            .await
            .map_err(|_| ApiError::new(Code::Failed, "the stream ended before a keyframe"))?;
        if flv.len() + tag.tag.len() > MAX_INPUT {
            return Err(ApiError::new(Code::Failed, "no keyframe within 16 MiB"));
        }
        // Audio adds nothing to a picture.
        if tag.tag_type == 8 {
            continue;
        }
        flv.extend_from_slice(&tag.tag);
        if tag.tag_type == 9 && is_keyframe(&tag.body()) {
            return Ok(flv);
        }
    }
}

/// `bin` decoding the first picture of `input` (FLV) into a JPEG.
async fn run_ffmpeg(bin: &str, input: Vec<u8>) -> Result<Bytes, ApiError> {
    let failed = |e: std::io::Error| ApiError::new(Code::Exception, format!("ffmpeg: {e}"));
    let mut child = tokio::process::Command::new(bin)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "flv",
            "-i",
            "pipe:0",
        ])
        .args([
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed)?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| failed(std::io::ErrorKind::BrokenPipe.into()))?;
    let feed = tokio::spawn(async move {
        // ffmpeg may stop reading once it has its picture: a broken pipe is not an error.
        let _ = stdin.write_all(&input).await;
    });
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed(std::io::ErrorKind::BrokenPipe.into()))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| failed(std::io::ErrorKind::BrokenPipe.into()))?;
    let mut jpeg = Vec::new();
    let mut limited = (&mut stdout).take(MAX_JPEG as u64 + 1);
    limited.read_to_end(&mut jpeg).await.map_err(failed)?;
    let mut errors = Vec::new();
    let _ = (&mut stderr).take(4096).read_to_end(&mut errors).await;
    let status = child.wait().await.map_err(failed)?;
    feed.abort();
    if jpeg.len() > MAX_JPEG {
        return Err(ApiError::new(Code::Failed, "snapshot larger than 8 MiB"));
    }
    if !status.success() || !jpeg.starts_with(&[0xff, 0xd8]) {
        let why = String::from_utf8_lossy(&errors);
        return Err(ApiError::new(
            Code::Failed,
            format!(
                "ffmpeg could not make a snapshot ({status}): {}",
                why.trim()
            ),
        ));
    }
    Ok(Bytes::from(jpeg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_in_streams_and_bytes() {
        let snaps = Snaps::default();
        let key = |i: usize| StreamKey::new("live", format!("s{i}")).expect("key");
        for i in 0..MAX_CACHED + 10 {
            snaps.keep(key(i), Bytes::from_static(b"jpeg"));
        }
        let cache = snaps.cache.lock().expect("lock");
        assert_eq!(cache.len(), MAX_CACHED);
        assert!(!cache.contains_key(&key(0)), "the oldest went first");
        drop(cache);
        let big = Bytes::from(vec![0u8; MAX_CACHE_BYTES / 3 + 1]);
        for i in 0..4 {
            snaps.keep(key(1000 + i), big.clone());
        }
        let cache = snaps.cache.lock().expect("lock");
        let bytes: usize = cache.values().map(|(j, _)| j.len()).sum();
        assert!(bytes <= MAX_CACHE_BYTES, "{bytes}");
        assert!(cache.contains_key(&key(1003)), "the newest stays");
    }

    #[test]
    fn keyframes_legacy_and_enhanced() {
        assert!(is_keyframe(&[0x17, 0x01, 0, 0, 0]));
        assert!(!is_keyframe(&[0x17, 0x00, 0, 0, 0]), "AVC sequence header");
        assert!(!is_keyframe(&[0x27, 0x01]), "inter frame");
        assert!(
            is_keyframe(&[0x91, b'h', b'v', b'c', b'1']),
            "enhanced coded frames"
        );
        assert!(
            !is_keyframe(&[0x90, b'h', b'v', b'c', b'1']),
            "enhanced sequence start"
        );
        assert!(!is_keyframe(&[0xa1]), "enhanced inter frame");
        assert!(!is_keyframe(&[]));
    }
}
