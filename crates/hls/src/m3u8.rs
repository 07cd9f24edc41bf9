//! A parser of HLS playlists (RFC 8216 §4) as a puller needs them: a master playlist's
//! variants (EXT-X-STREAM-INF with BANDWIDTH) and a media playlist's segments (EXTINF,
//! EXT-X-TARGETDURATION, EXT-X-MEDIA-SEQUENCE, EXT-X-DISCONTINUITY, EXT-X-ENDLIST), plus the
//! tags that make a playlist one a TS puller cannot follow (EXT-X-KEY, EXT-X-MAP,
//! EXT-X-BYTERANGE), so the caller can refuse it clearly.
//!
//! ```text
//!   GET playlist ──▶ parse(body) ──▶ Master: pick a variant, resolve its URI, GET it
//!                                └─▶ Media: the segments after the last one fetched, by
//!                                    sequence number; reload after target_duration
//! ```
//!
//! URIs are returned as written; the caller resolves relative ones against the playlist's
//! URL. Everything is bounded: the text ([`MAX_PLAYLIST`]), the number of segments and
//! variants, each URI's length. Unknown tags and comments are skipped, as §4 asks.

use crate::Error;

/// The longest playlist parsed, in bytes.
pub const MAX_PLAYLIST: usize = 1 << 20;
/// The most segments a media playlist may list.
pub const MAX_SEGMENTS: usize = 16_384;
/// The most variants a master playlist may list.
pub const MAX_VARIANTS: usize = 256;
/// The longest URI, in bytes.
pub const MAX_URI: usize = 4096;

/// A parsed playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum M3u8 {
    /// A master (multivariant) playlist.
    Master(MasterPlaylist),
    /// A media playlist.
    Media(MediaPlaylist),
}

/// The variants of a master playlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MasterPlaylist {
    /// In playlist order.
    pub variants: Vec<Variant>,
}

impl MasterPlaylist {
    /// The variant of the highest BANDWIDTH (the first of equals).
    pub fn best(&self) -> Option<&Variant> {
        self.variants
            .iter()
            .fold(None, |best: Option<&Variant>, v| match best {
                Some(b) if b.bandwidth >= v.bandwidth => Some(b),
                _ => Some(v),
            })
    }
}

/// One EXT-X-STREAM-INF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The media playlist's URI, as written.
    pub uri: String,
    /// BANDWIDTH, bits per second (0 when missing).
    pub bandwidth: u64,
    /// RESOLUTION, when given.
    pub resolution: Option<(u32, u32)>,
    /// CODECS, when given.
    pub codecs: Option<String>,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaPlaylist {
    /// EXT-X-TARGETDURATION, seconds (0 when missing).
    pub target_duration: u64,
    /// EXT-X-MEDIA-SEQUENCE: the first segment's sequence number.
    pub media_sequence: u64,
    /// EXT-X-ENDLIST: no segment will be added.
    pub end_list: bool,
    /// EXT-X-MAP's URI: the segments are fragmented MP4, not MPEG-TS.
    pub map_uri: Option<String>,
    /// The segments, oldest first.
    pub segments: Vec<Segment>,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its media sequence number.
    pub sequence: u64,
    /// Its URI, as written.
    pub uri: String,
    /// EXTINF duration, milliseconds.
    pub duration_ms: u64,
    /// EXT-X-DISCONTINUITY before it: its timestamps need not follow the one before.
    pub discontinuity: bool,
    /// An EXT-X-KEY other than METHOD=NONE applies to it.
    pub encrypted: bool,
    /// EXT-X-BYTERANGE applies to it (only a part of the resource is the segment).
    pub byte_range: bool,
}

fn malformed(line: usize, context: &'static str) -> Error {
    Error::Malformed {
        offset: line,
        context,
    }
}

fn limit(what: &'static str, value: usize, limit: usize) -> Error {
    Error::LimitExceeded {
        what,
        value: value as u64,
        limit: limit as u64,
    }
}

/// Parses a playlist. `Error::Malformed`'s offset is the line number (from 1).
pub fn parse(text: &[u8]) -> Result<M3u8, Error> {
    if text.len() > MAX_PLAYLIST {
        return Err(limit("playlist length", text.len(), MAX_PLAYLIST));
    }
    let text = std::str::from_utf8(text).map_err(|_| malformed(0, "playlist UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().map(|l| l.trim()).enumerate();
    match lines.next() {
        Some((_, "#EXTM3U")) => {}
        _ => return Err(malformed(1, "#EXTM3U")),
    }
    let mut media = MediaPlaylist::default();
    let mut master = MasterPlaylist::default();
    // Tags that apply to the next URI line.
    let mut extinf: Option<u64> = None;
    let mut stream_inf: Option<Variant> = None;
    let mut discontinuity = false;
    let mut byte_range = false;
    let mut encrypted = false;
    for (index, line) in lines {
        let n = index + 1;
        if line.is_empty() {
            continue;
        }
        let Some(tag) = line.strip_prefix('#') else {
            if line.len() > MAX_URI {
                return Err(limit("URI length", line.len(), MAX_URI));
            }
            if let Some(mut v) = stream_inf.take() {
                if master.variants.len() >= MAX_VARIANTS {
                    return Err(limit("variants", master.variants.len() + 1, MAX_VARIANTS));
                }
                v.uri = line.to_owned();
                master.variants.push(v);
            } else if let Some(duration_ms) = extinf.take() {
                if media.segments.len() >= MAX_SEGMENTS {
                    return Err(limit("segments", media.segments.len() + 1, MAX_SEGMENTS));
                }
                media.segments.push(Segment {
                    sequence: 0,
                    uri: line.to_owned(),
                    duration_ms,
                    discontinuity: std::mem::take(&mut discontinuity),
                    encrypted,
                    byte_range: std::mem::take(&mut byte_range),
                });
            } else {
                return Err(malformed(n, "URI without EXTINF or EXT-X-STREAM-INF"));
            }
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXTINF" => {
                let duration = value.split(',').next().unwrap_or_default();
                extinf = Some(decimal_ms(duration).ok_or(malformed(n, "EXTINF duration"))?);
            }
            "EXT-X-TARGETDURATION" => {
                media.target_duration = integer(value).ok_or(malformed(n, "TARGETDURATION"))?;
            }
            "EXT-X-MEDIA-SEQUENCE" => {
                media.media_sequence = integer(value).ok_or(malformed(n, "MEDIA-SEQUENCE"))?;
            }
            "EXT-X-DISCONTINUITY" => discontinuity = true,
            "EXT-X-ENDLIST" => media.end_list = true,
            "EXT-X-BYTERANGE" => byte_range = true,
            "EXT-X-KEY" => {
                let attrs = attributes(value).ok_or(malformed(n, "EXT-X-KEY attributes"))?;
                encrypted = attrs
                    .iter()
                    .any(|(k, v)| *k == "METHOD" && !v.eq_ignore_ascii_case("NONE"));
            }
            "EXT-X-MAP" => {
                let attrs = attributes(value).ok_or(malformed(n, "EXT-X-MAP attributes"))?;
                let uri = attrs.iter().find(|(k, _)| *k == "URI").map(|(_, v)| *v);
                media.map_uri = Some(uri.unwrap_or_default().to_owned());
            }
            "EXT-X-STREAM-INF" => {
                let attrs = attributes(value).ok_or(malformed(n, "EXT-X-STREAM-INF attributes"))?;
                let get = |key: &str| attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                let bandwidth = match get("BANDWIDTH") {
                    Some(b) => integer(b).ok_or(malformed(n, "BANDWIDTH"))?,
                    None => 0,
                };
                let resolution = get("RESOLUTION").and_then(|r| {
                    let (w, h) = r.split_once(['x', 'X'])?;
                    Some((w.parse().ok()?, h.parse().ok()?))
                });
                stream_inf = Some(Variant {
                    uri: String::new(),
                    bandwidth,
                    resolution,
                    codecs: get("CODECS").map(|c| c.chars().take(256).collect()),
                });
            }
            _ => {} // other tags and comments
        }
    }
    if !master.variants.is_empty() {
        if !media.segments.is_empty() {
            return Err(malformed(0, "playlist with both variants and segments"));
        }
        return Ok(M3u8::Master(master));
    }
    for (i, segment) in media.segments.iter_mut().enumerate() {
        segment.sequence = media.media_sequence.saturating_add(i as u64);
    }
    Ok(M3u8::Media(media))
}

/// A decimal-integer (§4.2): digits only, fitting a u64.
fn integer(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal-floating-point number of seconds as milliseconds (digits past the third decimal
/// dropped). At most a day: a longer segment is not a live source's.
fn decimal_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let seconds = integer(whole).filter(|&w| w <= 86_400)?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms = 0;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * [100, 10, 1][i];
    }
    Some(seconds * 1000 + ms)
}

/// An attribute list (§4.2): `KEY=value` pairs separated by commas, values quoted or not.
/// At most 64 attributes.
fn attributes(s: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if out.len() >= 64 {
            return None;
        }
        let (key, after) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        out.push((key, value));
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(text: &str) -> MediaPlaylist {
        match parse(text.as_bytes()) {
            Ok(M3u8::Media(m)) => m,
            other => panic!("not a media playlist: {other:?}"),
        }
    }

    #[test]
    fn live_media_playlist() {
        let m = media(
            "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-TARGETDURATION:2\r\n\
             #EXT-X-MEDIA-SEQUENCE:41\r\n#EXTINF:2.002,\r\nlive41.ts\r\n\
             # a comment\r\n#EXT-X-DISCONTINUITY\r\n#EXTINF:1.5,title\r\n\
             http://cdn.example/live42.ts?token=x\r\n#EXT-X-UNKNOWN:1\r\n#EXTINF:2,\r\nlive43.ts\r\n",
        );
        assert_eq!(m.target_duration, 2);
        assert_eq!(m.media_sequence, 41);
        assert!(!m.end_list);
        let s: Vec<(u64, &str, u64, bool)> = m
            .segments
            .iter()
            .map(|s| (s.sequence, s.uri.as_str(), s.duration_ms, s.discontinuity))
            .collect();
        assert_eq!(
            s,
            [
                (41, "live41.ts", 2002, false),
                (42, "http://cdn.example/live42.ts?token=x", 1500, true),
                (43, "live43.ts", 2000, false),
            ]
        );
    }

    #[test]
    fn vod_playlist_ends_and_flags_what_a_ts_puller_cannot_read() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n\
             #EXTINF:4.0,\n#EXT-X-BYTERANGE:1000@0\na.ts\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\nb.ts\n\
             #EXT-X-ENDLIST\n",
        );
        assert!(m.end_list);
        assert_eq!(m.media_sequence, 0);
        assert!(m.segments[0].encrypted && m.segments[0].byte_range);
        assert!(!m.segments[1].encrypted && !m.segments[1].byte_range);
        let fmp4 = media("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1,\n0.m4s\n");
        assert_eq!(fmp4.map_uri.as_deref(), Some("init.mp4"));
    }

    #[test]
    fn master_playlist_best_variant() {
        let text = "#EXTM3U\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"\n\
            low/index.m3u8\n\
            #EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH=5000000,RESOLUTION=1920x1080\n\
            high/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=5000000\nother.m3u8\n";
        let Ok(M3u8::Master(m)) = parse(text.as_bytes()) else {
            panic!("not a master playlist");
        };
        assert_eq!(m.variants.len(), 3);
        assert_eq!(
            m.variants[0].codecs.as_deref(),
            Some("avc1.4d401e,mp4a.40.2")
        );
        let best = m.best().expect("a variant");
        assert_eq!(best.uri, "high/index.m3u8");
        assert_eq!(best.resolution, Some((1920, 1080)));
        assert_eq!(MasterPlaylist::default().best(), None);
    }

    #[test]
    fn bad_playlists_are_errors() {
        for bad in [
            "",
            "#EXTINF:1,\na.ts\n",
            "#EXTM3U\na.ts\n",
            "#EXTM3U\n#EXTINF:abc,\na.ts\n",
            "#EXTM3U\n#EXTINF:-1,\na.ts\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:x\n",
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:99999999999999999999999\n",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=\"1\n",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:1,\na.ts\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn limits_hold() {
        let mut text = String::from("#EXTM3U\n");
        for i in 0..=MAX_SEGMENTS {
            text.push_str(&format!("#EXTINF:1,\n{i}.ts\n"));
        }
        assert!(matches!(
            parse(text.as_bytes()),
            Err(Error::LimitExceeded {
                what: "segments",
                ..
            })
        ));
        let long = format!("#EXTM3U\n#EXTINF:1,\n{}\n", "a".repeat(MAX_URI + 1));
        assert!(matches!(
            parse(long.as_bytes()),
            Err(Error::LimitExceeded { .. })
        ));
        let huge = vec![b'#'; MAX_PLAYLIST + 1];
        assert!(matches!(parse(&huge), Err(Error::LimitExceeded { .. })));
    }

    /// What the server's own playlist writer renders parses back.
    #[test]
    fn own_playlists_parse_back() {
        let mut p = crate::Playlist::new(crate::PlaylistConfig::default());
        for i in 0..5 {
            p.start_segment(format!("{i}.ts"));
            p.end_segment(2000 + i);
        }
        let m = media(&p.render());
        assert_eq!(m.media_sequence, 2);
        let uris: Vec<&str> = m.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["2.ts", "3.ts", "4.ts"]);
        assert_eq!(m.segments[2].duration_ms, 2004);
        assert_eq!(m.segments[2].sequence, 4);
    }
}
