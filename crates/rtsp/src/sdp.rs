//! Session descriptions (RFC 4566) as RTSP uses them: the SDP a server answers DESCRIBE with,
//! built from a stream's [`TrackInfo`]s, and the tracks of the SDP a publisher sends with
//! ANNOUNCE (parsed by `sdp-types`).
//!
//! Codec parameters follow each payload format's RFC: H.264 RFC 6184 §8.1
//! (`sprop-parameter-sets`, `profile-level-id`), H.265 RFC 7798 §7.1 (`sprop-vps/sps/pps`),
//! AAC RFC 3640 §4.1 (`mpeg4-generic`, AAC-hbr, `config` = hex AudioSpecificConfig), G.711
//! RFC 3551 (static payload types 0 and 8), Opus RFC 7587 §6.1 (`opus/48000/2`).

use std::fmt::Write as _;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use media::{avc, hevc, Codec, TrackInfo};

use crate::Error;

/// One media section: the track and how it travels over RTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Codec and configuration.
    pub info: TrackInfo,
    /// RTP payload type.
    pub payload_type: u8,
    /// RTP clock rate (90 000 for video, the sample rate for audio).
    pub clock_rate: u32,
    /// The `a=control:` value: relative (`trackID=0`, `streamid=0`) or an absolute URL.
    pub control: String,
}

impl Track {
    /// The track the server offers for `info` as its `index`-th media section: dynamic payload
    /// types 96 + index, static 0 (PCMU) and 8 (PCMA), control `trackID=<index>`. `None` for a
    /// codec RTSP output does not carry (MP3).
    pub fn offer(info: &TrackInfo, index: usize) -> Option<Track> {
        let dynamic = 96 + (index.min(31) as u8);
        let (payload_type, clock_rate) = match info.codec {
            Codec::H264 | Codec::H265 => (dynamic, 90_000),
            Codec::Aac => (dynamic, info.sample_rate.max(1)),
            Codec::Opus => (dynamic, 48_000),
            Codec::G711A => (8, 8000),
            Codec::G711U => (0, 8000),
            Codec::Mp3 => return None,
        };
        Some(Track {
            info: info.clone(),
            payload_type,
            clock_rate,
            control: format!("trackID={index}"),
        })
    }
}

/// The SDP for DESCRIBE: one media section per track the server can send
/// ([`Track::offer`]), each with `a=control:trackID=N`.
pub fn describe(tracks: &[TrackInfo], session_name: &str) -> (String, Vec<Track>) {
    let offered: Vec<Track> = tracks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Track::offer(t, i))
        .collect();
    (write(&offered, session_name), offered)
}

/// Writes an SDP holding `tracks`.
pub fn write(tracks: &[Track], session_name: &str) -> String {
    let mut s = String::new();
    let name: String = session_name.chars().filter(|c| !c.is_control()).collect();
    let name = if name.is_empty() { "-".into() } else { name };
    // `fmt::Write` into a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
         a=range:npt=now-\r\na=control:*\r\n"
    );
    for t in tracks {
        let pt = t.payload_type;
        let kind = if t.info.codec.kind() == media::TrackKind::Video {
            "video"
        } else {
            "audio"
        };
        let _ = write!(s, "m={kind} 0 RTP/AVP {pt}\r\n");
        match t.info.codec {
            Codec::H264 => {
                let _ = write!(s, "a=rtpmap:{pt} H264/90000\r\n");
                let mut fmtp = String::from("packetization-mode=1");
                if let Ok(c) = avc::DecoderConfig::parse(&t.info.config) {
                    let sets: Vec<String> = c
                        .sps
                        .iter()
                        .chain(&c.pps)
                        .map(|n| STANDARD.encode(n))
                        .collect();
                    if !sets.is_empty() {
                        let _ = write!(fmtp, ";sprop-parameter-sets={}", sets.join(","));
                    }
                    if let Some(sps) = c.sps.first().and_then(|s| s.get(1..4)) {
                        let _ = write!(fmtp, ";profile-level-id={}", hex(sps));
                    }
                }
                let _ = write!(s, "a=fmtp:{pt} {fmtp}\r\n");
            }
            Codec::H265 => {
                let _ = write!(s, "a=rtpmap:{pt} H265/90000\r\n");
                if let Ok(c) = hevc::DecoderConfig::parse(&t.info.config) {
                    let mut params = Vec::new();
                    for (name, nal_type) in [
                        ("sprop-vps", hevc::NAL_VPS),
                        ("sprop-sps", hevc::NAL_SPS),
                        ("sprop-pps", hevc::NAL_PPS),
                    ] {
                        let sets: Vec<String> = c
                            .arrays
                            .iter()
                            .filter(|(t, _)| *t == nal_type)
                            .flat_map(|(_, n)| n.iter().map(|n| STANDARD.encode(n)))
                            .collect();
                        if !sets.is_empty() {
                            params.push(format!("{name}={}", sets.join(",")));
                        }
                    }
                    if !params.is_empty() {
                        let _ = write!(s, "a=fmtp:{pt} {}\r\n", params.join(";"));
                    }
                }
            }
            Codec::Aac => {
                let channels = t.info.channels.max(1);
                let _ = write!(
                    s,
                    "a=rtpmap:{pt} MPEG4-GENERIC/{}/{channels}\r\n\
                     a=fmtp:{pt} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;\
                     indexlength=3;indexdeltalength=3;config={}\r\n",
                    t.clock_rate,
                    hex(&t.info.config)
                );
            }
            Codec::Opus => {
                let _ = write!(s, "a=rtpmap:{pt} opus/48000/2\r\n");
            }
            Codec::G711A => {
                let _ = write!(s, "a=rtpmap:{pt} PCMA/8000\r\n");
            }
            Codec::G711U => {
                let _ = write!(s, "a=rtpmap:{pt} PCMU/8000\r\n");
            }
            Codec::Mp3 => {}
        }
        let _ = write!(s, "a=control:{}\r\n", t.control);
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(2 * b.len()), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

/// The tracks of an ANNOUNCE body. Media sections with a codec this server does not carry are
/// skipped (and logged); an SDP with none left is [`Error::Unsupported`].
pub fn parse(body: &[u8]) -> Result<Vec<Track>, Error> {
    let session = sdp_types::Session::parse(body).map_err(|_| Error::malformed(0, "SDP"))?;
    let mut tracks = Vec::new();
    for (index, media) in session.medias.iter().enumerate() {
        match parse_media(media) {
            Ok(t) => tracks.push(t),
            Err(e) => tracing::debug!(index, error = %e, "SDP media section skipped"),
        }
    }
    if tracks.is_empty() {
        return Err(Error::Unsupported("no supported media in the SDP".into()));
    }
    Ok(tracks)
}

fn parse_media(media: &sdp_types::Media) -> Result<Track, Error> {
    let payload_type: u8 = media
        .fmt
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .filter(|&pt: &u8| pt < 128)
        .ok_or(Error::malformed(0, "SDP media format"))?;
    let attr = |name: &str, pt_prefixed: bool| {
        media.attributes.iter().find_map(|a| {
            if a.attribute != name {
                return None;
            }
            let value = a.value.as_deref()?;
            if !pt_prefixed {
                return Some(value.trim());
            }
            let (pt, rest) = value.split_once(' ')?;
            (pt.trim().parse::<u8>().ok()? == payload_type).then_some(rest.trim())
        })
    };
    let rtpmap = attr("rtpmap", true);
    let (encoding, clock_rate, params) = match rtpmap {
        Some(m) => {
            let mut parts = m.split('/');
            let encoding = parts.next().unwrap_or("").to_ascii_uppercase();
            let clock: u32 = parts
                .next()
                .and_then(|c| c.trim().parse().ok())
                .ok_or(Error::malformed(0, "SDP rtpmap clock rate"))?;
            (encoding, clock, parts.next().map(str::trim))
        }
        // Static payload types of RFC 3551 §6 need no rtpmap.
        None => match payload_type {
            0 => ("PCMU".into(), 8000, None),
            8 => ("PCMA".into(), 8000, None),
            _ => return Err(Error::malformed(0, "SDP rtpmap missing")),
        },
    };
    let fmtp: Vec<(String, &str)> = attr("fmtp", true)
        .map(|f| {
            f.split(';')
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_ascii_lowercase(), v.trim()))
                })
                .collect()
        })
        .unwrap_or_default();
    let fmtp_value = |key: &str| fmtp.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let control = attr("control", false).unwrap_or("").to_owned();

    let (codec, config) = match encoding.as_str() {
        "H264" => (Codec::H264, h264_config(fmtp_value("sprop-parameter-sets"))),
        "H265" => {
            let first = |k| {
                fmtp_value(k)
                    .and_then(|v| v.split(',').next())
                    .and_then(unbase64)
            };
            let config = match (first("sprop-vps"), first("sprop-sps"), first("sprop-pps")) {
                (Some(v), Some(s), Some(p)) => hevc::DecoderConfig::build(&v, &s, &p).ok(),
                _ => None,
            };
            (Codec::H265, config.unwrap_or_default())
        }
        "MPEG4-GENERIC" => {
            let mode = fmtp_value("mode").unwrap_or("");
            let size_length = fmtp_value("sizelength").unwrap_or("");
            if !mode.eq_ignore_ascii_case("AAC-hbr") || size_length != "13" {
                return Err(Error::Unsupported(format!(
                    "mpeg4-generic mode {mode:?} sizelength {size_length:?}"
                )));
            }
            let config = fmtp_value("config")
                .and_then(unhex)
                .ok_or(Error::malformed(0, "mpeg4-generic config"))?;
            (Codec::Aac, Bytes::from(config))
        }
        "PCMA" => (Codec::G711A, Bytes::new()),
        "PCMU" => (Codec::G711U, Bytes::new()),
        "OPUS" => (Codec::Opus, Bytes::new()),
        other => {
            return Err(Error::Unsupported(format!(
                "codec {other} (channels {params:?})"
            )))
        }
    };
    Ok(Track {
        info: TrackInfo::new(codec, config),
        payload_type,
        clock_rate,
        control,
    })
}

/// An `avcC` from `sprop-parameter-sets` (RFC 6184 §8.1: base64 NAL units, comma-separated);
/// empty when they are absent or unusable, so the in-band ones are waited for.
fn h264_config(sets: Option<&str>) -> Bytes {
    let nals: Vec<Vec<u8>> = sets.unwrap_or("").split(',').filter_map(unbase64).collect();
    let of_type = |t: u8| {
        nals.iter()
            .filter(move |n| n.first().map(|h| h & 0x1f) == Some(t))
    };
    let Some(sps) = of_type(avc::NAL_SPS).next() else {
        return Bytes::new();
    };
    let pps: Vec<&[u8]> = of_type(avc::NAL_PPS).map(Vec::as_slice).collect();
    if pps.is_empty() {
        return Bytes::new();
    }
    avc::DecoderConfig::build(sps, &pps).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ffmpeg 6.1 (`-f rtsp`, libx264 + aac) sends with ANNOUNCE.
    pub(crate) const FFMPEG_ANNOUNCE_SDP: &str = "v=0\r\n\
        o=- 0 0 IN IP4 127.0.0.1\r\n\
        s=No Name\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        a=tool:libavformat 60.16.100\r\n\
        m=video 0 RTP/AVP 96\r\n\
        b=AS:1000\r\n\
        a=rtpmap:96 H264/90000\r\n\
        a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=,aOvjyyLA; profile-level-id=64001F\r\n\
        a=control:streamid=0\r\n\
        m=audio 0 RTP/AVP 97\r\n\
        b=AS:128\r\n\
        a=rtpmap:97 MPEG4-GENERIC/44100/2\r\n\
        a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=121056E500\r\n\
        a=control:streamid=1\r\n";

    #[test]
    fn parses_ffmpeg_announce() {
        let tracks = parse(FFMPEG_ANNOUNCE_SDP.as_bytes()).expect("parses");
        assert_eq!(tracks.len(), 2);
        let v = &tracks[0];
        assert_eq!(
            (v.info.codec, v.payload_type, v.clock_rate),
            (Codec::H264, 96, 90_000)
        );
        assert_eq!(v.control, "streamid=0");
        let avcc = avc::DecoderConfig::parse(&v.info.config).expect("avcC");
        assert_eq!((avcc.profile, avcc.level), (0x64, 0x1f));
        assert_eq!((v.info.width, v.info.height), (1280, 720));
        let a = &tracks[1];
        assert_eq!(
            (a.info.codec, a.payload_type, a.clock_rate),
            (Codec::Aac, 97, 44_100)
        );
        assert_eq!(&a.info.config[..], &[0x12, 0x10, 0x56, 0xe5, 0x00]);
        assert_eq!((a.info.sample_rate, a.info.channels), (44_100, 2));
        assert_eq!(a.control, "streamid=1");
    }

    #[test]
    fn describe_round_trips() {
        let avcc = avc::DecoderConfig::build(
            &unbase64("Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=").expect("b64"),
            &[&unbase64("aOvjyyLA").expect("b64")],
        )
        .expect("avcC");
        let hvcc = hevc::DecoderConfig::build(
            crate::h265::tests::VPS,
            crate::h265::tests::SPS,
            crate::h265::tests::PPS,
        )
        .expect("hvcC");
        let infos = [
            TrackInfo::new(Codec::H264, avcc),
            TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x11, 0x90])),
            TrackInfo::new(Codec::H265, hvcc),
            TrackInfo::new(Codec::G711A, Bytes::new()),
            TrackInfo::new(Codec::G711U, Bytes::new()),
            TrackInfo::new(Codec::Opus, Bytes::new()),
            TrackInfo::new(Codec::Mp3, Bytes::new()),
        ];
        let (sdp, offered) = describe(&infos, "live/cam");
        assert_eq!(offered.len(), 6, "MP3 is not offered");
        assert!(sdp.contains("a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=,aOvjyyLA;profile-level-id=64001f\r\n"), "{sdp}");
        assert!(
            sdp.contains("a=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("config=1190\r\n"));
        assert!(sdp.contains("a=rtpmap:98 H265/90000\r\na=fmtp:98 sprop-vps="));
        assert!(
            sdp.contains("m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:trackID=3\r\n")
        );
        assert!(sdp.contains("a=rtpmap:101 opus/48000/2\r\n"));
        assert_eq!(parse(sdp.as_bytes()).expect("parses"), offered);
    }

    #[test]
    fn bad_sdps() {
        assert!(matches!(parse(b"hello"), Err(Error::Malformed { .. })));
        assert!(matches!(
            parse(b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"),
            Err(Error::Unsupported(_))
        ));
        // Missing parameter sets: the track is kept with an empty config (in band later).
        let t = parse(b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n").expect("ok");
        assert!(t[0].info.config.is_empty());
        assert!(parse(b"v=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-lbr;sizelength=6\r\n").is_err());
        assert!(parse(b"v=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-hbr;sizelength=13;config=1z\r\n").is_err());
        assert_eq!(unhex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("é0"), None);
    }
}
