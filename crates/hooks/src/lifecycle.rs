//! Registry lifecycle events turned into hooks: on_stream_changed, on_flow_report and
//! on_stream_none_reader; on_server_keepalive on its own timer.
//!
//! A stream is registered (on_stream_changed `regist: true`, one call per output schema) once
//! its tracks are known: at once when it has both audio and video, otherwise one second after
//! its first track (ZLMediaKit waits for late tracks the same way). It is unregistered
//! (`regist: false`) when it ends. All of one stream's hooks go through the same ordered queue.

use crate::body::{media_json, stream_json, Request};
use crate::client::{reply_close, Hooks};
use crate::Hook;
use media::{StreamKey, TrackInfo, TrackKind};
use registry::{Event, Registry, SessionInfo};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// How long a stream with one kind of track waits for the other before it is registered.
const LATE_TRACK_WAIT: Duration = Duration::from_secs(1);
/// Resolution of the registration and no-reader timers.
const TICK: Duration = Duration::from_millis(100);

/// What the lifecycle task needs besides the hook config.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// Output schemas the server implements (ZLMediaKit names: `rtmp`, `rtsp`, `hls`, …);
    /// on_stream_changed reports those a stream has, filtered by `stream_changed_schemas`.
    pub outputs: Vec<&'static str>,
    /// `general.flowThreshold` in bytes: smaller sessions get no on_flow_report.
    pub flow_threshold: u64,
    /// `general.streamNoneReaderDelayMS`.
    pub none_reader_delay: Duration,
    /// `hook.alive_interval`; zero = no keepalive.
    pub alive_interval: Duration,
}

impl LifecycleConfig {
    /// The settings `config` gives, for a server implementing the `outputs` schemas.
    pub fn new(config: &config::Config, outputs: Vec<&'static str>) -> Self {
        LifecycleConfig {
            outputs,
            flow_threshold: config.general.flow_threshold.saturating_mul(1024),
            none_reader_delay: config.general.stream_none_reader_delay,
            alive_interval: config.hook.alive_interval,
        }
    }
}

struct Live {
    /// Schemas reported with `regist: true`; empty until registered.
    registered: Vec<&'static str>,
    /// When to register a stream still waiting for a late track.
    register_at: Option<Instant>,
    readers: usize,
    /// Since when the stream has had no reader (None while it has some, or after asking).
    idle_since: Option<Instant>,
}

/// The running lifecycle task; [`LifecycleTask::stop`] ends it.
pub struct LifecycleTask {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl LifecycleTask {
    /// Turns the events already emitted into hooks (queued), then ends the task.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Runs the lifecycle hooks for `registry` until [`LifecycleTask::stop`].
pub fn spawn_lifecycle(hooks: Hooks, registry: Registry, config: LifecycleConfig) -> LifecycleTask {
    let mut events = registry.events();
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut task = Lifecycle {
            hooks,
            registry,
            config,
            live: HashMap::new(),
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let alive = task.config.alive_interval;
        let mut keepalive = tokio::time::interval_at(
            Instant::now() + alive,
            alive.max(Duration::from_millis(100)),
        );
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => task.on_event(event),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!("hooks missed {n} lifecycle events (event channel full)");
                        task.resync();
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => task.on_tick(),
                _ = keepalive.tick(), if !alive.is_zero() => task.keepalive(),
                _ = &mut stopped => {
                    while let Ok(event) = events.try_recv() {
                        task.on_event(event);
                    }
                    return;
                }
            }
        }
    });
    LifecycleTask { stop, task }
}

struct Lifecycle {
    hooks: Hooks,
    registry: Registry,
    config: LifecycleConfig,
    live: HashMap<StreamKey, Live>,
}

impl Lifecycle {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Published { key, .. } => {
                self.live.insert(
                    key,
                    Live {
                        registered: Vec::new(),
                        register_at: None,
                        readers: 0,
                        idle_since: Some(Instant::now()),
                    },
                );
            }
            Event::TracksChanged { key, tracks } => {
                let Some(live) = self.live.get_mut(&key) else {
                    return;
                };
                if !live.registered.is_empty() {
                    return;
                }
                if has_both(&tracks) {
                    self.register(&key);
                } else if live.register_at.is_none() {
                    live.register_at = Some(Instant::now() + LATE_TRACK_WAIT);
                }
            }
            Event::ViewerJoined { key, .. } => {
                if let Some(live) = self.live.get_mut(&key) {
                    live.readers += 1;
                    live.idle_since = None;
                }
            }
            Event::ViewerLeft {
                key,
                viewer,
                bytes,
                duration,
            } => {
                if let Some(live) = self.live.get_mut(&key) {
                    live.readers = live.readers.saturating_sub(1);
                    if live.readers == 0 {
                        live.idle_since = Some(Instant::now());
                    }
                }
                self.flow_report(&key, &viewer, bytes, duration, true);
            }
            Event::Unpublished {
                key,
                publisher,
                bytes,
                duration,
            } => {
                self.unregister(&key, &publisher.params);
                self.flow_report(&key, &publisher, bytes, duration, false);
            }
            _ => {}
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let due: Vec<StreamKey> = self
            .live
            .iter()
            .filter(|(_, l)| l.registered.is_empty() && l.register_at.is_some_and(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.register(&key);
        }
        let delay = self.config.none_reader_delay;
        let idle: Vec<StreamKey> = self
            .live
            .iter()
            .filter(|(_, l)| {
                !l.registered.is_empty()
                    && l.readers == 0
                    && l.idle_since
                        .is_some_and(|since| now.duration_since(since) >= delay)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            self.none_reader(&key, now);
        }
    }

    /// Reports the stream's outputs with `regist: true`.
    fn register(&mut self, key: &StreamKey) {
        let Some(info) = self.registry.stream(key) else {
            return;
        };
        let Some(live) = self.live.get_mut(key) else {
            return;
        };
        live.register_at = None;
        live.registered = info.options.schemas(&self.config.outputs);
        if info.publisher.protocol == registry::Protocol::Rtc {
            // A WHIP stream is also a source of schema `rtc`, as ZLMediaKit registers it.
            live.registered.push("rtc");
        }
        let schemas = live.registered.clone();
        tracing::debug!(stream = %key, ?schemas, "stream registered");
        for schema in schemas {
            if !self.reports(schema) {
                continue;
            }
            let mut body = stream_json(&info, schema);
            body.insert("regist".into(), true.into());
            self.hooks
                .notify(Hook::OnStreamChanged, &key.to_string(), body);
        }
    }

    fn unregister(&mut self, key: &StreamKey, params: &str) {
        let Some(live) = self.live.remove(key) else {
            return;
        };
        for schema in live.registered {
            if !self.reports(schema) {
                continue;
            }
            let mut body = media_json(schema, key, params);
            body.insert("regist".into(), false.into());
            self.hooks
                .notify(Hook::OnStreamChanged, &key.to_string(), body);
        }
    }

    fn reports(&self, schema: &str) -> bool {
        self.hooks
            .config()
            .stream_changed_schemas
            .iter()
            .any(|s| s == schema)
    }

    fn flow_report(
        &self,
        key: &StreamKey,
        session: &SessionInfo,
        bytes: u64,
        duration: Duration,
        player: bool,
    ) {
        if bytes < self.config.flow_threshold {
            return;
        }
        let mut body = Request::new(key.clone(), session).json();
        body.insert("totalBytes".into(), bytes.into());
        body.insert("duration".into(), duration.as_secs().into());
        body.insert("player".into(), player.into());
        self.hooks
            .notify(Hook::OnFlowReport, &key.to_string(), body);
    }

    /// The stream has had no reader for `streamNoneReaderDelayMS`: close it (`auto_close`) or
    /// ask the backend, which may answer `close: true`. Asked again after another delay.
    fn none_reader(&mut self, key: &StreamKey, now: Instant) {
        let Some(info) = self.registry.stream(key) else {
            return;
        };
        let Some(live) = self.live.get_mut(key) else {
            return;
        };
        if info.orphaned {
            return; // waiting for its publisher; continue_push decides
        }
        if info.options.auto_close {
            tracing::info!(stream = %key, "no reader: closed (auto_close)");
            live.idle_since = None;
            self.registry.close(key);
            return;
        }
        if !self.hooks.enabled(Hook::OnStreamNoneReader) {
            live.idle_since = None;
            return;
        }
        live.idle_since = Some(now);
        let schema = live.registered.first().copied().unwrap_or("rtmp");
        let body = media_json(schema, key, &info.publisher.params);
        let (registry, key_owned) = (self.registry.clone(), key.clone());
        self.hooks.notify_then(
            Hook::OnStreamNoneReader,
            &key.to_string(),
            body,
            Box::new(move |reply| {
                if let Ok(Some(reply)) = reply {
                    if reply_close(&reply) {
                        tracing::info!(stream = %key_owned, "no reader: closed by on_stream_none_reader");
                        registry.close(&key_owned);
                    }
                }
            }),
        );
    }

    fn keepalive(&self) {
        let streams = self.registry.streams();
        self.hooks.on_server_keepalive(crate::body::statistic_json(
            &streams,
            &self.config.outputs,
            self.hooks.dropped(),
        ));
    }

    /// After missed events: streams that ended meanwhile are unregistered.
    fn resync(&mut self) {
        let gone: Vec<StreamKey> = self
            .live
            .keys()
            .filter(|k| !self.registry.is_live(k))
            .cloned()
            .collect();
        for key in gone {
            self.unregister(&key, "");
        }
    }
}

fn has_both(tracks: &[TrackInfo]) -> bool {
    let has = |kind| tracks.iter().any(|t| t.kind() == kind);
    has(TrackKind::Audio) && has(TrackKind::Video)
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
