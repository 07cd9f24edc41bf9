//! Recording calls: startRecord, stopRecord, isRecording (MP4 `type=1`; HLS `type=0`, fMP4 HLS
//! `type=2`: a keep-all playlist written to `hls_save_path`), and the MP4 files:
//! getMP4RecordFile, deleteRecordDirectory, over the layout of DESIGN.md §1 Recording
//! (`{mp4_save_path}/record/[{vhost}/]{app}/{stream}/{YYYY-MM-DD}/{HH-MM-SS}.mp4`).
//!
//! Every path is made from a checked stream key, a `period` that must be a date, and a file
//! `name` that must be one plain file name; it is then resolved and must still lie under the
//! save root, so no argument reaches outside it.

use super::media::key;
use super::{fields, Answer, ApiError, ApiResult, Call, Code};
use media::StreamKey;
use outputs::RecordControl;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn recorder<'a>(call: &'a Call<'_>) -> Result<&'a RecordControl, ApiError> {
    call.state
        .recorder
        .as_ref()
        .ok_or_else(|| ApiError::new(Code::Failed, "recording is not available"))
}

/// What a record call records: ZLMediaKit's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 1: MP4 files.
    Mp4,
    /// 0 (MPEG-TS) or 2 (fMP4): a keep-all HLS playlist on disk.
    Hls(outputs::HlsKind),
}

/// The stream and record type a call names.
fn target(call: &Call<'_>) -> Result<(StreamKey, Kind), ApiError> {
    let [kind, vhost, app, stream] = call.args.require(["type", "vhost", "app", "stream"])?;
    let kind = match kind.trim() {
        "0" => Kind::Hls(outputs::HlsKind::Ts),
        "1" => Kind::Mp4,
        "2" => Kind::Hls(outputs::HlsKind::Fmp4),
        _ => {
            return Err(ApiError::bad_arg(
                "type",
                "0 (hls), 1 (mp4) or 2 (hls_fmp4)",
            ))
        }
    };
    no_customized_path(call)?;
    Ok((key(vhost, app, stream)?, kind))
}

fn no_customized_path(call: &Call<'_>) -> Result<(), ApiError> {
    if call.args.get("customized_path").is_some() {
        return Err(ApiError::bad_arg(
            "customized_path",
            "not supported: recordings go under protocol.mp4_save_path",
        ));
    }
    Ok(())
}

/// The live stream a record call names, or -500.
fn live_target(call: &Call<'_>) -> Result<(StreamKey, Kind), ApiError> {
    let (key, kind) = target(call)?;
    if !call.state.registry.is_live(&key) {
        return Err(ApiError::stream_not_found());
    }
    Ok((key, kind))
}

/// startRecord: `result` true (also when it records already), or -500 when the stream is not
/// live.
pub(crate) async fn start(call: &Call<'_>) -> ApiResult {
    let (key, kind) = live_target(call)?;
    let started = match kind {
        Kind::Mp4 => {
            let max = call.args.int::<u64>("max_second")?.map(Duration::from_secs);
            match recorder(call)?.start(&key, max) {
                Ok(()) => true,
                Err(outputs::RecordError::NotLive) => return Err(ApiError::stream_not_found()),
                Err(_) => false,
            }
        }
        Kind::Hls(hls) => call.state.outputs.record_hls(&key, hls).await,
    };
    if !started {
        return Err(ApiError::new(Code::Failed, "start record failed").with("result", false));
    }
    tracing::info!(stream = %key, ?kind, "recording started by the api");
    Ok(fields([("msg", "success".into()), ("result", true.into())]))
}

/// stopRecord: `result` true (also when it was not recording), or -500 when the stream is not
/// live.
pub(crate) fn stop(call: &Call<'_>) -> ApiResult {
    let (key, kind) = live_target(call)?;
    let stopped = match kind {
        Kind::Mp4 => recorder(call)?.stop(&key),
        Kind::Hls(hls) => call.state.outputs.stop_hls_recording(&key, hls),
    };
    if stopped {
        tracing::info!(stream = %key, ?kind, "recording stopped by the api");
    }
    Ok(fields([("msg", "success".into()), ("result", true.into())]))
}

/// isRecording: `status`, or -500 when the stream is not live.
pub(crate) fn is_recording(call: &Call<'_>) -> ApiResult {
    let (key, kind) = live_target(call)?;
    let status = match kind {
        Kind::Mp4 => recorder(call)?.is_recording(&key),
        Kind::Hls(hls) => call.state.outputs.is_recording_hls(&key, hls),
    };
    Ok(fields([("status", status.into())]))
}

/// What a `period` names: a day (`YYYY-MM-DD`: its files), or any other prefix of a date
/// (`YYYY-MM`, `YYYY`, empty: the day folders that start with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Days,
    Day,
}

fn period(value: &str) -> Result<Period, ApiError> {
    let date = |s: &str| {
        let b = s.as_bytes();
        b.len() == 10
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            })
    };
    if date(value) {
        return Ok(Period::Day);
    }
    // A prefix of a date: digits and dashes where a date has them.
    let template = b"0000-00-00";
    let prefix = value.len() < 10
        && value.bytes().zip(template).all(|(c, t)| match t {
            b'-' => c == b'-',
            _ => c.is_ascii_digit(),
        });
    if prefix {
        Ok(Period::Days)
    } else {
        Err(ApiError::bad_arg(
            "period",
            "YYYY-MM-DD or a prefix of one (YYYY-MM)",
        ))
    }
}

/// `{mp4_save_path}/record/[{vhost}/]{app}/{stream}`, and the save root itself.
fn stream_dir(call: &Call<'_>, key: &StreamKey) -> Result<(PathBuf, PathBuf), ApiError> {
    let root = call.state.config.get().protocol.mp4_save_path.clone();
    Ok((root.join(recorder(call)?.relative_dir(key)), root))
}

/// `dir` resolved, if it exists and lies under `root` after symlinks.
async fn confined(root: &Path, dir: &Path) -> Option<PathBuf> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let dir = tokio::fs::canonicalize(dir).await.ok()?;
    dir.starts_with(&root).then_some(dir)
}

/// getMP4RecordFile: for a day, its files; for a prefix (`YYYY-MM`, or none), the day
/// folders that start with it. `data` = `{rootPath, paths}` (bare names, sorted).
pub(crate) async fn files(call: &Call<'_>) -> ApiResult {
    let [vhost, app, stream] = call.args.require_spaced(["vhost", "app", "stream"])?;
    no_customized_path(call)?;
    let key = key(vhost, app, stream)?;
    let when = call.args.get("period").unwrap_or("");
    let kind = period(when)?;
    let (base, root) = stream_dir(call, &key)?;
    let dir = match kind {
        Period::Days => base,
        Period::Day => base.join(when),
    };
    let mut paths = Vec::new();
    if let Some(dir) = confined(&root, &dir).await {
        if let Ok(mut entries) = tokio::fs::read_dir(&dir).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(ft) = entry.file_type().await else {
                    continue;
                };
                let wanted = !name.starts_with('.')
                    && match kind {
                        Period::Days => ft.is_dir() && name.starts_with(when),
                        Period::Day => ft.is_file(),
                    };
                if wanted {
                    paths.push(name);
                }
            }
        }
    }
    paths.sort();
    Ok(Answer::Data(
        json!({ "rootPath": absolute(&dir), "paths": paths }),
    ))
}

/// `dir` as an absolute path ending in `/` (ZLMediaKit's `rootPath`).
fn absolute(dir: &Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut text = dir.display().to_string();
    if !text.ends_with('/') {
        text.push('/');
    }
    text
}

/// deleteRecordDirectory: removes a day folder (`period=YYYY-MM-DD`), one file of it
/// (`name`), or with neither the stream's whole folder. Answers `code` 0 or -1 (nothing there)
/// and the `path`, as ZLMediaKit does. What the stream is recording into now is refused
/// (stopRecord first).
pub(crate) async fn delete_dir(call: &Call<'_>) -> ApiResult {
    let [vhost, app, stream] = call.args.require_spaced(["vhost", "app", "stream"])?;
    no_customized_path(call)?;
    let key = key(vhost, app, stream)?;
    let when = call.args.get("period");
    if when.is_some_and(|w| period(w).ok() != Some(Period::Day)) {
        return Err(ApiError::bad_arg("period", "a day, YYYY-MM-DD"));
    }
    let name = call.args.get("name");
    if let Some(name) = name {
        let plain = when.is_some()
            && Path::new(name).file_name().is_some_and(|n| n == name)
            && !name.starts_with('.')
            && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(ApiError::bad_arg(
                "name",
                "one file name of the day `period`",
            ));
        }
    }
    let today = outputs::utc_date(std::time::SystemTime::now());
    if recorder(call)?.is_recording(&key) && when.is_none_or(|w| w == today) {
        return Err(ApiError::new(
            Code::Failed,
            "the stream is recording into that folder; stopRecord first",
        ));
    }
    let (base, root) = stream_dir(call, &key)?;
    let mut target = base.clone();
    if let Some(when) = when {
        target = target.join(when);
    }
    if let Some(name) = name {
        target = target.join(name);
    }
    let shown = absolute(&target);
    let shown = if name.is_some() {
        shown.trim_end_matches('/').to_owned()
    } else {
        shown
    };
    let missing = || ApiError::new(Code::Failed, "").with("path", shown.clone());
    let Some(resolved) = confined(&root, &target).await else {
        return Err(missing());
    };
    // Under the stream's own folder, not merely under the root (a symlinked day folder could
    // point at another stream's).
    let own = confined(&root, &base).await;
    if !own.is_some_and(|own| resolved.starts_with(own)) {
        return Err(missing());
    }
    let removed = if resolved.is_dir() {
        tokio::fs::remove_dir_all(&resolved).await
    } else {
        tokio::fs::remove_file(&resolved).await
    };
    removed.map_err(|e| ApiError::new(Code::Exception, format!("delete failed: {e}")))?;
    tracing::info!(path = %resolved.display(), "recordings deleted by the api");
    Ok(fields([("path", Value::from(shown))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_dates_or_their_prefixes() {
        for days in ["", "2026", "2026-12", "2026-1", "2026-12-0"] {
            assert_eq!(period(days).ok(), Some(Period::Days), "{days:?}");
        }
        assert_eq!(period("2026-12-03").ok(), Some(Period::Day));
        for bad in [
            "..",
            "20a6",
            "2026/",
            "../2026-12",
            "2026-12-03/..",
            "2026-12-03-01",
            "2026-12-3x",
        ] {
            assert!(period(bad).is_err(), "{bad:?}");
        }
    }
}
