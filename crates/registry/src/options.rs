//! Per-stream settings: ZLMediaKit's `ProtocolOption`, from `[protocol]` and the on_publish reply.

use crate::Protocol;
use std::path::PathBuf;
use std::time::Duration;

/// What one published stream is served as and how it lives: `[protocol]` for every stream,
/// overridden key by key by the on_publish reply (ZLMediaKit's `ProtocolOption`). Stored with
/// the stream, so each output reads it when it starts serving the stream. Built from a
/// [`config::Config`]; `Default` is the config table's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// `protocol.enable_rtmp`: serve over RTMP and HTTP/WS-FLV.
    pub enable_rtmp: bool,
    /// `protocol.enable_rtsp`: serve over RTSP.
    pub enable_rtsp: bool,
    /// `protocol.enable_hls`: serve as MPEG-TS HLS.
    pub enable_hls: bool,
    /// Serve as fMP4 HLS. Not a `[protocol]` key here: LL-HLS is muxed only while someone
    /// watches it, so it is on unless an on_publish reply turns it off. Default: true.
    pub enable_hls_fmp4: bool,
    /// `protocol.enable_ts`: serve as HTTP/WS MPEG-TS.
    pub enable_ts: bool,
    /// `protocol.enable_fmp4`: serve as HTTP/WS fMP4.
    pub enable_fmp4: bool,
    /// `protocol.enable_mp4`: record to MP4.
    pub enable_mp4: bool,
    /// `protocol.enable_audio`: keep the audio track; false drops it at ingest.
    pub enable_audio: bool,
    /// `protocol.mp4_save_path`: root directory of MP4 recordings.
    pub mp4_save_path: PathBuf,
    /// `protocol.mp4_max_second`: MP4 segment length.
    pub mp4_max_second: Duration,
    /// `protocol.hls_save_path`: root directory of HLS files.
    pub hls_save_path: PathBuf,
    /// `protocol.auto_close`: close the stream once it has had no reader for
    /// `streamNoneReaderDelayMS`, without asking on_stream_none_reader.
    pub auto_close: bool,
    /// `protocol.continue_push_ms`: how long a publisher that dropped (without unpublishing)
    /// may come back and take its stream over, viewers still attached.
    pub continue_push: Duration,
    /// `protocol.modify_stamp`: 0 as published, 1 system clock, 2 relative.
    pub modify_stamp: u8,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions::from(&config::Config::default())
    }
}

impl From<&config::Config> for StreamOptions {
    fn from(config: &config::Config) -> Self {
        let p = &config.protocol;
        StreamOptions {
            enable_rtmp: p.enable_rtmp,
            enable_rtsp: p.enable_rtsp,
            enable_hls: p.enable_hls,
            enable_hls_fmp4: true,
            enable_ts: p.enable_ts,
            enable_fmp4: p.enable_fmp4,
            enable_mp4: p.enable_mp4,
            enable_audio: p.enable_audio,
            mp4_save_path: p.mp4_save_path.clone(),
            mp4_max_second: p.mp4_max_second,
            hls_save_path: p.hls_save_path.clone(),
            auto_close: p.auto_close,
            continue_push: p.continue_push,
            modify_stamp: p.modify_stamp.number(),
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
            // ZLMediaKit's WebRTC players read the stream's RTSP source.
            Protocol::Rtc => self.enable_rtsp,
            // Not a way to play: these only publish.
            Protocol::Pull | Protocol::Rtp => false,
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
