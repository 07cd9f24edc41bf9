//! Pulling an HLS source (`http://….m3u8`, RFC 8216 §6.3): the playlist (a master playlist's
//! highest-BANDWIDTH variant), then each new MPEG-TS segment in media-sequence order, demuxed
//! into the stream on one continuous timeline.
//!
//! ```text
//!   GET playlist ─▶ master? GET best variant
//!        │
//!        ▼
//!   next segment listed? ── yes ─▶ GET it (≤ 64 MiB) ─▶ TsFeed ─▶ frames, paced by their DTS
//!        │ no                                              (a segment's worth per download)
//!        ├─ ENDLIST ─▶ Ended
//!        └─ wait a target duration (half of one when the reload brought nothing new) ─▶ reload
//! ```
//!
//! A live playlist is joined three segments from its end (§6.3.3); a VOD one (ENDLIST) from its
//! start. Frames go out at the pace of their timestamps, as a live source's would, so a
//! segment downloaded at once does not reach viewers as a burst. A playlist that stops
//! changing for three target durations (at least the attempt's timeout) is a stalled server.
//! A segment the server no longer has (an HTTP error status) is skipped. Encrypted
//! (EXT-X-KEY), byte-range and fMP4 (EXT-X-MAP) playlists are refused.

use std::net::SocketAddr;
use std::time::Duration;

use hls::es::EsEvent;
use hls::m3u8::{self, M3u8, MediaPlaylist, Segment};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use url::Url;

use super::ts::{client, get, TsFeed};
use crate::{AttemptOptions, Ingest, ProxyError};

/// The largest playlist read, bytes.
const MAX_PLAYLIST: usize = m3u8::MAX_PLAYLIST;
/// The largest segment read, bytes.
const MAX_SEGMENT: usize = 64 << 20;
/// Segments from the end of a live playlist where playing starts (RFC 8216 §6.3.3).
const LIVE_START_SEGMENTS: usize = 3;
/// A frame due further than this from the pace clock (either way) restarts the clock: the
/// source's timeline jumped.
const PACE_JUMP: Duration = Duration::from_secs(10);

/// Plays `url` into `ingest` until the playlist ends ([`ProxyError::Ended`]) or fails.
pub(crate) async fn pull(
    url: &Url,
    opts: &AttemptOptions,
    ingest: &mut Ingest,
) -> Result<(), ProxyError> {
    let client = client(opts)?;
    let (mut playlist_url, mut playlist, peer) = load(&client, url, opts).await?;
    let local = SocketAddr::from(([0, 0, 0, 0], 0));
    check_supported(&playlist)?;
    let mut next = start_sequence(&playlist);
    let mut feed = TsFeed::new(opts.timeout);
    let mut pace: Option<(Instant, u64)> = None;
    let mut last_change = Instant::now();
    let mut last_reload = Instant::now();
    // The last segment could not be fetched: the next one does not follow it.
    let mut skipped = false;
    // This attempt called `Ingest::live` (every attempt does, once: a reconnect resumes).
    let mut live = false;
    loop {
        let target = Duration::from_secs(playlist.target_duration.clamp(1, 60));
        if let Some(segment) = playlist
            .segments
            .iter()
            .find(|s| s.sequence >= next)
            .cloned()
        {
            if segment.sequence > next && next != 0 {
                tracing::debug!(
                    from = next,
                    to = segment.sequence,
                    "HLS segments expired before they were fetched"
                );
            }
            next = segment.sequence + 1;
            let segment_url = resolve(&playlist_url, &segment.uri)?;
            feed.next_segment(segment.discontinuity || skipped);
            match fetch_segment(&client, &segment_url, &segment, opts, &mut feed).await {
                Ok(()) => skipped = false,
                Err(ProxyError::Refused(why)) => {
                    // Gone from the server between the reload and the GET (a live window
                    // moves on): the next one is played, on the timeline after the last.
                    tracing::debug!("HLS segment skipped: {why}");
                    skipped = true;
                    feed.check_progress()?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            feed.finish();
            if !live {
                if !feed.has_program() {
                    return Err(ProxyError::Protocol(
                        "the first HLS segment holds no MPEG-TS program".into(),
                    ));
                }
                ingest.live(peer, local).await?;
                live = true;
            }
            play(&mut feed, ingest, &mut pace).await?;
            feed.check_progress()?;
            if playlist.end_list || last_reload.elapsed() < target {
                continue;
            }
        } else if playlist.end_list {
            if !live {
                return Err(ProxyError::Refused(
                    "no segment of the HLS playlist could be fetched".into(),
                ));
            }
            return Err(ProxyError::Ended);
        } else {
            // Nothing new: RFC 8216 §6.3.4, half a target duration before trying again.
            let stall = (3 * target).max(opts.timeout);
            if last_change.elapsed() > stall {
                return Err(ProxyError::Timeout("the HLS playlist stopped changing"));
            }
            tokio::select! {
                () = sleep(target / 2) => {}
                () = ingest.closed() => return Err(ProxyError::Closed),
            }
        }
        let (reloaded_url, reloaded, _) = load(&client, &playlist_url, opts).await?;
        check_supported(&reloaded)?;
        last_reload = Instant::now();
        if reloaded != playlist {
            last_change = Instant::now();
        }
        let newest = reloaded.segments.last().map_or(0, |s| s.sequence);
        if newest + 1 + (LIVE_START_SEGMENTS as u64) < next {
            // The numbering went back: the source restarted. Join it again, on our timeline.
            tracing::info!(from = next, to = newest, "HLS media sequence restarted");
            next = start_sequence(&reloaded);
            feed.next_segment(true);
        }
        playlist_url = reloaded_url;
        playlist = reloaded;
    }
}

/// The media playlist at `url`: followed to the best variant when it is a master playlist.
/// Also gives the URL the playlist came from (after redirects) and the server's address.
async fn load(
    client: &reqwest::Client,
    url: &Url,
    opts: &AttemptOptions,
) -> Result<(Url, MediaPlaylist, SocketAddr), ProxyError> {
    let mut url = url.clone();
    // A master playlist, then its variant: two levels at most.
    for _ in 0..2 {
        let (final_url, body, peer) = fetch_playlist(client, &url, opts).await?;
        let parsed =
            m3u8::parse(&body).map_err(|e| ProxyError::Protocol(format!("HLS playlist: {e}")))?;
        match parsed {
            M3u8::Media(media) => return Ok((final_url, media, peer)),
            M3u8::Master(master) => {
                let best = master.best().ok_or(ProxyError::Protocol(
                    "HLS master playlist without variants".into(),
                ))?;
                url = resolve(&final_url, &best.uri)?;
                tracing::debug!(variant = %crate::redacted(&url), bandwidth = best.bandwidth, "HLS variant");
            }
        }
    }
    Err(ProxyError::Protocol(
        "HLS master playlist names another master playlist".into(),
    ))
}

/// GETs a playlist: its final URL, its body (at most [`MAX_PLAYLIST`] bytes) and the server's
/// address, all within the attempt's timeout.
async fn fetch_playlist(
    client: &reqwest::Client,
    url: &Url,
    opts: &AttemptOptions,
) -> Result<(Url, Vec<u8>, SocketAddr), ProxyError> {
    let fetch = async {
        let mut response = get(client, url, opts.timeout).await?;
        let final_url = response.url().clone();
        let peer = response
            .remote_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(read_error)? {
            if body.len() + chunk.len() > MAX_PLAYLIST {
                return Err(ProxyError::Protocol(format!(
                    "HLS playlist larger than {MAX_PLAYLIST} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((final_url, body, peer))
    };
    timeout(opts.timeout, fetch)
        .await
        .map_err(|_| ProxyError::Timeout("HLS playlist"))?
}

/// GETs a segment into `feed`: each read within the attempt's timeout, the whole within the
/// timeout plus three times the segment's duration, at most [`MAX_SEGMENT`] bytes.
async fn fetch_segment(
    client: &reqwest::Client,
    url: &Url,
    segment: &Segment,
    opts: &AttemptOptions,
    feed: &mut TsFeed,
) -> Result<(), ProxyError> {
    let deadline = Instant::now() + opts.timeout + 3 * Duration::from_millis(segment.duration_ms);
    let mut response = timeout(opts.timeout, get(client, url, opts.timeout))
        .await
        .map_err(|_| ProxyError::Timeout("HLS segment"))??;
    let mut size = 0;
    loop {
        let wait = opts
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let chunk = timeout(wait, response.chunk())
            .await
            .map_err(|_| ProxyError::Timeout("HLS segment download"))?
            .map_err(read_error)?;
        let Some(chunk) = chunk else {
            return Ok(());
        };
        size += chunk.len();
        if size > MAX_SEGMENT {
            return Err(ProxyError::Protocol(format!(
                "HLS segment larger than {MAX_SEGMENT} bytes"
            )));
        }
        feed.push(&chunk);
    }
}

/// Hands the segment's tracks and frames to `ingest`, each frame when its DTS is due on the
/// pace clock (`(instant, dts)` of its start, set by the first frame).
async fn play(
    feed: &mut TsFeed,
    ingest: &mut Ingest,
    pace: &mut Option<(Instant, u64)>,
) -> Result<(), ProxyError> {
    while let Some(event) = feed.next_event() {
        let frame = match event {
            EsEvent::Track(track) => {
                ingest.set_track(track);
                continue;
            }
            EsEvent::Frame(frame) => frame,
        };
        let now = Instant::now();
        let (start, base) = *pace.get_or_insert((now, frame.dts));
        let due = frame
            .dts
            .checked_sub(base)
            .map(|ahead| start + Duration::from_millis(ahead));
        match due {
            Some(due) if due > now + PACE_JUMP => *pace = Some((now, frame.dts)),
            Some(due) if due > now => {
                tokio::select! {
                    () = sleep_until(due) => {}
                    () = ingest.closed() => return Err(ProxyError::Closed),
                }
            }
            Some(due) if now.duration_since(due) > PACE_JUMP => *pace = Some((now, frame.dts)),
            Some(_) => {}
            None => *pace = Some((now, frame.dts)),
        }
        ingest.push(frame)?;
    }
    Ok(())
}

/// Refuses what a TS puller cannot read.
fn check_supported(playlist: &MediaPlaylist) -> Result<(), ProxyError> {
    if playlist.map_uri.is_some() {
        return Err(ProxyError::Protocol(
            "fMP4 HLS (EXT-X-MAP) is not supported; only MPEG-TS segments".into(),
        ));
    }
    if playlist.segments.iter().any(|s| s.encrypted) {
        return Err(ProxyError::Protocol(
            "encrypted HLS (EXT-X-KEY) is not supported".into(),
        ));
    }
    if playlist.segments.iter().any(|s| s.byte_range) {
        return Err(ProxyError::Protocol(
            "HLS byte-range segments are not supported".into(),
        ));
    }
    Ok(())
}

/// The first segment to play: a VOD playlist's first, a live one's third from the end.
fn start_sequence(playlist: &MediaPlaylist) -> u64 {
    let segments = &playlist.segments;
    if playlist.end_list {
        return segments.first().map_or(0, |s| s.sequence);
    }
    let at = segments.len().saturating_sub(LIVE_START_SEGMENTS);
    segments
        .get(at)
        .map_or(playlist.media_sequence, |s| s.sequence)
}

/// `uri` against the playlist's URL; only http:// is fetched.
fn resolve(base: &Url, uri: &str) -> Result<Url, ProxyError> {
    let url = base
        .join(uri)
        .map_err(|e| ProxyError::Protocol(format!("HLS URI {uri:?}: {e}")))?;
    if url.scheme() != "http" {
        return Err(ProxyError::Protocol(format!(
            "HLS URI {}: only http:// is fetched",
            crate::redacted(&url)
        )));
    }
    Ok(url)
}

fn read_error(e: reqwest::Error) -> ProxyError {
    ProxyError::Io {
        context: "read",
        source: std::io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlist(first: u64, count: u64, end_list: bool) -> MediaPlaylist {
        MediaPlaylist {
            target_duration: 2,
            media_sequence: first,
            end_list,
            map_uri: None,
            segments: (first..first + count)
                .map(|sequence| Segment {
                    sequence,
                    uri: format!("{sequence}.ts"),
                    duration_ms: 2000,
                    discontinuity: false,
                    encrypted: false,
                    byte_range: false,
                })
                .collect(),
        }
    }

    #[test]
    fn live_starts_three_from_the_end_vod_at_the_start() {
        assert_eq!(start_sequence(&playlist(10, 6, false)), 13);
        assert_eq!(start_sequence(&playlist(10, 2, false)), 10);
        assert_eq!(start_sequence(&playlist(10, 6, true)), 10);
        assert_eq!(start_sequence(&playlist(10, 0, false)), 10);
    }

    #[test]
    fn uris_resolve_against_the_playlist_and_stay_http() {
        let base = Url::parse("http://h:8080/live/a/index.m3u8?token=1").expect("url");
        assert_eq!(
            resolve(&base, "seg1.ts").expect("relative").as_str(),
            "http://h:8080/live/a/seg1.ts"
        );
        assert_eq!(
            resolve(&base, "/other/seg.ts")
                .expect("absolute path")
                .as_str(),
            "http://h:8080/other/seg.ts"
        );
        assert_eq!(
            resolve(&base, "http://cdn/x.ts")
                .expect("absolute")
                .as_str(),
            "http://cdn/x.ts"
        );
        assert!(resolve(&base, "file:///etc/passwd").is_err());
        assert!(resolve(&base, "https://cdn/x.ts").is_err());
    }

    #[test]
    fn unsupported_playlists_are_refused() {
        let mut p = playlist(0, 2, true);
        assert!(check_supported(&p).is_ok());
        p.segments[1].encrypted = true;
        assert!(matches!(check_supported(&p), Err(ProxyError::Protocol(_))));
        let mut p = playlist(0, 2, true);
        p.map_uri = Some("init.mp4".into());
        assert!(matches!(check_supported(&p), Err(ProxyError::Protocol(_))));
    }
}
