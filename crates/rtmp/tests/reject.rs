//! The driver's refusals reach the client as `Rejected` with the driver's code and text.

mod common;

use common::Pair;
use rtmp::{client, server};

#[test]
fn rejected_publish() {
    let mut pair = Pair::default_pair();
    pair.client.connect("live", "rtmp://h/live");
    pair.client.publish("cam?token=wrong");
    pair.pump(|now, s, ev| {
        if let server::Event::PublishRequested {
            stream_id, query, ..
        } = ev
        {
            assert_eq!(query, "token=wrong");
            s.reject_publish(
                now,
                *stream_id,
                "NetStream.Publish.BadAuth",
                "invalid token",
            );
        }
    });
    assert_eq!(
        pair.take_client_events(),
        [
            client::Event::Connected,
            client::Event::Rejected {
                code: "NetStream.Publish.BadAuth".into(),
                description: "invalid token".into()
            }
        ]
    );
    // Media sent after the refusal goes nowhere.
    pair.client
        .send_audio(0, &bytes::Bytes::from_static(&[0xaf, 1, 0]));
    pair.pump(|_, _, _| {});
    assert!(pair
        .take_server_events()
        .iter()
        .all(|e| !matches!(e, server::Event::Audio { .. })));
}

#[test]
fn rejected_play() {
    let mut pair = Pair::default_pair();
    pair.client.connect("live", "rtmp://h/live");
    pair.client.play("missing");
    pair.pump(|now, s, ev| {
        if let server::Event::PlayRequested {
            stream_id, name, ..
        } = ev
        {
            assert_eq!(name, "missing");
            s.reject_play(
                now,
                *stream_id,
                "NetStream.Play.StreamNotFound",
                "no such stream",
            );
        }
    });
    assert_eq!(
        pair.take_client_events(),
        [
            client::Event::Connected,
            client::Event::Rejected {
                code: "NetStream.Play.StreamNotFound".into(),
                description: "no such stream".into()
            }
        ]
    );
}
