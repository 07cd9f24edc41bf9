//! Live media playlists (RFC 8216 §4.3, with draft-pantos-hls-rfc8216bis for LL-HLS).
//!
//! A [`Playlist`] keeps names, durations and numbering of the segments (and their parts) a
//! server holds for one stream, and renders the m3u8 on demand. It holds no media: the caller
//! stores each segment's bytes under the uri it passed in and drops them when
//! [`Playlist::end_segment`] says they left the window.
//!
//! ```text
//!   keyframe ──▶ start_segment(uri) ─▶ msn
//!                   │
//!                   ├─▶ add_part(uri, ms, independent)   (LL-HLS, every ~part_target_ms)
//!                   ├─▶ set_preload_hint(Some(next part uri))
//!                   ▼
//!   next keyframe after target ─▶ end_segment(ms) ─▶ msns to drop ─▶ start_segment(..)
//!
//!   GET playlist ─▶ has(_HLS_msn, _HLS_part)? render() : wait for the next change
//! ```

use std::collections::VecDeque;
use std::fmt::Write;

/// What a [`Playlist`] lists and how.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistConfig {
    /// The segment duration the segmenter aims at (`hls.segDur`), in ms. The playlist's
    /// EXT-X-TARGETDURATION is never below it. Default: 2000.
    pub target_duration_ms: u64,
    /// How many finished segments are listed (`hls.segNum`); 0 keeps all. Default: 3.
    pub window: usize,
    /// `Some(ms)` makes the playlist LL-HLS: EXT-X-PART-INF with this part target,
    /// EXT-X-SERVER-CONTROL with CAN-BLOCK-RELOAD=YES and PART-HOLD-BACK of three part targets,
    /// EXT-X-PART and EXT-X-PRELOAD-HINT. Default: `None`.
    pub part_target_ms: Option<u64>,
    /// The fMP4 initialization section (EXT-X-MAP); `None` for MPEG-TS segments. Default: `None`.
    pub map_uri: Option<String>,
}

impl Default for PlaylistConfig {
    fn default() -> Self {
        PlaylistConfig {
            target_duration_ms: 2000,
            window: 3,
            part_target_ms: None,
            map_uri: None,
        }
    }
}

/// One partial segment (LL-HLS).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    uri: String,
    duration_ms: u64,
    independent: bool,
}

/// One media segment, finished or in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    msn: u64,
    uri: String,
    /// `None` while in progress.
    duration_ms: Option<u64>,
    parts: Vec<Part>,
}

impl Segment {
    fn parts_ms(&self) -> u64 {
        self.parts.iter().map(|p| p.duration_ms).sum()
    }
}

/// A live playlist of segments, each optionally made of parts (LL-HLS). The caller (server) owns
/// the media bytes; this keeps names, durations and numbering and renders the m3u8.
#[derive(Debug, Clone)]
pub struct Playlist {
    config: PlaylistConfig,
    /// Finished segments still listed, oldest first.
    segments: VecDeque<Segment>,
    /// The segment being written.
    current: Option<Segment>,
    /// The msn the next started segment gets.
    next_new: u64,
    /// The longest finished segment so far, so EXT-X-TARGETDURATION never shrinks (RFC 8216
    /// §6.2.1: it MUST NOT change).
    max_segment_ms: u64,
    preload_hint: Option<String>,
    ended: bool,
}

impl Playlist {
    /// An empty playlist.
    pub fn new(config: PlaylistConfig) -> Playlist {
        Playlist {
            config,
            segments: VecDeque::new(),
            current: None,
            next_new: 0,
            max_segment_ms: 0,
            preload_hint: None,
            ended: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PlaylistConfig {
        &self.config
    }

    /// A new segment starts (at a keyframe): returns its media sequence number.
    ///
    /// A segment still in progress is ended first, with the sum of its parts' durations; the
    /// msns that leaves out of the window are lost, so callers end segments themselves.
    pub fn start_segment(&mut self, uri: String) -> u64 {
        if let Some(current) = &self.current {
            let ms = current.parts_ms();
            tracing::debug!(
                msn = current.msn,
                "segment started before the last one ended"
            );
            let _ = self.end_segment(ms);
        }
        let msn = self.next_new;
        self.next_new += 1;
        self.current = Some(Segment {
            msn,
            uri,
            duration_ms: None,
            parts: Vec::new(),
        });
        msn
    }

    /// A part of the current segment is complete (LL-HLS): its uri, duration, and whether it
    /// begins with a keyframe (INDEPENDENT=YES). Returns the part index within the segment.
    ///
    /// Without a segment in progress one is started with the part's uri as its own.
    pub fn add_part(&mut self, uri: String, duration_ms: u64, independent: bool) -> u64 {
        if self.current.is_none() {
            tracing::debug!("part added with no segment in progress");
            self.start_segment(uri.clone());
        }
        let Some(current) = self.current.as_mut() else {
            return 0;
        };
        current.parts.push(Part {
            uri,
            duration_ms,
            independent,
        });
        current.parts.len() as u64 - 1
    }

    /// The current segment is complete with this duration. Returns the msns of the segments
    /// that left the window (the caller drops their bytes, keeping `hls.segRetain` extra if it
    /// wants). Without a segment in progress it does nothing.
    pub fn end_segment(&mut self, duration_ms: u64) -> Vec<u64> {
        let Some(mut segment) = self.current.take() else {
            tracing::debug!("end_segment with no segment in progress");
            return Vec::new();
        };
        segment.duration_ms = Some(duration_ms);
        self.max_segment_ms = self.max_segment_ms.max(duration_ms);
        self.segments.push_back(segment);
        let mut dropped = Vec::new();
        while self.config.window > 0 && self.segments.len() > self.config.window {
            if let Some(old) = self.segments.pop_front() {
                dropped.push(old.msn);
            }
        }
        dropped
    }

    /// The uri a client should preload next (LL-HLS EXT-X-PRELOAD-HINT): caller tells it.
    pub fn set_preload_hint(&mut self, uri: Option<String>) {
        self.preload_hint = uri;
    }

    /// Marks the stream as ended: the playlist gets EXT-X-ENDLIST (RFC 8216 §4.3.3.4). A
    /// segment still in progress is ended with its parts' duration, or dropped when it has no
    /// parts (end it first with its real duration to keep it). Returns the msns the caller no
    /// longer needs, as [`Playlist::end_segment`] does.
    pub fn finish(&mut self) -> Vec<u64> {
        let dropped = match &self.current {
            Some(current) if !current.parts.is_empty() => {
                let ms = current.parts_ms();
                self.end_segment(ms)
            }
            Some(current) => {
                let msn = current.msn;
                self.current = None;
                vec![msn]
            }
            None => Vec::new(),
        };
        self.preload_hint = None;
        self.ended = true;
        dropped
    }

    /// EXT-X-TARGETDURATION in seconds: the longest finished segment rounded up, and never
    /// below the configured target.
    pub fn target_duration(&self) -> u64 {
        self.max_segment_ms
            .max(self.config.target_duration_ms)
            .div_ceil(1000)
            .max(1)
    }

    /// The m3u8 text now.
    ///
    /// EXT-X-TARGETDURATION is [`Playlist::target_duration`]; EXTINF has three decimals. With
    /// LL-HLS the parts that start within three target durations of the playlist's end are
    /// listed as EXT-X-PART (draft-pantos-hls-rfc8216bis §4.4.4.9), the in-progress segment's
    /// parts too, followed by the preload hint.
    pub fn render(&self) -> String {
        let ll = self.config.part_target_ms;
        let version = match (ll, &self.config.map_uri) {
            (Some(_), _) => 9,
            (None, Some(_)) => 7,
            (None, None) => 6,
        };
        let target = self.target_duration();
        let mut m = String::with_capacity(512);
        m.push_str("#EXTM3U\n");
        let _ = writeln!(m, "#EXT-X-VERSION:{version}");
        let _ = writeln!(m, "#EXT-X-TARGETDURATION:{target}");
        if let Some(part) = ll {
            let _ = writeln!(
                m,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
                seconds(part.saturating_mul(3))
            );
            let _ = writeln!(m, "#EXT-X-PART-INF:PART-TARGET={}", seconds(part));
        }
        let _ = writeln!(m, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence());
        if let Some(map) = &self.config.map_uri {
            let _ = writeln!(m, "#EXT-X-MAP:URI=\"{map}\"");
        }

        // Where the playlist ends (finished segments plus the parts of the one in progress), so
        // parts older than three target durations can be left out.
        let total_ms: u64 = self
            .segments
            .iter()
            .map(|s| s.duration_ms.unwrap_or(0))
            .sum::<u64>()
            + self.current.as_ref().map_or(0, Segment::parts_ms);
        let parts_from = total_ms.saturating_sub(target.saturating_mul(3000));
        let mut start_ms = 0u64;
        for segment in &self.segments {
            if ll.is_some() {
                write_parts(&mut m, segment, start_ms, parts_from);
            }
            let duration = segment.duration_ms.unwrap_or(0);
            let _ = writeln!(m, "#EXTINF:{},", seconds(duration));
            let _ = writeln!(m, "{}", segment.uri);
            start_ms += duration;
        }
        if ll.is_some() {
            if let Some(current) = &self.current {
                write_parts(&mut m, current, start_ms, parts_from);
            }
            if let Some(hint) = &self.preload_hint {
                let _ = writeln!(m, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
            }
        }
        if self.ended {
            m.push_str("#EXT-X-ENDLIST\n");
        }
        m
    }

    /// Blocking playlist reload (`_HLS_msn`, `_HLS_part`): true when the playlist already
    /// contains that segment (part `None`) or that part of that segment, so the server can
    /// answer now; false = wait and retry after the next change.
    ///
    /// A segment is contained once it is finished (a finished segment contains all its parts,
    /// whatever part index was asked for); segments that already left the window count as
    /// contained, so a late client is answered at once rather than made to wait forever.
    pub fn has(&self, msn: u64, part: Option<u64>) -> bool {
        if msn < self.next_msn() || self.ended {
            return true;
        }
        match (&self.current, part) {
            (Some(current), Some(part)) if current.msn == msn => part < current.parts.len() as u64,
            _ => false,
        }
    }

    /// Whether a blocking reload for `msn` (and `part`) asks too far ahead to be held, so the
    /// server answers 400 at once (draft-pantos-hls-rfc8216bis §6.2.5.2): `msn` more than two
    /// past the last segment of the playlist (the one in progress), or `part` past its last
    /// part by more than the Advance Part Limit: three seconds of parts (3 / PART-TARGET in
    /// seconds when PART-TARGET is under a second), else three parts.
    pub fn too_far_ahead(&self, msn: u64, part: Option<u64>) -> bool {
        let next = self.next_msn();
        if msn > next.saturating_add(2) {
            return true;
        }
        let (Some(part), Some(target)) = (part, self.config.part_target_ms) else {
            return false;
        };
        let limit = if target < 1000 {
            3000 / target.max(1)
        } else {
            3
        };
        // Parts listed in the segment asked for: the in-progress one's, none for one to come.
        let listed = match &self.current {
            Some(current) if current.msn == msn => current.parts.len() as u64,
            _ if msn < next => return false,
            _ => 0,
        };
        // The last listed part is `listed - 1`; a request may run `limit` parts past it.
        part.saturating_add(1) > listed.saturating_add(limit)
    }

    /// Whether a part of segment `msn` with index `part` may still come: the segment is in
    /// progress (or still to start) and has fewer parts, and the playlist has not ended.
    pub fn part_may_come(&self, msn: u64, part: u64) -> bool {
        if self.ended || msn < self.next_msn() {
            return false;
        }
        match &self.current {
            Some(current) if current.msn == msn => part >= current.parts.len() as u64,
            _ => true,
        }
    }

    /// The msn of the first listed segment (EXT-X-MEDIA-SEQUENCE).
    pub fn media_sequence(&self) -> u64 {
        self.segments.front().map_or(self.next_msn(), |s| s.msn)
    }

    /// The msn of the in-progress (or next) segment.
    pub fn next_msn(&self) -> u64 {
        self.current.as_ref().map_or(self.next_new, |s| s.msn)
    }

    /// The uri of segment `msn` while it is listed or in progress.
    pub fn segment_uri(&self, msn: u64) -> Option<&str> {
        self.segments
            .iter()
            .chain(&self.current)
            .find(|s| s.msn == msn)
            .map(|s| s.uri.as_str())
    }
}

/// The EXT-X-PART lines of `segment` (which starts at `start_ms`) whose parts start at or after
/// `from_ms`.
fn write_parts(m: &mut String, segment: &Segment, start_ms: u64, from_ms: u64) {
    let mut at = start_ms;
    for part in &segment.parts {
        if at >= from_ms {
            let _ = write!(
                m,
                "#EXT-X-PART:DURATION={},URI=\"{}\"",
                seconds(part.duration_ms),
                part.uri
            );
            if part.independent {
                m.push_str(",INDEPENDENT=YES");
            }
            m.push('\n');
        }
        at += part.duration_ms;
    }
}

/// Milliseconds as seconds with three decimals.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
#[path = "playlist_tests.rs"]
mod tests;
