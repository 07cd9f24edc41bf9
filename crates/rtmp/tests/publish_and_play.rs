//! A publisher and a player, each a client+server pair in memory, with the test as the
//! registry in between: what the publisher sends is what the player receives.

mod common;

use bytes::Bytes;
use common::{ffmpeg_tags, publish_tags, Pair};
use rtmp::chunk::{Decoder, Limits};
use rtmp::handshake::PACKET_SIZE;
use rtmp::{client, message, server};

fn media_events(events: &[server::Event]) -> Vec<(u8, u32, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            server::Event::Audio {
                timestamp, payload, ..
            } => Some((8, *timestamp, payload.clone())),
            server::Event::Video {
                timestamp, payload, ..
            } => Some((9, *timestamp, payload.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn publish_then_play_fan_out() {
    let tags = ffmpeg_tags();
    let av: Vec<_> = tags.iter().filter(|t| t.0 != 18).cloned().collect();
    for digest in [false, true] {
        let client_config = client::Config {
            digest_handshake: digest,
            ..client::Config::default()
        };
        let mut publisher = Pair::new(client_config.clone(), server::Config::default());
        publish_tags(&mut publisher, "cam?token=abc", &tags);
        let events = publisher.take_server_events();
        assert_eq!(
            events[0],
            server::Event::Connect {
                app: "live".into(),
                tc_url: "rtmp://127.0.0.1/live".into()
            }
        );
        let server::Event::PublishRequested {
            stream_id,
            name,
            query,
            publish_type,
            ..
        } = &events[1]
        else {
            panic!("{:?}", events[1]);
        };
        assert_eq!(
            (name.as_str(), query.as_str(), publish_type.as_str()),
            ("cam", "token=abc", "live")
        );
        let stream_id = *stream_id;
        let metadata: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                server::Event::Metadata { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            metadata,
            [tags[0].2.clone()],
            "the script tag body is forwarded as is"
        );
        assert_eq!(media_events(&events), av, "digest={digest}");

        // A player on its own connection; a small window makes its client acknowledge.
        let server_config = server::Config {
            window_ack_size: 4096,
            ..server::Config::default()
        };
        let mut player = Pair::new(client_config, server_config);
        player.read_size = 1000;
        player.client.connect("live", "rtmp://127.0.0.1/live");
        player.client.play("cam");
        player.pump_accept();
        let ev = player.take_client_events();
        assert_eq!(ev, [client::Event::Connected, client::Event::PlayStarted]);
        assert!(matches!(
            &player.take_server_events()[..],
            [server::Event::Connect { .. }, server::Event::PlayRequested { name, query, .. }]
                if name == "cam" && query.is_empty()
        ));
        let player_stream = player.client.stream_id().expect("stream id");
        for e in &events {
            match e {
                server::Event::Metadata { data, .. } => {
                    player.server.send_metadata(player_stream, data)
                }
                server::Event::Audio {
                    timestamp, payload, ..
                } => player.server.send_audio(player_stream, *timestamp, payload),
                server::Event::Video {
                    timestamp, payload, ..
                } => player.server.send_video(player_stream, *timestamp, payload),
                _ => {}
            }
        }
        player.server.send_eof(player_stream);
        player.pump_accept();
        let got = player.take_client_events();
        assert_eq!(
            got.first(),
            Some(&client::Event::Metadata {
                data: tags[0].2.clone()
            })
        );
        let received: Vec<_> = got
            .iter()
            .filter_map(|e| match e {
                client::Event::Audio { timestamp, payload } => {
                    Some((8, *timestamp, payload.clone()))
                }
                client::Event::Video { timestamp, payload } => {
                    Some((9, *timestamp, payload.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(received, av);
        assert_eq!(
            got.iter()
                .filter(|e| **e == client::Event::StreamEof)
                .count(),
            1
        );
        assert_eq!(got.last(), Some(&client::Event::StreamEof));

        // The player acknowledged every 4096 bytes, as the server's window asked.
        let mut dec = Decoder::new(Limits::default());
        dec.push(&player.client_bytes[1 + 2 * PACKET_SIZE..]);
        let acks = std::iter::from_fn(|| dec.poll_message().expect("client bytes decode"))
            .filter(|m| m.type_id == message::ACKNOWLEDGEMENT)
            .count();
        assert!(acks >= 6, "{acks} acknowledgements");

        // Unpublishing reaches the driver once.
        publisher.client.delete_stream();
        publisher.pump_accept();
        assert_eq!(
            publisher.take_server_events(),
            [server::Event::Unpublished { stream_id }]
        );
        // Stopping the player does too.
        player.client.delete_stream();
        player.pump_accept();
        assert_eq!(
            player.take_server_events(),
            [server::Event::PlayStopped {
                stream_id: player_stream
            }]
        );
    }
}

#[test]
fn calls_before_the_handshake_are_queued() {
    let mut pair = Pair::default_pair();
    // Everything is requested before a single byte came back from the server.
    pair.client.connect("app", "rtmp://h/app");
    pair.client.publish("a");
    pair.pump_accept();
    assert_eq!(
        pair.take_client_events(),
        [client::Event::Connected, client::Event::PublishStarted]
    );
    assert!(pair.server.is_handshake_done());
}

#[test]
fn media_before_publish_started_is_not_sent() {
    let mut pair = Pair::default_pair();
    pair.client.connect("live", "rtmp://h/live");
    pair.client
        .send_video(0, &Bytes::from_static(&[0x17, 1, 0, 0, 0, 1]));
    pair.client.publish("a");
    pair.pump(|_, _, _| {});
    assert!(pair
        .take_server_events()
        .iter()
        .all(|e| !matches!(e, server::Event::Video { .. })));
}
