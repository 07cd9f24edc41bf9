//! Pulling `rtsp://` sources from a real camera (GStreamer's RTSP server, 1.22): over TCP and
//! UDP, with Digest credentials, H.265 + AAC and H.264 + G.711, and a camera that restarts.
//! What arrives is read back from the registry as a viewer's output would.

mod common;

use std::time::Duration;

use common::{camera, check_frames, context, frames, free_port, have_camera, ingest, tracks};
use media::{Codec, TrackInfo};
use proxy::testing::pull_rtsp;
use proxy::{AttemptOptions, ProxyError, RtpTransport};
use url::Url;

fn options(rtp_transport: RtpTransport) -> AttemptOptions {
    AttemptOptions {
        timeout: Duration::from_secs(5),
        rtp_transport,
    }
}

/// Pulls the camera on `port` with `transport`, checks the tracks and 3 s of frames, then
/// stops the pull and checks the stream is gone with it.
async fn pull_and_check(
    port: u16,
    camera_args: &[&str],
    userinfo: &str,
    transport: RtpTransport,
    expected: (Codec, Codec),
) -> Vec<TrackInfo> {
    let _camera = camera(port, camera_args).await;
    let ctx = context();
    let url = Url::parse(&format!("rtsp://{userinfo}127.0.0.1:{port}/live/cam")).expect("url");
    let mut ingest = ingest(&ctx, "cam", &proxy::redacted(&url));
    let key = ingest.key().clone();
    let opts = options(transport);
    let pull = tokio::spawn(async move {
        let end = pull_rtsp(&url, &opts, &mut ingest).await;
        (end, ingest)
    });
    let tracks = tracks(&ctx.registry, &key).await;
    let info = ctx.registry.stream(&key).expect("live");
    assert_eq!(info.publisher.protocol, registry::Protocol::Pull);
    assert_eq!(
        info.publisher.peer.port(),
        port,
        "the publisher is the pulling connection"
    );
    assert_eq!(
        info.origin_url.as_deref(),
        Some(format!("rtsp://127.0.0.1:{port}/live/cam").as_str())
    );
    let got = frames(&ctx.registry, &key, Duration::from_secs(3)).await;
    check_frames(&got, expected.0, expected.1, 3);
    assert!(!pull.is_finished(), "the pull goes on");
    pull.abort();
    let _ = pull.await;
    let left = ctx.registry.stream(&key);
    assert!(
        left.as_ref().is_none_or(|s| s.orphaned),
        "dropping the attempt's ingest ends the stream (or orphans it for continue_push)"
    );
    tracks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_h264_aac_over_tcp() {
    if !have_camera() {
        return;
    }
    let tracks = pull_and_check(
        free_port(),
        &[],
        "",
        RtpTransport::Tcp,
        (Codec::H264, Codec::Aac),
    )
    .await;
    assert_eq!(tracks.len(), 2);
    let video = tracks
        .iter()
        .find(|t| t.codec == Codec::H264)
        .expect("video");
    assert_eq!((video.width, video.height), (640, 360));
    let audio = tracks
        .iter()
        .find(|t| t.codec == Codec::Aac)
        .expect("audio");
    assert_eq!((audio.sample_rate, audio.channels), (44_100, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_over_udp() {
    if !have_camera() {
        return;
    }
    let tracks = pull_and_check(
        free_port(),
        &[],
        "",
        RtpTransport::Udp,
        (Codec::H264, Codec::Aac),
    )
    .await;
    let codecs: Vec<_> = tracks.iter().map(|t| t.codec).collect();
    assert_eq!(codecs.len(), 2);
    assert!(codecs.contains(&Codec::H264) && codecs.contains(&Codec::Aac));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_with_digest_credentials() {
    if !have_camera() {
        return;
    }
    let port = free_port();
    let args = ["--user", "admin", "--pass", "s3:cr@t", "--audio", "pcma"];
    // The password is percent-encoded in the URL, as addStreamProxy receives it.
    let tracks = pull_and_check(
        port,
        &args,
        "admin:s3%3Acr%40t@",
        RtpTransport::Tcp,
        (Codec::H264, Codec::G711A),
    )
    .await;
    let audio = tracks
        .iter()
        .find(|t| t.codec == Codec::G711A)
        .expect("G.711 A-law");
    assert_eq!(audio.sample_rate, 8000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused() {
    if !have_camera() {
        return;
    }
    let port = free_port();
    let _camera = camera(port, &["--user", "admin", "--pass", "s3cret"]).await;
    let ctx = context();
    for userinfo in ["admin:wrong@", ""] {
        let url = Url::parse(&format!("rtsp://{userinfo}127.0.0.1:{port}/live/cam")).expect("url");
        let mut ingest = ingest(&ctx, "cam", "x");
        let end = tokio::time::timeout(
            Duration::from_secs(10),
            pull_rtsp(&url, &options(RtpTransport::Tcp), &mut ingest),
        )
        .await
        .expect("answered at once");
        match end {
            Err(ProxyError::Refused(why)) => assert_eq!(why, "DESCRIBE answered 401"),
            other => panic!("{userinfo:?}: {other:?}"),
        }
        assert!(!ingest.is_live());
    }
    assert!(ctx.registry.streams().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_h265_aac() {
    if !have_camera() {
        return;
    }
    let tracks = pull_and_check(
        free_port(),
        &["--h265"],
        "",
        RtpTransport::Tcp,
        (Codec::H265, Codec::Aac),
    )
    .await;
    let video = tracks
        .iter()
        .find(|t| t.codec == Codec::H265)
        .expect("H.265");
    assert_eq!((video.width, video.height), (640, 360));
    assert!(
        media::hevc::DecoderConfig::parse(&video.config).is_ok(),
        "an hvcC from the parameter sets"
    );
}

/// A camera killed mid-pull ends the attempt with an error the manager retries; the next
/// attempt, once the camera is back, resumes the same live stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_restart_ends_the_attempt_and_the_next_resumes() {
    if !have_camera() {
        return;
    }
    let port = free_port();
    let ctx = context();
    let url = Url::parse(&format!("rtsp://127.0.0.1:{port}/live/cam")).expect("url");
    let mut ingest = ingest(&ctx, "cam", url.as_str());
    let key = ingest.key().clone();
    let mut reader = None;
    let mut bytes_before = 0;
    for attempt in 1..=2u64 {
        let mut camera = camera(port, &[]).await;
        let (url, opts) = (url.clone(), options(RtpTransport::Tcp));
        let pull = tokio::spawn(async move {
            let end = pull_rtsp(&url, &opts, &mut ingest).await;
            (end, ingest)
        });
        tracks(&ctx.registry, &key).await;
        // The tracks outlive the first attempt: wait for this one's media before reading,
        // so the reader starts at this attempt's first keyframe.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while ctx.registry.stream(&key).map_or(0, |s| s.bytes_in) <= bytes_before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "attempt {attempt} got no media"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = frames(&ctx.registry, &key, Duration::from_secs(2)).await;
        check_frames(&got, Codec::H264, Codec::Aac, 2);
        // A viewer attached during the first attempt stays attached through the restart.
        if reader.is_none() {
            let mut first = ctx.registry.subscribe_output(&key).expect("live");
            while first.try_recv().is_some() {}
            reader = Some(first);
        }
        camera.kill().await.expect("kill the camera");
        let (end, back) = tokio::time::timeout(Duration::from_secs(15), pull)
            .await
            .expect("the attempt ends within the timeout")
            .expect("no panic");
        let end = end.expect_err("an attempt always ends with why");
        assert!(end.retryable(), "{end:?}");
        assert!(
            matches!(
                end,
                ProxyError::Ended | ProxyError::Timeout(_) | ProxyError::Io { .. }
            ),
            "{end:?}"
        );
        ingest = back;
        assert_eq!(ingest.connects(), attempt);
        bytes_before = ctx.registry.stream(&key).map_or(0, |s| s.bytes_in);
        assert!(
            ctx.registry.stream(&key).is_some(),
            "the stream outlives the attempt"
        );
    }
    // The viewer from the first attempt got the second attempt's frames.
    let reader = reader.as_mut().expect("reader");
    let mut after = 0;
    while let Some(Ok(item)) = reader.try_recv() {
        if matches!(item, registry::Item::Frame(_)) {
            after += 1;
        }
    }
    assert!(
        after >= 25,
        "{after} frames reached the first viewer after the restart"
    );
}

/// Nothing listens: the attempt fails at once with an IO error; a silent server times out.
#[tokio::test]
async fn unreachable_and_silent_servers() {
    let ctx = context();
    let port = free_port();
    let url = Url::parse(&format!("rtsp://127.0.0.1:{port}/live/cam")).expect("url");
    let mut ingest = ingest(&ctx, "cam", "x");
    let end = pull_rtsp(&url, &options(RtpTransport::Tcp), &mut ingest).await;
    assert!(matches!(end, Err(ProxyError::Io { .. })), "{end:?}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let url = Url::parse(&format!("rtsp://127.0.0.1:{port}/live/cam")).expect("url");
    let opts = AttemptOptions {
        timeout: Duration::from_millis(500),
        rtp_transport: RtpTransport::Tcp,
    };
    let silent = tokio::spawn(async move { listener.accept().await });
    let started = std::time::Instant::now();
    let end = pull_rtsp(&url, &opts, &mut ingest).await;
    assert!(matches!(end, Err(ProxyError::Timeout(_))), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);
    let bad = Url::parse("rtsp://u:%ff@127.0.0.1/x").expect("url");
    assert!(matches!(
        pull_rtsp(&bad, &opts, &mut ingest).await,
        Err(ProxyError::BadUrl(_))
    ));
}

/// The pull reports back: an RTCP receiver report on the track's RTCP channel within the
/// first 5 s, counting the packets a scripted RTSP server (its requests read by the crate's own
/// server-side decoder) sent, a lost one included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_receiver_reports() {
    use bytes::{BufMut, BytesMut};
    use rtsp::message::{write_interleaved, Decoder, Input, Response};
    use rtsp::rtp::{parse_rtcp, write_header, Rtcp};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut decoder = Decoder::default();
        let mut buf = vec![0u8; 4096];
        let mut seq = 100u16;
        let mut playing = false;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        loop {
            tokio::select! {
                n = socket.read(&mut buf) => {
                    let n = n.expect("read");
                    assert!(n > 0, "the pull hung up before reporting");
                    decoder.push(&buf[..n]);
                    while let Some(input) = decoder.poll().expect("the pull's requests decode") {
                        match input {
                            Input::Request(req) => {
                                let method: &str = req.method().into();
                                let response = match method {
                                    "DESCRIBE" => Response::to(&req, 200).body(
                                        "application/sdp",
                                        "v=0\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=control:a\r\n",
                                    ),
                                    "SETUP" => Response::to(&req, 200)
                                        .session("77aa", Some(60))
                                        .header("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"),
                                    _ => Response::to(&req, 200),
                                };
                                socket.write_all(&response.to_bytes()).await.expect("write");
                                playing |= method == "PLAY";
                            }
                            Input::Interleaved { channel, payload } => {
                                assert_eq!(channel, 1, "only RTCP comes back");
                                let reports = parse_rtcp(&payload).expect("a valid compound");
                                let Some(Rtcp::ReceiverReport(rr)) = reports.first() else {
                                    panic!("{reports:?}");
                                };
                                // The socket goes back too: the pull stays live while checked.
                                return (rr.reports.clone(), socket);
                            }
                        }
                    }
                }
                _ = tick.tick(), if playing => {
                    // Sequence 105 never comes.
                    if seq != 105 {
                        let mut rtp = BytesMut::new();
                        write_header(&mut rtp, false, 0, seq, u32::from(seq) * 160, 0xabcd);
                        rtp.put_bytes(0xff, 160);
                        let mut frame = BytesMut::new();
                        write_interleaved(0, &rtp, &mut frame).expect("fits");
                        socket.write_all(&frame).await.expect("write");
                    }
                    seq += 1;
                }
                () = tokio::time::sleep_until(deadline) => panic!("no receiver report in 8 s"),
            }
        }
    });
    let ctx = context();
    let url = Url::parse(&format!("rtsp://127.0.0.1:{port}/live/x")).expect("url");
    let mut ingest = ingest(&ctx, "x", url.as_str());
    let key = ingest.key().clone();
    let pull = tokio::spawn(async move {
        let _ = pull_rtsp(&url, &options(RtpTransport::Tcp), &mut ingest).await;
    });
    let (blocks, _socket) = server.await.expect("the server saw a report");
    assert_eq!(blocks.len(), 1);
    let block = blocks[0];
    assert_eq!(block.ssrc, 0xabcd);
    assert!(block.highest_sequence > 105, "{block:?}");
    assert_eq!(block.cumulative_lost, 1, "{block:?}");
    let tracks = ctx.registry.stream(&key).expect("live").tracks;
    assert_eq!(
        tracks.iter().map(|t| t.codec).collect::<Vec<_>>(),
        [Codec::G711U]
    );
    pull.abort();
}
