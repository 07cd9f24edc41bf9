//! Shared test data: the RFC 5769 test vectors, reproduced byte for byte. Each one carries a
//! MESSAGE-INTEGRITY (and all but §2.4 a FINGERPRINT) computed by the RFC's authors, so a byte
//! mistyped here would make the integrity or fingerprint check in `rfc5769.rs` fail.
#![allow(dead_code)]

pub const TID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

/// §2.1 Sample Request: Binding with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
/// MESSAGE-INTEGRITY and FINGERPRINT. Padding bytes are spaces (0x20), as in the RFC.
pub const REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];
pub const SHORT_TERM_PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// §2.2 Sample IPv4 Response: 192.0.2.1:32853.
pub const RESPONSE_V4: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
];

/// §2.3 Sample IPv6 Response: [2001:db8:1234:5678:11:2233:4455:6677]:32853.
pub const RESPONSE_V6: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
];

/// §2.4 Sample Request with Long-Term Authentication: USERNAME "マトリックス", NONCE, REALM
/// "example.org", MESSAGE-INTEGRITY (no FINGERPRINT).
pub const REQUEST_LONG_TERM: [u8; 116] = [
    0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0,
    0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83,
    0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00, 0x15, 0x00, 0x1c,
    0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34,
    0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73, 0x41, 0x00, 0x14, 0x00, 0x0b,
    0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x08, 0x00, 0x14,
    0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2,
    0x8c, 0xa8, 0x96, 0x66,
];

use turn::attr::{Attribute, ErrorCode};
use turn::channel::ChannelData;
use turn::stun::{Class, MessageBuilder, Method, TransactionId};

/// Builds a message with the given attributes, then MESSAGE-INTEGRITY under `key` (if any)
/// and FINGERPRINT.
pub fn build(
    class: Class,
    method: Method,
    tid: u8,
    attrs: &[Attribute],
    key: Option<&[u8]>,
) -> Vec<u8> {
    let mut b = MessageBuilder::new(class, method, TransactionId([tid; 12]));
    for a in attrs {
        b.add(a).expect("attribute encodes");
    }
    if let Some(key) = key {
        b.add_message_integrity(key).expect("MI");
    }
    b.add_fingerprint().expect("FINGERPRINT");
    b.finish()
}

/// The long-term key of the seeds: alice / example.org / secret.
pub fn alice_key() -> [u8; 16] {
    turn::auth::long_term_key("alice", "example.org", "secret")
}

/// Every seed: (target, file name, bytes).
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let key = alice_key();
    let creds = |nonce: &str| {
        vec![
            Attribute::Username("alice".into()),
            Attribute::Realm("example.org".into()),
            Attribute::Nonce(nonce.into()),
        ]
    };
    let peer_v4 = "203.0.113.7:49170".parse().expect("addr");
    let peer_v6 = "[2001:db8::7]:50000".parse().expect("addr");
    let mut s = vec![
        ("turn_stun", "rfc5769_2_1_request.bin", REQUEST.to_vec()),
        (
            "turn_stun",
            "rfc5769_2_2_response_v4.bin",
            RESPONSE_V4.to_vec(),
        ),
        (
            "turn_stun",
            "rfc5769_2_3_response_v6.bin",
            RESPONSE_V6.to_vec(),
        ),
        (
            "turn_stun",
            "rfc5769_2_4_long_term.bin",
            REQUEST_LONG_TERM.to_vec(),
        ),
    ];
    let allocate = build(
        Class::Request,
        Method::Allocate,
        1,
        &[Attribute::RequestedTransport(17), Attribute::DontFragment],
        None,
    );
    let challenge = build(
        Class::Error,
        Method::Allocate,
        1,
        &[
            Attribute::ErrorCode(ErrorCode::new(401, "Unauthorized")),
            Attribute::Realm("example.org".into()),
            Attribute::Nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA".into()),
            Attribute::PasswordAlgorithms(vec![turn::attr::PasswordAlgorithm {
                algorithm: 1,
                params: vec![],
            }]),
            Attribute::Software("ferrostream".into()),
        ],
        None,
    );
    let mut allocate_auth_attrs = vec![
        Attribute::RequestedTransport(17),
        Attribute::Lifetime(600),
        Attribute::EvenPort(true),
        Attribute::RequestedAddressFamily(turn::attr::AddressFamily::Ipv4),
    ];
    allocate_auth_attrs.extend(creds("nonce-1"));
    let allocate_auth = build(
        Class::Request,
        Method::Allocate,
        2,
        &allocate_auth_attrs,
        Some(&key),
    );
    let allocate_ok = build(
        Class::Success,
        Method::Allocate,
        2,
        &[
            Attribute::XorRelayedAddress("198.51.100.1:49152".parse().expect("addr")),
            Attribute::XorMappedAddress("192.0.2.1:32853".parse().expect("addr")),
            Attribute::Lifetime(600),
            Attribute::ReservationToken(*b"token-01"),
        ],
        Some(&key),
    );
    let mut perm_attrs = vec![
        Attribute::XorPeerAddress(peer_v4),
        Attribute::XorPeerAddress(peer_v6),
    ];
    perm_attrs.extend(creds("nonce-1"));
    let create_permission = build(
        Class::Request,
        Method::CreatePermission,
        3,
        &perm_attrs,
        Some(&key),
    );
    let mut bind_attrs = vec![
        Attribute::ChannelNumber(0x4001),
        Attribute::XorPeerAddress(peer_v4),
    ];
    bind_attrs.extend(creds("nonce-1"));
    let channel_bind = build(
        Class::Request,
        Method::ChannelBind,
        4,
        &bind_attrs,
        Some(&key),
    );
    let mut refresh_attrs = vec![Attribute::Lifetime(0)];
    refresh_attrs.extend(creds("nonce-1"));
    let refresh = build(
        Class::Request,
        Method::Refresh,
        5,
        &refresh_attrs,
        Some(&key),
    );
    let send = build(
        Class::Indication,
        Method::Send,
        6,
        &[
            Attribute::XorPeerAddress(peer_v4),
            Attribute::DontFragment,
            Attribute::Data(b"hello peer".to_vec()),
        ],
        None,
    );
    let data = build(
        Class::Indication,
        Method::Data,
        7,
        &[
            Attribute::XorPeerAddress(peer_v6),
            Attribute::Data(vec![0xAB; 33]),
            Attribute::Icmp {
                icmp_type: 3,
                code: 4,
                data: 1400,
            },
        ],
        None,
    );
    let stale = build(
        Class::Error,
        Method::Refresh,
        5,
        &[
            Attribute::ErrorCode(ErrorCode::new(438, "Stale Nonce")),
            Attribute::Realm("example.org".into()),
            Attribute::Nonce("nonce-2".into()),
        ],
        None,
    );
    let unknown = build(
        Class::Error,
        Method::Binding,
        8,
        &[
            Attribute::ErrorCode(ErrorCode::new(420, "Unknown Attribute")),
            Attribute::UnknownAttributes(vec![0x0024, 0x7777]),
            Attribute::AlternateServer("192.0.2.9:3478".parse().expect("addr")),
            Attribute::MappedAddress("[2001:db8::1]:3478".parse().expect("addr")),
        ],
        None,
    );
    let binding = build(Class::Request, Method::Binding, 9, &[], None);
    let mut sha256 = MessageBuilder::new(Class::Request, Method::Binding, TransactionId([10; 12]));
    sha256
        .add(&Attribute::Userhash([0x55; 32]))
        .and_then(|b| {
            b.add(&Attribute::PasswordAlgorithm(
                turn::attr::PasswordAlgorithm {
                    algorithm: 2,
                    params: vec![],
                },
            ))
        })
        .and_then(|b| {
            b.add(&Attribute::AdditionalAddressFamily(
                turn::attr::AddressFamily::Ipv6,
            ))
        })
        .and_then(|b| b.add_message_integrity(&key))
        .and_then(|b| b.add_message_integrity_sha256(&key))
        .and_then(|b| b.add_fingerprint())
        .expect("builds");
    let sha256 = sha256.finish();
    for (name, bytes) in [
        ("binding_request.bin", &binding),
        ("allocate_no_credentials.bin", &allocate),
        ("allocate_401_realm_nonce.bin", &challenge),
        ("allocate_with_credentials.bin", &allocate_auth),
        ("allocate_success.bin", &allocate_ok),
        ("create_permission_v4_v6.bin", &create_permission),
        ("channel_bind.bin", &channel_bind),
        ("refresh_delete.bin", &refresh),
        ("refresh_438_stale_nonce.bin", &stale),
        ("send_indication.bin", &send),
        ("data_indication_icmp.bin", &data),
        ("binding_420_unknown.bin", &unknown),
        ("mi_sha256_userhash.bin", &sha256),
    ] {
        s.push(("turn_stun", name, bytes.clone()));
    }
    s.push((
        "turn_stun",
        "bad_attribute_after_fingerprint.bin",
        [
            &binding[..3],
            &[0x08][..],
            &binding[4..],
            &[0x80, 0x22, 0, 0],
        ]
        .concat(),
    ));
    s.push((
        "turn_stun",
        "bad_length_not_multiple_of_4.bin",
        [&REQUEST[..3], &[0x57][..], &REQUEST[4..107]].concat(),
    ));

    // ChannelData and mixed TCP streams.
    let cd = |channel: u16, data: &[u8], padded: bool| {
        let mut out = Vec::new();
        ChannelData { channel, data }
            .encode(padded, &mut out)
            .expect("ChannelData encodes");
        out
    };
    s.push((
        "turn_channel",
        "channel_data_udp.bin",
        cd(0x4001, b"hello", false),
    ));
    s.push((
        "turn_channel",
        "channel_data_tcp_padded.bin",
        cd(0x4FFF, b"hello", true),
    ));
    s.push((
        "turn_channel",
        "channel_data_empty.bin",
        cd(0x4000, b"", true),
    ));
    s.push((
        "turn_channel",
        "tcp_stream_mixed.bin",
        [
            allocate_auth.as_slice(),
            &cd(0x4001, b"rtp-ish payload", true),
            &send,
            &cd(0x4002, &[0x80; 7], true),
        ]
        .concat(),
    ));
    s.push(("turn_channel", "stun_binding.bin", binding.clone()));
    s.push((
        "turn_channel",
        "bad_reserved_channel.bin",
        vec![0x50, 0x00, 0x00, 0x01, 0xAA, 0, 0, 0],
    ));
    s.push((
        "turn_channel",
        "bad_dtls_record.bin",
        vec![0x16, 0xFE, 0xFD, 0, 0],
    ));
    s.extend(server_seeds());
    s
}

/// Seeds of the `turn_server` target: step sequences (see `turn::fuzzing::server`).
fn server_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use turn::fuzzing::server_step as step;
    let peer: std::net::SocketAddr = "203.0.113.9:6000".parse().expect("addr");
    let req = |method, tid, attrs: &[Attribute]| build(Class::Request, method, tid, attrs, None);
    let binding = req(Method::Binding, 1, &[]);
    let allocate = req(Method::Allocate, 2, &[Attribute::RequestedTransport(17)]);
    let permission = req(
        Method::CreatePermission,
        3,
        &[Attribute::XorPeerAddress(peer)],
    );
    let bind = req(
        Method::ChannelBind,
        4,
        &[
            Attribute::ChannelNumber(0x4000),
            Attribute::XorPeerAddress(peer),
        ],
    );
    let send = build(
        Class::Indication,
        Method::Send,
        5,
        &[
            Attribute::XorPeerAddress(peer),
            Attribute::Data(b"to peer".to_vec()),
        ],
        None,
    );
    let refresh = req(Method::Refresh, 6, &[Attribute::Lifetime(0)]);
    let mut cd = Vec::new();
    ChannelData {
        channel: 0x4000,
        data: b"via channel",
    }
    .encode(false, &mut cd)
    .expect("ChannelData encodes");

    let mut flow = Vec::new();
    step(0, &binding, &mut flow);
    step(0, &allocate, &mut flow);
    step(3, &allocate, &mut flow);
    step(3, &allocate, &mut flow);
    step(3, &permission, &mut flow);
    step(3, &bind, &mut flow);
    step(0, &send, &mut flow);
    step(2, b"from peer", &mut flow);
    step(0, &cd, &mut flow);
    flow.extend_from_slice(&[4, 0x01, 0x90]);
    step(2, b"late", &mut flow);
    step(3, &refresh, &mut flow);
    flow.extend_from_slice(&[4, 0x02, 0xBC]);

    let mut tcp = Vec::new();
    step(1, &allocate, &mut tcp);
    step(3, &allocate, &mut tcp);
    step(1, &cd, &mut tcp);
    step(2, b"x", &mut tcp);
    tcp.extend_from_slice(&[4, 0x0E, 0x10, 4, 0x0E, 0x10]);

    // EVEN-PORT R=1 from the UDP client, its token redeemed from the TCP client (kind 8: a
    // signed message from TCP), retransmitted, refused to the UDP client (437), then a second
    // reservation left to expire.
    let reserve = req(
        Method::Allocate,
        7,
        &[Attribute::RequestedTransport(17), Attribute::EvenPort(true)],
    );
    let redeem = req(
        Method::Allocate,
        8,
        &[
            Attribute::RequestedTransport(17),
            Attribute::ReservationToken([0; 8]),
        ],
    );
    let refresh_udp = req(Method::Refresh, 9, &[Attribute::Lifetime(0)]);
    let reserve_again = req(
        Method::Allocate,
        10,
        &[Attribute::RequestedTransport(17), Attribute::EvenPort(true)],
    );
    let mut reservation = Vec::new();
    step(0, &allocate, &mut reservation);
    step(3, &reserve, &mut reservation);
    step(8, &redeem, &mut reservation);
    step(8, &redeem, &mut reservation);
    step(3, &redeem, &mut reservation);
    step(3, &refresh_udp, &mut reservation);
    step(3, &reserve_again, &mut reservation);
    reservation.extend_from_slice(&[4, 0x00, 0x1F]);

    vec![
        ("turn_server", "allocate_relay_expire.bin", flow),
        ("turn_server", "reserve_and_redeem.bin", reservation),
        ("turn_server", "tcp_and_timeouts.bin", tcp),
        (
            "turn_server",
            "truncated_step.bin",
            vec![0, 0x00, 0x20, 0x00, 0x01],
        ),
    ]
}
