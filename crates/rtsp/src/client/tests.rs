//! Client tests against a scripted server on a simulated clock: the exact requests out, the
//! server's text in, the events.

use super::*;
use crate::auth::{parse_authorization, Credentials, Password};

const URL: &str = "rtsp://cam.local:554/live/ch0";

/// What a GStreamer-like camera answers DESCRIBE with: H.264, a VP8 track we skip, AAC, and a
/// second H.264 we skip (one track per kind).
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n\
    m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
    a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=,aOvjyyLA\r\n\
    a=control:stream=0\r\n\
    m=video 0 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\na=control:stream=1\r\n\
    m=audio 0 RTP/AVP 98\r\na=rtpmap:98 MPEG4-GENERIC/48000/2\r\n\
    a=fmtp:98 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190\r\n\
    a=control:rtsp://cam.local:554/live/ch0/stream=2\r\n\
    m=video 0 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\na=control:stream=3\r\n";

struct Server {
    c: Client,
    now: Instant,
}

fn login(password: &str) -> Option<Login> {
    Some(Login {
        username: "admin".into(),
        password: password.into(),
    })
}

impl Server {
    fn play(login: Option<Login>, transport: RtpOver) -> Server {
        let now = Instant::now();
        let options = ClientOptions {
            transport,
            ..ClientOptions::default()
        };
        let c = Client::play(URL, login, options, &RtspConfig::default(), now).expect("valid URL");
        Server { c, now }
    }

    /// What the client wrote since the last call.
    fn sent(&mut self) -> String {
        let mut out = BytesMut::new();
        self.c.poll_transmit(&mut out);
        String::from_utf8(out.to_vec()).expect("requests are text")
    }

    /// Answers with response text (`\n` written as CRLF, `Content-Length` added for a body).
    fn answer(&mut self, head: &str, body: &str) -> Result<(), Error> {
        let mut text = head.replace('\n', "\r\n");
        if !body.is_empty() {
            text.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        text.push_str("\r\n");
        text.push_str(body);
        self.c.handle_input(self.now, text.as_bytes())
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.c.poll_event()).collect()
    }

    fn advance(&mut self, ms: u64) -> Vec<Event> {
        self.now += Duration::from_millis(ms);
        self.c.handle_timeout(self.now);
        self.events()
    }

    /// OPTIONS, 401, DESCRIBE with Digest, 200: through to the first SETUP.
    fn described(&mut self) {
        assert_eq!(
            self.sent(),
            format!("OPTIONS {URL} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: ferrostream\r\n\r\n")
        );
        self.answer(
            "RTSP/1.0 200 OK\nCSeq: 1\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER\n",
            "",
        )
        .expect("valid");
        assert_eq!(
            self.sent(),
            format!(
                "DESCRIBE {URL} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\
                 User-Agent: ferrostream\r\n\r\n"
            )
        );
        self.answer(
            "RTSP/1.0 401 Unauthorized\nCSeq: 2\nWWW-Authenticate: Basic realm=\"cam\"\n\
             WWW-Authenticate: Digest realm=\"cam\", nonce=\"f00d\"\n",
            "",
        )
        .expect("valid");
        let retry = self.sent();
        assert!(
            retry.starts_with(&format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 3\r\n")),
            "{retry}"
        );
        let header = retry
            .lines()
            .find_map(|l| l.strip_prefix("Authorization: "))
            .expect("credentials sent");
        let Ok(Credentials::Digest(d)) = parse_authorization(header) else {
            panic!("digest: {header}");
        };
        assert_eq!(d.uri, URL);
        assert!(d.verify("DESCRIBE", "cam", "f00d", Password::Plain("s3cret")));
    }
}

#[test]
fn plays_over_tcp_with_digest() {
    let mut s = Server::play(login("s3cret"), RtpOver::Tcp);
    s.described();
    assert_eq!(s.c.poll_timeout(), Some(s.now + Duration::from_secs(10)));
    s.answer(
        "RTSP/1.0 200 OK\nCSeq: 3\nContent-Base: rtsp://cam.local:554/live/ch0/\n\
         Content-Type: application/sdp\n",
        SDP,
    )
    .expect("valid");
    let events = s.events();
    let [Event::Described { tracks }] = &events[..] else {
        panic!("{events:?}");
    };
    let codecs: Vec<_> = tracks.iter().map(|t| t.info.codec).collect();
    assert_eq!(codecs, [media::Codec::H264, media::Codec::Aac]);
    assert!(
        !tracks[0].info.config.is_empty(),
        "sprop-parameter-sets read"
    );
    let setup = s.sent();
    assert!(
        setup.starts_with(
            "SETUP rtsp://cam.local:554/live/ch0/stream=0 RTSP/1.0\r\nCSeq: 4\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
        ),
        "{setup}"
    );
    assert!(
        setup.contains("Authorization: Digest username=\"admin\""),
        "{setup}"
    );
    s.answer(
        "RTSP/1.0 200 OK\nCSeq: 4\nSession: 5e55;timeout=20\n\
         Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1234ABCD\n",
        "",
    )
    .expect("valid");
    let events = s.events();
    let [Event::SetUp {
        track: 0,
        transport,
    }] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(transport.ssrc, Some(0x1234_abcd));
    let setup = s.sent();
    assert!(
        setup.starts_with(
            "SETUP rtsp://cam.local:554/live/ch0/stream=2 RTSP/1.0\r\nCSeq: 5\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"
        ),
        "{setup}"
    );
    assert!(setup.contains("Session: 5e55\r\n"), "{setup}");
    // The server moves the channels; the client follows the answer.
    s.answer(
        "RTSP/1.0 200 OK\nCSeq: 5\nSession: 5e55;timeout=20\n\
         Transport: RTP/AVP/TCP;unicast;interleaved=6-7\n",
        "",
    )
    .expect("valid");
    assert_eq!(s.events().len(), 1);
    let play = s.sent();
    assert!(
        play.starts_with(
            "PLAY rtsp://cam.local:554/live/ch0/ RTSP/1.0\r\nCSeq: 6\r\nRange: npt=0.000-\r\n"
        ),
        "{play}"
    );
    // PLAY's answer with the first frames behind it, split at every offset.
    let mut wire =
        b"RTSP/1.0 200 OK\r\nCSeq: 6\r\nSession: 5e55\r\nRTP-Info: url=x\r\n\r\n".to_vec();
    wire.extend_from_slice(&[0x24, 0, 0, 3, 1, 2, 3, 0x24, 7, 0, 1, 9, 0x24, 4, 0, 1, 5]);
    let expected = vec![
        Event::Playing,
        Event::Media {
            track: 0,
            rtcp: false,
            payload: Bytes::from_static(&[1, 2, 3]),
        },
        Event::Media {
            track: 1,
            rtcp: true,
            payload: Bytes::from_static(&[9]),
        },
    ];
    for split in 0..=wire.len() {
        let mut t = Server::play(login("s3cret"), RtpOver::Tcp);
        t.described();
        t.answer(
            "RTSP/1.0 200 OK\nCSeq: 3\nContent-Base: rtsp://cam.local:554/live/ch0/\n",
            SDP,
        )
        .expect("valid");
        t.answer("RTSP/1.0 200 OK\nCSeq: 4\nSession: 5e55;timeout=20\nTransport: RTP/AVP/TCP;interleaved=0-1\n", "")
            .expect("valid");
        t.answer(
            "RTSP/1.0 200 OK\nCSeq: 5\nSession: 5e55\nTransport: RTP/AVP/TCP;interleaved=6-7\n",
            "",
        )
        .expect("valid");
        t.events();
        t.c.handle_input(t.now, &wire[..split]).expect("valid");
        t.c.handle_input(t.now, &wire[split..]).expect("valid");
        assert_eq!(t.events(), expected, "split at {split}");
    }
    s.c.handle_input(s.now, &wire).expect("valid");
    assert_eq!(s.events(), expected);
    assert!(s.c.is_streaming());
    s.sent();
    // Keep-alives every half of the 20 s session timeout, media keeping the silence clock off.
    for _ in 0..3 {
        assert!(s.advance(9_000).is_empty());
        s.c.handle_input(s.now, &[0x24, 0, 0, 1, 0]).expect("valid");
        s.events();
        assert_eq!(s.sent(), "");
        assert!(s.advance(1_000).is_empty());
        let ka = s.sent();
        assert!(
            ka.starts_with("GET_PARAMETER rtsp://cam.local:554/live/ch0/ RTSP/1.0\r\n"),
            "{ka}"
        );
        assert!(ka.contains("Session: 5e55\r\n") && ka.contains("Authorization: Digest"));
        s.c.handle_input(s.now, &[0x24, 0, 0, 1, 0]).expect("valid");
        s.events();
    }
    // The keep-alive's answer is taken quietly; then silence ends it after 10 s.
    let cseq = s.c.next_cseq - 1;
    s.answer(&format!("RTSP/1.0 200 OK\nCSeq: {cseq}\n"), "")
        .expect("valid");
    assert!(s.events().is_empty());
    // A driver busy for 8 s (admitting the stream) does not count as the server's silence.
    s.now += Duration::from_secs(8);
    s.c.resume_clocks(s.now);
    assert!(s.advance(9_999).is_empty());
    assert_eq!(
        s.advance(1),
        [Event::TimedOut {
            reason: ClientTimeout::Silence
        }]
    );
    assert!(s.c.is_closed());
    assert_eq!(s.c.poll_timeout(), None);
}

#[test]
fn a_wrong_password_is_refused_after_one_retry() {
    let mut s = Server::play(login("wrong"), RtpOver::Tcp);
    s.sent();
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
    s.sent();
    let challenge = "WWW-Authenticate: Digest realm=\"cam\", nonce=\"n1\", qop=\"auth\"\n";
    s.answer(
        &format!("RTSP/1.0 401 Unauthorized\nCSeq: 2\n{challenge}"),
        "",
    )
    .expect("valid");
    let retry = s.sent();
    assert!(
        retry.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""),
        "{retry}"
    );
    assert!(s.events().is_empty());
    s.answer(
        &format!("RTSP/1.0 401 Unauthorized\nCSeq: 3\n{challenge}"),
        "",
    )
    .expect("valid");
    assert_eq!(
        s.events(),
        [Event::Refused {
            method: "DESCRIBE",
            status: 401
        }]
    );
    assert_eq!(s.sent(), "", "no third try");
    assert!(s.c.is_closed());

    // Without credentials a 401 is a refusal at once; a 404 likewise.
    let mut s = Server::play(None, RtpOver::Tcp);
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
    s.answer(
        &format!("RTSP/1.0 401 Unauthorized\nCSeq: 2\n{challenge}"),
        "",
    )
    .expect("valid");
    assert_eq!(
        s.events(),
        [Event::Refused {
            method: "DESCRIBE",
            status: 401
        }]
    );
    let mut s = Server::play(None, RtpOver::Tcp);
    s.answer("RTSP/1.0 404 Not Found\nCSeq: 1\n", "")
        .expect("an OPTIONS error is passed");
    s.answer("RTSP/1.0 404 Not Found\nCSeq: 2\n", "")
        .expect("valid");
    assert_eq!(
        s.events(),
        [Event::Refused {
            method: "DESCRIBE",
            status: 404
        }]
    );
}

#[test]
fn plays_over_udp() {
    let mut s = Server::play(None, RtpOver::Udp);
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\nPublic: OPTIONS, DESCRIBE\n", "")
        .expect("valid");
    // No Content-Base: controls resolve against the request URL.
    s.answer("RTSP/1.0 200 OK\nCSeq: 2\n", SDP).expect("valid");
    let events = s.events();
    assert!(matches!(
        &events[..],
        [Event::Described { .. }, Event::BindUdp { track: 0 }]
    ));
    assert_eq!(s.c.poll_timeout(), None, "no clock while the driver binds");
    s.sent();
    s.advance(60_000);
    s.c.udp_bound(s.now, 0, 40_000).expect("valid");
    let setup = s.sent();
    assert!(
        setup.starts_with(&format!(
            "SETUP {URL}/stream=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=40000-40001\r\n"
        )),
        "{setup}"
    );
    s.answer(
        "RTSP/1.0 200 OK\nCSeq: 3\nSession: abcdefgh\n\
         Transport: RTP/AVP;unicast;client_port=40000-40001;server_port=6970-6971\n",
        "",
    )
    .expect("valid");
    let events = s.events();
    let [Event::SetUp {
        track: 0,
        transport,
    }, Event::BindUdp { track: 1 }] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(transport.server_port, Some((6970, 6971)));
    s.c.udp_bound(s.now, 1, 40_002).expect("valid");
    let setup = s.sent();
    assert!(
        setup.starts_with("SETUP rtsp://cam.local:554/live/ch0/stream=2 RTSP/1.0\r\n"),
        "{setup}"
    );
    s.answer(
        "RTSP/1.0 200 OK\nCSeq: 4\nSession: abcdefgh\nTransport: RTP/AVP;unicast;client_port=40002-40003\n",
        "",
    )
    .expect("valid");
    s.events();
    assert!(s.sent().starts_with(&format!("PLAY {URL} RTSP/1.0\r\n")));
    s.answer("RTSP/1.0 200 OK\nCSeq: 5\n", "").expect("valid");
    assert_eq!(s.events(), [Event::Playing]);
    // UDP packets keep it alive; OPTIONS is the keep-alive (no GET_PARAMETER in Public).
    for _ in 0..40 {
        s.advance(1_000);
        s.c.handle_udp_activity(s.now);
    }
    let ka = s.sent();
    assert!(
        ka.starts_with(&format!("OPTIONS {URL} RTSP/1.0\r\n")),
        "{ka}"
    );
    assert!(!s.c.is_closed());
    s.c.teardown(s.now);
    let td = s.sent();
    assert!(
        td.starts_with(&format!("TEARDOWN {URL} RTSP/1.0\r\n")) && td.contains("Session: abcdefgh"),
        "{td}"
    );
    assert!(s.c.is_closed());
}

#[test]
fn records_to_a_server() {
    let now = Instant::now();
    let tracks = crate::sdp::describe(
        &[
            media::TrackInfo::new(media::Codec::G711A, Bytes::new()),
            media::TrackInfo::new(media::Codec::Opus, Bytes::new()),
        ],
        "x",
    )
    .1;
    let c = Client::record(
        "rtsp://127.0.0.1:9000/live/x",
        None,
        tracks,
        "live/x",
        ClientOptions::default(),
        &RtspConfig::default(),
        now,
    )
    .expect("valid");
    let mut s = Server { c, now };
    s.sent();
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
    let announce = s.sent();
    assert!(announce.starts_with(
        "ANNOUNCE rtsp://127.0.0.1:9000/live/x RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\n"
    ));
    assert!(announce.contains("\r\n\r\nv=0\r\n") && announce.contains("a=rtpmap:8 PCMA/8000"));
    s.answer("RTSP/1.0 200 OK\nCSeq: 2\n", "").expect("valid");
    let setup = s.sent();
    assert!(
        setup.starts_with(
            "SETUP rtsp://127.0.0.1:9000/live/x/trackID=0 RTSP/1.0\r\nCSeq: 3\r\n\
         Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n"
        ),
        "{setup}"
    );
    s.answer("RTSP/1.0 200 OK\nCSeq: 3\nSession: 1;timeout=4\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\n", "")
        .expect("valid");
    assert!(s.sent().contains("trackID=1 RTSP/1.0\r\n"));
    s.answer(
        "RTSP/1.0 200 OK\nCSeq: 4\nSession: 1\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\n",
        "",
    )
    .expect("valid");
    let record = s.sent();
    assert!(
        record.starts_with("RECORD rtsp://127.0.0.1:9000/live/x RTSP/1.0\r\nCSeq: 5\r\n"),
        "{record}"
    );
    s.answer("RTSP/1.0 200 OK\nCSeq: 5\n", "").expect("valid");
    let events = s.events();
    assert_eq!(events.last(), Some(&Event::Recording));
    let mut out = BytesMut::new();
    assert!(s.c.interleave(1, false, &[7, 7], &mut out).expect("fits"));
    assert_eq!(&out[..], &[0x24, 2, 0, 2, 7, 7]);
    assert!(!s.c.interleave(5, false, &[7], &mut out).expect("no track"));
    // Silence is fine while recording, but keep-alives (every 2 s) must be answered.
    assert!(s.advance(2_000).is_empty());
    assert!(s.sent().starts_with("OPTIONS "));
    s.answer("RTSP/1.0 200 OK\nCSeq: 6\n", "").expect("valid");
    assert!(s.advance(2_000).is_empty());
    assert!(s.sent().starts_with("OPTIONS "));
    assert!(s.advance(9_999).is_empty());
    assert_eq!(
        s.advance(1),
        [Event::TimedOut {
            reason: ClientTimeout::Response("keep-alive")
        }]
    );
}

#[test]
fn the_server_may_end_the_session() {
    let mut s = Server::play(None, RtpOver::Tcp);
    s.sent();
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
    s.sent();
    s.c.handle_input(s.now, b"GET_PARAMETER rtsp://x RTSP/1.0\r\nCSeq: 9\r\n\r\n")
        .expect("valid");
    assert_eq!(s.sent(), "RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n");
    s.c.handle_input(s.now, b"TEARDOWN rtsp://x RTSP/1.0\r\nCSeq: 10\r\n\r\n")
        .expect("valid");
    assert_eq!(s.events(), [Event::Ended]);
    assert_eq!(s.sent(), "RTSP/1.0 200 OK\r\nCSeq: 10\r\n\r\n");
    assert!(s.c.is_closed());
}

#[test]
fn unanswered_requests_time_out() {
    let mut s = Server::play(None, RtpOver::Tcp);
    assert!(s.advance(9_999).is_empty());
    assert_eq!(
        s.advance(1),
        [Event::TimedOut {
            reason: ClientTimeout::Response("OPTIONS")
        }]
    );
}

#[test]
fn bad_and_oversized_answers_end_the_session() {
    let many: String = (0..message::MAX_HEADERS + 1)
        .map(|i| format!("X-{i}: y\n"))
        .collect();
    let cases: Vec<(String, &str)> = vec![
        (format!("RTSP/1.0 200 OK\nCSeq: 1\n{many}"), ""),
        (
            "RTSP/1.0 200 OK\nCSeq: 1\nContent-Length: 70000\n".into(),
            "",
        ),
        ("HTTP/1.1 200 OK\nCSeq: 1\n".into(), ""),
        ("RTSP/1.0 2x0 OK\nCSeq: 1\n".into(), ""),
        ("RTSP/1.0 200 OK\nCSeq: 1\nno colon\n".into(), ""),
    ];
    for (head, body) in cases {
        let mut s = Server::play(None, RtpOver::Tcp);
        assert!(s.answer(&head, body).is_err(), "{head}");
        assert!(s.c.is_closed());
        assert!(
            s.c.handle_input(s.now, b"RTSP/1.0 200 OK\r\n\r\n").is_ok(),
            "ignored after"
        );
    }
    let mut s = Server::play(None, RtpOver::Tcp);
    s.c.handle_input(s.now, b"\x00\x01garbage\r\n\r\n")
        .expect_err("binary");
    // Partial headers are held up to the message cap, not beyond.
    let mut s = Server::play(None, RtpOver::Tcp);
    s.c.handle_input(s.now, b"RTSP/1.0 200 OK\r\nX: ")
        .expect("partial");
    assert!(s.c.handle_input(s.now, &vec![b'a'; 70_000]).is_err());

    // Answers that parse but cannot be used.
    let described = |sdp: &str, base: &str| {
        let mut s = Server::play(None, RtpOver::Tcp);
        s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
        s.answer(&format!("RTSP/1.0 200 OK\nCSeq: 2\n{base}"), sdp)
    };
    assert!(matches!(
        described(
            "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n",
            ""
        ),
        Err(Error::Unsupported(_))
    ));
    assert!(described(
        "v=0\r\nm=audio 0 RTP/AVP 0\r\na=control:bad\x01control\r\n",
        ""
    )
    .is_err());
    let long = format!("Content-Base: rtsp://h/{}\n", "a".repeat(MAX_URL));
    assert!(matches!(
        described(SDP, &long),
        Err(Error::LimitExceeded { .. })
    ));
    let mut s = Server::play(None, RtpOver::Tcp);
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
    s.answer("RTSP/1.0 200 OK\nCSeq: 2\n", SDP).expect("valid");
    assert!(
        s.answer(
            "RTSP/1.0 200 OK\nCSeq: 3\nTransport: RTP/AVP/TCP;interleaved=0-1\n",
            ""
        )
        .is_err(),
        "no Session"
    );
    let mut s = Server::play(None, RtpOver::Tcp);
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
    s.answer("RTSP/1.0 200 OK\nCSeq: 2\n", SDP).expect("valid");
    assert!(
        s.answer(
            &format!(
                "RTSP/1.0 200 OK\nCSeq: 3\nSession: {}\nTransport: RTP/AVP/TCP\n",
                "s".repeat(300)
            ),
            ""
        )
        .is_err(),
        "session id too long"
    );
    assert!(Client::play(
        "http://h/x",
        None,
        ClientOptions::default(),
        &RtspConfig::default(),
        Instant::now()
    )
    .is_err());
    assert!(Client::play(
        "rtsp://h/a b",
        None,
        ClientOptions::default(),
        &RtspConfig::default(),
        Instant::now()
    )
    .is_err());
}

#[test]
fn stray_and_unnumbered_responses() {
    let mut s = Server::play(None, RtpOver::Tcp);
    s.sent();
    s.answer("RTSP/1.0 200 OK\nCSeq: 77\n", "").expect("valid");
    assert_eq!(
        s.sent(),
        "",
        "a response to another request changes nothing"
    );
    // A camera that leaves out CSeq still answers the one request in flight.
    s.answer("RTSP/1.0 200 OK\n", "").expect("valid");
    assert!(s.sent().starts_with("DESCRIBE "));
}

/// A camera asking for credentials already at OPTIONS, then later calling the nonce stale:
/// each is answered with the credentials again, the nonce count starting over.
#[test]
fn options_challenge_and_a_stale_nonce() {
    let mut s = Server::play(login("s3cret"), RtpOver::Tcp);
    s.sent();
    s.answer(
        "RTSP/1.0 401 Unauthorized\nCSeq: 1\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"a1\", qop=\"auth\"\n",
        "",
    )
    .expect("valid");
    let retry = s.sent();
    assert!(
        retry.starts_with(&format!("OPTIONS {URL} RTSP/1.0\r\nCSeq: 2\r\n")),
        "{retry}"
    );
    assert!(
        retry.contains("nonce=\"a1\"") && retry.contains("nc=00000001"),
        "{retry}"
    );
    s.answer("RTSP/1.0 200 OK\nCSeq: 2\n", "").expect("valid");
    let describe = s.sent();
    assert!(
        describe.contains("nonce=\"a1\"") && describe.contains("nc=00000002"),
        "{describe}"
    );
    let stale = "WWW-Authenticate: Digest realm=\"cam\", nonce=\"b2\", qop=\"auth\", stale=true\n";
    s.answer(&format!("RTSP/1.0 401 Unauthorized\nCSeq: 3\n{stale}"), "")
        .expect("valid");
    let again = s.sent();
    assert!(
        again.starts_with(&format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 4\r\n")),
        "{again}"
    );
    assert!(
        again.contains("nonce=\"b2\"") && again.contains("nc=00000001"),
        "{again}"
    );
    // A stale nonce once more after that is still tried; a third refusal is final.
    s.answer(&format!("RTSP/1.0 401 Unauthorized\nCSeq: 4\n{stale}"), "")
        .expect("valid");
    assert!(s.sent().starts_with("DESCRIBE "));
    s.answer(&format!("RTSP/1.0 401 Unauthorized\nCSeq: 5\n{stale}"), "")
        .expect("valid");
    assert_eq!(
        s.events(),
        [Event::Refused {
            method: "DESCRIBE",
            status: 401
        }]
    );
    // Content-Location serves as the base when there is no Content-Base.
    let mut s = Server::play(None, RtpOver::Tcp);
    s.answer("RTSP/1.0 200 OK\nCSeq: 1\n", "").expect("valid");
    s.answer(
        "RTSP/1.0 200 OK\nCSeq: 2\nContent-Location: rtsp://cam.local:554/base\n",
        SDP,
    )
    .expect("valid");
    assert!(s
        .sent()
        .contains("SETUP rtsp://cam.local:554/base/stream=0 RTSP/1.0\r\n"));
}
