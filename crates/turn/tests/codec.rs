//! Encode → decode round trips for every attribute, the message type interleaving, the
//! builder's ordering rules, limits, and truncation at every offset.

mod common;

use turn::attr::{self, AddressFamily, Attribute, ErrorCode, PasswordAlgorithm};
use turn::stun::{
    message_type, split_message_type, Class, Header, Limits, Message, MessageBuilder, Method,
    TransactionId,
};
use turn::Error;

fn every_attribute() -> Vec<Attribute> {
    let v4 = "192.0.2.1:32853".parse().expect("addr");
    let v6 = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .expect("addr");
    vec![
        Attribute::MappedAddress(v4),
        Attribute::MappedAddress(v6),
        Attribute::XorMappedAddress(v4),
        Attribute::XorMappedAddress(v6),
        Attribute::Username("alice".into()),
        Attribute::Userhash([9; 32]),
        Attribute::ErrorCode(ErrorCode::new(401, "Unauthorized")),
        Attribute::ErrorCode(ErrorCode::new(699, "")),
        Attribute::UnknownAttributes(vec![0x0024, 0x7FFF, 0x0001]),
        Attribute::Realm("example.org".into()),
        Attribute::Nonce("n0nce".into()),
        Attribute::PasswordAlgorithms(vec![
            PasswordAlgorithm {
                algorithm: 1,
                params: vec![],
            },
            PasswordAlgorithm {
                algorithm: 0x7777,
                params: vec![1, 2, 3],
            },
        ]),
        Attribute::PasswordAlgorithm(PasswordAlgorithm {
            algorithm: 2,
            params: vec![],
        }),
        Attribute::Software("ferrostream 0.1".into()),
        Attribute::AlternateServer(v6),
        Attribute::ChannelNumber(0x4ABC),
        Attribute::Lifetime(3600),
        Attribute::XorPeerAddress(v4),
        Attribute::XorPeerAddress(v6),
        Attribute::Data(vec![]),
        Attribute::Data(vec![1, 2, 3, 4, 5]),
        Attribute::XorRelayedAddress(v4),
        Attribute::RequestedAddressFamily(AddressFamily::Ipv6),
        Attribute::EvenPort(true),
        Attribute::EvenPort(false),
        Attribute::RequestedTransport(17),
        Attribute::DontFragment,
        Attribute::ReservationToken(*b"12345678"),
        Attribute::AdditionalAddressFamily(AddressFamily::Ipv6),
        Attribute::Icmp {
            icmp_type: 3,
            code: 4,
            data: 1400,
        },
        Attribute::Unknown {
            kind: 0x0024,
            value: vec![0x6e, 0, 1, 0xff],
        },
        Attribute::Unknown {
            kind: 0x8029,
            value: vec![1, 2, 3],
        },
    ]
}

#[test]
fn every_attribute_round_trips_alone_and_together() {
    let tid = TransactionId(*b"0123456789ab");
    let all = every_attribute();
    for a in &all {
        let mut b = MessageBuilder::new(Class::Request, Method::Allocate, tid);
        b.add(a).expect("encodes");
        let raw = b.finish();
        assert_eq!(raw.len() % 4, 0);
        let msg = Message::decode(&raw).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        assert_eq!(msg.attributes, vec![a.clone()]);
        assert_eq!(msg.encode().expect("re-encodes"), raw);
    }
    let mut msg = Message::new(Class::Indication, Method::Send, tid);
    msg.attributes = all.clone();
    let raw = msg.encode().expect("encodes");
    assert_eq!(Message::decode(&raw), Ok(msg.clone()));
    assert_eq!(msg.xor_peer_addresses().count(), 2);
    assert_eq!(
        Message::decode(&raw)
            .expect("decodes")
            .unknown_comprehension_required(),
        vec![0x0024]
    );
}

#[test]
fn message_type_interleaves_class_and_method() {
    // RFC 8489 §5: Binding request 0x0001, success 0x0101, error 0x0111, indication 0x0011.
    assert_eq!(message_type(Class::Request, Method::Binding), 0x0001);
    assert_eq!(message_type(Class::Success, Method::Binding), 0x0101);
    assert_eq!(message_type(Class::Error, Method::Binding), 0x0111);
    assert_eq!(message_type(Class::Indication, Method::Binding), 0x0011);
    // RFC 8656: Allocate request 0x0003, Send indication 0x0016, Data indication 0x0017,
    // ChannelBind success 0x0109.
    assert_eq!(message_type(Class::Request, Method::Allocate), 0x0003);
    assert_eq!(message_type(Class::Indication, Method::Send), 0x0016);
    assert_eq!(message_type(Class::Indication, Method::Data), 0x0017);
    assert_eq!(message_type(Class::Success, Method::ChannelBind), 0x0109);
    for class in [
        Class::Request,
        Class::Indication,
        Class::Success,
        Class::Error,
    ] {
        for m in [1, 3, 4, 6, 7, 8, 9, 0x0FFF, 0x0ABC, 0x0080] {
            let method = Method::from_code(m);
            let ty = message_type(class, method);
            assert_eq!(ty & 0xC000, 0);
            assert_eq!(split_message_type(ty), (class, method));
        }
    }
}

#[test]
fn header_rejects_bad_cookie_bits_and_length() {
    let raw = common::build(Class::Request, Method::Binding, 1, &[], None);
    assert!(Header::decode(&raw).is_ok());
    let mut bad = raw.clone();
    bad[4] ^= 1;
    assert_eq!(
        Message::decode(&bad),
        Err(Error::Malformed {
            offset: 4,
            context: "STUN magic cookie"
        })
    );
    let mut bad = raw.clone();
    bad[0] |= 0x80;
    assert!(matches!(
        Message::decode(&bad),
        Err(Error::Malformed { offset: 0, .. })
    ));
    let mut longer = raw.clone();
    longer.extend_from_slice(&[0; 4]);
    assert!(Message::decode(&longer).is_err(), "trailing bytes");
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    for (target, name, data) in common::seeds() {
        if target != "turn_stun" || name.starts_with("bad_") {
            continue;
        }
        assert!(Message::decode(&data).is_ok(), "{name}");
        for cut in 0..data.len() {
            assert!(
                Message::decode(&data[..cut]).is_err(),
                "{name} cut at {cut}"
            );
            // A truncated message whose length field is patched to match must fail too (or
            // decode a shorter, still-valid message when the cut falls between attributes).
            if cut >= 20 && cut % 4 == 0 {
                let mut patched = data[..cut].to_vec();
                let len = u16::try_from(cut - 20).expect("fits");
                patched[2..4].copy_from_slice(&len.to_be_bytes());
                let _ = Message::decode(&patched);
                assert!(!Message::check_fingerprint(&patched) || cut == data.len());
            }
        }
    }
}

#[test]
fn attributes_after_integrity_are_ignored_and_after_fingerprint_rejected() {
    let tid = TransactionId([3; 12]);
    // Hand-build: USERNAME, MESSAGE-INTEGRITY, SOFTWARE (ignored), FINGERPRINT.
    let mut msg = Message::new(Class::Request, Method::Binding, tid);
    msg.attributes = vec![
        Attribute::Username("u".into()),
        Attribute::MessageIntegrity([0; 20]),
    ];
    let mut raw = msg.encode().expect("encodes");
    raw.extend_from_slice(&[0x80, 0x22, 0x00, 0x01, b'x', 0, 0, 0]);
    let len = u16::try_from(raw.len() - 20).expect("fits");
    raw[2..4].copy_from_slice(&len.to_be_bytes());
    let decoded = Message::decode(&raw).expect("decodes");
    assert_eq!(decoded.attributes, msg.attributes);

    let mut b = MessageBuilder::new(Class::Request, Method::Binding, tid);
    b.add_fingerprint().expect("FP");
    let mut raw = b.finish();
    raw.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]);
    raw[2..4].copy_from_slice(&12u16.to_be_bytes());
    assert!(matches!(
        Message::decode(&raw),
        Err(Error::ProtocolViolation { offset: 28, .. })
    ));
}

#[test]
fn builder_enforces_the_order_of_integrity_and_fingerprint() {
    let tid = TransactionId([4; 12]);
    let mut b = MessageBuilder::new(Class::Request, Method::Refresh, tid);
    b.add_message_integrity(b"k").expect("MI");
    assert!(matches!(
        b.add(&Attribute::Lifetime(1)),
        Err(Error::ProtocolViolation { .. })
    ));
    assert!(b.add_message_integrity(b"k").is_err());
    b.add_message_integrity_sha256(b"k")
        .expect("MI-SHA256 after MI");
    assert!(b.add_message_integrity(b"k").is_err());
    b.add_fingerprint().expect("FP");
    assert!(b.add_fingerprint().is_err());
    let raw = b.finish();
    assert!(Message::check_integrity(&raw, b"k"));
    assert!(!Message::check_integrity(&raw, b"K"));
    assert!(Message::check_integrity_sha256(&raw, b"k"));
    assert!(!Message::check_integrity_sha256(&raw, b"K"));
    assert!(Message::check_fingerprint(&raw));
    let decoded = Message::decode(&raw).expect("decodes");
    assert_eq!(decoded.attributes.len(), 3);
    // A failed add leaves the builder usable and the message unchanged.
    let mut b = MessageBuilder::new(Class::Indication, Method::Send, tid);
    assert!(matches!(
        b.add(&Attribute::Data(vec![0; 70_000])),
        Err(Error::LimitExceeded { .. })
    ));
    b.add(&Attribute::Data(vec![1])).expect("fits");
    assert_eq!(
        Message::decode(&b.finish())
            .expect("decodes")
            .attributes
            .len(),
        1
    );
}

#[test]
fn tampering_breaks_integrity_and_fingerprint() {
    let key = common::alice_key();
    let raw = common::build(
        Class::Request,
        Method::Allocate,
        1,
        &[
            Attribute::RequestedTransport(17),
            Attribute::Username("alice".into()),
        ],
        Some(&key),
    );
    assert!(Message::check_integrity(&raw, &key));
    for i in 0..raw.len() {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        assert!(!Message::check_fingerprint(&t), "byte {i}");
        if i < raw.len() - 8 && !(2..4).contains(&i) {
            assert!(!Message::check_integrity(&t, &key), "byte {i}");
        }
    }
    // No MESSAGE-INTEGRITY at all: never verifies.
    let plain = common::build(Class::Request, Method::Binding, 1, &[], None);
    assert!(!Message::check_integrity(&plain, &key));
    assert!(!Message::check_integrity_sha256(&plain, &key));
}

#[test]
fn limits_cap_attributes_and_size() {
    let tid = TransactionId([5; 12]);
    let mut msg = Message::new(Class::Indication, Method::Send, tid);
    msg.attributes = vec![Attribute::DontFragment; 65];
    let raw = msg.encode().expect("encodes");
    assert!(matches!(
        Message::decode(&raw),
        Err(Error::LimitExceeded {
            what: "STUN attributes",
            ..
        })
    ));
    let small = Limits {
        max_message_len: 100,
        max_attributes: 64,
    };
    assert!(matches!(
        Message::decode_with(&raw, &small),
        Err(Error::LimitExceeded { .. })
    ));
    let long = Attribute::Username("x".repeat(attr::MAX_USERNAME_LEN + 1));
    let mut b = MessageBuilder::new(Class::Request, Method::Binding, tid);
    b.add(&long).expect("the encoder does not police lengths");
    assert!(matches!(
        Message::decode(&b.finish()),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn malformed_values_are_reported_with_offsets() {
    let tid = TransactionId([6; 12]);
    let bad = |kind: u16, value: &[u8]| {
        let mut msg = Message::new(Class::Request, Method::Binding, tid);
        msg.attributes = vec![Attribute::Unknown {
            kind,
            value: value.to_vec(),
        }];
        Message::decode(&msg.encode().expect("encodes"))
    };
    assert!(matches!(
        bad(attr::XOR_MAPPED_ADDRESS, &[0, 3, 0, 0, 1, 2, 3, 4]),
        Err(Error::Malformed { offset: 25, .. })
    ));
    assert!(bad(attr::XOR_MAPPED_ADDRESS, &[0, 1, 0, 0, 1, 2, 3]).is_err());
    assert!(bad(attr::ERROR_CODE, &[0, 0, 2, 0]).is_err(), "class 2");
    assert!(
        bad(attr::ERROR_CODE, &[0, 0, 4, 100]).is_err(),
        "number 100"
    );
    assert!(bad(attr::USERNAME, &[0xff, 0xfe]).is_err(), "not UTF-8");
    assert!(bad(attr::LIFETIME, &[0, 0, 1]).is_err());
    assert!(bad(attr::MESSAGE_INTEGRITY, &[0; 19]).is_err());
    assert!(bad(attr::MESSAGE_INTEGRITY_SHA256, &[0; 12]).is_err());
    assert!(bad(attr::REQUESTED_ADDRESS_FAMILY, &[3, 0, 0, 0]).is_err());
    assert!(bad(attr::PASSWORD_ALGORITHMS, &[0, 1, 0, 9, 1]).is_err());
    assert!(bad(attr::UNKNOWN_ATTRIBUTES, &[0, 1, 0]).is_err());
    assert!(bad(attr::DONT_FRAGMENT, &[0]).is_err());
}
