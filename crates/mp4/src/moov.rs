//! Box writing (ISO/IEC 14496-12 §4.2) and the movie header boxes both muxers share: `ftyp`,
//! `mvhd`, and each track's `trak` down to its sample description (`avc1`/`hvc1`
//! ISO/IEC 14496-15 §5.4 and §8.4, `mp4a`+`esds` ISO/IEC 14496-14 §5.6, `Opus`+`dOps` from
//! "Encapsulation of Opus in ISO Base Media File Format" §4.3, `alaw`/`ulaw`).
//!
//! Sizes are written as a placeholder and patched when the box closes, so a box's body is written
//! once, straight into the output.

use bytes::{BufMut, BytesMut};
use media::{aac, Codec, TrackInfo, TrackKind};

/// Timescale of every video track: the 90 kHz clock of MPEG systems, so 25, 29.97, 30 and 60 fps
/// durations are exact.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;

/// Timescale of `mvhd` (and so `tkhd` durations): milliseconds.
pub(crate) const MOVIE_TIMESCALE: u32 = 1000;

/// `language` of `mdhd`: ISO 639-2 "und", packed as three 5-bit letters.
const LANGUAGE_UND: u16 = 0x55c4;

/// The unity matrix of `mvhd` and `tkhd` (§8.2.2.3).
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Opens a box of type `fourcc`: writes a size placeholder and the type. Returns where the box
/// starts, for [`end`].
pub(crate) fn start(out: &mut BytesMut, fourcc: &[u8; 4]) -> usize {
    let at = out.len();
    out.put_u32(0);
    out.put_slice(fourcc);
    at
}

/// Opens a full box (§4.2): a box with a version byte and 24 bits of flags.
pub(crate) fn start_full(out: &mut BytesMut, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
    let at = start(out, fourcc);
    out.put_u32(u32::from(version) << 24 | (flags & 0x00ff_ffff));
    at
}

/// Closes the box opened at `at` by patching its size.
pub(crate) fn end(out: &mut BytesMut, at: usize) {
    let size = u32::try_from(out.len() - at).unwrap_or(u32::MAX);
    if let Some(field) = out.get_mut(at..at + 4) {
        field.copy_from_slice(&size.to_be_bytes());
    }
}

/// Writes a whole box whose body `body` writes.
pub(crate) fn write(out: &mut BytesMut, fourcc: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let at = start(out, fourcc);
    body(out);
    end(out, at);
}

/// Writes a whole full box whose body `body` writes.
pub(crate) fn write_full(
    out: &mut BytesMut,
    fourcc: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    let at = start_full(out, fourcc, version, flags);
    body(out);
    end(out, at);
}

/// The timescale of a track's media: 90 kHz for video, the sample rate for audio (so one audio
/// sample is one tick), milliseconds when the rate is unknown.
pub(crate) fn timescale(track: &TrackInfo) -> u32 {
    match track.kind() {
        TrackKind::Video => VIDEO_TIMESCALE,
        TrackKind::Audio if track.sample_rate > 0 => track.sample_rate,
        TrackKind::Audio => MOVIE_TIMESCALE,
    }
}

/// Whether a track can go in an MP4: its codec has a sample entry here and its configuration
/// (where the sample entry needs one) is present and parses.
pub(crate) fn supported(track: &TrackInfo) -> bool {
    match track.codec {
        Codec::H264 => media::avc::DecoderConfig::parse(&track.config).is_ok(),
        Codec::H265 => media::hevc::DecoderConfig::parse(&track.config).is_ok(),
        Codec::Aac => aac::AudioSpecificConfig::parse(&track.config).is_ok(),
        Codec::Opus | Codec::G711A | Codec::G711U => true,
        Codec::Mp3 => false,
    }
}

/// `ftyp` (§4.3): ISO BMFF version 6 (`tfdt` v1, default-base-is-moof) and MP4 v1, which every
/// player of fragmented and progressive MP4 accepts.
pub(crate) fn ftyp(out: &mut BytesMut) {
    write(out, b"ftyp", |out| {
        out.put_slice(b"iso6");
        out.put_u32(0);
        out.put_slice(b"iso6");
        out.put_slice(b"mp41");
    });
}

/// `mvhd` (§8.2.2) with `duration` in milliseconds (0 for a fragmented movie: unknown).
pub(crate) fn mvhd(out: &mut BytesMut, duration_ms: u64, next_track_id: u32) {
    let long = duration_ms > u64::from(u32::MAX);
    write_full(out, b"mvhd", u8::from(long), 0, |out| {
        if long {
            out.put_u64(0); // creation_time
            out.put_u64(0); // modification_time
            out.put_u32(MOVIE_TIMESCALE);
            out.put_u64(duration_ms);
        } else {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(MOVIE_TIMESCALE);
            out.put_u32(duration_ms as u32);
        }
        out.put_u32(0x0001_0000); // rate 1.0
        out.put_u16(0x0100); // volume 1.0
        out.put_u16(0);
        out.put_u64(0);
        MATRIX.iter().for_each(|m| out.put_u32(*m));
        out.put_slice(&[0; 24]); // pre_defined
        out.put_u32(next_track_id);
    });
}

/// The per-track facts a `trak` needs besides its [`TrackInfo`].
pub(crate) struct TrakTimes {
    /// 1-based track id.
    pub id: u32,
    /// Track duration in milliseconds (the movie timescale).
    pub duration_ms: u64,
    /// Media duration in the track's own timescale.
    pub media_duration: u64,
}

/// `trak` (§8.3.1) with its `tkhd`, `mdia`, `mdhd`, `hdlr`, `minf`; `tables` writes the sample
/// tables after `stsd` inside `stbl` (empty ones for a fragmented movie).
pub(crate) fn trak(
    out: &mut BytesMut,
    track: &TrackInfo,
    times: &TrakTimes,
    tables: impl FnOnce(&mut BytesMut),
) {
    let video = track.kind() == TrackKind::Video;
    let trak = start(out, b"trak");
    let long = times.duration_ms > u64::from(u32::MAX);
    // flags: track_enabled | track_in_movie.
    write_full(out, b"tkhd", u8::from(long), 0x03, |out| {
        if long {
            out.put_u64(0);
            out.put_u64(0);
            out.put_u32(times.id);
            out.put_u32(0);
            out.put_u64(times.duration_ms);
        } else {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(times.id);
            out.put_u32(0);
            out.put_u32(times.duration_ms as u32);
        }
        out.put_u64(0); // reserved
        out.put_u16(0); // layer
        out.put_u16(0); // alternate_group
        out.put_u16(if video { 0 } else { 0x0100 }); // volume
        out.put_u16(0);
        MATRIX.iter().for_each(|m| out.put_u32(*m));
        // 16.16 fixed point; tkhd width and height are of the presentation.
        out.put_u32(track.width.min(0xffff) << 16);
        out.put_u32(track.height.min(0xffff) << 16);
    });
    let mdia = start(out, b"mdia");
    let long = times.media_duration > u64::from(u32::MAX);
    write_full(out, b"mdhd", u8::from(long), 0, |out| {
        if long {
            out.put_u64(0);
            out.put_u64(0);
            out.put_u32(timescale(track));
            out.put_u64(times.media_duration);
        } else {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(timescale(track));
            out.put_u32(times.media_duration as u32);
        }
        out.put_u16(LANGUAGE_UND);
        out.put_u16(0);
    });
    write_full(out, b"hdlr", 0, 0, |out| {
        out.put_u32(0);
        out.put_slice(if video { b"vide" } else { b"soun" });
        out.put_slice(&[0; 12]);
        out.put_slice(if video {
            b"VideoHandler\0".as_slice()
        } else {
            b"SoundHandler\0".as_slice()
        });
    });
    let minf = start(out, b"minf");
    if video {
        write_full(out, b"vmhd", 0, 0x01, |out| out.put_slice(&[0; 8]));
    } else {
        write_full(out, b"smhd", 0, 0, |out| out.put_u32(0));
    }
    write(out, b"dinf", |out| {
        write_full(out, b"dref", 0, 0, |out| {
            out.put_u32(1);
            // flags 1: the media is in this file.
            write_full(out, b"url ", 0, 0x01, |_| {});
        });
    });
    let stbl = start(out, b"stbl");
    write_full(out, b"stsd", 0, 0, |out| {
        out.put_u32(1);
        sample_entry(out, track);
    });
    tables(out);
    end(out, stbl);
    end(out, minf);
    end(out, mdia);
    end(out, trak);
}

/// The empty sample tables of a fragmented movie's `stbl` (the samples are in the fragments).
pub(crate) fn empty_tables(out: &mut BytesMut) {
    for fourcc in [b"stts", b"stsc", b"stco"] {
        write_full(out, fourcc, 0, 0, |out| out.put_u32(0));
    }
    write_full(out, b"stsz", 0, 0, |out| {
        out.put_u32(0);
        out.put_u32(0);
    });
}

/// The one sample entry of a track's `stsd`.
fn sample_entry(out: &mut BytesMut, track: &TrackInfo) {
    match track.codec {
        Codec::H264 => visual_entry(out, track, b"avc1", b"avcC"),
        Codec::H265 => visual_entry(out, track, b"hvc1", b"hvcC"),
        Codec::Aac => audio_entry(out, track, b"mp4a", |out| esds(out, track)),
        Codec::Opus => audio_entry(out, track, b"Opus", |out| dops(out, track)),
        Codec::G711A => audio_entry(out, track, b"alaw", |_| {}),
        Codec::G711U => audio_entry(out, track, b"ulaw", |_| {}),
        // Left out by `supported`; an entry the player cannot use is better than a broken box.
        Codec::Mp3 => audio_entry(out, track, b".mp3", |_| {}),
    }
}

/// VisualSampleEntry (§12.1.3) with the decoder configuration record as `config_box`.
fn visual_entry(out: &mut BytesMut, track: &TrackInfo, fourcc: &[u8; 4], config_box: &[u8; 4]) {
    write(out, fourcc, |out| {
        out.put_slice(&[0; 6]);
        out.put_u16(1); // data_reference_index
        out.put_slice(&[0; 16]); // pre_defined, reserved
        out.put_u16(track.width.min(0xffff) as u16);
        out.put_u16(track.height.min(0xffff) as u16);
        out.put_u32(0x0048_0000); // 72 dpi
        out.put_u32(0x0048_0000);
        out.put_u32(0);
        out.put_u16(1); // frame_count
        out.put_slice(&[0; 32]); // compressorname
        out.put_u16(0x0018); // depth
        out.put_i16(-1);
        write(out, config_box, |out| out.put_slice(&track.config));
    });
}

/// AudioSampleEntry (§12.2.3) followed by the codec's own box, which `extra` writes.
fn audio_entry(
    out: &mut BytesMut,
    track: &TrackInfo,
    fourcc: &[u8; 4],
    extra: impl FnOnce(&mut BytesMut),
) {
    write(out, fourcc, |out| {
        out.put_slice(&[0; 6]);
        out.put_u16(1); // data_reference_index
        out.put_u64(0);
        out.put_u16(u16::from(track.channels.max(1)));
        out.put_u16(16); // samplesize
        out.put_u32(0);
        // 16.16 fixed point; rates past 65535 Hz do not fit and are carried by the config.
        let rate = if track.sample_rate <= 0xffff {
            track.sample_rate << 16
        } else {
            0
        };
        out.put_u32(rate);
        extra(out);
    });
}

/// An MPEG-4 descriptor header (ISO/IEC 14496-1 §8.3.3): tag and a size in 7-bit groups.
fn descriptor(out: &mut BytesMut, tag: u8, len: usize) {
    out.put_u8(tag);
    let len = len.min(0x0fff_ffff) as u32;
    out.put_slice(&[
        0x80 | (len >> 21) as u8 & 0x7f,
        0x80 | (len >> 14) as u8 & 0x7f,
        0x80 | (len >> 7) as u8 & 0x7f,
        len as u8 & 0x7f,
    ]);
}

/// `esds` (ISO/IEC 14496-14 §5.6): ES_Descriptor, DecoderConfigDescriptor for AAC (object type
/// 0x40, audio stream) with the AudioSpecificConfig, and the MP4 SLConfigDescriptor.
fn esds(out: &mut BytesMut, track: &TrackInfo) {
    let asc = &track.config;
    write_full(out, b"esds", 0, 0, |out| {
        let decoder_specific = 5 + asc.len();
        let decoder_config = 13 + decoder_specific;
        descriptor(out, 0x03, 3 + 5 + decoder_config + 5 + 1);
        out.put_u16(0); // ES_ID: 0 in MP4 files
        out.put_u8(0); // no dependency, URL or OCR stream
        descriptor(out, 0x04, decoder_config);
        out.put_u8(0x40); // objectTypeIndication: MPEG-4 audio
        out.put_u8(0x15); // streamType audio (0x05) << 2 | reserved 1
        out.put_slice(&[0; 3]); // bufferSizeDB
        out.put_u32(0); // maxBitrate
        out.put_u32(0); // avgBitrate
        descriptor(out, 0x05, asc.len());
        out.put_slice(asc);
        descriptor(out, 0x06, 1);
        out.put_u8(0x02); // predefined: MP4
    });
}

/// `dOps` (Opus in ISOBMFF §4.3.2). The track's config, when it is an `OpusHead` (RFC 7845
/// §5.1), gives the channel count, pre-skip and input rate; otherwise stereo or mono mapping
/// family 0 with no pre-skip.
fn dops(out: &mut BytesMut, track: &TrackInfo) {
    let head = track
        .config
        .strip_prefix(b"OpusHead".as_slice())
        .filter(|h| h.len() >= 11);
    let (channels, pre_skip, input_rate, gain) = match head {
        Some(h) => (
            h[1],
            u16::from_le_bytes([h[2], h[3]]),
            u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            i16::from_le_bytes([h[8], h[9]]),
        ),
        None => (track.channels.clamp(1, 2), 0, 48_000, 0),
    };
    // Mapping families other than 0 need a channel mapping table; fall back to family 0.
    let family0 = head.is_none_or(|h| h[10] == 0);
    write(out, b"dOps", |out| {
        out.put_u8(0); // Version
        out.put_u8(if family0 {
            channels.clamp(1, 2)
        } else {
            channels
        });
        out.put_u16(pre_skip);
        out.put_u32(input_rate);
        out.put_i16(gain);
        match head {
            Some(h) if !family0 => out.put_slice(h.get(10..).unwrap_or_default()),
            _ => out.put_u8(0),
        }
    });
}
