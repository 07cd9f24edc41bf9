//! The muxers' boxes read back field by field: what the init segment declares, where `trun`
//! says each sample is, and where the progressive index's chunk offsets point.

use bytes::Bytes;
use media::{avc, Codec, Frame, TrackInfo};
use mp4::{find, payload, Error, Fmp4Muxer, Fragment, Progressive, SampleInfo};

/// SPS and PPS of x264 (core 164) for `testsrc=size=320x240`, High profile level 1.3.
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
const ASC: [u8; 2] = [0x12, 0x10];

fn tracks() -> Vec<TrackInfo> {
    vec![
        TrackInfo::new(
            Codec::H264,
            avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
        ),
        TrackInfo::new(Codec::Aac, Bytes::from_static(&ASC)),
    ]
}

fn video(dts: u64, cts: i32, keyframe: bool, tag: u8) -> Frame {
    Frame {
        codec: Codec::H264,
        dts,
        cts,
        keyframe,
        data: Bytes::from(vec![
            0,
            0,
            0,
            3,
            if keyframe { 0x65 } else { 0x41 },
            0x9a,
            tag,
        ]),
    }
}

fn audio(dts: u64, tag: u8) -> Frame {
    Frame {
        codec: Codec::Aac,
        dts,
        cts: 0,
        keyframe: true,
        data: Bytes::from(vec![0x21, 0x10, tag, tag]),
    }
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn body<'a>(data: &'a [u8], path: &[[u8; 4]]) -> &'a [u8] {
    let range = find(data, path).unwrap_or_else(|| panic!("no {path:?}"));
    &data[payload(data, &range).expect("payload")]
}

/// A `trun`'s data offset and (duration, size, flags, cts) per sample.
fn trun(moof: &[u8], traf: usize) -> (i32, Vec<(u32, u32, u32, i32)>) {
    let moof_body = body(moof, &[*b"moof"]);
    let traf = mp4::boxes(moof_body)
        .map(|b| b.expect("box"))
        .filter(|(t, _)| t == b"traf")
        .nth(traf)
        .expect("traf")
        .1;
    let traf = &moof_body[traf.start + 8..traf.end];
    let run = body(traf, &[*b"trun"]);
    let flags = u32_at(run, 0) & 0xff_ffff;
    let count = u32_at(run, 4) as usize;
    let offset = u32_at(run, 8) as i32;
    let with_cts = flags & 0x800 != 0;
    let stride = if with_cts { 16 } else { 12 };
    let samples = (0..count)
        .map(|i| {
            let at = 12 + i * stride;
            let cts = if with_cts {
                u32_at(run, at + 12) as i32
            } else {
                0
            };
            (
                u32_at(run, at),
                u32_at(run, at + 4),
                u32_at(run, at + 8),
                cts,
            )
        })
        .collect();
    (offset, samples)
}

#[test]
fn tracks_it_cannot_carry_are_left_out() {
    let mp3 = TrackInfo::new(Codec::Mp3, Bytes::new());
    assert!(matches!(
        Fmp4Muxer::new(std::slice::from_ref(&mp3)),
        Err(Error::Unsupported(_))
    ));
    let no_config = TrackInfo::new(Codec::H264, Bytes::new());
    let aac = TrackInfo::new(Codec::Aac, Bytes::from_static(&ASC));
    let muxer = Fmp4Muxer::new(&[no_config, mp3, aac.clone()]).expect("muxer");
    assert_eq!(muxer.tracks(), [aac]);
    assert_eq!(muxer.timescale(0), Some(44_100));
}

#[test]
fn init_segment_declares_every_track() {
    let muxer = Fmp4Muxer::new(&tracks()).expect("muxer");
    let init = muxer.init_segment();
    let top: Vec<_> = mp4::boxes(&init).map(|b| b.expect("box").0).collect();
    assert_eq!(top, [*b"ftyp", *b"moov"]);
    assert_eq!(&body(&init, &[*b"ftyp"])[..4], b"iso6");
    let moov = body(&init, &[*b"moov"]);
    let children: Vec<_> = mp4::boxes(moov).map(|b| b.expect("box").0).collect();
    assert_eq!(children, [*b"mvhd", *b"trak", *b"trak", *b"mvex"]);
    let trex: Vec<_> = mp4::boxes(body(&init, &[*b"moov", *b"mvex"]))
        .map(|b| b.expect("box").0)
        .collect();
    assert_eq!(trex, [*b"trex", *b"trex"]);

    let stsd = body(
        &init,
        &[*b"moov", *b"trak", *b"mdia", *b"minf", *b"stbl", *b"stsd"],
    );
    let avc1 = &stsd[8..];
    assert_eq!(&avc1[4..8], b"avc1");
    // width and height of the VisualSampleEntry, from the SPS.
    assert_eq!(&avc1[8 + 24..8 + 28], [0x01, 0x40, 0x00, 0xf0]);
    let avcc = &avc1[8 + 78..];
    assert_eq!(&avcc[4..8], b"avcC");
    assert_eq!(&avcc[8..], &tracks()[0].config[..]);

    // The AudioSpecificConfig ends the esds' DecoderSpecificInfo.
    assert!(init
        .windows(2 + 5)
        .any(|w| w == [0x05, 0x80, 0x80, 0x80, 0x02, ASC[0], ASC[1]]));
    assert!(init.windows(4).any(|w| w == b"mp4a"));
}

#[test]
fn fragments_say_where_each_sample_is() {
    let mut muxer = Fmp4Muxer::new(&tracks()).expect("muxer");
    assert!(muxer.fragment().is_none());
    // Video before the first keyframe cannot be decoded.
    muxer.push(&video(0, 0, false, 9));
    assert_eq!(muxer.buffered_ms(), 0);
    assert!(muxer.fragment().is_none());

    let frames = [
        video(40, 80, true, 1),
        audio(45, 1),
        audio(68, 2),
        video(80, 0, false, 2),
        audio(91, 3),
        video(120, 40, false, 3),
    ];
    frames.iter().for_each(|f| muxer.push(f));
    assert_eq!(muxer.buffered_ms(), 80);
    let f = muxer.fragment_before(160).expect("fragment");
    assert_eq!(f.sequence, 1);
    assert_eq!((f.start_ms, f.duration_ms), (40, 120));
    assert!(f.independent);
    assert_eq!(muxer.buffered_ms(), 0);

    let (offset, v) = trun(&f.data, 0);
    assert_eq!(
        v,
        [
            (3600, 7, 0x0200_0000, 7200),
            (3600, 7, 0x0101_0000, 0),
            (3600, 7, 0x0101_0000, 3600)
        ]
    );
    assert_eq!(offset as usize, f.mdat_payload.start);
    assert_eq!(&f.data[offset as usize..][..7], &frames[0].data[..]);
    let (offset, a) = trun(&f.data, 1);
    // 45, 68 and 91 ms at 44.1 kHz: 1985, 2999 and 4013 ticks; the last lasts to 160 ms.
    let durations: Vec<_> = a.iter().map(|s| s.0).collect();
    assert_eq!(durations, [1014, 1014, 7056 - 4013]);
    assert_eq!(offset as usize, f.mdat_payload.start + 21);
    assert_eq!(&f.data[offset as usize..][..4], &frames[1].data[..]);
    assert_eq!(
        body(&f.data, &[*b"moof", *b"mfhd"]),
        [0, 0, 0, 0, 0, 0, 0, 1]
    );

    assert_eq!(f.samples.len(), 6);
    assert_eq!(
        f.samples[0],
        SampleInfo {
            track: 0,
            size: 7,
            duration: 3600,
            cts_offset: 7200,
            sync: true
        }
    );
    assert_eq!(f.samples[3].track, 1);

    // A fragment cut without knowing what comes next: the last sample lasts as long as the
    // one before it (video), or one AAC frame.
    muxer.push(&video(160, 0, false, 4));
    muxer.push(&video(200, 0, false, 5));
    muxer.push(&audio(182, 4));
    let f = muxer.fragment().expect("fragment");
    assert_eq!(f.sequence, 2);
    assert!(!f.independent);
    let (_, v) = trun(&f.data, 0);
    assert_eq!(v.iter().map(|s| s.0).collect::<Vec<_>>(), [3600, 3600]);
    let (_, a) = trun(&f.data, 1);
    assert_eq!(a.iter().map(|s| s.0).collect::<Vec<_>>(), [1024]);
    let tfdt = body(&f.data, &[*b"moof", *b"traf", *b"tfdt"]);
    assert_eq!(tfdt, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x38, 0x40]);
}

#[test]
fn progressive_chunk_offsets_point_at_the_samples() {
    let mut muxer = Fmp4Muxer::new(&tracks()).expect("muxer");
    let mut index = Progressive::new(&muxer);
    let mut fragments = Vec::new();
    for second in 0..3u64 {
        for i in 0..25u64 {
            let dts = second * 1000 + i * 40;
            muxer.push(&video(dts, 0, i == 0, i as u8));
            muxer.push(&audio(dts + 10, i as u8));
        }
        let f = muxer
            .fragment_before((second + 1) * 1000)
            .expect("fragment");
        index.add(&f);
        fragments.push(f);
    }
    assert_eq!(index.duration_ms(), 3000);
    let header = index.header();
    let mut file = header.to_vec();
    for f in &fragments {
        file.extend_from_slice(&f.data[f.mdat_payload.clone()]);
    }
    let top: Vec<_> = mp4::boxes(&file).map(|b| b.expect("box").0).collect();
    assert_eq!(top, [*b"ftyp", *b"moov", *b"mdat"]);
    assert_eq!(
        find(&file, &[*b"mdat"]).expect("mdat").start + 8,
        header.len()
    );

    let stbl = [*b"moov", *b"trak", *b"mdia", *b"minf", *b"stbl"];
    let with = |b: &[u8; 4]| {
        let mut p = stbl.to_vec();
        p.push(*b);
        p
    };
    let stco = body(&file, &with(b"stco"));
    assert_eq!(u32_at(stco, 4), 3, "one chunk per fragment");
    for (chunk, f) in fragments.iter().enumerate() {
        let at = u32_at(stco, 8 + chunk * 4) as usize;
        assert_eq!(&file[at..at + 7], &f.data[f.mdat_payload.start..][..7]);
    }
    let stss = body(&file, &with(b"stss"));
    assert_eq!(
        &stss[4..],
        [0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 26, 0, 0, 0, 51]
    );
    let stsz = body(&file, &with(b"stsz"));
    assert_eq!(u32_at(stsz, 8), 75);
    assert_eq!(
        body(&file, &with(b"stts")),
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 75, 0, 0, 0x0e, 0x10]
    );
    assert!(
        find(&file, &with(b"ctts")).is_none(),
        "no composition offsets"
    );
    assert_eq!(
        body(&file, &with(b"stsc")),
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25, 0, 0, 0, 1]
    );
    let mvhd = body(&file, &[*b"moov", *b"mvhd"]);
    assert_eq!((u32_at(mvhd, 12), u32_at(mvhd, 16)), (1000, 3000));
}

#[test]
fn progressive_past_4_gib_uses_co64_and_a_large_mdat() {
    let muxer = Fmp4Muxer::new(&tracks()).expect("muxer");
    let mut index = Progressive::new(&muxer);
    // Stand-ins for 3 fragments of 2 GiB of video each (the index never reads the media).
    let size = 1u32 << 31;
    for n in 0..3u32 {
        index.add(&Fragment {
            data: Bytes::new(),
            mdat_payload: 0..size as usize,
            start_ms: u64::from(n) * 1000,
            duration_ms: 1000,
            independent: true,
            samples: vec![SampleInfo {
                track: 0,
                size,
                duration: 90_000,
                cts_offset: 0,
                sync: true,
            }],
            sequence: n + 1,
        });
    }
    let header = index.header();
    let stbl = [*b"moov", *b"trak", *b"mdia", *b"minf", *b"stbl"];
    let co64 = body(&header, &[stbl.as_slice(), &[*b"co64"]].concat());
    let payload_start = header.len() as u64;
    let offsets: Vec<u64> = (0..3)
        .map(|i| u64::from_be_bytes(co64[8 + i * 8..16 + i * 8].try_into().expect("8")))
        .collect();
    assert_eq!(
        offsets,
        [0, 1, 2].map(|i| payload_start + i * u64::from(size))
    );
    let mdat = &header[header.len() - 16..];
    assert_eq!(&mdat[..8], [0, 0, 0, 1, b'm', b'd', b'a', b't']);
    assert_eq!(
        u64::from_be_bytes(mdat[8..].try_into().expect("8")),
        16 + 3 * u64::from(size)
    );
    assert_eq!(index.duration_ms(), 3000);
}

#[test]
fn fragments_cut_before_a_video_frame_bound_only_the_video() {
    let mut muxer = Fmp4Muxer::new(&tracks()).expect("muxer");
    for f in [
        video(40, 0, true, 1),
        audio(45, 1),
        audio(68, 2),
        video(80, 0, false, 2),
        audio(91, 3),
    ] {
        muxer.push(&f);
    }
    let f = muxer.fragment_before_video(120).expect("fragment");
    let (_, v) = trun(&f.data, 0);
    // The video's last sample lasts up to the next video frame (120 ms).
    let video_durations: Vec<_> = v.iter().map(|s| s.0).collect();
    assert_eq!(video_durations, [3600, 3600]);
    // The audio's last sample keeps an AAC frame's 1024 samples, not stretched to 120 ms.
    let (_, a) = trun(&f.data, 1);
    let audio_durations: Vec<_> = a.iter().map(|s| s.0).collect();
    assert_eq!(audio_durations, [1014, 1014, 1024]);
}
