//! CreatePermission and ChannelBind: the peer policy and the binding rules.

use super::*;

#[test]
fn create_permission_policy() {
    let mut p = Pair::new(Config {
        allow_peers: vec!["10.1.0.0/16".parse().unwrap()],
        ..config()
    });
    p.allocate();
    let m = p.permit(addr(PEER));
    assert_eq!(m.class, Class::Success);
    for bad in [
        "127.0.0.1:1",
        "10.2.3.4:1",
        "192.168.1.1:1",
        "169.254.169.254:80",
        "100.64.0.1:1",
    ] {
        assert_eq!(code(&p.permit(addr(bad))), Some(403), "{bad}");
    }
    assert_eq!(code(&p.permit(addr("[::1]:1"))), Some(443));
    assert_eq!(p.permit(addr("10.1.2.3:9")).class, Class::Success);
    // The server's own relay is always allowed (loopback here).
    let own = p.allocate_as(udp("203.0.113.5:1"), USER, PW);
    assert!(own.ip().is_ipv4());
    let (_, raw) = p.authed(Method::CreatePermission, &[]);
    assert_eq!(code(&p.call(p.client, &raw).0), Some(400));
}

#[test]
fn ipv6_loopback_peer_is_forbidden() {
    let mut p = Pair::new(config());
    let (_, raw) = p.authed(
        Method::Allocate,
        &[
            Attribute::RequestedTransport(17),
            Attribute::RequestedAddressFamily(AddressFamily::Ipv6),
        ],
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay { request, .. }] = outs.as_slice() else {
        panic!()
    };
    p.s.relay_allocated(p.now, *request, Ok(addr("[2001:db8::1]:50000")));
    p.drain();
    assert_eq!(code(&p.permit(addr("[::1]:5"))), Some(403));
    assert_eq!(code(&p.permit(addr("[fd00:ec2::254]:80"))), Some(403));
    assert_eq!(p.permit(addr("[2606:4700::1111]:5")).class, Class::Success);
}

#[test]
fn own_relay_address_is_allowed_as_peer() {
    let mut p = Pair::new(config());
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((USER, PW, &n)),
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay { request, .. }] = outs.as_slice() else {
        panic!()
    };
    p.s.relay_allocated(p.now, *request, Ok(addr("127.0.0.1:50000")));
    p.drain();
    assert_eq!(p.permit(addr("127.0.0.1:50000")).class, Class::Success);
    assert_eq!(code(&p.permit(addr("127.0.0.1:50001"))), Some(403));
}

#[test]
fn channel_bind_rules() {
    let mut p = Pair::new(config());
    p.allocate();
    let peer2 = addr("8.8.4.5:7000");
    let (_, raw) = p.authed(
        Method::ChannelBind,
        &[
            Attribute::ChannelNumber(0x4000),
            Attribute::XorPeerAddress(addr(PEER)),
        ],
    );
    let (m, _, rest) = p.call(p.client, &raw);
    assert_eq!(m.class, Class::Success);
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        p.take_events(),
        vec![Ev::ChannelBound {
            name: USER.into(),
            client: p.client.client,
            channel: 0x4000,
            peer: addr(PEER),
        }]
    );
    // Rebinding the same pair refreshes.
    assert_eq!(p.bind(0x4000, addr(PEER)).class, Class::Success);
    assert_eq!(code(&p.bind(0x3FFF, peer2)), Some(400));
    assert_eq!(code(&p.bind(0x8000, peer2)), Some(400));
    assert_eq!(
        code(&p.bind(0x4000, peer2)),
        Some(400),
        "channel bound to another peer"
    );
    assert_eq!(
        code(&p.bind(0x4001, addr(PEER))),
        Some(400),
        "peer bound to another channel"
    );
    assert_eq!(code(&p.bind(0x4001, addr("10.0.0.1:1"))), Some(403));
    assert_eq!(p.bind(0x4001, peer2).class, Class::Success);
    let (_, raw) = p.authed(Method::ChannelBind, &[Attribute::XorPeerAddress(peer2)]);
    assert_eq!(code(&p.call(p.client, &raw).0), Some(400));
}

#[test]
fn create_permission_event_fields() {
    let mut p = Pair::new(config());
    p.allocate();
    let a = addr(PEER);
    let c = addr("8.8.4.200:4242");
    let (_, raw) = p.authed(
        Method::CreatePermission,
        &[Attribute::XorPeerAddress(a), Attribute::XorPeerAddress(c)],
    );
    let (m, _, rest) = p.call(p.client, &raw);
    assert_eq!(m.class, Class::Success);
    assert!(rest.is_empty(), "{rest:?}");
    let client = p.client.client;
    let ev = |peer: SocketAddr| Ev::Permission {
        name: USER.into(),
        client,
        peer,
    };
    assert_eq!(p.take_events(), vec![ev(a), ev(c)]);
}

/// Issue 10 item 5: ranges of the IANA special-purpose registries that were accepted.
#[test]
fn every_special_purpose_range_is_refused() {
    let mut p = Pair::new(config());
    p.allocate();
    for bad in [
        "192.0.0.1:1",
        "192.0.0.170:53",
        "198.18.0.1:1",
        "198.19.255.1:1",
        "192.0.2.1:1",
        "198.51.100.1:1",
        "203.0.113.1:1",
        "192.88.99.1:1",
        "240.0.0.1:1",
    ] {
        assert_eq!(code(&p.permit(addr(bad))), Some(403), "{bad}");
    }
    assert_eq!(
        p.s.allocations.values().next().unwrap().permissions.len(),
        0
    );
}

/// Issue 10 item 5: the server's own address (`turn.external_ip` here) was accepted as a peer
/// on any port, so a client could reach the server's ssh or DNS through its own relay.
#[test]
fn external_ip_is_refused_except_on_relay_ports() {
    let mut p = Pair::new(Config {
        external_ip: Some(addr("8.8.8.9:0").ip()),
        ..config()
    });
    let relay = p.allocate();
    for bad in ["8.8.8.9:22", "8.8.8.9:53", "8.8.8.9:3306"] {
        assert_eq!(code(&p.permit(addr(bad))), Some(403), "{bad}");
    }
    // Its relay ports are the server's own: another client's relay, advertised there.
    let own_relay = SocketAddr::new(addr("8.8.8.9:0").ip(), relay.port());
    assert_eq!(p.permit(own_relay).class, Class::Success);
    // The permission is for the IP (RFC 8656 §9), but the policy still looks at the port.
    assert!(p.send(addr("8.8.8.9:22"), b"x").is_empty());
    assert_eq!(
        p.send(own_relay, b"y"),
        vec![Output::ToPeer {
            relay,
            peer: own_relay,
            bytes: b"y".to_vec()
        }]
    );
}

#[test]
fn own_addresses_and_media_ports() {
    let own = Config {
        own_addresses: vec![addr("8.8.8.8:0").ip(), addr("[2606::8]:0").ip()],
        own_media_ports: vec![8000],
        ..config()
    };
    let (mut p, log) = super::handler::recording_with(own, false, false);
    let relay = p.allocate();
    assert_eq!(code(&p.permit(addr("8.8.8.8:22"))), Some(403));
    assert_eq!(p.permit(addr("8.8.8.8:8000")).class, Class::Success);
    let own_relay = SocketAddr::new(addr("8.8.8.8:0").ip(), relay.port());
    assert_eq!(p.permit(own_relay).class, Class::Success);
    p.s.set_own_addresses(Vec::new());
    assert_eq!(p.permit(addr("8.8.8.8:22")).class, Class::Success);
    p.s.set_own_addresses(vec![addr("8.8.8.8:0").ip()]);
    log.lock().unwrap().0.clear();
    assert!(p.send(addr("8.8.8.8:22"), b"x").is_empty());
    assert_eq!(log.lock().unwrap().0, ["discarded PeerRefused"]);
    // allow_peers opens an own address on every port.
    let mut p = Pair::new(Config {
        own_addresses: vec![addr("8.8.8.8:0").ip()],
        allow_peers: vec!["8.8.8.8/32".parse().unwrap()],
        ..config()
    });
    p.allocate();
    assert_eq!(p.permit(addr("8.8.8.8:22")).class, Class::Success);
}

/// A channel to another allocation's relay is allowed for the relay's port; once that relay
/// is gone the port may belong to any local program, so its ChannelData is dropped.
#[test]
fn channel_to_a_relay_that_went_away_is_dropped() {
    let mut p = Pair::new(config());
    p.allocate();
    let other = udp("203.0.113.6:50000");
    let other_relay = p.allocate_as(other, USER, PW);
    assert_eq!(p.bind(0x4000, other_relay).class, Class::Success);
    let mut cd = Vec::new();
    ChannelData {
        channel: 0x4000,
        data: b"rtp",
    }
    .encode(false, &mut cd)
    .unwrap();
    let outs = p.input(p.client, &cd);
    assert!(
        matches!(outs.as_slice(), [Output::ToPeer { peer, .. }] if *peer == other_relay),
        "{outs:?}"
    );
    p.s.close_transport(p.now, other);
    p.drain();
    assert!(p.input(p.client, &cd).is_empty());
}
