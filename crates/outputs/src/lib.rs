//! The outputs of a live stream, each muxed once for all its viewers.
//!
//! An output reads a stream's codec-neutral frames from the registry
//! ([`registry::Registry::subscribe_output`]), muxes them with a sans-IO protocol crate, and
//! fans the result out on a [`registry::Fanout`]: every viewer reads the same `Bytes`, however
//! many there are. Outputs start with their first viewer and stop after their last (HLS: a
//! while after its last request), or when the stream ends.
//!
//! ```text
//!  registry StreamReader ─▶ flv  (rtmp::flv::Muxer)    ─▶ Fanout<FlvTag>    ─▶ RTMP play, HTTP/WS-FLV
//!                       ├─▶ rtp  (rtsp::mux::Muxer)    ─▶ Fanout<MuxPacket> ─▶ RTSP play
//!                       ├─▶ live (hls::TsMuxer, mp4)   ─▶ Fanout<Bytes>     ─▶ .live.ts / .live.mp4
//!                       ├─▶ hls  (segmenter, playlist) ─▶ segments and parts ─▶ HLS, LL-HLS (+ disk)
//!                       ├─▶ record (mp4)               ─▶ MP4 files, RecordedFile events
//!                       └─▶ webrtc (Annex B, Opus)     ─▶ Fanout<RtcFrame>  ─▶ WHEP players
//! ```
//!
//! This crate owns the muxing tasks and their state; it opens no socket. The server's drivers
//! and the HTTP routes (`api`) turn readers into bytes on the wire.
//!
//! Layout:
//! - `lib.rs`: [`Outputs`], the handle every driver and route shares; [`OutputsConfig`].
//! - `ondemand.rs`: the started-by-the-first-reader lifecycle every output shares.
//! - `flv.rs`: [`FlvOutput`], FLV tags for RTMP and HTTP/WS-FLV.
//! - `rtp.rs`: [`RtpOutput`], RTP packets and the SDP for RTSP.
//! - `live.rs`: [`LiveOutput`], continuous MPEG-TS and fMP4.
//! - `hls.rs`, `hls/`: HLS and LL-HLS: segmenter, playlist store, disk writer.
//! - `record.rs`: MP4 recording.
//! - `webrtc.rs`: [`WebRtcOutput`], frames ready for WebRTC packetizers (WHEP).
//! - `opus.rs`: [`AacToOpus`], AAC decoded and encoded to Opus once per stream (WebRTC).
//! - `paths.rs`: [`confined_dir`], directories made from stream names under their root.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod flv;
#[doc(hidden)]
pub mod fuzzing;
mod hls;
mod live;
mod ondemand;
pub mod opus;
mod paths;
mod record;
mod rtp;
mod webrtc;

pub use flv::{is_keyframe_tag, FlvOutput, FlvReader, FlvTag};
pub use hls::{
    HlsKind, HlsOptions, HlsStream, PartAnswer, PartCut, PartStream, PlaylistError, MAX_WAITERS,
};
pub use live::{Container, LiveOutput, LiveReader};
pub use opus::{AacToOpus, TranscodeError};
pub use paths::confined_dir;
pub use record::{utc_date, RecordConfig, RecordControl, RecordError, RecordedFile, Recorder};
pub use rtp::{RtpOutput, RtpReader};
pub use webrtc::{RtcFrame, RtcReader, WebRtcOutput};

use media::StreamKey;
use ondemand::OnDemand;
use registry::Registry;
use std::sync::Arc;

/// Settings of the outputs.
#[derive(Debug, Clone)]
pub struct OutputsConfig {
    /// H.265 over RTMP and HTTP-FLV as the legacy CodecID 12 instead of Enhanced RTMP `hvc1`
    /// (`rtmp.enhanced=0`). Default: false.
    pub flv_legacy_hevc: bool,
    /// Opus over RTMP and HTTP-FLV as Enhanced RTMP `Opus` (`rtmp.enhancedOpus=1`); when
    /// false, those players get the video alone when the audio is Opus. Default: false.
    pub flv_opus: bool,
    /// `general.mergeWriteMS`: RTMP and HTTP/WS-FLV viewers are woken once per this many ms
    /// of media (and at each keyframe) instead of once per tag, so each writes a window's
    /// tags in one go: fewer wake-ups and writes per viewer, that much more latency.
    /// 0 = every tag at once. Default: 0.
    pub flv_merge_write_ms: u32,
    /// RTP packet sizes for RTSP.
    pub rtsp: rtsp::RtspConfig,
    /// `[hls]`.
    pub hls: HlsOptions,
    /// `general.enableVhost`: files written for a stream go under its vhost too.
    /// Default: false.
    pub enable_vhost: bool,
    /// `rtc.maxQueueBytes`: bytes of frames a WebRTC player may fall behind before it skips to
    /// the next keyframe. Default: 4 MiB.
    pub rtc_queue_bytes: usize,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        OutputsConfig {
            flv_legacy_hevc: false,
            flv_opus: false,
            flv_merge_write_ms: 0,
            rtsp: rtsp::RtspConfig::default(),
            hls: HlsOptions::default(),
            enable_vhost: false,
            rtc_queue_bytes: 4 << 20,
        }
    }
}

/// Every output of every stream: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Outputs {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    config: OutputsConfig,
    /// `[hls]` now: starts as `config.hls`, replaced by [`Outputs::set_hls`]; streams whose
    /// HLS starts later use it. A std lock held only to clone it.
    hls_options: std::sync::RwLock<HlsOptions>,
    flv: OnDemand<StreamKey, FlvOutput>,
    rtp: OnDemand<StreamKey, RtpOutput>,
    live: OnDemand<(StreamKey, Container), LiveOutput>,
    webrtc: OnDemand<StreamKey, WebRtcOutput>,
    hls: Arc<hls::HlsOutputs>,
}

impl Outputs {
    /// The outputs of `registry`'s streams.
    pub fn new(registry: Registry, config: OutputsConfig) -> Self {
        Outputs {
            inner: Arc::new(Inner {
                registry,
                hls_options: std::sync::RwLock::new(config.hls.clone()),
                config,
                flv: OnDemand::default(),
                rtp: OnDemand::default(),
                live: OnDemand::default(),
                webrtc: OnDemand::default(),
                hls: Arc::default(),
            }),
        }
    }

    /// The registry whose streams these are.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The FLV output of `key`, started by its first viewer; `None` when the stream is not
    /// live.
    pub async fn flv(&self, key: &StreamKey) -> Option<Arc<FlvOutput>> {
        let inner = &self.inner;
        inner
            .flv
            .get_or_start(key, || async {
                let reader = inner.registry.subscribe_output(key)?;
                Some(FlvOutput::start(
                    reader,
                    inner.registry.fanout_limits(),
                    inner.config.flv_legacy_hevc,
                    inner.config.flv_opus,
                    inner.config.flv_merge_write_ms,
                ))
            })
            .await
    }

    /// The RTP output of `key`, started by its first RTSP viewer once the stream's tracks are
    /// known; `None` when the stream is not live or has no track RTSP can carry.
    pub async fn rtp(&self, key: &StreamKey) -> Option<Arc<RtpOutput>> {
        let inner = &self.inner;
        inner
            .rtp
            .get_or_start(key, || {
                RtpOutput::start(&inner.registry, key, &inner.config.rtsp)
            })
            .await
    }

    /// The `.live.ts` or `.live.mp4` output of `key`, started by its first viewer once the
    /// stream's tracks are known; `None` when the stream is not live or has no track the
    /// container carries.
    pub async fn live(&self, key: &StreamKey, container: Container) -> Option<Arc<LiveOutput>> {
        let inner = &self.inner;
        inner
            .live
            .get_or_start(&(key.clone(), container), || {
                LiveOutput::start(&inner.registry, key, container)
            })
            .await
    }

    /// The WebRTC output of `key`, started by its first WHEP player once the stream's tracks
    /// are known; `None` when the stream is not live or has no track yet.
    pub async fn webrtc(&self, key: &StreamKey) -> Option<Arc<WebRtcOutput>> {
        let inner = &self.inner;
        inner
            .webrtc
            .get_or_start(key, || {
                WebRtcOutput::start(&inner.registry, key, inner.config.rtc_queue_bytes)
            })
            .await
    }

    /// The HLS of `key`, started by its first request once the stream's tracks are known;
    /// `None` when the stream is not live (or its keep-all directory cannot be made).
    pub async fn hls(&self, key: &StreamKey, kind: HlsKind) -> Option<Arc<HlsStream>> {
        let inner = &self.inner;
        let options = self.hls_options();
        inner
            .hls
            .stream(
                &inner.registry,
                key,
                kind,
                &options,
                inner.config.enable_vhost,
            )
            .await
    }

    /// Starts recording `key`'s HLS of `kind` to disk (startRecord `type` 0 / 2): a keep-all
    /// playlist and its segments under `{hls_save_path}/[{vhost}/]{app}/{stream}/`, whoever
    /// watches, until [`Outputs::stop_hls_recording`] or the stream's end. False when the
    /// stream is not live or its directory cannot be made.
    pub async fn record_hls(&self, key: &StreamKey, kind: HlsKind) -> bool {
        let inner = &self.inner;
        let options = self.hls_options();
        inner
            .hls
            .record(
                &inner.registry,
                key,
                kind,
                &options,
                inner.config.enable_vhost,
            )
            .await
    }

    /// Stops recording `key`'s HLS of `kind`; what is on disk stays. False when it was not
    /// recording.
    pub fn stop_hls_recording(&self, key: &StreamKey, kind: HlsKind) -> bool {
        self.inner.hls.stop_recording(key, kind)
    }

    /// Whether `key`'s HLS of `kind` is being recorded to disk.
    pub fn is_recording_hls(&self, key: &StreamKey, kind: HlsKind) -> bool {
        self.inner.hls.is_recording(key, kind)
    }

    /// The `[hls]` settings a stream's HLS starts with now.
    pub fn hls_options(&self) -> HlsOptions {
        self.inner
            .hls_options
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the `[hls]` settings (setServerConfig, SIGHUP): HLS started from now on uses
    /// them; a running one keeps its own until it ends.
    pub fn set_hls(&self, options: HlsOptions) {
        *self
            .inner
            .hls_options
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = options;
    }

    /// The settings these outputs started with (`[hls]` now: [`Outputs::hls_options`]).
    pub fn config(&self) -> &OutputsConfig {
        &self.inner.config
    }
}
