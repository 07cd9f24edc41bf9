//! Relaying both ways, TCP framing of ChannelData, expiry of permissions and channels, the
//! rate limit.

use super::*;

#[test]
fn send_and_receive_through_relay() {
    let mut p = Pair::new(config());
    let relay = p.allocate();
    let peer = addr(PEER);
    // No permission: dropped silently and counted.
    assert!(p.send(peer, b"x").is_empty());
    assert_eq!(p.s.stats().discarded, 1);
    p.s.handle_peer(p.now, relay, peer, b"in");
    assert!(p.drain().is_empty());
    assert_eq!(p.s.stats().discarded, 2);

    let m = p.permit(peer);
    assert_eq!(m.class, Class::Success);
    assert_eq!(
        p.send(peer, b"hello"),
        vec![Output::ToPeer {
            relay,
            peer,
            bytes: b"hello".to_vec()
        }]
    );
    // Any port of a permitted IP may answer (permissions are per IP).
    let peer_other_port = addr("8.8.4.4:6001");
    p.s.handle_peer(p.now, relay, peer_other_port, b"data!");
    let outs = p.drain();
    let [Output::ToClient { to, bytes }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    assert_eq!(*to, p.client);
    let m = Message::decode(bytes).unwrap();
    assert_eq!((m.class, m.method), (Class::Indication, Method::Data));
    assert_eq!(m.xor_peer_addresses().next(), Some(peer_other_port));
    assert_eq!(
        m.attribute(attr::DATA),
        Some(&Attribute::Data(b"data!".to_vec()))
    );

    // With a channel: ChannelData both ways.
    assert_eq!(p.bind(0x4001, peer).class, Class::Success);
    p.s.handle_peer(p.now, relay, peer, b"abc");
    let outs = p.drain();
    let [Output::ToClient { bytes, .. }] = outs.as_slice() else {
        panic!()
    };
    assert_eq!(bytes, &[0x40, 0x01, 0, 3, b'a', b'b', b'c']);
    let outs = p.input(p.client, &[0x40, 0x01, 0, 2, b'h', b'i']);
    assert_eq!(
        outs,
        vec![Output::ToPeer {
            relay,
            peer,
            bytes: b"hi".to_vec()
        }]
    );
    // Unbound channel: discarded.
    assert!(p.input(p.client, &[0x40, 0x02, 0, 1, 0]).is_empty());
    let s = p.s.stats();
    assert_eq!(
        (s.relayed_packets, s.relayed_bytes, s.discarded),
        (4, 15, 3)
    );
    // Unknown relay socket.
    p.s.handle_peer(p.now, addr("198.51.100.1:1"), peer, b"x");
    assert!(p.drain().is_empty());
}

#[test]
fn tcp_client_gets_padded_channel_data() {
    let mut p = Pair::new(config());
    p.client.protocol = Protocol::Tcp;
    let relay = p.allocate();
    let peer = addr(PEER);
    assert_eq!(p.bind(0x4000, peer).class, Class::Success);
    p.s.handle_peer(p.now, relay, peer, b"abcde");
    let outs = p.drain();
    let [Output::ToClient { bytes, .. }] = outs.as_slice() else {
        panic!()
    };
    assert_eq!(bytes.len(), 12);
    // The same client address over UDP is another 5-tuple: no allocation.
    assert!(p
        .input(udp("203.0.113.5:50000"), &[0x40, 0x00, 0, 1, 0])
        .is_empty());
}

#[test]
fn permission_and_channel_expiry() {
    let mut p = Pair::new(Config {
        max_lifetime: Duration::from_secs(3600),
        ..config()
    });
    let relay = p.allocate();
    let peer = addr(PEER);
    let peer2 = addr("8.8.4.5:1");
    assert_eq!(p.bind(0x4000, peer).class, Class::Success);
    assert_eq!(p.permit(peer2).class, Class::Success);
    let (_, raw) = p.authed(Method::Refresh, &[Attribute::Lifetime(3600)]);
    p.call(p.client, &raw);
    p.advance(299);
    assert_eq!(p.send(peer2, b"x").len(), 1);
    p.advance(1);
    assert!(
        p.send(peer2, b"x").is_empty(),
        "permission expired at 300 s"
    );
    // Channel still bound but its permission expired: no relay until refreshed.
    assert!(p.input(p.client, &[0x40, 0x00, 0, 1, 0]).is_empty());
    assert_eq!(p.permit(peer).class, Class::Success);
    assert_eq!(p.input(p.client, &[0x40, 0x00, 0, 1, 0]).len(), 1);
    p.advance(300);
    assert!(
        p.input(p.client, &[0x40, 0x00, 0, 1, 0]).is_empty(),
        "channel expired at 600 s"
    );
    p.s.handle_peer(p.now, relay, peer, b"x");
    assert!(p.drain().is_empty());
}

#[test]
fn rate_limit_drops_excess() {
    let mut p = Pair::new(Config {
        bytes_per_second_per_allocation: 1000,
        ..config()
    });
    let relay = p.allocate();
    let peer = addr(PEER);
    p.permit(peer);
    assert_eq!(p.send(peer, &[0; 600]).len(), 1);
    assert!(p.send(peer, &[0; 600]).is_empty());
    p.s.handle_peer(p.now, relay, peer, &[0; 400]);
    assert_eq!(p.drain().len(), 1);
    assert_eq!(p.s.stats().rate_limited, 1);
    p.now += Duration::from_millis(600);
    assert_eq!(p.send(peer, &[0; 600]).len(), 1);
}
