//! The HLS muxing tasks: MPEG-TS segments, and fMP4 segments cut into LL-HLS parts; and the
//! disk writer of keep-all playlists (`hls.segNum=0`).

use super::{lock, HlsStream, OpenPart, State};
use bytes::{Bytes, BytesMut};
use hls::{PlaylistConfig, TsMuxer};
use media::TrackKind;
use mp4::Fmp4Muxer;
use registry::{Item, StreamReader};
use std::sync::Weak;

/// The file name of segment `msn`.
pub(super) fn segment_name(config: &PlaylistConfig, msn: u64) -> String {
    match config.map_uri {
        Some(_) => format!("hls_{msn}.m4s"),
        None => format!("hls_{msn}.ts"),
    }
}

/// Segments kept in memory when every segment goes to disk (`hls.segNum=0`).
const MEMORY_SEGMENTS: u64 = 4;

/// A finished segment of a keep-all playlist goes to disk with the playlist (and the init
/// segment), written in the background; all but the last few leave memory.
fn save(state: &mut State, msn: u64) {
    let Some(dir) = state.disk.clone() else {
        return;
    };
    let Some(parts) = state.segments.get(&msn) else {
        return;
    };
    let mut data = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for p in parts {
        data.extend_from_slice(p);
    }
    let name = segment_name(state.playlist.config(), msn);
    let playlist_name = match state.playlist.config().map_uri {
        Some(_) => "hls.fmp4.m3u8",
        None => "hls.m3u8",
    };
    let playlist = state.playlist.render();
    let init = state.init.clone();
    state.on_disk.insert(msn);
    let old: Vec<u64> = state
        .segments
        .range(..msn.saturating_sub(MEMORY_SEGMENTS))
        .map(|(m, _)| *m)
        .filter(|m| state.on_disk.contains(m))
        .collect();
    for m in old {
        state.segments.remove(&m);
    }
    tokio::task::spawn_blocking(move || {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            if let Some(init) = init {
                std::fs::write(dir.join("hls_init.mp4"), init)?;
            }
            std::fs::write(dir.join(&name), data)?;
            // The playlist last, once what it lists is there.
            let tmp = dir.join(format!(".{playlist_name}.tmp"));
            std::fs::write(&tmp, playlist)?;
            std::fs::rename(tmp, dir.join(playlist_name))
        };
        if let Err(e) = write() {
            tracing::error!(dir = %dir.display(), "HLS recording: {e}");
        }
    });
}

/// Forgets the media of segments that left the playlist, `retain` of them later.
fn drop_old(state: &mut State, dropped: Vec<u64>, retain: usize) {
    for msn in dropped {
        // Keep `retain` more for players a little behind.
        let Some(cutoff) = msn.checked_sub(retain as u64) else {
            continue;
        };
        let old: Vec<u64> = state.segments.range(..=cutoff).map(|(m, _)| *m).collect();
        for m in old {
            state.segments.remove(&m);
            state.complete.remove(&m);
        }
    }
}

pub(super) async fn mux_ts(
    stream: Weak<HlsStream>,
    mut sub: StreamReader,
    mut tracks: Vec<media::TrackInfo>,
    seg_ms: u64,
    retain: usize,
) {
    let mut muxer = TsMuxer::new(&tracks);
    let mut current: Option<(u64, BytesMut, u64)> = None; // msn, data, first dts
    let mut last_dts = 0;
    let has_video =
        |tracks: &[media::TrackInfo]| tracks.iter().any(|t| t.kind() == TrackKind::Video);
    loop {
        let item = sub.recv().await;
        let Some(out) = stream.upgrade() else { return };
        match item {
            Ok(Item::Frame(frame)) => {
                let f = &frame;
                last_dts = f.dts;
                let boundary = (f.kind() == TrackKind::Video && f.keyframe) || !has_video(&tracks);
                let cut = current
                    .as_ref()
                    .is_some_and(|(_, _, start)| f.dts.saturating_sub(*start) >= seg_ms);
                if boundary && (cut || current.is_none()) {
                    let mut state = lock(&out.state);
                    if let Some((msn, data, start)) = current.take() {
                        state.segments.insert(msn, vec![data.freeze()]);
                        state.complete.insert(msn, true);
                        let dropped = state.playlist.end_segment(f.dts.saturating_sub(start));
                        drop_old(&mut state, dropped, retain);
                        save(&mut state, msn);
                    }
                    let next = state.playlist.next_msn();
                    let msn = state.playlist.start_segment(format!("hls_{next}.ts"));
                    let mut data = BytesMut::new();
                    muxer.write_tables(&mut data);
                    current = Some((msn, data, f.dts));
                    drop(state);
                    out.bump();
                }
                if let Some((_, data, _)) = current.as_mut() {
                    muxer.push(f, data);
                }
            }
            Ok(Item::Track(t)) => {
                match tracks.iter_mut().find(|x| x.kind() == t.kind()) {
                    Some(x) => *x = t,
                    None => tracks.push(t),
                }
                muxer = TsMuxer::new(&tracks);
            }
            Ok(Item::Metadata(_)) => {}
            Err(_) => {
                // The stream ended: its last segment ends at its last frame, the playlist with
                // EXT-X-ENDLIST (and so do the files of a keep-all playlist).
                let mut state = lock(&out.state);
                match current.take() {
                    Some((msn, data, start)) => {
                        state.segments.insert(msn, vec![data.freeze()]);
                        state.complete.insert(msn, true);
                        state
                            .playlist
                            .end_segment(last_dts.saturating_sub(start).max(1));
                        state.playlist.finish();
                        save(&mut state, msn);
                    }
                    None => {
                        state.playlist.finish();
                    }
                }
                state.ended = true;
                drop(state);
                out.bump();
                return;
            }
        }
    }
}

pub(super) async fn mux_fmp4(
    stream: Weak<HlsStream>,
    mut sub: StreamReader,
    tracks: Vec<media::TrackInfo>,
    seg_ms: u64,
    part_ms: u64,
    retain: usize,
) {
    let Ok(mut muxer) = Fmp4Muxer::new(&tracks) else {
        if let Some(out) = stream.upgrade() {
            lock(&out.state).ended = true;
            out.bump();
        }
        return;
    };
    if let Some(out) = stream.upgrade() {
        lock(&out.state).init = Some(muxer.init_segment());
    }
    let has_video = tracks.iter().any(|t| t.kind() == TrackKind::Video);
    // The segment being written: its msn and the dts it started at; and where the current part
    // started. Durations come from these dts (the video timeline), so parts, segments and
    // what players buffer agree.
    let mut current: Option<Current> = None;
    loop {
        let item = sub.recv().await;
        let Some(out) = stream.upgrade() else { return };
        match item {
            Ok(Item::Frame(frame)) => {
                let f = &frame;
                let boundary = (f.kind() == TrackKind::Video && f.keyframe) || !has_video;
                let new_segment = match &current {
                    None => boundary,
                    Some(c) => boundary && f.dts.saturating_sub(c.segment_start) >= seg_ms,
                };
                if let Some(c) = current.as_mut() {
                    // Before every video frame what the muxer holds goes out as a chunk of the
                    // part being written (its video up to this frame, the audio with its own
                    // lengths), so a held request for the part gets it frame by frame. Cut
                    // the part so it does not exceed the part target: before the frame that
                    // would take it within PART_HEADROOM_MS of it (frames are closer than
                    // that), and only before a video frame, so each part's video runs up to
                    // the next part's without a hole. Without video, chunks of
                    // AUDIO_CHUNK_MS.
                    let cut_point = f.kind() == TrackKind::Video || !has_video;
                    let due = f.dts + PART_HEADROOM_MS > c.part_start + part_ms;
                    let end_part = new_segment || (cut_point && due);
                    let chunk_due = has_video || end_part || muxer.buffered_ms() >= AUDIO_CHUNK_MS;
                    if cut_point && chunk_due {
                        if let Some(chunk) = muxer.fragment_before_video(f.dts) {
                            add_chunk(&out, c, chunk);
                        }
                    }
                    if end_part {
                        end_part_at(&out, c, Some(f.dts));
                    }
                }
                if new_segment {
                    let mut state = lock(&out.state);
                    if let Some(c) = current.take() {
                        let dropped = state
                            .playlist
                            .end_segment(f.dts.saturating_sub(c.segment_start));
                        state.complete.insert(c.msn, true);
                        drop_old(&mut state, dropped, retain);
                        save(&mut state, c.msn);
                    }
                    let next = state.playlist.next_msn();
                    let msn = state.playlist.start_segment(format!("hls_{next}.m4s"));
                    state.segments.insert(msn, Vec::new());
                    state
                        .playlist
                        .set_preload_hint(Some(format!("hls_{msn}.0.m4s")));
                    current = Some(Current {
                        msn,
                        segment_start: f.dts,
                        part_start: f.dts,
                        part_end: f.dts,
                        independent: false,
                    });
                    drop(state);
                    out.bump();
                }
                if current.is_some() {
                    muxer.push(f);
                }
            }
            Ok(Item::Track(_)) | Ok(Item::Metadata(_)) => {}
            Err(_) => {
                if let Some(c) = current.as_mut() {
                    if let Some(chunk) = muxer.fragment() {
                        add_chunk(&out, c, chunk);
                    }
                    end_part_at(&out, c, None);
                }
                let mut state = lock(&out.state);
                state.playlist.finish();
                if let Some(c) = &current {
                    state.complete.insert(c.msn, true);
                    save(&mut state, c.msn);
                }
                state.ended = true;
                drop(state);
                out.bump();
                return;
            }
        }
    }
}

/// Room left under the part target when deciding to cut: more than the gap between two frames
/// of any usual stream (40 ms at 25 fps, 23 ms of AAC).
const PART_HEADROOM_MS: u64 = 50;

/// The chunk length of a stream without video (a handful of audio frames per `moof`).
const AUDIO_CHUNK_MS: u64 = 100;

/// The LL-HLS segment being written.
pub(super) struct Current {
    pub(super) msn: u64,
    pub(super) segment_start: u64,
    /// Where the part being written started, and where its last chunk ends.
    pub(super) part_start: u64,
    pub(super) part_end: u64,
    /// Whether the part being written starts with a keyframe (its first chunk does).
    pub(super) independent: bool,
}

/// A chunk of the part being written (one `moof`+`mdat`): held part requests get it now.
pub(super) fn add_chunk(out: &HlsStream, current: &mut Current, chunk: mp4::Fragment) {
    let msn = current.msn;
    let mut state = lock(&out.state);
    let index = state.segments.get(&msn).map_or(0, Vec::len) as u64;
    match &mut state.open_part {
        Some(open) if open.msn == msn && open.index == index => open.chunks.push(chunk.data),
        open => {
            current.independent = chunk.independent;
            *open = Some(OpenPart {
                msn,
                index,
                chunks: vec![chunk.data],
            });
        }
    }
    current.part_end = current
        .part_end
        .max(chunk.start_ms.saturating_add(chunk.duration_ms));
    drop(state);
    out.bump();
}

/// The part being written is complete, up to `until` (the next frame's dts; `None` at the
/// end): it goes into the playlist and the segment, and the next is hinted.
pub(super) fn end_part_at(out: &HlsStream, current: &mut Current, until: Option<u64>) {
    let msn = current.msn;
    let mut state = lock(&out.state);
    let Some(open) = state.open_part.take() else {
        return;
    };
    let index = open.index;
    let data = if open.chunks.len() == 1 {
        open.chunks[0].clone()
    } else {
        let mut all = BytesMut::with_capacity(open.chunks.iter().map(Bytes::len).sum());
        for c in &open.chunks {
            all.extend_from_slice(c);
        }
        all.freeze()
    };
    let end = until.unwrap_or(current.part_end);
    state.playlist.add_part(
        format!("hls_{msn}.{index}.m4s"),
        end.saturating_sub(current.part_start),
        current.independent,
    );
    state.segments.entry(msn).or_default().push(data);
    state
        .playlist
        .set_preload_hint(Some(format!("hls_{msn}.{}.m4s", index + 1)));
    drop(state);
    current.part_start = end;
    current.part_end = end;
    out.bump();
}
