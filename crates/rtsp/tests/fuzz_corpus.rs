//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and any past crashes
//! (`fuzz/regressions/<target>/`) through the same functions the cargo-fuzz targets call, on
//! stable Rust. `UPDATE_GOLDEN=1` rewrites the seed files this test generates.

use bytes::{BufMut, Bytes, BytesMut};
use media::{avc, hevc, Codec, Frame, TrackInfo};
use rtsp::fuzzing::{self, demux_records, packet_records, DemuxRecord};
use rtsp::mux::Muxer;
use rtsp::rtp::{self, Packet, ReceiverReport, ReportBlock, SenderReport};
use rtsp::{aac, h264, h265, sdp, RtspConfig};

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

/// The demuxer seeds reach what they were made for: both tracks' configurations (in band for
/// the SDPs without parameter sets) and frames of both tracks.
#[test]
fn demux_seeds_give_frames() {
    use rtsp::demux::DemuxEvent;
    for (target, name, data) in seeds() {
        if target != "rtsp_demux" || name.starts_with("bad_") {
            continue;
        }
        let events = fuzzing::demux_events(&data);
        let tracks = events
            .iter()
            .filter(|e| matches!(e, DemuxEvent::Track(_)))
            .count();
        let video = events
            .iter()
            .filter(|e| matches!(e, DemuxEvent::Frame(f) if f.kind() == media::TrackKind::Video))
            .count();
        let audio = events
            .iter()
            .filter(|e| matches!(e, DemuxEvent::Frame(f) if f.kind() == media::TrackKind::Audio))
            .count();
        assert_eq!(tracks, 2, "{name}: {events:?}");
        assert_eq!(audio, 8, "{name}");
        // The lost packet is a whole frame; the next frame cannot know it kept its own first
        // packet, so it goes too.
        let expected_video = if name.contains("loss") { 6 } else { 8 };
        assert_eq!(video, expected_video, "{name}");
    }
}

/// The session seeds go all the way through a session answered by a willing driver: every
/// request gets a 200 and the TEARDOWN ends it, so the fuzzer starts from the deep states.
#[test]
fn session_seeds_reach_teardown() {
    use rtsp::session::{Event, Session};
    use std::time::Instant;
    for (target, name, data) in seeds() {
        if target != "rtsp_message" || !name.starts_with("session_") {
            continue;
        }
        let now = Instant::now();
        let mut s = Session::new("1a2b3c".into(), &RtspConfig::default(), now);
        s.handle_input(now, &data).expect("valid");
        let mut events = Vec::new();
        while let Some(event) = s.poll_event() {
            match &event {
                Event::Describe { .. } => s
                    .describe_ok(now, "v=0\r\n", vec!["trackID=0".into(), "trackID=1".into()])
                    .expect("valid"),
                Event::Announce { sdp, .. } => {
                    let tracks = sdp::parse(sdp).expect("the seed's SDP parses");
                    s.announce_ok(now, tracks.into_iter().map(|t| t.control).collect())
                        .expect("valid")
                }
                Event::Setup { transport, .. } => {
                    s.setup_ok(now, transport.clone()).expect("valid")
                }
                Event::Play { .. } => s.play_ok(now, "npt=0.000-", &[]).expect("valid"),
                _ => {}
            }
            events.push(event);
        }
        assert_eq!(events.last(), Some(&Event::Teardown), "{name}: {events:?}");
        let mut out = BytesMut::new();
        s.poll_transmit(&mut out);
        let replies = String::from_utf8_lossy(&out);
        let requests = String::from_utf8_lossy(&data)
            .matches(" RTSP/1.0\r\n")
            .count();
        assert_eq!(
            replies.matches("RTSP/1.0 200 OK\r\n").count(),
            requests,
            "{name}: {replies}"
        );
    }
}

/// The client seeds take a client all the way: through the 401 (for the Digest one) to PLAY's
/// or RECORD's 200, the frames that follow, and the server's TEARDOWN.
#[test]
fn client_seeds_reach_streaming() {
    use rtsp::client::Event;
    use std::time::Instant;
    for (target, name, data) in seeds() {
        if target != "rtsp_client" || name.starts_with("bad_") {
            continue;
        }
        let now = Instant::now();
        let mut c = fuzzing::fuzz_client(data[0], now);
        c.handle_input(now, &data[1..]).expect("valid");
        let mut events = Vec::new();
        let mut port = 40_000;
        while let Some(event) = c.poll_event() {
            if let Event::BindUdp { track } = event {
                c.udp_bound(now, track, port).expect("valid");
                port += 2;
            }
            events.push(event);
        }
        let started = events
            .iter()
            .any(|e| matches!(e, Event::Playing | Event::Recording));
        assert!(started, "{name}: {events:?}");
        let media = events
            .iter()
            .filter(|e| matches!(e, Event::Media { .. }))
            .count();
        let expected_media = if name.contains("record") || name.contains("udp") {
            0
        } else {
            2
        };
        assert_eq!(media, expected_media, "{name}: {events:?}");
        assert_eq!(events.last(), Some(&Event::Ended), "{name}: {events:?}");
    }
}

/// Writes the seed corpus when `UPDATE_GOLDEN=1`; otherwise checks the generated seeds are
/// still what is committed (so a format change cannot silently stale the corpus).
#[test]
fn seed_corpus_is_current() {
    fuzzkit::check_seeds(seeds());
}

/// The SDP ffmpeg 6.1 sends with ANNOUNCE for libx264 + aac (`-f rtsp`), hand-built from its
/// usual layout.
const FFMPEG_SDP: &str = "v=0\r\n\
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

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
    0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    for n in nals {
        b.put_u32(n.len() as u32);
        b.put_slice(n);
    }
    b.freeze()
}

fn body(first: u8, len: usize) -> Vec<u8> {
    let mut v = vec![first];
    v.extend((0..len).map(|i| (i * 13 % 251) as u8));
    v
}

fn request(head: &str, body: &str) -> Vec<u8> {
    let mut v = head.replace('\n', "\r\n").into_bytes();
    if !body.is_empty() {
        v.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(body.as_bytes());
    v
}

fn drain(p: &mut h264::Packetizer) -> Vec<Packet> {
    std::iter::from_fn(|| p.pull()).collect()
}

/// Every seed: (target, file name, bytes). Valid inputs are hand-built from the RFCs and our
/// own packetizers; malformed ones are named for the fault.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut seeds = Vec::new();

    // Hand-written RTSP requests in the shape ffmpeg 6 and VLC 3 send (not captures).
    let describe = request(
        "DESCRIBE rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nAccept: application/sdp\nCSeq: 2\n\
         User-Agent: Lavf60.16.100\n",
        "",
    );
    seeds.push(("rtsp_message", "describe.txt", describe));
    let announce = request(
        "ANNOUNCE rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nContent-Type: application/sdp\n\
         CSeq: 2\nUser-Agent: Lavf60.16.100\n",
        FFMPEG_SDP,
    );
    seeds.push(("rtsp_message", "announce.txt", announce.clone()));
    let mut record = request(
        "SETUP rtsp://127.0.0.1:8554/live/cam/streamid=0 RTSP/1.0\n\
         Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\nCSeq: 3\n",
        "",
    );
    record.extend(request(
        "RECORD rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nRange: npt=0.000-\nCSeq: 5\n\
         Session: 1a2b3c\n",
        "",
    ));
    let mut p = h264::Packetizer::new(1400, 96, 0x1234, 0);
    p.push(0, &avcc(&[SPS, PPS, &body(0x65, 40)]))
        .expect("valid");
    let mut frames = BytesMut::new();
    for pkt in drain(&mut p) {
        rtsp::message::write_interleaved(0, &pkt.to_bytes(), &mut frames).expect("fits");
    }
    record.extend_from_slice(&frames);
    seeds.push(("rtsp_message", "setup_record_interleaved.bin", record));
    // A whole publish as the session sees it (ANNOUNCE, SETUP, RECORD, media, TEARDOWN), so
    // the fuzzer starts from the session's recording state.
    let mut publish = announce.clone();
    publish.extend(request(
        "SETUP rtsp://127.0.0.1:8554/live/cam/streamid=0 RTSP/1.0\n\
         Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\nCSeq: 3\n",
        "",
    ));
    publish.extend(request(
        "RECORD rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nRange: npt=0.000-\nCSeq: 4\n",
        "",
    ));
    publish.extend_from_slice(&frames);
    publish.extend(request(
        "TEARDOWN rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 5\n",
        "",
    ));
    seeds.push(("rtsp_message", "session_publish.bin", publish));
    // A player's requests sent all at once (pipelined, RFC 2326 §1.6 allows it), with a bare
    // CRLF keep-alive and an RTCP receiver report, so the answers decode what waits behind them.
    let mut play = Vec::new();
    for head in [
        "OPTIONS rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 1\n",
        "DESCRIBE rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nAccept: application/sdp\nCSeq: 2\n",
        "SETUP rtsp://127.0.0.1:8554/live/cam/trackID=0 RTSP/1.0\n\
         Transport: RTP/AVP/TCP;unicast;interleaved=0-1\nCSeq: 3\n",
        "SETUP rtsp://127.0.0.1:8554/live/cam/trackID=1 RTSP/1.0\n\
         Transport: RTP/AVP;unicast;client_port=5000-5001\nCSeq: 4\n",
        "PLAY rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nRange: npt=0.000-\nCSeq: 5\n",
    ] {
        play.extend(request(head, ""));
    }
    play.extend_from_slice(b"\r\n");
    let rr = [0x80, 0xc9, 0x00, 0x01, 0x00, 0x00, 0x12, 0x34];
    rtsp::message::write_interleaved(1, &rr, &mut frames).expect("fits");
    play.extend_from_slice(&frames[frames.len() - rr.len() - 4..]);
    for head in [
        "PAUSE rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 6\n",
        "GET_PARAMETER rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 7\n",
        "PLAY rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 8\n",
        "TEARDOWN rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 9\n",
    ] {
        play.extend(request(head, ""));
    }
    seeds.push(("rtsp_message", "session_play_pipelined.bin", play));
    let auth = request(
        "DESCRIBE rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 4\n\
         Authorization: Digest username=\"admin\", realm=\"ferrostream\", nonce=\"abc123\", \
         uri=\"rtsp://127.0.0.1:8554/live/cam\", response=\"0123456789abcdef0123456789abcdef\"\n",
        "",
    );
    seeds.push(("rtsp_message", "describe_digest.txt", auth));
    seeds.push((
        "rtsp_message",
        "bad_content_length.txt",
        request(
            "ANNOUNCE rtsp://h/a RTSP/1.0\nCSeq: 1\nContent-Length: -1\n",
            "",
        ),
    ));
    seeds.push((
        "rtsp_message",
        "bad_binary_request_line.bin",
        vec![b'O', b'P', 0, 0xff, b'\r', b'\n', b'\r', b'\n'],
    ));

    // SDPs.
    seeds.push(("rtsp_sdp", "announce.sdp", FFMPEG_SDP.as_bytes().to_vec()));
    let infos = [
        TrackInfo::new(
            Codec::H264,
            avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
        ),
        TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x11, 0x90])),
        TrackInfo::new(Codec::G711A, Bytes::new()),
        TrackInfo::new(Codec::Opus, Bytes::new()),
    ];
    let (describe_sdp, _) = sdp::describe(&infos, "live/cam");
    seeds.push((
        "rtsp_sdp",
        "describe_all_codecs.sdp",
        describe_sdp.into_bytes(),
    ));
    seeds.push((
        "rtsp_sdp",
        "h265_sprop.sdp",
        b"v=0\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n\
          a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA8lZgJ;\
          sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA8oAsIBIWWVmkkyvAWgIAAAAMAgAAADIQ=;\
          sprop-pps=RAHBcrRiQA==\r\na=control:trackID=0\r\n"
            .to_vec(),
    ));
    seeds.push((
        "rtsp_sdp",
        "authorization_digest.txt",
        b"Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"rtsp://h/a\", \
          response=\"00\", qop=auth, nc=00000001, cnonce=\"c\""
            .to_vec(),
    ));
    seeds.push((
        "rtsp_sdp",
        "bad_no_version.sdp",
        b"m=video 0 RTP/AVP 96\r\n".to_vec(),
    ));

    // RTP and RTCP.
    let mut pkt = BytesMut::new();
    rtp::write_header(&mut pkt, true, 96, 1, 3000, 0x1234);
    pkt.put_slice(&[0x65, 1, 2, 3]);
    seeds.push(("rtsp_rtp", "rtp_h264_single_nal.bin", pkt.to_vec()));
    seeds.push((
        "rtsp_rtp",
        "rtp_csrc_extension_padding.bin",
        vec![
            0xb1, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9, 9, 9, 0xbe, 0xde, 0, 1, 7, 7, 7, 7,
            0xaa, 0xbb, 0, 0, 3,
        ],
    ));
    let block = ReportBlock {
        ssrc: 0x1234,
        fraction_lost: 1,
        cumulative_lost: 3,
        highest_sequence: 100,
        jitter: 5,
        last_sr: 0x1111_2222,
        delay_since_last_sr: 100,
    };
    let mut rtcp = BytesMut::new();
    SenderReport {
        ssrc: 0x1234,
        ntp_time: rtp::ntp_timestamp(std::time::Duration::from_secs(1_700_000_000)),
        rtp_time: 90_000,
        packet_count: 10,
        octet_count: 5000,
        reports: vec![],
    }
    .write(&mut rtcp);
    rtcp.put_slice(&[0x81, 202, 0, 2, 0, 0, 0x12, 0x34, 1, 1, b'x', 0]);
    seeds.push(("rtsp_rtp", "rtcp_sr_sdes.bin", rtcp.to_vec()));
    let mut rr = BytesMut::new();
    ReceiverReport {
        ssrc: 0x5678,
        reports: vec![block],
    }
    .write(&mut rr);
    seeds.push(("rtsp_rtp", "rtcp_rr.bin", rr.to_vec()));
    seeds.push((
        "rtsp_rtp",
        "bad_padding.bin",
        vec![0xa0, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 200],
    ));

    // H.264: an IDR fragmented with FU-A, an inter frame, a STAP-A.
    let mut p = h264::Packetizer::new(200, 96, 0x1234, 65530);
    p.push(0, &avcc(&[SPS, PPS, &body(0x65, 900)]))
        .expect("valid");
    p.push(3000, &avcc(&[&body(0x41, 100)])).expect("valid");
    seeds.push((
        "rtsp_h264",
        "fu_a_idr_and_inter.bin",
        packet_records(&drain(&mut p)),
    ));
    let mut stap = vec![h264::STAP_A];
    for n in [SPS, PPS, &body(0x65, 20)[..]] {
        stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
        stap.extend_from_slice(n);
    }
    let stap = Packet {
        marker: true,
        payload_type: 96,
        sequence: 1,
        timestamp: 0,
        ssrc: 1,
        payload: Bytes::from(stap),
    };
    seeds.push(("rtsp_h264", "stap_a.bin", packet_records(&[stap])));

    // H.265: parameter sets and a fragmented IDR.
    let mut p = h265::Packetizer::new(200, 96, 0x1234, 0);
    let vps = b"\x40\x01\x0c\x01\xff\xff\x01\x60\x00\x00\x03\x00\x90\x00\x00\x03\x00\x00\x03\x00\x3c\x95\x98\x09";
    let mut idr = vec![0x26, 0x01];
    idr.extend(body(0xaf, 700));
    p.push(0, &avcc(&[vps, &idr])).expect("valid");
    p.push(3600, &avcc(&[&[0x02, 0x01, 0xd0, 0x01]]))
        .expect("valid");
    let packets: Vec<Packet> = std::iter::from_fn(|| p.pull()).collect();
    seeds.push((
        "rtsp_h265",
        "fu_idr_and_trail.bin",
        packet_records(&packets),
    ));

    // AAC: one frame per packet, one fragmented frame, two AUs in one packet.
    let mut p = aac::Packetizer::new(200, 97, 0x1234, 0);
    p.push(0, &body(0x21, 150)).expect("fits");
    p.push(1024, &body(0x21, 500)).expect("fits");
    let mut packets: Vec<Packet> = std::iter::from_fn(|| p.pull()).collect();
    packets.push(Packet {
        marker: true,
        payload_type: 97,
        sequence: p.next_sequence(),
        timestamp: 2048,
        ssrc: 0x1234,
        payload: Bytes::from_static(&[0, 32, 0, 3 << 3, 0, 2 << 3, 1, 2, 3, 4, 5]),
    });
    seeds.push(("rtsp_aac", "aac_hbr_mixed.bin", packet_records(&packets)));

    // Demuxer: a publisher's packets as our own muxer sends them, for each fuzz SDP.
    let h265_config = hevc::DecoderConfig::build(
        vps,
        &[
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0b, 0x08, 0x04, 0x85, 0x96, 0x56, 0x69, 0x24, 0xca,
            0xf0, 0x16, 0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
        ],
        &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40],
    )
    .expect("hvcC");
    let h264_config = avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC");
    let sessions: [(u8, &str, [TrackInfo; 2], Vec<u8>); 3] = [
        (
            0,
            "ffmpeg_h264_aac.bin",
            [
                TrackInfo::new(Codec::H264, h264_config.clone()),
                TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10])),
            ],
            vec![0x21, 0x10, 0x05],
        ),
        (
            1,
            "h265_pcmu_in_band.bin",
            [
                TrackInfo::new(Codec::H265, h265_config),
                TrackInfo::new(Codec::G711U, Bytes::new()),
            ],
            vec![0xff; 160],
        ),
        (
            2,
            "h264_opus_in_band_loss.bin",
            [
                TrackInfo::new(Codec::H264, h264_config),
                TrackInfo::new(Codec::Opus, Bytes::new()),
            ],
            vec![0x78, 0x01, 0x02],
        ),
    ];
    for (selector, name, infos, audio) in sessions {
        let config = RtspConfig {
            max_rtp_payload: 200,
            ..RtspConfig::default()
        };
        let mut muxer = Muxer::new(&infos, &config, std::time::Duration::from_secs(9), 77);
        let video_codec = infos[0].codec;
        let (idr, inter): (&[u8], &[u8]) = if video_codec == Codec::H265 {
            (&idr, &[0x02, 0x01, 0xd0, 0x01])
        } else {
            (&[0x65, 0x88, 0x84, 0x21, 0x43], &[0x41, 0x9a, 0x02])
        };
        let mut records = Vec::new();
        let mut last_pts = 0;
        for i in 0..8u64 {
            let frames = [
                Frame {
                    codec: video_codec,
                    dts: i * 40,
                    cts: 0,
                    keyframe: i.is_multiple_of(4),
                    data: avcc(&[if i.is_multiple_of(4) { idr } else { inter }]),
                },
                Frame {
                    codec: infos[1].codec,
                    dts: i * 40 + 10,
                    cts: 0,
                    keyframe: true,
                    data: Bytes::from(audio.clone()),
                },
            ];
            for frame in &frames {
                muxer.push(frame);
                while let Some(p) = muxer.pull() {
                    records.push(DemuxRecord {
                        track: p.track,
                        rtcp: p.rtcp,
                        delay_ms: (frame.dts - last_pts) as u8,
                        data: p.data,
                    });
                    last_pts = frame.dts;
                }
            }
        }
        if selector == 2 {
            // Lose a video packet in the middle.
            let lost = records
                .iter()
                .enumerate()
                .filter(|(_, r)| r.track == 0 && !r.rtcp)
                .map(|(i, _)| i)
                .nth(5)
                .expect("enough packets");
            records.remove(lost);
        }
        seeds.push(("rtsp_demux", name, demux_records(selector, &records)));
    }
    // RTP over TCP (RFC 4571): packets of a GB28181 device, one pair swapped, read 7 bytes at
    // a time; and a length too short for an RTP header.
    let mut p = h264::Packetizer::new(200, 96, 0x0100_0001, 65533);
    p.push(0, &avcc(&[SPS, PPS, &body(0x65, 900)]))
        .expect("valid");
    let mut packets = drain(&mut p);
    packets.swap(1, 2);
    let mut tcp = BytesMut::from(&[7u8][..]);
    for pkt in &packets {
        rtsp::rfc4571::write(&pkt.to_bytes(), &mut tcp).expect("fits");
    }
    seeds.push(("rtsp_rfc4571", "gb28181_tcp_swapped.bin", tcp.to_vec()));
    seeds.push((
        "rtsp_rfc4571",
        "bad_short_length.bin",
        vec![2, 0, 3, 0x80, 0x60, 0],
    ));
    // Client: a server's side of each job, hand-built in the shape GStreamer's RTSP server
    // 1.22 and ffmpeg's listener answer (not captures). CSeqs follow the client's requests.
    let response = |head: &str, body: &str| request(head, body);
    let describe_body = FFMPEG_SDP;
    let teardown = request(
        "TEARDOWN rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 1\n",
        "",
    );
    let mut play = vec![0u8];
    for (head, body) in [
        ("RTSP/1.0 200 OK\nCSeq: 1\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\n", ""),
        ("RTSP/1.0 401 Unauthorized\nCSeq: 2\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"6b2c\", qop=\"auth\"\n", ""),
        ("RTSP/1.0 200 OK\nCSeq: 3\nContent-Base: rtsp://127.0.0.1:8554/live/cam/\nContent-Type: application/sdp\n", describe_body),
        ("RTSP/1.0 200 OK\nCSeq: 4\nSession: 3fa9c2;timeout=60\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0A1B2C3D;mode=\"PLAY\"\n", ""),
        ("RTSP/1.0 200 OK\nCSeq: 5\nSession: 3fa9c2;timeout=60\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\n", ""),
        ("RTSP/1.0 200 OK\nCSeq: 6\nSession: 3fa9c2\nRange: npt=now-\nRTP-Info: url=rtsp://127.0.0.1:8554/live/cam/streamid=0;seq=1;rtptime=0\n", ""),
    ] {
        play.extend(response(head, body));
    }
    let mut p = h264::Packetizer::new(1400, 96, 0x0a1b_2c3d, 1);
    p.push(0, &avcc(&[&body(0x65, 40)])).expect("valid");
    for pkt in drain(&mut p) {
        rtsp::message::write_interleaved(0, &pkt.to_bytes(), &mut frames).expect("fits");
        play.extend_from_slice(&frames[frames.len() - pkt.to_bytes().len() - 4..]);
    }
    play.extend_from_slice(&[0x24, 3, 0, 8, 0x80, 0xc8, 0, 1, 0, 0, 0, 1]);
    play.extend(request(
        "GET_PARAMETER rtsp://127.0.0.1:8554/live/cam RTSP/1.0\nCSeq: 1\n",
        "",
    ));
    play.extend(teardown.clone());
    seeds.push(("rtsp_client", "play_tcp_digest.bin", play));
    let mut udp = vec![1u8];
    for (head, body) in [
        ("RTSP/1.0 200 OK\nCSeq: 1\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY\n", ""),
        ("RTSP/1.0 200 OK\nCSeq: 2\nContent-Type: application/sdp\n", describe_body),
        ("RTSP/1.0 200 OK\nCSeq: 3\nSession: 77;timeout=30\nTransport: RTP/AVP;unicast;client_port=40000-40001;server_port=6970-6971\n", ""),
        ("RTSP/1.0 200 OK\nCSeq: 4\nSession: 77;timeout=30\nTransport: RTP/AVP;unicast;client_port=40002-40003;server_port=6972-6973\n", ""),
        ("RTSP/1.0 200 OK\nCSeq: 5\nSession: 77\n", ""),
    ] {
        udp.extend(response(head, body));
    }
    udp.extend(teardown.clone());
    seeds.push(("rtsp_client", "play_udp.bin", udp));
    let mut record = vec![2u8];
    for head in [
        "RTSP/1.0 200 OK\nCSeq: 1\nPublic: ANNOUNCE, SETUP, RECORD, TEARDOWN\n",
        "RTSP/1.0 200 OK\nCSeq: 2\n",
        "RTSP/1.0 200 OK\nCSeq: 3\nSession: 1f2e;timeout=60\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\n",
        "RTSP/1.0 200 OK\nCSeq: 4\nSession: 1f2e\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record\n",
        "RTSP/1.0 200 OK\nCSeq: 5\nSession: 1f2e\n",
    ] {
        record.extend(response(head, ""));
    }
    record.extend(teardown);
    seeds.push(("rtsp_client", "record_tcp.bin", record));
    let mut bad = vec![0u8];
    bad.extend(response(
        &format!(
            "RTSP/1.0 200 OK\nCSeq: 1\n{}",
            (0..70).map(|i| format!("X-{i}: y\n")).collect::<String>()
        ),
        "",
    ));
    seeds.push(("rtsp_client", "bad_too_many_headers.txt", bad));

    seeds.push((
        "rtsp_demux",
        "bad_truncated_records.bin",
        vec![0, 0x80, 0, 8, 0x80, 200, 0, 6, 0x01, 0, 40, 0x80, 0x60],
    ));
    seeds
}
