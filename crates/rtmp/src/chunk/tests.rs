use super::*;
use crate::message::{AUDIO, VIDEO};

fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, len: usize) -> Message {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + csid as usize) as u8).collect();
    Message {
        csid,
        timestamp,
        type_id,
        stream_id,
        payload: Bytes::from(payload),
    }
}

fn encode_all(messages: &[Message], chunk_size: u32) -> BytesMut {
    let mut enc = Encoder::new();
    enc.set_chunk_size(chunk_size);
    let mut out = BytesMut::new();
    for m in messages {
        let h = Header {
            csid: m.csid,
            timestamp: m.timestamp,
            type_id: m.type_id,
            stream_id: m.stream_id,
        };
        enc.write(&mut out, h, &m.payload).expect("encodes");
    }
    out
}

fn decode_all(bytes: &[u8], chunk_size: u32, step: usize) -> Vec<Message> {
    let mut dec = Decoder::new(Limits::default());
    dec.chunk_size = chunk_size;
    let mut got = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        dec.push(piece);
        while let Some(m) = dec.poll_message().expect("decodes") {
            got.push(m);
        }
    }
    assert_eq!(dec.buffered_input(), 0);
    got
}

/// Messages that make the encoder use every header type, extended timestamps (absolute and
/// delta), wrapping, and all three basic header sizes.
fn sample() -> Vec<Message> {
    vec![
        msg(6, 0, AUDIO, 1, 10),                 // fmt 0
        msg(6, 23, AUDIO, 1, 10),                // fmt 2 (delta 23)
        msg(6, 46, AUDIO, 1, 10),                // fmt 3 (same delta, length, type)
        msg(6, 69, AUDIO, 1, 11),                // fmt 1 (length changed)
        msg(7, 0, VIDEO, 1, 5000),               // fmt 0, many chunks
        msg(7, 40, VIDEO, 1, 300),               // fmt 1
        msg(7, 40 + 0x0100_0000, VIDEO, 1, 300), // fmt 2 with extended delta
        msg(7, 40 + 0x0200_0000, VIDEO, 1, 300), // fmt 3 repeating the extended delta
        msg(8, 0xff_ffff, VIDEO, 1, 400),        // fmt 0 at exactly 0xFFFFFF: extended
        msg(8, 0xffff_fff0, VIDEO, 1, 400),      // fmt 2, extended
        msg(8, 0x0000_0010, VIDEO, 1, 400),      // backwards: fmt 0
        msg(64, 5, 0x12, 1, 0),                  // 2-byte basic header, empty payload
        msg(319, 5, 0x12, 1, 129),               // largest 2-byte csid
        msg(320, 5, 0x12, 1, 1),                 // 3-byte basic header
        msg(MAX_CSID, u32::MAX, 0x14, 0, 257),   // largest csid, extended
        msg(6, 92, AUDIO, 2, 10),                // other message stream: fmt 0
        msg(6, 115, AUDIO, 2, 10),               // fmt 2
    ]
}

#[test]
fn round_trip_all_header_types_and_chunk_sizes() {
    let sample = sample();
    for chunk_size in [1, 128, 4096] {
        let bytes = encode_all(&sample, chunk_size);
        for step in [1, 3, 100, bytes.len()] {
            assert_eq!(
                decode_all(&bytes, chunk_size, step),
                sample,
                "chunk size {chunk_size}, step {step}"
            );
        }
    }
}

#[test]
fn encoder_uses_compressed_headers() {
    let bytes = encode_all(&sample()[..4], 128);
    // fmt 0 (1 + 11 + 10), fmt 2 (1 + 3 + 10), fmt 3 (1 + 10), fmt 1 (1 + 7 + 11).
    assert_eq!(bytes.len(), 22 + 14 + 11 + 19);
    assert_eq!(bytes[0] >> 6, 0);
    assert_eq!(bytes[22] >> 6, 2);
    assert_eq!(bytes[36] >> 6, 3);
    assert_eq!(bytes[47] >> 6, 1);
}

#[test]
fn never_fmt3_for_a_new_message_right_after_fmt0() {
    // Peers disagree on the delta a fmt 3 adds after a fmt 0; the encoder avoids the case.
    let bytes = encode_all(&[msg(6, 10, AUDIO, 1, 4), msg(6, 20, AUDIO, 1, 4)], 128);
    assert_eq!(bytes[1 + 11 + 4] >> 6, 2);
}

#[test]
fn fmt3_after_fmt0_adds_the_fmt0_timestamp() {
    // §5.3.1.2.4 and ffmpeg: a new message in a fmt 3 chunk after a fmt 0 repeats the fmt 0's
    // timestamp field as its delta.
    let bytes = [
        0x06, 0, 0, 10, 0, 0, 1, AUDIO, 1, 0, 0, 0, 0xaa, // fmt 0, ts 10, len 1
        0xc6, 0xbb, // fmt 3: new message
    ];
    let got = decode_all(&bytes, 128, bytes.len());
    assert_eq!(
        got.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
        [10, 20]
    );
}

#[test]
fn extended_timestamp_repeats_in_continuation_chunks() {
    let m = msg(4, 0x0123_4567, VIDEO, 1, 300);
    let bytes = encode_all(std::slice::from_ref(&m), 128);
    // 1 + 11 + 4 + 128, then twice (1 + 4 + ...).
    assert_eq!(bytes.len(), 16 + 128 + 5 + 128 + 5 + 44);
    assert_eq!(&bytes[144..149], &[0xc4, 0x01, 0x23, 0x45, 0x67]);
    assert_eq!(decode_all(&bytes, 128, 1), vec![m]);
}

#[test]
fn timestamps_wrap() {
    let bytes = [
        0x06, 0xff, 0xff, 0xff, 0, 0, 0, AUDIO, 1, 0, 0, 0, 0xff, 0xff, 0xff,
        0xf0, // fmt 0 ext
        0x86, 0, 0, 0x20, // fmt 2 delta 0x20
    ];
    let got = decode_all(&bytes, 128, 1);
    assert_eq!(
        got.iter().map(|m| m.timestamp).collect::<Vec<_>>(),
        [0xffff_fff0, 0x10]
    );
}

#[test]
fn interleaved_messages_reassemble() {
    // Two messages on different chunk streams, chunks alternating.
    let a = msg(6, 0, AUDIO, 1, 200);
    let v = msg(7, 0, VIDEO, 1, 200);
    let mut enc = Encoder::new();
    let (mut ab, mut vb) = (BytesMut::new(), BytesMut::new());
    let h = |m: &Message| Header {
        csid: m.csid,
        timestamp: m.timestamp,
        type_id: m.type_id,
        stream_id: m.stream_id,
    };
    enc.write(&mut ab, h(&a), &a.payload).expect("a");
    enc.write(&mut vb, h(&v), &v.payload).expect("v");
    // First chunks are 12 + 128 bytes; the rest of each is one fmt 3 chunk.
    let mut bytes = BytesMut::new();
    bytes.extend_from_slice(&vb[..140]);
    bytes.extend_from_slice(&ab[..140]);
    bytes.extend_from_slice(&vb[140..]);
    bytes.extend_from_slice(&ab[140..]);
    assert_eq!(decode_all(&bytes, 128, 7), vec![v, a]);
}

#[test]
fn set_chunk_size_applies_to_the_next_chunk() {
    let mut enc = Encoder::new();
    let mut out = BytesMut::new();
    let h = Header {
        csid: 2,
        timestamp: 0,
        type_id: SET_CHUNK_SIZE,
        stream_id: 0,
    };
    enc.write(&mut out, h, &4096u32.to_be_bytes()).expect("scs");
    enc.set_chunk_size(4096);
    let m = msg(6, 0, AUDIO, 1, 3000);
    let hm = Header {
        csid: 6,
        timestamp: 0,
        type_id: AUDIO,
        stream_id: 1,
    };
    enc.write(&mut out, hm, &m.payload).expect("m");
    let mut dec = Decoder::new(Limits::default());
    dec.push(&out);
    assert_eq!(
        dec.poll_message().expect("ok").map(|m| m.type_id),
        Some(SET_CHUNK_SIZE)
    );
    assert_eq!(dec.chunk_size(), 4096);
    assert_eq!(dec.poll_message().expect("ok"), Some(m));
}

#[test]
fn abort_drops_the_partial_message() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&[0x06, 0, 0, 0, 0, 1, 0, AUDIO, 1, 0, 0, 0]); // len 256
    bytes.extend_from_slice(&[0; 128]);
    bytes.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, ABORT, 0, 0, 0, 0, 0, 0, 0, 6]);
    bytes.extend_from_slice(&[0x46, 0, 0, 1, 0, 0, 1, AUDIO, 0x77]); // fmt 1: new message
    let got = decode_all(&bytes, 128, 1);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].payload, Bytes::from_static(&[0x77]));
}

#[test]
fn partial_input_is_kept() {
    let bytes = encode_all(&[msg(6, 0, AUDIO, 1, 10)], 128);
    let mut dec = Decoder::new(Limits::default());
    for b in &bytes[..bytes.len() - 1] {
        dec.push(&[*b]);
        assert_eq!(dec.poll_message(), Ok(None));
    }
    dec.push(&bytes[bytes.len() - 1..]);
    assert!(dec.poll_message().expect("ok").is_some());
}

#[test]
fn limits() {
    let limits = Limits {
        max_message_len: 1000,
        ..Limits::default()
    };
    let mut dec = Decoder::new(limits);
    dec.push(&[0x06, 0, 0, 0, 0, 0x03, 0xe9, AUDIO, 1, 0, 0, 0]);
    assert!(matches!(
        dec.poll_message(),
        Err(Error::LimitExceeded {
            what: "message length",
            ..
        })
    ));

    let mut dec = Decoder::new(Limits::default());
    dec.push(&[
        0x02,
        0,
        0,
        0,
        0,
        0,
        4,
        SET_CHUNK_SIZE,
        0,
        0,
        0,
        0,
        0x7f,
        0xff,
        0xff,
        0xff,
    ]);
    assert!(matches!(
        dec.poll_message(),
        Err(Error::LimitExceeded {
            what: "chunk size",
            ..
        })
    ));

    let mut dec = Decoder::new(Limits::default());
    dec.push(&[
        0x02,
        0,
        0,
        0,
        0,
        0,
        4,
        SET_CHUNK_SIZE,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    assert!(matches!(
        dec.poll_message(),
        Err(Error::ProtocolViolation { .. })
    ));

    let limits = Limits {
        max_chunk_streams: 3,
        ..Limits::default()
    };
    let mut dec = Decoder::new(limits);
    for csid in 3..=6u8 {
        dec.push(&[csid, 0, 0, 0, 0, 0, 1, AUDIO, 1, 0, 0, 0, 0]);
    }
    for _ in 0..3 {
        assert!(dec.poll_message().expect("ok").is_some());
    }
    assert!(matches!(
        dec.poll_message(),
        Err(Error::LimitExceeded {
            what: "chunk streams",
            ..
        })
    ));

    let limits = Limits {
        max_buffered: 200,
        ..Limits::default()
    };
    let mut dec = Decoder::new(limits);
    for csid in 3..=4u8 {
        dec.push(&[csid, 0, 0, 0, 0, 1, 0, AUDIO, 1, 0, 0, 0]);
        dec.push(&[0; 128]);
    }
    assert!(matches!(
        dec.poll_message(),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn violations() {
    let mut dec = Decoder::new(Limits::default());
    dec.push(&[0x46, 0, 0, 0, 0, 0, 1, AUDIO]); // fmt 1 on an unknown chunk stream
    assert!(matches!(
        dec.poll_message(),
        Err(Error::ProtocolViolation { offset: 0, .. })
    ));

    let mut dec = Decoder::new(Limits::default());
    dec.push(&[0x06, 0, 0, 0, 0, 1, 0, AUDIO, 1, 0, 0, 0]);
    dec.push(&[0; 128]);
    dec.push(&[0x06, 0, 0, 0, 0, 0, 1, AUDIO, 1, 0, 0, 0, 0]); // fmt 0 mid-message
    assert!(matches!(
        dec.poll_message(),
        Err(Error::ProtocolViolation { offset: 140, .. })
    ));
}

#[test]
fn oversized_outgoing_message_is_refused() {
    let mut enc = Encoder::new();
    let mut out = BytesMut::new();
    let h = Header {
        csid: 6,
        timestamp: 0,
        type_id: AUDIO,
        stream_id: 1,
    };
    let big = vec![0; SPEC_MAX_MESSAGE_LEN as usize + 1];
    assert!(matches!(
        enc.write(&mut out, h, &big),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn absurd_command_length_is_refused_at_the_header() {
    let mut dec = Decoder::new(Limits::default());
    // fmt 0, csid 3, length 0xFFFFFF, type 20 (AMF0 command): no real peer sends that.
    dec.push(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0]);
    assert!(matches!(
        dec.poll_message(),
        Err(Error::LimitExceeded {
            what: "non-media message length",
            ..
        })
    ));
    // The same length on a video message is within the protocol's own bound.
    let mut dec = Decoder::new(Limits::default());
    dec.push(&[0x06, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0]);
    assert!(matches!(dec.poll_message(), Ok(None)));
}
