//! Garbage and absurd requests end the session with an `Err`, never a panic or a huge
//! allocation.

mod common;

use rtmp::fuzzing::plain_handshake;
use rtmp::handshake::RANDOM_SIZE;
use rtmp::{server, Error};
use std::time::Instant;

fn after_handshake(config: server::Config, bytes: &[u8]) -> Result<(), Error> {
    let now = Instant::now();
    let mut s = server::Session::new(config, [0; RANDOM_SIZE], now);
    s.handle_input(now, &plain_handshake())?;
    let r = s.handle_input(now, bytes);
    if r.is_err() {
        assert_eq!(
            s.handle_input(now, b"more"),
            Err(Error::Closed),
            "a failed session stays dead"
        );
    }
    r
}

#[test]
fn garbage_is_an_error() {
    // Not RTMP at all: an HTTP request.
    let now = Instant::now();
    let mut s = server::Session::new(server::Config::default(), [0; RANDOM_SIZE], now);
    assert!(matches!(
        s.handle_input(now, b"GET / HTTP/1.1\r\n\r\n"),
        Err(Error::Unsupported(_))
    ));
    // A fmt 1 header on a chunk stream that never had a fmt 0.
    assert!(matches!(
        after_handshake(
            server::Config::default(),
            &[0x43, 0, 0, 0, 0, 0, 4, 0x14, 1, 2, 3, 4]
        ),
        Err(Error::ProtocolViolation { .. })
    ));
    // A command message that is not AMF0.
    let mut bad_cmd = vec![0x03, 0, 0, 0, 0, 0, 4, 0x14, 0, 0, 0, 0];
    bad_cmd.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    assert!(after_handshake(server::Config::default(), &bad_cmd).is_err());
    // Pseudo-random bytes.
    let mut x = 0x1234_5678_u32;
    let noise: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    assert!(after_handshake(server::Config::default(), &noise).is_err());
}

#[test]
fn absurd_chunk_size_is_limit_exceeded() {
    // Set Chunk Size 0x7fffffff: legal per the spec, refused above our 16 MiB limit.
    let scs = [
        0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
    ];
    assert!(matches!(
        after_handshake(server::Config::default(), &scs),
        Err(Error::LimitExceeded {
            what: "chunk size",
            ..
        })
    ));
}

#[test]
fn absurd_message_length_is_limit_exceeded() {
    // A 16 MiB - 1 message announced while the limit is 1 MiB: refused at the header, before
    // any payload is buffered.
    let config = server::Config {
        max_message_len: 1 << 20,
        ..server::Config::default()
    };
    let header = [0x06, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0];
    assert!(matches!(
        after_handshake(config, &header),
        Err(Error::LimitExceeded {
            what: "message length",
            ..
        })
    ));
}

#[test]
fn too_many_chunk_streams_is_limit_exceeded() {
    let config = server::Config {
        max_chunk_streams: 4,
        ..server::Config::default()
    };
    let mut bytes = Vec::new();
    for csid in 3..=8u8 {
        bytes.extend_from_slice(&[csid, 0, 0, 0, 0, 0, 0, 0x08, 1, 0, 0, 0]);
    }
    assert!(matches!(
        after_handshake(config, &bytes),
        Err(Error::LimitExceeded {
            what: "chunk streams",
            ..
        })
    ));
}
