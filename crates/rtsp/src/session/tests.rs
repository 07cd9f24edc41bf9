//! Session tests against a scripted client on a simulated clock: request text in, the exact
//! replies and events out.

use super::*;
use crate::message::RtpInfo;

const URL: &str = "rtsp://h/live/cam";

/// A session and the simulated time, moved only by [`Client::advance`].
struct Client {
    s: Session,
    now: Instant,
}

impl Client {
    fn new() -> Client {
        Client::with(RtspConfig::default())
    }

    fn with(config: RtspConfig) -> Client {
        let now = Instant::now();
        Client {
            s: Session::new("abc".into(), &config, now),
            now,
        }
    }

    /// Sends request text, `\n` written as CRLF.
    fn send(&mut self, text: &str) -> Result<(), Error> {
        let bytes = text.replace('\n', "\r\n");
        self.s.handle_input(self.now, bytes.as_bytes())
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// Everything the session queued since the last call.
    fn sent(&mut self) -> String {
        let mut out = BytesMut::new();
        self.s.poll_transmit(&mut out);
        String::from_utf8(out.to_vec()).expect("replies are text")
    }

    /// Moves the clock on by `ms` and lets the timers run, as a driver whose sleep until
    /// `poll_timeout` ended would; returns the events.
    fn advance(&mut self, ms: u64) -> Vec<Event> {
        self.now += Duration::from_millis(ms);
        self.s.handle_timeout(self.now);
        self.events()
    }

    /// DESCRIBE, answered with two tracks.
    fn described(&mut self) {
        self.send(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 1\n\n"))
            .expect("describe");
        assert!(matches!(&self.events()[..], [Event::Describe { .. }]));
        self.s
            .describe_ok(
                self.now,
                "v=0\r\n",
                vec!["trackID=0".into(), "trackID=1".into()],
            )
            .expect("answer");
        self.sent();
    }

    /// SETUP of `track` over TCP, answered as asked.
    fn set_up(&mut self, track: usize, cseq: u32) {
        self.send(&format!(
            "SETUP {URL}/trackID={track} RTSP/1.0\nCSeq: {cseq}\nTransport: RTP/AVP/TCP;unicast\n\n"
        ))
        .expect("setup");
        let [Event::Setup { transport, .. }] = &self.events()[..] else {
            panic!("no setup event")
        };
        self.s
            .setup_ok(self.now, transport.clone())
            .expect("answer");
        self.sent();
    }
}

fn timed_out(events: &[Event]) -> Option<Timeout> {
    match events {
        [Event::TimedOut { reason }] => Some(*reason),
        [] => None,
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn keep_alives_and_refusals_are_answered_inside() {
    let mut c = Client::new();
    c.send(&format!("OPTIONS {URL} RTSP/1.0\nCSeq: 1\n\n"))
        .expect("ok");
    assert_eq!(
        c.sent(),
        format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: {PUBLIC}\r\n\r\n")
    );
    c.send(&format!("GET_PARAMETER {URL} RTSP/1.0\nCSeq: 2\n\n"))
        .expect("ok");
    c.send(&format!(
        "SET_PARAMETER {URL} RTSP/1.0\nCSeq: 3\nContent-Length: 5\n\nx: 1\n"
    ))
    .expect("ok");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 200 OK\r\nCSeq: 2\r\nSession: abc;timeout=15\r\n\r\n\
         RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: abc;timeout=15\r\n\r\n"
    );
    // Out of order, another session's id, an unknown method, no CSeq: refused, and the
    // session goes on.
    c.send(&format!("PLAY {URL} RTSP/1.0\nCSeq: 4\n\n"))
        .expect("ok");
    c.send(&format!("PLAY {URL} RTSP/1.0\nCSeq: 5\nSession: other\n\n"))
        .expect("ok");
    c.send(&format!("FLY {URL} RTSP/1.0\nCSeq: 6\n\n"))
        .expect("ok");
    c.send(&format!("OPTIONS {URL} RTSP/1.0\n\n")).expect("ok");
    c.send(&format!("RECORD {URL} RTSP/1.0\nCSeq: 7\n\n"))
        .expect("ok");
    c.send(&format!("PAUSE {URL} RTSP/1.0\nCSeq: 8\n\n"))
        .expect("ok");
    c.send(&format!(
        "SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: 9\nTransport: RTP/AVP/TCP;interleaved=0-1\n\n"
    ))
    .expect("ok");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 4\r\n\r\n\
         RTSP/1.0 454 Session Not Found\r\nCSeq: 5\r\n\r\n\
         RTSP/1.0 501 Not Implemented\r\nCSeq: 6\r\n\r\n\
         RTSP/1.0 400 Bad Request\r\n\r\n\
         RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 7\r\n\r\n\
         RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 8\r\n\r\n\
         RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 9\r\n\r\n"
    );
    assert!(c.events().is_empty(), "nothing asked the driver");
    assert!(c.s.is_established() && !c.s.is_closed());
}

#[test]
fn undecodable_input_is_a_400_and_the_end() {
    let mut c = Client::new();
    c.send(&format!("OPTIONS {URL} RTSP/1.0\nCSeq: 1\n\n"))
        .expect("ok");
    c.sent();
    let err = c.s.handle_input(c.now, b"OPT\x00IONS * RTSP/1.0\r\n\r\n");
    assert!(matches!(err, Err(Error::Malformed { .. })), "{err:?}");
    assert_eq!(c.sent(), "RTSP/1.0 400 Bad Request\r\n\r\n");
    assert!(c.s.is_closed());
    assert_eq!(c.s.poll_timeout(), None);
    // What follows is ignored.
    c.send(&format!("OPTIONS {URL} RTSP/1.0\nCSeq: 2\n\n"))
        .expect("ignored");
    assert_eq!(c.sent(), "");

    // So is a request over the size cap.
    let mut c = Client::with(RtspConfig {
        max_message: 100,
        ..RtspConfig::default()
    });
    let long = format!("OPTIONS {URL} RTSP/1.0\nX: {}\n\n", "a".repeat(100));
    assert!(matches!(c.send(&long), Err(Error::LimitExceeded { .. })));
    assert_eq!(c.sent(), "RTSP/1.0 400 Bad Request\r\n\r\n");
}

#[test]
fn a_play_session_in_order() {
    let mut c = Client::new();
    c.send(&format!(
        "DESCRIBE {URL} RTSP/1.0\nCSeq: 2\nAccept: application/sdp\n\n"
    ))
    .expect("ok");
    assert_eq!(
        c.events(),
        [Event::Describe {
            uri: URL.into(),
            credentials: None
        }]
    );
    assert_eq!(c.sent(), "", "nothing before the answer");
    let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\n";
    c.s.describe_ok(c.now, sdp, vec!["trackID=0".into(), "trackID=1".into()])
        .expect("answer");
    assert_eq!(
        c.sent(),
        // rtsp-types writes the headers sorted by name.
        format!(
            "RTSP/1.0 200 OK\r\nContent-Base: {URL}/\r\nContent-Length: {}\r\n\
             Content-Type: application/sdp\r\nCSeq: 2\r\n\r\n{sdp}",
            sdp.len()
        )
    );
    // A second DESCRIBE is out of order now.
    c.send(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 3\n\n"))
        .expect("ok");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 3\r\n\r\n"
    );

    c.send(&format!(
        "SETUP {URL}/trackID=1 RTSP/1.0\nCSeq: 4\nTransport: RTP/AVP/TCP;unicast\n\n"
    ))
    .expect("ok");
    let [Event::Setup { track, transport }] = &c.events()[..] else {
        panic!("no setup")
    };
    assert_eq!((*track, transport.interleaved), (1, Some((2, 3))));
    c.s.setup_ok(c.now, transport.clone()).expect("answer");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: abc;timeout=15\r\n\
         Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n"
    );
    assert_eq!(c.s.setups().len(), 1);
    // The same channels for another track are refused; so are UDP without client ports and
    // multicast.
    for (cseq, transport) in [
        (5, "RTP/AVP/TCP;interleaved=2-3"),
        (6, "RTP/AVP;unicast"),
        (7, "RTP/AVP;multicast"),
    ] {
        c.send(&format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: {cseq}\nTransport: {transport}\n\n"
        ))
        .expect("ok");
        assert_eq!(
            c.sent(),
            format!("RTSP/1.0 461 Unsupported transport\r\nCSeq: {cseq}\r\n\r\n")
        );
    }

    c.send(&format!("PLAY {URL} RTSP/1.0\nCSeq: 8\nSession: abc\n\n"))
        .expect("ok");
    assert_eq!(
        c.events(),
        [Event::Play {
            uri: URL.into(),
            first: true
        }]
    );
    let info = [RtpInfo {
        url: format!("{URL}/trackID=1"),
        seq: 7,
        rtptime: 9,
    }];
    c.s.play_ok(c.now, "npt=0.000-", &info).expect("answer");
    assert_eq!(
        c.sent(),
        format!(
            "RTSP/1.0 200 OK\r\nCSeq: 8\r\nRange: npt=0.000-\r\n\
             RTP-Info: url={URL}/trackID=1;seq=7;rtptime=9\r\nSession: abc;timeout=15\r\n\r\n"
        )
    );
    assert!(c.s.is_playing());

    c.send(&format!("PAUSE {URL} RTSP/1.0\nCSeq: 9\nSession: abc\n\n"))
        .expect("ok");
    assert_eq!(c.events(), [Event::Pause]);
    assert_eq!(
        c.sent(),
        "RTSP/1.0 200 OK\r\nCSeq: 9\r\nSession: abc;timeout=15\r\n\r\n"
    );
    assert!(!c.s.is_playing());
    c.send(&format!("PLAY {URL} RTSP/1.0\nCSeq: 10\n\n"))
        .expect("ok");
    assert_eq!(
        c.events(),
        [Event::Play {
            uri: URL.into(),
            first: false
        }],
        "resuming is not a new start"
    );
    c.s.play_ok(c.now, "npt=0.000-", &[]).expect("answer");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 200 OK\r\nCSeq: 10\r\nRange: npt=0.000-\r\nSession: abc;timeout=15\r\n\r\n"
    );
    c.send(&format!("RECORD {URL} RTSP/1.0\nCSeq: 11\n\n"))
        .expect("ok");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 11\r\n\r\n"
    );

    // TEARDOWN ends the session; what follows it is not answered.
    c.send(&format!(
        "TEARDOWN {URL} RTSP/1.0\nCSeq: 12\nSession: abc\n\nOPTIONS * RTSP/1.0\nCSeq: 13\n\n"
    ))
    .expect("ok");
    assert_eq!(c.events(), [Event::Teardown]);
    assert_eq!(
        c.sent(),
        "RTSP/1.0 200 OK\r\nCSeq: 12\r\nSession: abc;timeout=15\r\n\r\n"
    );
    assert!(c.s.is_closed());
    assert_eq!(c.s.poll_timeout(), None);
}

#[test]
fn a_record_session_and_its_media() {
    let mut c = Client::new();
    let sdp = "v=0\r\ns=x\r\n";
    c.send(&format!(
        "ANNOUNCE {URL} RTSP/1.0\nCSeq: 1\nContent-Type: application/sdp\nContent-Length: {}\n\n{}",
        sdp.len(),
        sdp.replace("\r\n", "\n")
    ))
    .expect("ok");
    assert_eq!(
        c.events(),
        [Event::Announce {
            uri: URL.into(),
            sdp: Bytes::from(sdp)
        }]
    );
    c.s.announce_ok(c.now, vec!["streamid=0".into()])
        .expect("answer");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 200 OK\r\nCSeq: 1\r\nSession: abc;timeout=15\r\n\r\n"
    );
    c.send(&format!(
        "SETUP {URL}/streamid=0 RTSP/1.0\nCSeq: 2\n\
         Transport: RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record\n\n"
    ))
    .expect("ok");
    let [Event::Setup {
        track: 0,
        transport,
    }] = &c.events()[..]
    else {
        panic!("no setup")
    };
    assert!(transport.record && !transport.tcp);
    // The driver could not bind a port pair.
    c.s.reject(c.now, 500).expect("answer");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 500 Internal Server Error\r\nCSeq: 2\r\n\r\n"
    );
    assert!(c.s.setups().is_empty());
    c.send(&format!("RECORD {URL} RTSP/1.0\nCSeq: 3\n\n"))
        .expect("ok");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 3\r\n\r\n",
        "nothing is set up"
    );
    c.set_up(0, 4);
    c.send(&format!("RECORD {URL} RTSP/1.0\nCSeq: 5\n\n"))
        .expect("ok");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: abc;timeout=15\r\n\r\n"
    );
    assert_eq!(c.events(), [Event::Record]);
    assert!(c.s.is_recording());
    c.s.handle_input(c.now, &[0x24, 0, 0, 3, 1, 2, 3, 0x24, 1, 0, 1, 9])
        .expect("frames");
    assert_eq!(
        c.events(),
        [
            Event::Interleaved {
                channel: 0,
                payload: Bytes::from_static(&[1, 2, 3])
            },
            Event::Interleaved {
                channel: 1,
                payload: Bytes::from_static(&[9])
            }
        ]
    );
}

#[test]
fn auth_and_refusals_leave_the_session_as_it_was() {
    let mut c = Client::new();
    c.send(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 1\n\n"))
        .expect("ok");
    c.events();
    c.s.auth_required(c.now, auth::digest_challenge("r", "n"))
        .expect("answer");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\
         WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n\r\n"
    );
    c.send(&format!(
        "DESCRIBE {URL} RTSP/1.0\nCSeq: 2\nAuthorization: Basic dTpw\n\n"
    ))
    .expect("ok");
    assert_eq!(
        c.events(),
        [Event::Describe {
            uri: URL.into(),
            credentials: Some(Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            })
        }]
    );
    c.s.reject(c.now, 404).expect("answer");
    assert_eq!(c.sent(), "RTSP/1.0 404 Not Found\r\nCSeq: 2\r\n\r\n");
    // Answers with nothing waiting are ignored.
    c.s.reject(c.now, 500).expect("ignored");
    c.s.play_ok(c.now, "npt=0-", &[]).expect("ignored");
    assert_eq!(c.sent(), "");
    // Still Init: DESCRIBE is valid again.
    c.send(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 3\n\n"))
        .expect("ok");
    assert!(matches!(&c.events()[..], [Event::Describe { .. }]));
    // An answer of the wrong kind leaves the request waiting.
    c.s.setup_ok(c.now, Transport::default()).expect("ignored");
    c.s.announce_ok(c.now, Vec::new()).expect("ignored");
    assert_eq!(c.sent(), "");
    assert_eq!(c.s.poll_timeout(), None, "still waiting");
}

#[test]
fn pipelined_requests_wait_for_the_answer_before_them() {
    let mut c = Client::new();
    c.send(&format!(
        "OPTIONS {URL} RTSP/1.0\nCSeq: 1\n\n\
         DESCRIBE {URL} RTSP/1.0\nCSeq: 2\n\n\
         SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: 3\nTransport: RTP/AVP/TCP;unicast\n\n\
         GET_PARAMETER {URL} RTSP/1.0\nCSeq: 4\n\n"
    ))
    .expect("ok");
    assert!(matches!(&c.events()[..], [Event::Describe { .. }]));
    assert_eq!(
        c.sent(),
        format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: {PUBLIC}\r\n\r\n")
    );
    // More bytes while DESCRIBE waits are held too, within a bound.
    c.send(&format!("OPTIONS {URL} RTSP/1.0\nCSeq: 5\n\n"))
        .expect("held");
    assert!(c.events().is_empty());
    c.s.describe_ok(c.now, "v=0\r\n", vec!["trackID=0".into()])
        .expect("answer");
    // The SETUP behind it is decoded by the answer, and waits in turn.
    assert!(matches!(&c.events()[..], [Event::Setup { track: 0, .. }]));
    let described = c.sent();
    assert!(described.starts_with("RTSP/1.0 200 OK\r\n") && described.contains("\r\nCSeq: 2\r\n"));
    c.s.reject(c.now, 500).expect("answer");
    assert_eq!(
        c.sent(),
        format!(
            "RTSP/1.0 500 Internal Server Error\r\nCSeq: 3\r\n\r\n\
             RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: abc;timeout=15\r\n\r\n\
             RTSP/1.0 200 OK\r\nCSeq: 5\r\nPublic: {PUBLIC}\r\n\r\n"
        )
    );
    assert!(c.events().is_empty());

    // A client that keeps sending behind a waiting request is cut off.
    let mut c = Client::with(RtspConfig {
        max_message: 100,
        ..RtspConfig::default()
    });
    c.send(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 1\n\n"))
        .expect("ok");
    c.events();
    c.s.handle_input(c.now, &[b'\r'; 200]).expect("200 held");
    let err = c.s.handle_input(c.now, b"\r");
    assert!(matches!(err, Err(Error::LimitExceeded { .. })), "{err:?}");
    assert!(c.s.is_closed());
    assert_eq!(c.sent(), "RTSP/1.0 400 Bad Request\r\n\r\n");
    c.s.describe_ok(c.now, "v=0\r\n", Vec::new())
        .expect("ignored once closed");
    assert_eq!(c.sent(), "");
}

#[test]
fn undecodable_input_behind_an_answer_fails_the_answer() {
    let mut c = Client::new();
    c.send(&format!(
        "DESCRIBE {URL} RTSP/1.0\nCSeq: 1\n\nGARBAGE\x01\n\n"
    ))
    .expect("held");
    c.events();
    let err = c.s.reject(c.now, 404);
    assert!(matches!(err, Err(Error::Malformed { .. })), "{err:?}");
    assert_eq!(
        c.sent(),
        "RTSP/1.0 404 Not Found\r\nCSeq: 1\r\n\r\nRTSP/1.0 400 Bad Request\r\n\r\n"
    );
    assert!(c.s.is_closed());
}

#[test]
fn setups_are_capped_and_repeats_replace() {
    let mut c = Client::with(RtspConfig {
        max_setups: 3,
        ..RtspConfig::default()
    });
    c.described();
    for cseq in 2..=4 {
        c.set_up(0, cseq);
        assert_eq!(
            c.s.setups().len(),
            1,
            "a repeat replaces the track's transport"
        );
    }
    for cseq in 5..=6 {
        c.send(&format!(
            "SETUP {URL}/trackID=1 RTSP/1.0\nCSeq: {cseq}\nTransport: RTP/AVP;unicast;client_port=5000-5001\n\n"
        ))
        .expect("ok");
        assert_eq!(
            c.sent(),
            format!("RTSP/1.0 453 Not Enough Bandwidth\r\nCSeq: {cseq}\r\n\r\n")
        );
    }
    // A track the SDP does not have is a 404, and the session goes on.
    c.send(&format!(
        "SETUP {URL}/trackID=9 RTSP/1.0\nCSeq: 7\nTransport: RTP/AVP;unicast;client_port=5000-5001\n\n"
    ))
    .expect("ok");
    assert_eq!(c.sent(), "RTSP/1.0 404 Not Found\r\nCSeq: 7\r\n\r\n");
    c.send(&format!("PLAY {URL} RTSP/1.0\nCSeq: 8\nSession: abc\n\n"))
        .expect("ok");
    assert!(matches!(&c.events()[..], [Event::Play { first: true, .. }]));
}

#[test]
fn setup_urls() {
    let controls = vec!["trackID=0".to_owned(), "trackID=1".to_owned()];
    assert_eq!(track_of("rtsp://h/live/a/trackID=1", &controls), Some(1));
    assert_eq!(track_of("rtsp://h/live/a/trackID=1/", &controls), Some(1));
    assert_eq!(track_of("rtsp://h/live/a/trackID=2", &controls), None);
    assert_eq!(track_of("rtsp://h/live/a", &["x".to_owned()]), Some(0));
    let absolute = vec!["rtsp://h/live/a/streamid=0".to_owned()];
    assert_eq!(track_of("rtsp://h/live/a/streamid=0", &absolute), Some(0));
}

/// The clocks, with the default 15 s for both unless a test says otherwise.
mod clocks {
    use super::*;

    const SECS_15: u64 = 15_000;

    fn config(handshake: u64, keep_alive: u64) -> RtspConfig {
        RtspConfig {
            handshake_timeout: Duration::from_secs(handshake),
            keep_alive: Duration::from_secs(keep_alive),
            ..RtspConfig::default()
        }
    }

    #[test]
    fn the_first_request_must_come_within_the_handshake_time() {
        let mut c = Client::new();
        assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(15)));
        assert_eq!(timed_out(&c.advance(SECS_15 - 1)), None);
        assert_eq!(timed_out(&c.advance(1)), Some(Timeout::Handshake));
        assert_eq!(c.sent(), "", "nothing was asked, so nothing is answered");
        assert!(c.s.is_closed());
        assert_eq!(c.s.poll_timeout(), None);
        assert_eq!(timed_out(&c.advance(60_000)), None, "reported once");
    }

    #[test]
    fn a_request_must_be_complete_within_the_handshake_time_of_its_first_byte() {
        // keepAliveSecond (60 s) is longer: only the request clock can close it.
        let mut c = Client::with(config(2, 60));
        c.send(&format!("OPTIONS {URL} RTSP/1.0\nCSeq: 1\n\n"))
            .expect("ok");
        c.sent();
        c.advance(1_000);
        // Trickled: a byte every 500 ms, each received after the last.
        let request = format!("OPTIONS {URL} RTSP/1.0\r\nCSeq: 2\r\n\r\n");
        let first_byte = c.now;
        for (i, byte) in request.as_bytes().iter().take(4).enumerate() {
            if i > 0 {
                assert_eq!(timed_out(&c.advance(500)), None);
            }
            c.s.handle_input(c.now, &[*byte]).expect("partial");
            assert_eq!(
                c.s.poll_timeout(),
                Some(first_byte + Duration::from_secs(2))
            );
        }
        assert_eq!(timed_out(&c.advance(499)), None);
        assert_eq!(timed_out(&c.advance(1)), Some(Timeout::Request));
        assert_eq!(c.now, first_byte + Duration::from_secs(2));
        assert_eq!(c.sent(), "RTSP/1.0 408 Request Time-out\r\n\r\n");

        // From the connection's first byte, before any complete request.
        let mut c = Client::with(config(2, 60));
        c.advance(1_500);
        c.s.handle_input(c.now, b"OPT").expect("partial");
        assert_eq!(
            c.s.poll_timeout(),
            Some(c.now + Duration::from_millis(500)),
            "the connection's own deadline comes first"
        );
        assert_eq!(timed_out(&c.advance(500)), Some(Timeout::Handshake));
        assert_eq!(c.sent(), "RTSP/1.0 408 Request Time-out\r\n\r\n");
    }

    #[test]
    fn partial_bytes_do_not_restart_the_keep_alive() {
        let mut c = Client::with(config(15, 2));
        c.send(&format!("OPTIONS {URL} RTSP/1.0\nCSeq: 1\n\n"))
            .expect("ok");
        c.sent();
        let answered = c.now;
        for byte in b"OPTIONS * RT" {
            assert_eq!(timed_out(&c.advance(100)), None);
            c.s.handle_input(c.now, &[*byte]).expect("partial");
        }
        assert_eq!(c.s.poll_timeout(), Some(answered + Duration::from_secs(2)));
        c.now = answered + Duration::from_secs(2);
        c.s.handle_timeout(c.now);
        assert_eq!(
            timed_out(&c.events()),
            Some(Timeout::KeepAlive),
            "the keep-alive, started by the last complete request, ran out first"
        );
        assert_eq!(c.sent(), "RTSP/1.0 408 Request Time-out\r\n\r\n");
    }

    #[test]
    fn complete_inputs_restart_the_keep_alive() {
        let mut c = Client::with(config(15, 2));
        c.described();
        c.set_up(0, 2);
        // Requests, interleaved frames and UDP packets every 1.5 s keep it open for a minute.
        for i in 0..40 {
            assert_eq!(timed_out(&c.advance(1_500)), None);
            match i % 3 {
                0 => c
                    .send(&format!(
                        "GET_PARAMETER {URL} RTSP/1.0\nCSeq: {}\n\n",
                        i + 3
                    ))
                    .expect("ok"),
                1 => c.s.handle_input(c.now, &[0x24, 1, 0, 1, 0]).expect("ok"),
                _ => c.s.handle_udp_activity(c.now),
            }
            c.events();
            c.sent();
        }
        assert_eq!(timed_out(&c.advance(1_999)), None);
        assert_eq!(timed_out(&c.advance(1)), Some(Timeout::KeepAlive));
        assert_eq!(c.sent(), "", "no request was incomplete");
    }

    #[test]
    fn an_input_completed_with_the_start_of_another_restarts_the_request_clock() {
        let mut c = Client::with(config(2, 60));
        c.s.handle_input(c.now, b"OPTIONS * RTSP/1.0\r\n")
            .expect("partial");
        c.advance(1_500);
        // The rest of the first request and the start of a second, in one read.
        c.s.handle_input(c.now, b"CSeq: 1\r\n\r\nOPTIONS")
            .expect("complete");
        assert!(c.sent().starts_with("RTSP/1.0 200 OK\r\nCSeq: 1\r\n"));
        assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(2)));
    }

    #[test]
    fn no_clock_runs_while_the_driver_decides() {
        let mut c = Client::with(config(2, 3));
        c.send(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 1\n\nOPTI"))
            .expect("ok");
        c.events();
        assert_eq!(c.s.poll_timeout(), None);
        // on_rtsp_auth and a stream that takes maxStreamWaitMS to appear.
        assert_eq!(timed_out(&c.advance(60_000)), None);
        c.s.describe_ok(c.now, "v=0\r\n", vec!["trackID=0".into()])
            .expect("answer");
        // Both clocks start again at the answer: the keep-alive, and the request held
        // behind it.
        assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(2)));
        c.s.handle_input(c.now, b"ONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n")
            .expect("complete");
        assert_eq!(c.s.poll_timeout(), Some(c.now + Duration::from_secs(3)));

        // Timeouts too long to represent are no timeouts, not a panic.
        let mut c = Client::with(RtspConfig {
            handshake_timeout: Duration::MAX,
            keep_alive: Duration::MAX,
            ..RtspConfig::default()
        });
        assert_eq!(c.s.poll_timeout(), None);
        c.s.handle_input(c.now, b"OPT").expect("partial");
        assert_eq!(c.s.poll_timeout(), None);
        c.send(&format!("IONS {URL} RTSP/1.0\nCSeq: 1\n\n"))
            .expect("ok");
        assert_eq!(c.s.poll_timeout(), None);
        assert!(c.sent().starts_with("RTSP/1.0 200 OK\r\nCSeq: 1\r\n"));
    }
}

/// One conversation of a player and a publisher's media, fed whole and split at every offset:
/// the events and the replies must not depend on how the bytes were cut.
#[test]
fn split_at_every_offset_gives_the_same_conversation() {
    let stream = format!(
        "OPTIONS {URL} RTSP/1.0\r\nCSeq: 1\r\n\r\n\
         DESCRIBE {URL} RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Basic dTpw\r\n\r\n\
         SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n\
         \r\n\
         PLAY {URL} RTSP/1.0\r\nCSeq: 4\r\nSession: abc\r\n\r\n"
    );
    let mut stream = stream.into_bytes();
    stream.extend_from_slice(&[0x24, 1, 0, 2, 0x80, 0xc9]);
    stream.extend_from_slice(
        format!(
            "SET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 5\r\nContent-Length: 4\r\n\r\na: 1\
             TEARDOWN {URL} RTSP/1.0\r\nCSeq: 6\r\n\r\n"
        )
        .as_bytes(),
    );

    /// Feeds `parts`, answering every event as a driver would; returns the events and bytes.
    fn converse(parts: &[&[u8]]) -> (Vec<Event>, Vec<u8>) {
        let now = Instant::now();
        let mut s = Session::new("abc".into(), &RtspConfig::default(), now);
        let mut events = Vec::new();
        let mut out = BytesMut::new();
        for part in parts {
            s.handle_input(now, part).expect("valid");
            while let Some(event) = s.poll_event() {
                match &event {
                    Event::Describe { .. } => s
                        .describe_ok(now, "v=0\r\n", vec!["trackID=0".into()])
                        .expect("ok"),
                    Event::Setup { transport, .. } => {
                        s.setup_ok(now, transport.clone()).expect("ok")
                    }
                    Event::Play { .. } => s.play_ok(now, "npt=0.000-", &[]).expect("ok"),
                    _ => {}
                }
                events.push(event);
            }
            s.poll_transmit(&mut out);
        }
        assert!(s.is_closed(), "the TEARDOWN ended it");
        (events, out.to_vec())
    }

    let whole = converse(&[&stream]);
    assert_eq!(whole.0.len(), 5, "{:?}", whole.0);
    assert_eq!(
        whole.0[3],
        Event::Interleaved {
            channel: 1,
            payload: Bytes::from_static(&[0x80, 0xc9])
        }
    );
    assert_eq!(whole.0[4], Event::Teardown);
    let replies = String::from_utf8_lossy(&whole.1);
    assert_eq!(replies.matches("RTSP/1.0 200 OK").count(), 6, "{replies}");
    for split in 0..=stream.len() {
        let (a, b) = stream.split_at(split);
        assert_eq!(converse(&[a, b]), whole, "split at {split}");
    }
    // And one byte at a time.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(converse(&bytes), whole, "byte by byte");
}
