//! MP4 recording (DESIGN.md §1 Recording): every stream whose options say `enable_mp4` is
//! written to `{mp4_save_path}/record/[{vhost}/]{app}/{stream}/{YYYY-MM-DD}/{HH-MM-SS}.mp4`.
//!
//! Crash safety: while a segment records, its file is a fragmented MP4 (the init segment, then
//! one fragment about every second, appended as it goes), so a `kill -9` or a power cut leaves a
//! file that plays up to its last complete fragment. When the segment closes (at the first
//! keyframe after `mp4_max_second`, when the stream ends, or when the server stops), it is
//! finished into a normal MP4 with its index in front (`mp4::Progressive`: the header, then the
//! fragments' media copied from the fragmented file), written beside it and renamed over it;
//! then the [`Recorder`]'s callback gets the final file as a [`RecordedFile`] (the server sends
//! it as on_record_mp4). Dates and times in names are UTC.

use media::{StreamKey, TrackKind};
use mp4::{Fmp4Muxer, Progressive};
use registry::{Event, Item, Registry, StreamOptions};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Media per fragment: what a crash may lose at most.
const FRAGMENT_MS: u64 = 1000;
/// Segments smaller than this are deleted without a hook (as ZLMediaKit does).
const MIN_FILE: u64 = 1024;

/// Settings of the recorder.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// `record.appName`: the directory recordings go under. Default: `record`.
    pub app: String,
    /// `general.enableVhost`: recordings go under their vhost too. Default: false.
    pub enable_vhost: bool,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            app: "record".into(),
            enable_vhost: false,
        }
    }
}

/// A finished recording segment, as on_record_mp4 reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedFile {
    /// The stream recorded.
    pub key: StreamKey,
    /// The publisher's query string.
    pub params: String,
    /// When the segment started, unix seconds.
    pub start_time: u64,
    /// Its final size in bytes.
    pub file_size: u64,
    /// Its duration, seconds.
    pub time_len: f64,
    /// Its absolute path.
    pub file_path: String,
    /// Its file name.
    pub file_name: String,
    /// Its directory.
    pub folder: String,
    /// `record/app/stream/date/file.mp4`, relative to `mp4_save_path` (ZLMediaKit's `url`).
    pub url: String,
}

type OnClosed = Arc<dyn Fn(RecordedFile) + Send + Sync>;

/// Records every stream published with `enable_mp4`, from its publish to its end, and the
/// streams [`RecordControl::start`] names (startRecord), until [`RecordControl::stop`].
pub struct Recorder {
    manager: JoinHandle<()>,
    ctx: Arc<Ctx>,
}

/// A cheap-to-clone handle that starts, stops and asks about recordings of live streams
/// (ZLMediaKit's startRecord, stopRecord, isRecording).
#[derive(Clone)]
pub struct RecordControl {
    ctx: Arc<Ctx>,
}

/// Why [`RecordControl::start`] did not start a recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The stream is not live.
    #[error("can not find the stream")]
    NotLive,
}

struct Ctx {
    registry: Registry,
    config: RecordConfig,
    on_closed: OnClosed,
    /// The recording tasks, so a stopping server can wait for them to finish their files.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The streams being recorded now, each with the switch that ends its recording. Bounded
    /// by the live streams: an entry is removed when its recording ends.
    active: Mutex<HashMap<StreamKey, Active>>,
    /// Numbers recordings, so an ending one removes its own entry and not a newer one's.
    next_id: AtomicU64,
}

struct Active {
    id: u64,
    stop: watch::Sender<bool>,
}

impl Recorder {
    /// Starts recording the streams of `registry` that ask for it; `on_closed` hears of every
    /// finished file.
    pub fn start(
        registry: Registry,
        config: RecordConfig,
        on_closed: impl Fn(RecordedFile) + Send + Sync + 'static,
    ) -> Recorder {
        let ctx = Arc::new(Ctx {
            registry,
            config,
            on_closed: Arc::new(on_closed),
            tasks: Mutex::new(Vec::new()),
            active: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        Recorder {
            manager: spawn_manager(Arc::clone(&ctx)),
            ctx,
        }
    }

    /// Stops starting recordings and waits for every one to close its file and report it, at
    /// most `limit` (each ends with its stream).
    pub async fn finish(self, limit: Duration) {
        self.manager.abort();
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.ctx.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::time::timeout(limit, async {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
    }
}

impl Recorder {
    /// The handle that starts and stops recordings while this recorder runs.
    pub fn control(&self) -> RecordControl {
        RecordControl {
            ctx: Arc::clone(&self.ctx),
        }
    }
}

impl RecordControl {
    /// Starts recording `key` now (until it ends or [`RecordControl::stop`]), with its
    /// options but segments of `max_second` when given. Recording a stream that already
    /// records is not an error: it goes on as it was.
    pub fn start(&self, key: &StreamKey, max_second: Option<Duration>) -> Result<(), RecordError> {
        let info = self.ctx.registry.stream(key).ok_or(RecordError::NotLive)?;
        let mut options = info.options;
        if let Some(max) = max_second.filter(|d| !d.is_zero()) {
            options.mp4_max_second = max;
        }
        Ctx::begin(&self.ctx, key.clone(), info.publisher.params, options);
        Ok(())
    }

    /// Stops recording `key`: its open segment is finished and reported as usual. False when
    /// it was not recording.
    pub fn stop(&self, key: &StreamKey) -> bool {
        match self.ctx.active().remove(key) {
            Some(active) => {
                active.stop.send_replace(true);
                true
            }
            None => false,
        }
    }

    /// Whether `key` is being recorded now.
    pub fn is_recording(&self, key: &StreamKey) -> bool {
        self.ctx.active().contains_key(key)
    }

    /// The directory the recordings of `key` go to, relative to its `mp4_save_path`
    /// (`record/[{vhost}/]{app}/{stream}`).
    pub fn relative_dir(&self, key: &StreamKey) -> PathBuf {
        record_dir(&self.ctx.config, key)
    }
}

impl Ctx {
    fn add(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn active(&self) -> MutexGuard<'_, HashMap<StreamKey, Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts recording `key` unless it records already.
    fn begin(ctx: &Arc<Ctx>, key: StreamKey, params: String, options: StreamOptions) {
        let mut active = ctx.active();
        if active.contains_key(&key) {
            return;
        }
        let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
        let (stop, stopped) = watch::channel(false);
        active.insert(key.clone(), Active { id, stop });
        drop(active);
        let task = tokio::spawn({
            let ctx = Arc::clone(ctx);
            async move {
                record(Arc::clone(&ctx), key.clone(), params, options, stopped).await;
                let mut active = ctx.active();
                if active.get(&key).is_some_and(|a| a.id == id) {
                    active.remove(&key);
                }
            }
        });
        ctx.add(task);
    }
}

/// Starts a recorder for every stream published with `enable_mp4`, until the registry's event
/// channel closes or the task is aborted.
fn spawn_manager(ctx: Arc<Ctx>) -> JoinHandle<()> {
    let mut events = ctx.registry.events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(Event::Published { key, publisher }) => {
                    let Some(options) = ctx.registry.stream(&key).map(|s| s.options) else {
                        continue;
                    };
                    if options.enable_mp4 {
                        Ctx::begin(&ctx, key, publisher.params, options);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("recorder missed {n} stream events");
                }
                Err(_) => return,
            }
        }
    })
}

/// One segment being written.
struct Segment {
    path: PathBuf,
    file: tokio::fs::File,
    written: u64,
    muxer: Fmp4Muxer,
    index: Progressive,
    /// Where each fragment's media sits in the fragmented file.
    media: Vec<Range<u64>>,
    started: SystemTime,
    first_dts: Option<u64>,
    /// The file relative to `mp4_save_path` (`record/app/stream/date/file.mp4`, ZLMediaKit's
    /// `url`).
    url: String,
}

/// Records `key` until it ends or `stop` turns true, segment after segment.
async fn record(
    ctx: Arc<Ctx>,
    key: StreamKey,
    params: String,
    options: StreamOptions,
    mut stop: watch::Receiver<bool>,
) {
    let ready = ctx
        .registry
        .tracks_ready(&key, Duration::from_secs(1), Duration::from_secs(10));
    let tracks = tokio::select! {
        _ = stop.wait_for(|stop| *stop) => return,
        tracks = ready => tracks,
    };
    let Some(mut tracks) = tracks else {
        return;
    };
    let Some(mut sub) = ctx.registry.subscribe_output(&key) else {
        return;
    };
    let root = record_dir(&ctx.config, &key);
    let mut segment: Option<Segment> = None;
    tracing::info!(stream = %key, dir = %options.mp4_save_path.join(&root).display(), "recording");
    loop {
        let item = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            item = sub.recv() => match item {
                Ok(item) => item,
                Err(_) => break,
            },
        };
        match item {
            Item::Track(t) => {
                // New codec parameters: the next file starts with them.
                if let Some(i) = tracks.iter().position(|x| x.kind() == t.kind()) {
                    if tracks[i] != t {
                        tracks[i] = t;
                        if let Some(done) = segment.take() {
                            close(&ctx, &key, &params, done).await;
                        }
                    }
                } else {
                    tracks.push(t);
                    if let Some(done) = segment.take() {
                        close(&ctx, &key, &params, done).await;
                    }
                }
            }
            Item::Frame(frame) => {
                let is_key = frame.kind() == TrackKind::Video && frame.keyframe;
                let has_video = tracks.iter().any(|t| t.kind() == TrackKind::Video);
                let cut = segment.as_ref().is_some_and(|s| {
                    let elapsed = s
                        .first_dts
                        .map_or(0, |first| frame.dts.saturating_sub(first));
                    (is_key || !has_video) && elapsed >= options.mp4_max_second.as_millis() as u64
                });
                if cut {
                    if let Some(done) = segment.take() {
                        close(&ctx, &key, &params, done).await;
                    }
                }
                if segment.is_none() {
                    // A file starts with a keyframe (or any frame of an audio-only stream).
                    if has_video && !is_key {
                        continue;
                    }
                    match open(&root, &options.mp4_save_path, &tracks).await {
                        Ok(s) => segment = Some(s),
                        Err(e) => {
                            tracing::error!(stream = %key, "recording stopped: {e}");
                            return;
                        }
                    }
                }
                if let Some(s) = segment.as_mut() {
                    // Each file's timeline starts at 0.
                    let first = *s.first_dts.get_or_insert(frame.dts);
                    let mut frame = frame;
                    frame.dts = frame.dts.saturating_sub(first);
                    s.muxer.push(&frame);
                    if s.muxer.buffered_ms() >= FRAGMENT_MS {
                        if let Err(e) = s.write_fragment().await {
                            tracing::error!(stream = %key, "recording stopped: {e}");
                            return;
                        }
                    }
                }
            }
            Item::Metadata(_) => {}
        }
    }
    if let Some(done) = segment.take() {
        close(&ctx, &key, &params, done).await;
    }
    tracing::info!(stream = %key, "recording ended");
}

/// `record/[{vhost}/]{app}/{stream}`, relative to `mp4_save_path`.
fn record_dir(config: &RecordConfig, key: &StreamKey) -> PathBuf {
    Path::new(&config.app).join(key.relative_dir(config.enable_vhost))
}

/// Opens a new segment under `{save_root}/{dir}/{date}/`, a directory made and checked to stay
/// under `save_root` before the file is created.
async fn open(
    dir: &Path,
    save_root: &Path,
    tracks: &[media::TrackInfo],
) -> std::io::Result<Segment> {
    let muxer = Fmp4Muxer::new(tracks)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let started = SystemTime::now();
    let (date, time) = utc_date_time(started);
    let rel = dir.join(&date);
    let (root, made) = (save_root.to_owned(), rel.clone());
    let dir = tokio::task::spawn_blocking(move || crate::confined_dir(&root, &made))
        .await
        .map_err(std::io::Error::other)??;
    let mut name = format!("{time}.mp4");
    let mut n = 1;
    while tokio::fs::try_exists(dir.join(&name))
        .await
        .unwrap_or(false)
    {
        name = format!("{time}-{n}.mp4");
        n += 1;
    }
    let path = dir.join(&name);
    let url = rel.join(&name).to_string_lossy().replace('\\', "/");
    let mut file = tokio::fs::File::create(&path).await?;
    let init = muxer.init_segment();
    file.write_all(&init).await?;
    file.flush().await?;
    let index = Progressive::new(&muxer);
    tracing::info!(file = %path.display(), "recording segment opened");
    Ok(Segment {
        path,
        file,
        written: init.len() as u64,
        muxer,
        index,
        media: Vec::new(),
        started,
        first_dts: None,
        url,
    })
}

impl Segment {
    /// Appends what is buffered as one fragment; after this a crash loses nothing before it.
    async fn write_fragment(&mut self) -> std::io::Result<()> {
        let Some(fragment) = self.muxer.fragment() else {
            return Ok(());
        };
        self.file.write_all(&fragment.data).await?;
        self.file.flush().await?;
        let base = self.written;
        self.media.push(
            base + fragment.mdat_payload.start as u64..base + fragment.mdat_payload.end as u64,
        );
        self.written += fragment.data.len() as u64;
        self.index.add(&fragment);
        Ok(())
    }
}

/// Finishes a segment into a normal MP4 and reports it with on_record_mp4.
async fn close(ctx: &Ctx, key: &StreamKey, params: &str, mut segment: Segment) {
    if let Err(e) = segment.write_fragment().await {
        tracing::error!(file = %segment.path.display(), "last fragment not written: {e}");
    }
    let _ = segment.file.sync_all().await;
    let path = segment.path.clone();
    let header = segment.index.header();
    let media = std::mem::take(&mut segment.media);
    drop(segment.file);
    let finished = tokio::task::spawn_blocking({
        let path = path.clone();
        move || finish_file(&path, &header, &media)
    })
    .await;
    let size = match finished {
        Ok(Ok(size)) => size,
        Ok(Err(e)) => {
            // The fragmented file stays: it plays as it is.
            tracing::error!(file = %path.display(), "could not finish the recording: {e}");
            return;
        }
        Err(e) => {
            tracing::error!(file = %path.display(), "could not finish the recording: {e}");
            return;
        }
    };
    if size < MIN_FILE {
        let _ = tokio::fs::remove_file(&path).await;
        return;
    }
    let time_len = segment.index.duration_ms() as f64 / 1000.0;
    tracing::info!(file = %path.display(), size, seconds = time_len, "recording segment closed");
    let start_time = segment
        .started
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let folder = path
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (ctx.on_closed)(RecordedFile {
        key: key.clone(),
        params: params.to_owned(),
        start_time,
        file_size: size,
        time_len,
        file_path: path.display().to_string(),
        file_name,
        folder,
        url: std::mem::take(&mut segment.url),
    });
}

/// Writes `header` and then the media ranges of the fragmented file at `path` into a new file
/// beside it, syncs it and renames it over `path`. Returns the final size.
fn finish_file(path: &Path, header: &[u8], media: &[Range<u64>]) -> std::io::Result<u64> {
    let tmp = path.with_extension("mp4.finishing");
    let mut src = std::fs::File::open(path)?;
    let mut dst = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    dst.write_all(header)?;
    let mut buf = vec![0u8; 256 * 1024];
    for range in media {
        src.seek(SeekFrom::Start(range.start))?;
        let mut left = range.end.saturating_sub(range.start);
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            src.read_exact(&mut buf[..n])?;
            dst.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    let file = dst.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(size)
}

/// `YYYY-MM-DD` of `time` in UTC: the day folder a recording started then goes to.
pub fn utc_date(time: SystemTime) -> String {
    utc_date_time(time).0
}

/// `(YYYY-MM-DD, HH-MM-SS)` of `time` in UTC (days-to-civil, H. Hinnant's algorithm).
fn utc_date_time(time: SystemTime) -> (String, String) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}-{:02}-{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(
            utc_date_time(at(0)),
            ("1970-01-01".into(), "00-00-00".into())
        );
        assert_eq!(
            utc_date_time(at(1_795_604_390)),
            ("2026-11-25".into(), "10-59-50".into())
        );
        assert_eq!(
            utc_date_time(at(951_782_400 + 3661)),
            ("2000-02-29".into(), "01-01-01".into())
        );
    }
}
