//! Server session tests against a hand-driven peer: raw commands in, decoded messages out.

use bytes::BytesMut;
use std::time::{Duration, Instant};

use super::*;
use crate::amf0;
use crate::chunk::{Encoder, Limits};
use crate::fuzzing::plain_handshake;
use crate::handshake::PACKET_SIZE;
use crate::message::{
    ACKNOWLEDGEMENT, SET_CHUNK_SIZE, SET_PEER_BANDWIDTH, USER_CONTROL, WINDOW_ACK_SIZE,
};

/// A scripted client: writes chunks with its own encoder, reads the server's with a decoder,
/// on a simulated clock.
struct Peer {
    server: Session,
    enc: Encoder,
    dec: Decoder,
    skipped_handshake: usize,
    /// The simulated time: moved only by [`Peer::advance`].
    now: Instant,
}

impl Peer {
    fn new(config: Config) -> Self {
        let now = Instant::now();
        let mut server = Session::new(config, [9; RANDOM_SIZE], now);
        server
            .handle_input(now, &plain_handshake())
            .expect("handshake");
        assert!(server.is_handshake_done());
        Peer {
            server,
            enc: Encoder::new(),
            dec: Decoder::new(Limits::default()),
            skipped_handshake: 0,
            now,
        }
    }

    /// Moves the clock on by `ms` and lets the session's timers run, as a driver whose sleep
    /// until `poll_timeout` ended would; returns the events.
    fn advance(&mut self, ms: u64) -> Vec<Event> {
        self.now += Duration::from_millis(ms);
        self.server.handle_timeout(self.now);
        self.events()
    }

    fn send(
        &mut self,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) -> Result<(), Error> {
        let mut out = BytesMut::new();
        let h = Header {
            csid,
            timestamp: 0,
            type_id,
            stream_id,
        };
        self.enc.write(&mut out, h, payload).expect("encodes");
        self.server.handle_input(self.now, &out)
    }

    fn command(&mut self, stream_id: u32, values: &[Value]) -> Result<(), Error> {
        let mut b = BytesMut::new();
        for v in values {
            amf0::encode(v, &mut b);
        }
        self.send(3, message::COMMAND_AMF0, stream_id, &b)
    }

    fn data(&mut self, stream_id: u32, values: &[Value]) -> Result<(), Error> {
        let mut b = BytesMut::new();
        for v in values {
            amf0::encode(v, &mut b);
        }
        self.send(5, message::DATA_AMF0, stream_id, &b)
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    /// Everything the server sent since the last call, as messages.
    fn replies(&mut self) -> Vec<Message> {
        let mut out = BytesMut::new();
        if !self.server.poll_transmit(&mut out) {
            return Vec::new();
        }
        let skip = (1 + 2 * PACKET_SIZE)
            .saturating_sub(self.skipped_handshake)
            .min(out.len());
        self.skipped_handshake += skip;
        let _ = out.split_to(skip);
        self.dec.push(&out);
        std::iter::from_fn(|| self.dec.poll_message().expect("server output decodes")).collect()
    }

    fn commands(&mut self) -> Vec<Command> {
        self.replies()
            .into_iter()
            .filter(|m| m.type_id == message::COMMAND_AMF0)
            .map(|m| Command::parse(&m.payload).expect("command"))
            .collect()
    }

    fn connect(&mut self, app: &str, tc_url: &str, extra: Vec<(String, Value)>) {
        let mut obj = vec![
            ("app".to_owned(), Value::string(app)),
            ("tcUrl".to_owned(), Value::string(tc_url)),
            ("objectEncoding".to_owned(), Value::Number(3.0)),
        ];
        obj.extend(extra);
        self.command(
            0,
            &[
                Value::string("connect"),
                Value::Number(1.0),
                Value::Object(obj),
            ],
        )
        .expect("connect");
    }

    fn create_stream(&mut self) -> u32 {
        self.command(
            0,
            &[
                Value::string("createStream"),
                Value::Number(4.0),
                Value::Null,
            ],
        )
        .expect("createStream");
        let r = self.commands().pop().expect("a reply");
        assert_eq!((r.name.as_str(), r.transaction_id), ("_result", 4.0));
        r.arg(0).and_then(Value::as_f64).expect("stream id") as u32
    }

    fn publish(&mut self, stream_id: u32, name: &str) -> Result<(), Error> {
        self.command(
            stream_id,
            &[
                Value::string("publish"),
                Value::Number(5.0),
                Value::Null,
                Value::string(name),
                Value::string("live"),
            ],
        )
    }
}

fn status_codes(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter(|c| c.name == "onStatus")
        .filter_map(|c| c.arg(0)?.get("code")?.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn connect_reply() {
    let mut p = Peer::new(Config::default());
    let list = Value::StrictArray(vec![Value::string("hvc1"), Value::string("av01")]);
    p.connect(
        "live?x=1",
        "rtmp://h/live?x=1",
        vec![("fourCcList".into(), list)],
    );
    assert_eq!(
        p.events(),
        [Event::Connect {
            app: "live".into(),
            tc_url: "rtmp://h/live?x=1".into()
        }]
    );
    let replies = p.replies();
    let types: Vec<u8> = replies.iter().map(|m| m.type_id).collect();
    assert_eq!(
        types,
        [
            WINDOW_ACK_SIZE,
            SET_PEER_BANDWIDTH,
            SET_CHUNK_SIZE,
            message::COMMAND_AMF0
        ]
    );
    assert_eq!(&replies[2].payload[..], &4096u32.to_be_bytes());
    let result = Command::parse(&replies[3].payload).expect("command");
    assert_eq!(
        (result.name.as_str(), result.transaction_id),
        ("_result", 1.0)
    );
    let info = result.arg(0).expect("info");
    assert_eq!(
        info.get("code").and_then(Value::as_str),
        Some("NetConnection.Connect.Success")
    );
    assert_eq!(
        info.get("objectEncoding").and_then(Value::as_f64),
        Some(3.0)
    );
    assert_eq!(
        result.object.get("fourCcList"),
        Some(&Value::StrictArray(vec![
            Value::string("hvc1"),
            Value::string("avc1")
        ]))
    );
}

#[test]
fn no_fourcc_list_without_enhanced_client() {
    let mut p = Peer::new(Config::default());
    p.connect("live", "rtmp://h/live", vec![]);
    let result = p.commands().pop().expect("reply");
    assert!(result.object.get("fourCcList").is_none());
}

#[test]
fn publish_flow_with_query_merge() {
    let mut p = Peer::new(Config::default());
    p.connect("live?from=app", "rtmp://h/live?from=app", vec![]);
    p.events();
    p.replies();
    for (cmd, expect) in [("releaseStream", "_result"), ("FCPublish", "onFCPublish")] {
        p.command(
            0,
            &[
                Value::string(cmd),
                Value::Number(2.0),
                Value::Null,
                Value::string("obs"),
            ],
        )
        .expect("ok");
        assert_eq!(
            p.commands().first().map(|c| c.name.clone()),
            Some(expect.to_owned())
        );
    }
    let id = p.create_stream();
    assert_eq!(id, 1);
    p.publish(id, "obs").expect("publish");
    assert_eq!(
        p.events(),
        [Event::PublishRequested {
            stream_id: 1,
            app: "live".into(),
            name: "obs".into(),
            query: "from=app".into(),
            publish_type: "live".into()
        }]
    );
    // A second stream whose name carries its own query.
    let id2 = p.create_stream();
    p.publish(id2, "cam?token=abc").expect("publish");
    let ev = p.events();
    assert!(
        matches!(&ev[..], [Event::PublishRequested { name, query, .. }] if name == "cam" && query == "token=abc")
    );

    p.server.accept_publish(p.now, id);
    assert_eq!(status_codes(&p.commands()), ["NetStream.Publish.Start"]);
    p.server
        .reject_publish(p.now, id2, "NetStream.Publish.BadAuth", "bad token");
    let cmds = p.commands();
    assert_eq!(status_codes(&cmds), ["NetStream.Publish.BadAuth"]);
    let info = cmds[0].arg(0).expect("info");
    assert_eq!(info.get("level").and_then(Value::as_str), Some("error"));
    assert_eq!(
        info.get("description").and_then(Value::as_str),
        Some("bad token")
    );

    // Media on the rejected stream is dropped; on the accepted one it is reported.
    p.send(6, message::AUDIO, id2, &[0xaf, 1, 2]).expect("ok");
    p.send(6, message::AUDIO, id, &[0xaf, 1, 2]).expect("ok");
    p.send(7, message::VIDEO, id, &[]).expect("ok");
    assert!(matches!(
        &p.events()[..],
        [Event::Audio { stream_id: 1, .. }]
    ));

    p.command(
        0,
        &[
            Value::string("FCUnpublish"),
            Value::Number(6.0),
            Value::Null,
            Value::string("obs"),
        ],
    )
    .expect("ok");
    assert_eq!(p.events(), [Event::Unpublished { stream_id: 1 }]);
    // deleteStream after FCUnpublish does not report it twice.
    p.command(
        0,
        &[
            Value::string("deleteStream"),
            Value::Number(7.0),
            Value::Null,
            Value::Number(1.0),
        ],
    )
    .expect("ok");
    assert_eq!(p.events(), []);
}

#[test]
fn metadata_forms() {
    let mut p = Peer::new(Config::default());
    p.connect("live", "rtmp://h/live", vec![]);
    let id = p.create_stream();
    p.publish(id, "s").expect("publish");
    p.events();
    let meta = Value::EcmaArray(vec![("width".into(), Value::Number(320.0))]);
    let mut expect = BytesMut::new();
    amf0::encode(&Value::string("onMetaData"), &mut expect);
    amf0::encode(&meta, &mut expect);

    p.data(
        id,
        &[
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            meta.clone(),
        ],
    )
    .expect("ok");
    p.data(id, &[Value::string("onMetaData"), meta.clone()])
        .expect("ok");
    // Ignored: nothing after @setDataFrame, a name without object, other handlers.
    p.data(id, &[Value::string("@setDataFrame")]).expect("ok");
    p.data(
        id,
        &[Value::string("@setDataFrame"), Value::string("onMetaData")],
    )
    .expect("ok");
    p.data(id, &[Value::string("onTextData"), meta.clone()])
        .expect("ok");
    p.send(5, message::DATA_AMF0, id, &[0x02, 0x00])
        .expect("truncated AMF is ignored");
    // AMF3 data message with the AMF0 format byte.
    let mut amf3 = vec![0u8];
    amf3.extend_from_slice(&expect);
    p.send(5, message::DATA_AMF3, id, &amf3).expect("ok");

    let events = p.events();
    assert_eq!(events.len(), 3, "{events:?}");
    for ev in events {
        assert_eq!(
            ev,
            Event::Metadata {
                stream_id: id,
                data: expect.clone().freeze()
            }
        );
    }
}

#[test]
fn play_flow() {
    let mut p = Peer::new(Config::default());
    p.connect("live", "rtmp://h/live", vec![]);
    p.events();
    let id = p.create_stream();
    p.command(
        id,
        &[
            Value::string("play"),
            Value::Number(0.0),
            Value::Null,
            Value::string("s?k=v"),
        ],
    )
    .expect("play");
    assert_eq!(
        p.events(),
        [Event::PlayRequested {
            stream_id: id,
            app: "live".into(),
            name: "s".into(),
            query: "k=v".into()
        }]
    );
    p.replies();
    p.server.accept_play(p.now, id);
    let replies = p.replies();
    assert_eq!(replies[0].type_id, USER_CONTROL);
    assert_eq!(
        UserControl::parse(&replies[0].payload),
        Ok(UserControl::StreamBegin(id))
    );
    let cmds: Vec<Command> = replies
        .iter()
        .filter(|m| m.type_id == message::COMMAND_AMF0)
        .map(|m| Command::parse(&m.payload).expect("cmd"))
        .collect();
    assert_eq!(
        status_codes(&cmds),
        ["NetStream.Play.Reset", "NetStream.Play.Start"]
    );
    let data: Vec<String> = replies
        .iter()
        .filter(|m| m.type_id == message::DATA_AMF0)
        .filter_map(|m| amf0::decode(&m.payload).ok()?.0.as_str().map(str::to_owned))
        .collect();
    // No `onStatus` data message: ffmpeg would make it a third stream.
    assert_eq!(data, ["|RtmpSampleAccess"]);

    let video = Bytes::from(vec![0x17; 10_000]);
    p.server.send_video(id, 40, &video);
    p.server
        .send_audio(id, 41, &Bytes::from_static(&[0xaf, 1, 9]));
    let got = p.replies();
    assert_eq!(
        (got[0].type_id, got[0].timestamp, &got[0].payload),
        (message::VIDEO, 40, &video)
    );
    assert_eq!((got[1].csid, got[0].csid), (CSID_AUDIO, CSID_VIDEO));

    p.server.send_eof(id);
    let replies = p.replies();
    let cmds: Vec<Command> = replies
        .iter()
        .filter(|m| m.type_id == message::COMMAND_AMF0)
        .map(|m| Command::parse(&m.payload).expect("cmd"))
        .collect();
    assert_eq!(
        status_codes(&cmds),
        ["NetStream.Play.UnpublishNotify", "NetStream.Play.Stop"]
    );
    assert_eq!(
        replies.last().map(|m| UserControl::parse(&m.payload)),
        Some(Ok(UserControl::StreamEof(id)))
    );

    p.command(
        id,
        &[
            Value::string("closeStream"),
            Value::Number(0.0),
            Value::Null,
        ],
    )
    .expect("ok");
    assert_eq!(p.events(), [Event::PlayStopped { stream_id: id }]);
}

#[test]
fn reject_play() {
    let mut p = Peer::new(Config::default());
    p.connect("live", "rtmp://h/live", vec![]);
    let id = p.create_stream();
    p.command(
        id,
        &[
            Value::string("play"),
            Value::Number(0.0),
            Value::Null,
            Value::string("nope"),
        ],
    )
    .expect("play");
    p.replies();
    p.server
        .reject_play(p.now, id, "NetStream.Play.StreamNotFound", "no such stream");
    assert_eq!(
        status_codes(&p.commands()),
        ["NetStream.Play.StreamNotFound"]
    );
}

#[test]
fn ping_and_acknowledgement() {
    let config = Config {
        window_ack_size: 1000,
        ..Config::default()
    };
    let mut p = Peer::new(config);
    let mut ping = BytesMut::new();
    UserControl::PingRequest(77).encode(&mut ping);
    p.send(2, USER_CONTROL, 0, &ping).expect("ok");
    let r = p.replies();
    // The handshake alone was over 1000 bytes, so an acknowledgement came first.
    assert_eq!(r[0].type_id, ACKNOWLEDGEMENT);
    assert_eq!(
        &r[0].payload[..],
        &(1 + 2 * PACKET_SIZE as u32).to_be_bytes()
    );
    assert_eq!(r[1].type_id, USER_CONTROL);
    assert_eq!(
        UserControl::parse(&r[1].payload),
        Ok(UserControl::PingResponse(77))
    );
    // The peer asks for a bigger window: no ack for a while.
    p.send(2, WINDOW_ACK_SIZE, 0, &100_000u32.to_be_bytes())
        .expect("ok");
    p.send(6, message::AUDIO, 0, &[0; 2000]).expect("ok");
    assert!(p.replies().iter().all(|m| m.type_id != ACKNOWLEDGEMENT));
    p.send(6, message::AUDIO, 0, &vec![0; 100_000]).expect("ok");
    let acks: Vec<_> = p
        .replies()
        .into_iter()
        .filter(|m| m.type_id == ACKNOWLEDGEMENT)
        .collect();
    assert_eq!(acks.len(), 1);
    let seq = control_u32(&acks[0].payload, "ack").expect("u32");
    assert_eq!(u64::from(seq), p.server.bytes_received());
}

#[test]
fn violations_kill_the_session() {
    let mut p = Peer::new(Config::default());
    let err = p.command(
        0,
        &[
            Value::string("createStream"),
            Value::Number(2.0),
            Value::Null,
        ],
    );
    assert!(matches!(err, Err(Error::ProtocolViolation { .. })));
    assert_eq!(p.server.handle_input(p.now, &[0]), Err(Error::Closed));

    let mut p = Peer::new(Config::default());
    p.connect("live", "rtmp://h/live", vec![]);
    let id = p.create_stream();
    p.publish(id, "a").expect("first publish");
    assert!(matches!(
        p.publish(id, "b"),
        Err(Error::ProtocolViolation { .. })
    ));

    let mut p = Peer::new(Config {
        max_streams: 2,
        ..Config::default()
    });
    p.connect("live", "rtmp://h/live", vec![]);
    p.create_stream();
    p.create_stream();
    let err = p.command(
        0,
        &[
            Value::string("createStream"),
            Value::Number(4.0),
            Value::Null,
        ],
    );
    assert!(matches!(err, Err(Error::LimitExceeded { .. })));

    let mut p = Peer::new(Config::default());
    assert!(matches!(
        p.send(3, message::COMMAND_AMF0, 0, &[0x02, 0xff]),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn unknown_commands_are_ignored() {
    let mut p = Peer::new(Config::default());
    p.connect("live", "rtmp://h/live", vec![]);
    p.replies();
    p.events();
    p.command(
        0,
        &[
            Value::string("someVendorThing"),
            Value::Number(9.0),
            Value::Null,
        ],
    )
    .expect("ok");
    p.command(
        0,
        &[Value::string("_checkbw"), Value::Number(10.0), Value::Null],
    )
    .expect("ok");
    let cmds = p.commands();
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].transaction_id, 10.0);
    assert!(p.events().is_empty());
}

#[test]
fn publish_without_create_stream_is_tolerated() {
    let mut p = Peer::new(Config::default());
    p.connect("live", "rtmp://h/live", vec![]);
    p.events();
    p.publish(1, "old-encoder").expect("publish");
    assert!(matches!(
        &p.events()[..],
        [Event::PublishRequested { stream_id: 1, .. }]
    ));
    assert!(matches!(
        p.publish(0, "x"),
        Err(Error::ProtocolViolation { .. })
    ));
}

/// The session's clocks, on the simulated clock with the default 15 s timeouts.
mod clocks {
    use super::*;

    const SECS_15: u64 = 15_000;

    fn timed_out(events: &[Event]) -> Option<Timeout> {
        match events {
            [Event::TimedOut { reason }] => Some(*reason),
            [] => None,
            other => panic!("unexpected events {other:?}"),
        }
    }

    fn play(p: &mut Peer, stream_id: u32, name: &str) {
        p.command(
            stream_id,
            &[
                Value::string("play"),
                Value::Number(5.0),
                Value::Null,
                Value::string(name),
            ],
        )
        .expect("play");
    }

    #[test]
    fn handshake_and_connect_must_be_done_in_time() {
        // Nothing at all: the deadline is handshakeSecond after the session began.
        let start = Instant::now();
        let mut s = Session::new(Config::default(), [9; RANDOM_SIZE], start);
        assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(15)));
        // Half a C0C1 arrives, and is no reason to wait longer.
        let half = plain_handshake();
        s.handle_input(start + Duration::from_secs(10), &half[..700])
            .expect("partial handshake");
        assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(15)));
        s.handle_timeout(start + Duration::from_millis(14_999));
        assert_eq!(s.poll_event(), None, "not before the deadline");
        s.handle_timeout(start + Duration::from_secs(15));
        assert_eq!(
            s.poll_event(),
            Some(Event::TimedOut {
                reason: Timeout::Handshake
            })
        );
        assert_eq!(s.poll_timeout(), None, "a dead session has no clock");
        let later = start + Duration::from_secs(16);
        assert_eq!(s.handle_input(later, &half[700..]), Err(Error::Closed));

        // A finished handshake is not enough: `connect` must come too.
        let mut p = Peer::new(Config::default());
        assert_eq!(timed_out(&p.advance(SECS_15 - 1)), None);
        assert_eq!(timed_out(&p.advance(1)), Some(Timeout::Handshake));

        // Once connected, the handshake deadline is gone and the keep-alive counts from the
        // connect.
        let mut p = Peer::new(Config::default());
        p.advance(SECS_15 - 1);
        p.connect("live", "rtmp://h/live", vec![]);
        p.events();
        assert_eq!(
            p.server.poll_timeout(),
            Some(p.now + Duration::from_secs(15))
        );
        assert_eq!(timed_out(&p.advance(SECS_15 - 1)), None);
        assert_eq!(timed_out(&p.advance(1)), Some(Timeout::KeepAlive));
    }

    #[test]
    fn a_silent_publisher_times_out() {
        let mut p = Peer::new(Config::default());
        p.connect("live", "rtmp://h/live", vec![]);
        let id = p.create_stream();
        p.publish(id, "cam").expect("publish");
        p.events();
        p.advance(5_000);
        p.server.accept_publish(p.now, id);
        let accepted = p.now;
        assert_eq!(
            p.server.poll_timeout(),
            Some(accepted + Duration::from_secs(15))
        );
        // Media restarts the clock.
        p.advance(10_000);
        p.send(6, message::AUDIO, id, &[0xaf, 0x01, 0x21])
            .expect("audio");
        p.events();
        assert_eq!(timed_out(&p.advance(SECS_15 - 1)), None);
        assert_eq!(timed_out(&p.advance(1)), Some(Timeout::KeepAlive));
        assert_eq!(p.server.poll_event(), None, "reported once");
        p.server.handle_timeout(p.now + Duration::from_secs(60));
        assert_eq!(p.server.poll_event(), None, "reported once");
    }

    #[test]
    fn a_silent_player_is_not_timed_out() {
        let mut p = Peer::new(Config::default());
        p.connect("live", "rtmp://h/live", vec![]);
        let id = p.create_stream();
        play(&mut p, id, "cam");
        p.events();
        p.server.accept_play(p.now, id);
        assert_eq!(p.server.poll_timeout(), None);
        assert_eq!(timed_out(&p.advance(3_600_000)), None);
        // Once it stops playing, it is an idle session again, held to the keep-alive.
        p.command(
            id,
            &[
                Value::string("closeStream"),
                Value::Number(0.0),
                Value::Null,
            ],
        )
        .expect("closeStream");
        assert!(matches!(&p.events()[..], [Event::PlayStopped { .. }]));
        assert_eq!(timed_out(&p.advance(SECS_15)), Some(Timeout::KeepAlive));
    }

    #[test]
    fn activity_restarts_the_keep_alive() {
        let mut p = Peer::new(Config::default());
        p.connect("live", "rtmp://h/live", vec![]);
        p.events();
        let mut ping = BytesMut::new();
        UserControl::PingResponse(1).encode(&mut ping);
        // A minute of input every 10 s keeps a session that does nothing else alive.
        for _ in 0..6 {
            assert_eq!(timed_out(&p.advance(10_000)), None);
            p.send(2, USER_CONTROL, 0, &ping).expect("ping");
        }
        assert_eq!(timed_out(&p.advance(SECS_15 - 1)), None);
        assert_eq!(timed_out(&p.advance(1)), Some(Timeout::KeepAlive));
    }

    #[test]
    fn no_clock_runs_while_the_driver_decides() {
        let mut p = Peer::new(Config::default());
        p.connect("live", "rtmp://h/live", vec![]);
        let id = p.create_stream();
        p.publish(id, "cam").expect("publish");
        p.events();
        assert_eq!(p.server.poll_timeout(), None, "on_publish is in flight");
        assert_eq!(timed_out(&p.advance(60_000)), None);
        // A refusal starts the keep-alive again from the answer.
        p.server
            .reject_publish(p.now, id, "NetStream.Publish.BadAuth", "no");
        assert_eq!(
            p.server.poll_timeout(),
            Some(p.now + Duration::from_secs(15))
        );

        let config = Config {
            handshake_timeout: Duration::from_secs(2),
            keep_alive: Duration::from_secs(3),
            ..Config::default()
        };
        let mut p = Peer::new(config);
        assert_eq!(
            p.server.poll_timeout(),
            Some(p.now + Duration::from_secs(2))
        );
        p.connect("live", "rtmp://h/live", vec![]);
        assert_eq!(
            p.server.poll_timeout(),
            Some(p.now + Duration::from_secs(3))
        );
        // A keep-alive too long to represent is no keep-alive, not a panic.
        let config = Config {
            keep_alive: Duration::MAX,
            handshake_timeout: Duration::MAX,
            ..Config::default()
        };
        let mut p = Peer::new(config);
        assert_eq!(p.server.poll_timeout(), None);
        p.connect("live", "rtmp://h/live", vec![]);
        assert_eq!(p.server.poll_timeout(), None);
    }
}
