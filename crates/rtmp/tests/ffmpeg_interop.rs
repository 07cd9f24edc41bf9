//! Real ffmpeg against `server::Session` over a loopback socket (std::net; the crate itself has
//! no IO). ffmpeg publishes; then ffmpeg plays what was published. Playing makes ffmpeg check
//! our digest S1 and S2 (`rtmpproto.c` verifies them when reading), so this is the handshake
//! interop test as well.
//!
//! Skipped when ffmpeg is missing, unless `CI` is set.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use media::Codec;
use rtmp::flv::{DemuxEvent, Demuxer, FlvReader, TAG_AUDIO, TAG_VIDEO};
use rtmp::handshake::RANDOM_SIZE;
use rtmp::server::{self, Event};

fn have_ffmpeg() -> bool {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "ffmpeg is required in CI"
    );
    found
}

/// Runs ffmpeg with `args`, killing it after `limit`.
fn ffmpeg(args: &[&str], limit: Duration) {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .spawn()
        .expect("spawn ffmpeg");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "ffmpeg {args:?} failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ffmpeg {args:?} timed out");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Drives one accepted connection until the peer closes it.
fn drive(mut sock: TcpStream, mut handle: impl FnMut(&mut server::Session, Event)) {
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut session = server::Session::new(
        server::Config::default(),
        [0x42; RANDOM_SIZE],
        Instant::now(),
    );
    let mut buf = vec![0; 64 * 1024];
    let mut out = BytesMut::new();
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        session
            .handle_input(Instant::now(), &buf[..n])
            .expect("ffmpeg sends valid RTMP");
        while let Some(ev) = session.poll_event() {
            handle(&mut session, ev);
        }
        if session.poll_transmit(&mut out) {
            if sock.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

#[test]
fn ffmpeg_publishes_then_plays_back() {
    if !have_ffmpeg() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();

    // 1. ffmpeg publishes one second of H.264 + AAC.
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept publisher");
        let mut events = Vec::new();
        drive(sock, |s, ev| {
            if let Event::PublishRequested { stream_id, .. } = &ev {
                s.accept_publish(Instant::now(), *stream_id);
            }
            events.push(ev);
        });
        (listener, events)
    });
    let url = format!("rtmp://127.0.0.1:{port}/live/cap?token=abc");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-t",
            "1",
            "-f",
            "flv",
            &url,
        ],
        Duration::from_secs(60),
    );
    let (listener, published) = server.join().expect("publisher thread");
    assert!(matches!(
        &published[1],
        Event::PublishRequested { name, query, .. } if name == "cap" && query == "token=abc"
    ));
    let media: Vec<Event> = published
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::Metadata { .. } | Event::Audio { .. } | Event::Video { .. }
            )
        })
        .collect();
    let sent_video = media
        .iter()
        .filter(|e| matches!(e, Event::Video { .. }))
        .count();
    let sent_audio = media
        .iter()
        .filter(|e| matches!(e, Event::Audio { .. }))
        .count();
    assert!(
        sent_video >= 25 && sent_audio >= 40,
        "{sent_video} video, {sent_audio} audio"
    );

    // 2. ffmpeg plays it back into an FLV file.
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept player");
        drive(sock, |s, ev| {
            if let Event::PlayRequested {
                stream_id, name, ..
            } = ev
            {
                assert_eq!(name, "cap");
                s.accept_play(Instant::now(), stream_id);
                for m in &media {
                    match m {
                        Event::Metadata { data, .. } => s.send_metadata(stream_id, data),
                        Event::Audio {
                            timestamp, payload, ..
                        } => s.send_audio(stream_id, *timestamp, payload),
                        Event::Video {
                            timestamp, payload, ..
                        } => s.send_video(stream_id, *timestamp, payload),
                        _ => {}
                    }
                }
                s.send_eof(stream_id);
            }
        });
    });
    let out = std::env::temp_dir().join(format!("rtmp-interop-{}.flv", std::process::id()));
    let out_str = out.to_str().expect("utf-8 path").to_owned();
    let url = format!("rtmp://127.0.0.1:{port}/live/cap");
    ffmpeg(
        &["-y", "-i", &url, "-c", "copy", "-f", "flv", &out_str],
        Duration::from_secs(60),
    );
    server.join().expect("player thread");

    let file = Bytes::from(std::fs::read(&out).expect("ffmpeg wrote the file"));
    let _ = std::fs::remove_file(&out);
    let mut demuxer = Demuxer::new();
    let (mut video, mut audio, mut tracks) = (0, 0, Vec::new());
    for tag in FlvReader::new(file).expect("FLV header") {
        let tag = tag.expect("tag");
        let ev = match tag.tag_type {
            TAG_VIDEO => {
                video += 1;
                demuxer.push_video(tag.timestamp, &tag.body)
            }
            TAG_AUDIO => {
                audio += 1;
                demuxer.push_audio(tag.timestamp, &tag.body)
            }
            _ => continue,
        };
        if let Some(DemuxEvent::Track(t)) = ev.expect("demuxes") {
            tracks.push(t);
        }
    }
    let v = tracks
        .iter()
        .find(|t| t.codec == Codec::H264)
        .expect("H.264 track");
    assert_eq!((v.width, v.height), (320, 240));
    assert!(tracks.iter().any(|t| t.codec == Codec::Aac));
    // ffmpeg may drop an end-of-sequence tag; everything else arrives.
    assert!(
        video + 1 >= sent_video && video <= sent_video,
        "{video} of {sent_video} video tags"
    );
    assert!(
        audio + 1 >= sent_audio && audio <= sent_audio,
        "{audio} of {sent_audio} audio tags"
    );
}
