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
    assert_eq!(p.permit(addr("[2001:db8::9]:5")).class, Class::Success);
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
    let peer2 = addr("203.0.113.10:7000");
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
    let c = addr("198.51.100.200:4242");
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
