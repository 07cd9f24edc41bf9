//! Per-stream settings: ZLMediaKit's `ProtocolOption`, from `[protocol]` and the on_publish reply.

use crate::Protocol;
use std::path::PathBuf;
use std::time::Duration;

/// What one published stream is served as and how it lives: `[protocol]` for every stream,
/// overridden key by key by the on_publish reply (ZLMediaKit's `ProtocolOption`). Stored with
/// the stream, so each output reads it when it starts serving the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Serve over RTMP and HTTP/WS-FLV. Default: true.
    pub enable_rtmp: bool,
    /// Serve over RTSP. Default: true.
    pub enable_rtsp: bool,
    /// Serve as MPEG-TS HLS. Default: true.
    pub enable_hls: bool,
    /// Serve as fMP4 HLS. Default: false.
    pub enable_hls_fmp4: bool,
    /// Serve as HTTP/WS MPEG-TS. Default: true.
    pub enable_ts: bool,
    /// Serve as HTTP/WS fMP4. Default: true.
    pub enable_fmp4: bool,
    /// Record to MP4. Default: false.
    pub enable_mp4: bool,
    /// Keep the audio track; false drops it at ingest. Default: true.
    pub enable_audio: bool,
    /// Root directory of MP4 recordings. Default: `./www`.
    pub mp4_save_path: PathBuf,
    /// MP4 segment length. Default: 3600 s.
    pub mp4_max_second: Duration,
    /// Root directory of HLS files. Default: `./www`.
    pub hls_save_path: PathBuf,
    /// Close the stream once it has had no reader for `streamNoneReaderDelayMS`, without asking
    /// on_stream_none_reader. Default: false.
    pub auto_close: bool,
    /// How long a publisher that dropped (without unpublishing) may come back and take its
    /// stream over, viewers still attached. Default: 0 here; the server passes
    /// `protocol.continue_push_ms` (15 s).
    pub continue_push: Duration,
    /// `modify_stamp`: 0 as published, 1 system clock, 2 relative. Default: 2.
    pub modify_stamp: u8,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            enable_rtmp: true,
            enable_rtsp: true,
            enable_hls: true,
            enable_hls_fmp4: false,
            enable_ts: true,
            enable_fmp4: true,
            enable_mp4: false,
            enable_audio: true,
            mp4_save_path: PathBuf::from("./www"),
            mp4_max_second: Duration::from_secs(3600),
            hls_save_path: PathBuf::from("./www"),
            auto_close: false,
            continue_push: Duration::ZERO,
            modify_stamp: 2,
        }
    }
}

impl StreamOptions {
    /// Whether a viewer speaking `protocol` may read the stream.
    pub fn serves(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Rtmp | Protocol::HttpFlv | Protocol::WsFlv => self.enable_rtmp,
            Protocol::Rtsp => self.enable_rtsp,
            Protocol::Hls => self.enable_hls,
            Protocol::HlsFmp4 => self.enable_hls_fmp4,
            Protocol::HttpTs | Protocol::WsTs => self.enable_ts,
            Protocol::HttpFmp4 | Protocol::WsFmp4 => self.enable_fmp4,
        }
    }

    /// The output schemas (ZLMediaKit's names) this stream has among `available`, the ones the
    /// server implements: what on_stream_changed reports.
    pub fn schemas<'a>(&self, available: &[&'a str]) -> Vec<&'a str> {
        available
            .iter()
            .copied()
            .filter(|schema| match *schema {
                "rtmp" => self.enable_rtmp,
                "rtsp" => self.enable_rtsp,
                "hls" => self.enable_hls,
                "hls.fmp4" => self.enable_hls_fmp4,
                "ts" => self.enable_ts,
                "fmp4" => self.enable_fmp4,
                _ => false,
            })
            .collect()
    }
}
