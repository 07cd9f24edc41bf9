//! A whole publish (handshake, connect, publish, metadata, audio and video) split in two at
//! every byte offset, and byte by byte, gives the server the same events (retina's check).

mod common;

use common::{ffmpeg_tags, publish_tags, replay, Pair};
use rtmp::client;

#[test]
fn publish_transcript_split_anywhere() {
    // The metadata and the first media tags (both sequence headers and a keyframe), with a
    // small chunk size so messages span many chunks. About 16 KB: every offset in a debug build
    // takes a few seconds.
    let tags: Vec<_> = ffmpeg_tags().into_iter().take(12).collect();
    let config = client::Config {
        chunk_size: 1000,
        ..client::Config::default()
    };
    let mut pair = Pair::new(config, rtmp::server::Config::default());
    publish_tags(&mut pair, "cam?token=abc", &tags);
    let transcript = pair.client_bytes.clone();
    let expected = replay([&transcript[..]]);
    assert_eq!(expected, pair.take_server_events());
    assert!(expected.len() >= 14, "{expected:?}");

    for at in 0..=transcript.len() {
        let (a, b) = transcript.split_at(at);
        assert_eq!(replay([a, b]), expected, "split at {at}");
    }
    assert_eq!(replay(transcript.chunks(1)), expected, "byte by byte");
}
