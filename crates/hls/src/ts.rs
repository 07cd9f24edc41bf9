//! MPEG-2 transport stream muxer (ISO/IEC 13818-1): PAT, PMT, PES and PCR, written by hand as
//! 188-byte packets.
//!
//! The packets are simple enough that a dependency would cost more than it saves: the
//! `mpeg2ts` crate only writes the 4-byte packet header and the adaptation field for us, and we
//! would still build every PES header, PSI section, CRC and stuffing byte ourselves.
//!
//! What goes in: one video track (H.264 as stream_type 0x1b, H.265 as 0x24) and one audio track
//! (AAC as 0x0f, each frame behind its own ADTS header; MP3 as 0x03). G.711 and Opus are left
//! out: HLS clients (Safari, hls.js, ExoPlayer) do not play them from MPEG-TS, and Opus in TS
//! needs a registration descriptor and its own framing that no HLS player reads. Frames of a
//! codec the muxer was not built with are skipped.
//!
//! Layout of the output (ISO/IEC 13818-1 §2.4.3): PAT on PID 0x0000, PMT on [`PID_PMT`], video
//! on [`PID_VIDEO`], audio on [`PID_AUDIO`]; the PCR rides on the video PID, or on the audio
//! PID for an audio-only stream.

use bytes::{BufMut, Bytes, BytesMut};
use media::aac::AudioSpecificConfig;
use media::{avc, hevc, Codec, Frame, TrackInfo, TrackKind};

/// The size of every transport stream packet.
pub const PACKET_SIZE: usize = 188;
/// The first byte of every packet.
pub const SYNC_BYTE: u8 = 0x47;
/// PID of the program association table.
pub const PID_PAT: u16 = 0x0000;
/// PID of the program map table.
pub const PID_PMT: u16 = 0x1000;
/// PID of the video elementary stream.
pub const PID_VIDEO: u16 = 0x0100;
/// PID of the audio elementary stream.
pub const PID_AUDIO: u16 = 0x0101;
/// stream_type of H.264 video (ISO/IEC 13818-1 Table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1b;
/// stream_type of H.265 video.
pub const STREAM_TYPE_H265: u8 = 0x24;
/// stream_type of AAC audio with ADTS framing.
pub const STREAM_TYPE_AAC: u8 = 0x0f;
/// stream_type of MPEG-1 audio (MP3).
pub const STREAM_TYPE_MP3: u8 = 0x03;
/// PES stream_id of the video stream.
pub const STREAM_ID_VIDEO: u8 = 0xe0;
/// PES stream_id of the audio stream.
pub const STREAM_ID_AUDIO: u8 = 0xc0;
/// Added to every timestamp, so that the first PTS is positive even with B-frames and the PCR,
/// which runs [`PCR_LEAD_MS`] behind the DTS, never goes below zero.
pub const TIMESTAMP_OFFSET_MS: u64 = 1000;
/// How far the PCR runs behind the DTS of the frame it is sent with: the time the decoder has to
/// receive a frame before it decodes it.
pub const PCR_LEAD_MS: u64 = 300;
/// The longest gap between two PCRs (ISO/IEC 13818-1 §2.7.2 allows 100 ms).
pub const PCR_INTERVAL_MS: u64 = 100;
/// How often an audio-only stream repeats PAT and PMT (a video stream repeats them on every
/// keyframe).
pub const TABLES_INTERVAL_MS: u64 = 1000;

/// The program_number and transport_stream_id the muxer writes.
const PROGRAM: u16 = 0x0001;
/// Payload bytes in a packet after the 4-byte header.
const PAYLOAD_SIZE: usize = PACKET_SIZE - 4;
/// PTS, DTS and PCR base are 33-bit counters of a 90 kHz clock.
const TS_MASK: u64 = (1 << 33) - 1;

/// H.264 access unit delimiter, primary_pic_type 7 (any slice type).
const AUD_H264: [u8; 2] = [0x09, 0xf0];
/// H.265 access unit delimiter, pic_type 2 (any slice type).
const AUD_H265: [u8; 3] = [0x46, 0x01, 0x50];
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Muxes one stream's frames into MPEG-TS. One muxer per live stream; every viewer of the
/// stream's `.live.ts` or HLS segments reads the same bytes.
///
/// There is no queue to drain: [`TsMuxer::push`] and [`TsMuxer::write_tables`] append whole
/// packets to the caller's buffer, so every 188 bytes of `out` is one packet and a segment can be
/// cut at any packet boundary (the HLS segmenter cuts before a video keyframe's `push`, which
/// writes PAT and PMT first so each segment starts decodable).
#[derive(Debug, Clone)]
pub struct TsMuxer {
    video: Option<Stream>,
    audio: Option<Stream>,
    pcr_pid: u16,
    pat_cc: u8,
    pmt_cc: u8,
    /// The last PCR written, in 90 kHz ticks, not wrapped at 33 bits.
    last_pcr: Option<u64>,
    /// When PAT and PMT were last written (frame dts, ms), for audio-only streams.
    last_tables_ms: Option<u64>,
}

/// One elementary stream.
#[derive(Debug, Clone)]
struct Stream {
    pid: u16,
    codec: Codec,
    stream_type: u8,
    stream_id: u8,
    cc: u8,
    format: Format,
}

/// How a frame's payload becomes the elementary stream.
#[derive(Debug, Clone)]
enum Format {
    /// AVCC to Annex B; `param_sets` are the configuration's VPS/SPS/PPS NAL units, prepended to
    /// keyframes that lack them.
    Video {
        h265: bool,
        length_size: u8,
        param_sets: Vec<Bytes>,
    },
    /// Raw AAC behind an ADTS header; `None` while the AudioSpecificConfig is missing.
    Aac(Option<AudioSpecificConfig>),
    /// Passed through.
    Raw,
}

impl TsMuxer {
    /// A muxer for `tracks`: the first H.264/H.265 track and the first AAC/MP3 track are
    /// muxed; other tracks are ignored (G.711 and Opus have no HLS-playable TS mapping).
    pub fn new(tracks: &[TrackInfo]) -> TsMuxer {
        let video = tracks
            .iter()
            .find(|t| t.kind() == TrackKind::Video)
            .and_then(|t| Stream::new(t, PID_VIDEO));
        let audio = tracks
            .iter()
            .filter(|t| t.kind() == TrackKind::Audio)
            .find_map(|t| Stream::new(t, PID_AUDIO));
        for t in tracks {
            let used = [&video, &audio]
                .iter()
                .any(|s| s.as_ref().is_some_and(|s| s.codec == t.codec));
            if !used {
                tracing::debug!(codec = ?t.codec, "track left out of MPEG-TS");
            }
        }
        let pcr_pid = if video.is_some() || audio.is_none() {
            PID_VIDEO
        } else {
            PID_AUDIO
        };
        TsMuxer {
            video,
            audio,
            pcr_pid,
            pat_cc: 0,
            pmt_cc: 0,
            last_pcr: None,
            last_tables_ms: None,
        }
    }

    /// Whether the muxer carries a track of `codec` (frames of other codecs are skipped).
    pub fn carries(&self, codec: Codec) -> bool {
        [&self.video, &self.audio]
            .iter()
            .any(|s| s.as_ref().is_some_and(|s| s.codec == codec))
    }

    /// Appends PAT and PMT, one packet each (continuity counters kept).
    pub fn write_tables(&mut self, out: &mut BytesMut) {
        // PAT (§2.4.4.3): one program.
        let mut pat = Vec::with_capacity(16);
        pat.push(0x00); // table_id
        pat.extend_from_slice(&section_length(5 + 4));
        pat.extend_from_slice(&PROGRAM.to_be_bytes()); // transport_stream_id
        pat.extend_from_slice(&[0xc1, 0x00, 0x00]); // version 0, current, section 0 of 0
        pat.extend_from_slice(&PROGRAM.to_be_bytes());
        pat.extend_from_slice(&(0xe000 | PID_PMT).to_be_bytes());
        write_section(out, PID_PAT, &mut self.pat_cc, &pat);

        // PMT (§2.4.4.8): the PCR PID and one entry per elementary stream.
        let streams: Vec<&Stream> = [&self.video, &self.audio].into_iter().flatten().collect();
        let mut pmt = Vec::with_capacity(32);
        pmt.push(0x02); // table_id
        pmt.extend_from_slice(&section_length(9 + 5 * streams.len()));
        pmt.extend_from_slice(&PROGRAM.to_be_bytes());
        pmt.extend_from_slice(&[0xc1, 0x00, 0x00]);
        pmt.extend_from_slice(&(0xe000 | self.pcr_pid).to_be_bytes());
        pmt.extend_from_slice(&[0xf0, 0x00]); // program_info_length 0
        for s in streams {
            pmt.push(s.stream_type);
            pmt.extend_from_slice(&(0xe000 | s.pid).to_be_bytes());
            pmt.extend_from_slice(&[0xf0, 0x00]); // ES_info_length 0
        }
        write_section(out, PID_PMT, &mut self.pmt_cc, &pmt);
    }

    /// Appends one frame as a PES split into packets.
    ///
    /// PTS (and DTS when it differs) are the frame's milliseconds on a 90 kHz clock, plus
    /// [`TIMESTAMP_OFFSET_MS`]. Video becomes Annex B with an access unit delimiter first and,
    /// on keyframes without them, the configuration's parameter sets; its keyframes carry
    /// random_access_indicator and are preceded by PAT and PMT. AAC gets an ADTS header. Every
    /// PES on the PCR PID carries a PCR; when frames of the other PID come between them for
    /// more than [`PCR_INTERVAL_MS`], a PCR-only packet is inserted.
    pub fn push(&mut self, frame: &Frame, out: &mut BytesMut) {
        let is_video = frame.kind() == TrackKind::Video;
        let slot = if is_video { &self.video } else { &self.audio };
        let Some(stream) = slot.as_ref().filter(|s| s.codec == frame.codec) else {
            tracing::debug!(codec = ?frame.codec, "frame of a track not in the TS, skipped");
            return;
        };
        let Some(es) = stream.elementary(frame) else {
            return;
        };
        let (pid, stream_id) = (stream.pid, stream.stream_id);

        let audio_only = self.video.is_none();
        let tables_due = match self.last_tables_ms {
            None => true,
            Some(_) if is_video => frame.keyframe,
            Some(last) => audio_only && frame.dts >= last.saturating_add(TABLES_INTERVAL_MS),
        };
        if tables_due {
            self.write_tables(out);
            self.last_tables_ms = Some(frame.dts);
        }

        let dts = to_90k(frame.dts);
        let mut pts = to_90k(frame.pts());
        if pts < dts {
            tracing::debug!(
                dts = frame.dts,
                cts = frame.cts,
                "negative composition offset"
            );
            pts = dts;
        }
        let pcr_now = frame
            .dts
            .saturating_add(TIMESTAMP_OFFSET_MS)
            .saturating_sub(PCR_LEAD_MS)
            .saturating_mul(90);
        let pcr_now = self.last_pcr.map_or(pcr_now, |last| pcr_now.max(last));
        let pcr = if pid == self.pcr_pid {
            self.last_pcr = Some(pcr_now);
            Some(pcr_now)
        } else {
            let overdue = self
                .last_pcr
                .is_none_or(|last| pcr_now >= last.saturating_add(PCR_INTERVAL_MS * 90));
            if overdue {
                let pcr_cc = match self.pcr_pid {
                    PID_VIDEO => self.video.as_ref().map(|s| s.cc),
                    _ => self.audio.as_ref().map(|s| s.cc),
                };
                let mut cc = pcr_cc.unwrap_or(0);
                write_packet(out, self.pcr_pid, false, &mut cc, false, Some(pcr_now), &[]);
                self.last_pcr = Some(pcr_now);
            }
            None
        };

        let header = pes_header(stream_id, pts, (dts != pts).then_some(dts), es.len());
        let random_access = frame.keyframe && (is_video || audio_only);
        let slot = if is_video {
            &mut self.video
        } else {
            &mut self.audio
        };
        if let Some(stream) = slot.as_mut() {
            write_pes(out, pid, &mut stream.cc, &header, &es, random_access, pcr);
        }
    }
}

impl Stream {
    /// The stream for `track` on `pid`, or `None` for a codec TS does not carry here.
    fn new(track: &TrackInfo, pid: u16) -> Option<Stream> {
        let (stream_type, stream_id, format) = match track.codec {
            Codec::H264 => {
                let (length_size, param_sets) = match avc::DecoderConfig::parse(&track.config) {
                    Ok(c) => (c.length_size, c.sps.into_iter().chain(c.pps).collect()),
                    Err(_) => (4, Vec::new()),
                };
                let format = Format::Video {
                    h265: false,
                    length_size,
                    param_sets,
                };
                (STREAM_TYPE_H264, STREAM_ID_VIDEO, format)
            }
            Codec::H265 => {
                let (length_size, param_sets) = match hevc::DecoderConfig::parse(&track.config) {
                    Ok(c) => (c.length_size, hevc_param_sets(c.arrays)),
                    Err(_) => (4, Vec::new()),
                };
                let format = Format::Video {
                    h265: true,
                    length_size,
                    param_sets,
                };
                (STREAM_TYPE_H265, STREAM_ID_VIDEO, format)
            }
            Codec::Aac => {
                let asc = AudioSpecificConfig::parse(&track.config).ok();
                if asc.is_none() {
                    tracing::debug!("AAC track without a valid AudioSpecificConfig");
                }
                (STREAM_TYPE_AAC, STREAM_ID_AUDIO, Format::Aac(asc))
            }
            Codec::Mp3 => (STREAM_TYPE_MP3, STREAM_ID_AUDIO, Format::Raw),
            Codec::G711A | Codec::G711U | Codec::Opus => return None,
        };
        Some(Stream {
            pid,
            codec: track.codec,
            stream_type,
            stream_id,
            cc: 0,
            format,
        })
    }

    /// The elementary stream bytes of `frame`, or `None` when it cannot be carried.
    fn elementary(&self, frame: &Frame) -> Option<Vec<u8>> {
        match &self.format {
            Format::Video {
                h265,
                length_size,
                param_sets,
            } => Some(annex_b(frame, *h265, *length_size, param_sets)),
            Format::Aac(Some(asc)) => {
                let len = frame.data.len() + 7;
                if len > 0x1fff {
                    tracing::debug!(len, "AAC frame too long for ADTS, skipped");
                    return None;
                }
                let mut es = Vec::with_capacity(len);
                es.extend_from_slice(&asc.adts_header(frame.data.len()));
                es.extend_from_slice(&frame.data);
                Some(es)
            }
            Format::Aac(None) => {
                tracing::debug!("AAC frame without AudioSpecificConfig, skipped");
                None
            }
            Format::Raw => Some(frame.data.to_vec()),
        }
    }
}

/// VPS, SPS and PPS of an hvcC record, in that order (SEI arrays are left out).
fn hevc_param_sets(arrays: Vec<(u8, Vec<Bytes>)>) -> Vec<Bytes> {
    let mut out = Vec::new();
    for wanted in [hevc::NAL_VPS, hevc::NAL_SPS, hevc::NAL_PPS] {
        for (nal_type, nals) in &arrays {
            if *nal_type == wanted {
                out.extend(nals.iter().cloned());
            }
        }
    }
    out
}

/// The NAL units of an AVCC access unit with `length_size`-byte lengths. A length that runs past
/// the end stops the walk: what came before is kept.
pub(crate) fn avcc_nal_units(data: &[u8], length_size: u8) -> Vec<&[u8]> {
    let n = usize::from(length_size.clamp(1, 4));
    let mut nals = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_at_checked(n) else {
            tracing::debug!("truncated NAL length in AVCC frame");
            break;
        };
        let len = len.iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        let Some((nal, tail)) = tail.split_at_checked(len) else {
            tracing::debug!(len, "NAL unit runs past the AVCC frame");
            break;
        };
        if !nal.is_empty() {
            nals.push(nal);
        }
        rest = tail;
    }
    nals
}

/// The NAL unit type of an H.264 or H.265 NAL unit.
fn nal_type(nal: &[u8], h265: bool) -> u8 {
    let first = nal.first().copied().unwrap_or(0);
    if h265 {
        (first >> 1) & 0x3f
    } else {
        first & 0x1f
    }
}

/// An AVCC frame as Annex B (ITU-T H.264 Annex B): AUD first, then on keyframes the parameter
/// sets when the frame carries no SPS of its own, then the frame's NAL units minus any AUD.
fn annex_b(frame: &Frame, h265: bool, length_size: u8, param_sets: &[Bytes]) -> Vec<u8> {
    let nals = avcc_nal_units(&frame.data, length_size);
    let (aud, aud_type, sps_type): (&[u8], u8, u8) = if h265 {
        (&AUD_H265, 35, hevc::NAL_SPS)
    } else {
        (&AUD_H264, 9, avc::NAL_SPS)
    };
    let mut es = Vec::with_capacity(frame.data.len() + 64);
    es.extend_from_slice(&START_CODE);
    es.extend_from_slice(aud);
    let has_sps = nals.iter().any(|n| nal_type(n, h265) == sps_type);
    if frame.keyframe && !has_sps {
        for ps in param_sets {
            es.extend_from_slice(&START_CODE);
            es.extend_from_slice(ps);
        }
    }
    for nal in nals.iter().filter(|n| nal_type(n, h265) != aud_type) {
        es.extend_from_slice(&START_CODE);
        es.extend_from_slice(nal);
    }
    es
}

/// Milliseconds on the 90 kHz clock, offset by [`TIMESTAMP_OFFSET_MS`] (not wrapped).
fn to_90k(ms: u64) -> u64 {
    ms.saturating_add(TIMESTAMP_OFFSET_MS).saturating_mul(90)
}

/// section_syntax_indicator 1, '0', reserved '11', then a 12-bit section_length that counts
/// `body` bytes after it plus the 4-byte CRC.
fn section_length(body: usize) -> [u8; 2] {
    let len = (body + 4).min(0x3ff) as u16;
    (0xb000 | len).to_be_bytes()
}

/// One PSI section in one packet: pointer_field 0, the section, its CRC, 0xff stuffing.
fn write_section(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    let start = out.len();
    out.put_u8(SYNC_BYTE);
    out.put_u16(0x4000 | (pid & 0x1fff)); // payload_unit_start_indicator
    out.put_u8(0x10 | (*cc & 0x0f)); // payload only
    *cc = (*cc + 1) & 0x0f;
    out.put_u8(0); // pointer_field
    out.put_slice(section);
    out.put_u32(crc32_mpeg2(section));
    let written = out.len() - start;
    out.put_bytes(0xff, PACKET_SIZE.saturating_sub(written));
}

/// A PES header (§2.4.3.6) for `es_len` bytes of payload: PTS, and DTS when given.
/// PES_packet_length is 0 (unbounded, allowed for video only) when the packet exceeds 65 535.
fn pes_header(stream_id: u8, pts: u64, dts: Option<u64>, es_len: usize) -> Vec<u8> {
    let header_data_len: u8 = if dts.is_some() { 10 } else { 5 };
    let packet_len = 3 + usize::from(header_data_len) + es_len;
    let packet_len = u16::try_from(packet_len).unwrap_or(0);
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(&[0, 0, 1, stream_id]);
    h.extend_from_slice(&packet_len.to_be_bytes());
    h.push(0x84); // '10', not scrambled, data_alignment_indicator
    h.push(if dts.is_some() { 0xc0 } else { 0x80 });
    h.push(header_data_len);
    match dts {
        Some(dts) => {
            h.extend_from_slice(&timestamp(0x3, pts));
            h.extend_from_slice(&timestamp(0x1, dts));
        }
        None => h.extend_from_slice(&timestamp(0x2, pts)),
    }
    h
}

/// A 33-bit timestamp in the 5-byte PES layout, `prefix` in the top nibble and marker bits.
fn timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & TS_MASK;
    [
        (prefix << 4) | ((ts >> 29) as u8 & 0x0e) | 1,
        (ts >> 22) as u8,
        ((ts >> 14) as u8 & 0xfe) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8 & 0xfe) | 1,
    ]
}

/// A PES (header then `es`) as packets; the first carries PUSI and the adaptation-field flags.
fn write_pes(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    header: &[u8],
    es: &[u8],
    random_access: bool,
    pcr: Option<u64>,
) {
    let mut pes = Vec::with_capacity(header.len() + es.len());
    pes.extend_from_slice(header);
    pes.extend_from_slice(es);
    let mut rest = &pes[..];
    let mut first = true;
    while first || !rest.is_empty() {
        let (rai, pcr) = if first {
            (random_access, pcr)
        } else {
            (false, None)
        };
        let used = write_packet(out, pid, first, cc, rai, pcr, rest);
        rest = rest.get(used..).unwrap_or_default();
        first = false;
    }
}

/// Writes one packet with as much of `payload` as fits and returns how much that was. An
/// adaptation field (§2.4.3.4) is added for the flags, the PCR, or to stuff a short payload to
/// 188 bytes. With an empty payload the packet is adaptation field only and the continuity
/// counter is not incremented (§2.4.3.3).
fn write_packet(
    out: &mut BytesMut,
    pid: u16,
    pusi: bool,
    cc: &mut u8,
    random_access: bool,
    pcr: Option<u64>,
    payload: &[u8],
) -> usize {
    let flag_bytes = match (random_access, pcr.is_some()) {
        (_, true) => 1 + 6,
        (true, false) => 1,
        (false, false) => 0,
    };
    let adaptation = flag_bytes > 0 || payload.len() < PAYLOAD_SIZE;
    let (take, af_len) = if adaptation {
        let room = PAYLOAD_SIZE - 1 - flag_bytes;
        let take = payload.len().min(room);
        (take, Some(PAYLOAD_SIZE - 1 - take))
    } else {
        (PAYLOAD_SIZE, None)
    };
    let control = match (af_len.is_some(), take > 0) {
        (true, true) => 0x30,
        (true, false) => 0x20,
        _ => 0x10,
    };
    let counter = if take > 0 {
        let c = *cc;
        *cc = (*cc + 1) & 0x0f;
        c
    } else {
        cc.wrapping_sub(1) & 0x0f
    };
    out.put_u8(SYNC_BYTE);
    out.put_u16(u16::from(pusi) << 14 | (pid & 0x1fff));
    out.put_u8(control | counter);
    if let Some(af_len) = af_len {
        out.put_u8(af_len as u8);
        if af_len > 0 {
            out.put_u8(u8::from(random_access) << 6 | u8::from(pcr.is_some()) << 4);
            if let Some(pcr) = pcr {
                let base = pcr & TS_MASK;
                out.put_u32((base >> 1) as u32);
                out.put_u8(((base & 1) as u8) << 7 | 0x7e); // 6 reserved bits, extension 0
                out.put_u8(0);
            }
            let pcr_bytes = if pcr.is_some() { 6 } else { 0 };
            out.put_bytes(0xff, af_len - 1 - pcr_bytes);
        }
    }
    out.put_slice(payload.get(..take).unwrap_or_default());
    take
}

/// CRC-32/MPEG-2 (ISO/IEC 13818-1 Annex A): polynomial 0x04c11db7, initial 0xffffffff, no
/// reflection, no final xor.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xffff_ffff, |crc, b| {
        (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04c1_1db7
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
#[path = "ts_tests.rs"]
mod tests;
