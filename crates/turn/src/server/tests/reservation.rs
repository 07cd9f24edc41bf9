//! Port reservations (RFC 8656 §7.2): EVEN-PORT with the R bit, RESERVATION-TOKEN, their
//! expiry, their quotas and the errors of steps 5 and 6.

use super::*;

const RELAY: &str = "198.51.100.1:50000";
const NEXT: &str = "198.51.100.1:50001";

/// An Allocate from `from` as [`USER`] with `attrs` after REQUESTED-TRANSPORT; its outputs.
fn allocate_with(p: &mut Pair, from: Transport, attrs: &[Attribute]) -> Vec<Output> {
    let n = p.nonce();
    let mut all = vec![Attribute::RequestedTransport(17)];
    all.extend_from_slice(attrs);
    let (_, raw) = p.build(Class::Request, Method::Allocate, &all, Some((USER, PW, &n)));
    p.input(from, &raw)
}

/// The one AllocateRelay among `outs`: its request and port.
fn relay_request(outs: &[Output]) -> (RelayRequestId, RelayPort) {
    match outs {
        [Output::AllocateRelay { request, port, .. }] => (*request, *port),
        _ => panic!("{outs:?}"),
    }
}

/// Reserves: an EVEN-PORT R=1 Allocate from the pair's client, answered with [`RELAY`];
/// returns the token.
fn reserve(p: &mut Pair) -> [u8; 8] {
    let client = p.client;
    let outs = allocate_with(p, client, &[Attribute::EvenPort(true)]);
    let (request, port) = relay_request(&outs);
    assert_eq!(port, RelayPort::EvenReserveNext);
    p.s.relay_allocated(p.now, request, Ok(addr(RELAY)));
    let (m, _, rest) = split(p.drain());
    assert_eq!(m.class, Class::Success, "{m:?}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        m.attribute(attr::XOR_RELAYED_ADDRESS),
        Some(&Attribute::XorRelayedAddress(addr(RELAY)))
    );
    match m.attribute(attr::RESERVATION_TOKEN) {
        Some(Attribute::ReservationToken(t)) => *t,
        other => panic!("no RESERVATION-TOKEN: {other:?}"),
    }
}

#[test]
fn even_port_with_r_reserves_the_next_port_for_the_token() {
    let mut p = Pair::new(config());
    let token = reserve(&mut p);
    assert_eq!((p.s.stats().allocations, p.s.stats().reservations), (1, 1));
    // coturn's uclient redeems it from its RTCP socket: another 5-tuple.
    let rtcp = udp("203.0.113.5:50001");
    let outs = allocate_with(&mut p, rtcp, &[Attribute::ReservationToken(token)]);
    let [Output::AllocateRelay {
        request,
        transport,
        family: AddressFamily::Ipv4,
        port: RelayPort::Reserved(reserved),
    }] = outs.as_slice()
    else {
        panic!("{outs:?}")
    };
    assert_eq!((*reserved, *transport), (addr(NEXT), rtcp));
    assert_eq!(p.s.stats().reservations, 0);
    p.s.relay_allocated(p.now, *request, Ok(addr(NEXT)));
    let (m, _, _) = split(p.drain());
    assert_eq!(m.class, Class::Success, "{m:?}");
    assert_eq!(
        m.attribute(attr::XOR_RELAYED_ADDRESS),
        Some(&Attribute::XorRelayedAddress(addr(NEXT)))
    );
    assert!(m.attribute(attr::RESERVATION_TOKEN).is_none());
    assert_eq!(p.s.stats().allocations, 2);
    assert!(p.s.has_allocation(&rtcp));
    // A token is used once.
    let outs = allocate_with(
        &mut p,
        udp("203.0.113.5:50002"),
        &[Attribute::ReservationToken(token)],
    );
    assert_eq!(code(&split(outs).0), Some(508));
}

#[test]
fn an_unused_reservation_expires_and_its_socket_is_released() {
    let mut p = Pair::new(config());
    let token = reserve(&mut p);
    assert_eq!(p.s.poll_timeout(), Some(p.now + Duration::from_secs(30)));
    assert!(p.advance(29).is_empty());
    assert_eq!(
        p.advance(1),
        vec![Output::ReleaseRelay { relay: addr(NEXT) }]
    );
    assert_eq!(p.s.stats().reservations, 0);
    let outs = allocate_with(
        &mut p,
        udp("203.0.113.5:50001"),
        &[Attribute::ReservationToken(token)],
    );
    assert_eq!(code(&split(outs).0), Some(508));
    // The reservation outlives neither its lifetime nor, here, anything else: the allocation
    // at the even port is untouched.
    assert_eq!(p.s.stats().allocations, 1);
}

#[test]
fn a_token_excludes_even_port_and_the_family_attributes() {
    let mut p = Pair::new(config());
    let token = reserve(&mut p);
    let other = udp("203.0.113.5:50001");
    for extra in [
        Attribute::EvenPort(false),
        Attribute::RequestedAddressFamily(AddressFamily::Ipv4),
        Attribute::AdditionalAddressFamily(AddressFamily::Ipv6),
    ] {
        let outs = allocate_with(
            &mut p,
            other,
            &[Attribute::ReservationToken(token), extra.clone()],
        );
        assert_eq!(code(&split(outs).0), Some(400), "{extra:?}");
    }
    let outs = allocate_with(
        &mut p,
        other,
        &[
            Attribute::EvenPort(true),
            Attribute::AdditionalAddressFamily(AddressFamily::Ipv6),
        ],
    );
    assert_eq!(code(&split(outs).0), Some(400));
    // The refusals did not use the token up.
    assert_eq!(p.s.stats().reservations, 1);
}

#[test]
fn reservations_count_against_the_quotas() {
    let mut p = Pair::new(Config {
        max_allocations_per_user: 2,
        ..config()
    });
    let token = reserve(&mut p);
    // The allocation and its reservation are the user's two.
    let outs = allocate_with(&mut p, udp("203.0.113.5:50002"), &[]);
    assert_eq!(code(&split(outs).0), Some(486));
    // Redeeming turns the reservation into the second allocation.
    let rtcp = udp("203.0.113.5:50001");
    let outs = allocate_with(&mut p, rtcp, &[Attribute::ReservationToken(token)]);
    let (request, _) = relay_request(&outs);
    p.s.relay_allocated(p.now, request, Ok(addr(NEXT)));
    assert_eq!(split(p.drain()).0.class, Class::Success);
    // Room for one allocation is not room for an allocation and a reservation.
    let mut p = Pair::new(Config {
        max_allocations: 1,
        ..config()
    });
    let client = p.client;
    let outs = allocate_with(&mut p, client, &[Attribute::EvenPort(true)]);
    assert_eq!(code(&split(outs).0), Some(486));
}

#[test]
fn a_bad_driver_answer_or_a_veto_releases_both_ports() {
    // An odd port cannot have its pair reserved: 508, and both sockets go back.
    let mut p = Pair::new(config());
    let client = p.client;
    let outs = allocate_with(&mut p, client, &[Attribute::EvenPort(true)]);
    let (request, _) = relay_request(&outs);
    p.s.relay_allocated(p.now, request, Ok(addr(NEXT)));
    let (m, _, rest) = split(p.drain());
    assert_eq!(code(&m), Some(508));
    assert_eq!(
        rest,
        vec![
            Output::ReleaseRelay { relay: addr(NEXT) },
            Output::ReleaseRelay {
                relay: addr("198.51.100.1:50002")
            },
        ]
    );
    assert_eq!(p.s.stats().reservations, 0);
    // The handler vetoes the allocation.
    let (mut p, _) = super::handler::recording_with(config_for("h"), true, false);
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17), Attribute::EvenPort(true)],
        Some(("h", "hp", &n)),
    );
    let outs = p.input(p.client, &raw);
    let (request, _) = relay_request(&outs);
    p.s.relay_allocated(p.now, request, Ok(addr(RELAY)));
    let (m, _, rest) = split(p.drain());
    assert_eq!(code(&m), Some(403));
    assert_eq!(
        rest,
        vec![
            Output::ReleaseRelay { relay: addr(RELAY) },
            Output::ReleaseRelay { relay: addr(NEXT) },
        ]
    );
    assert_eq!(p.s.stats().reservations, 0);
}

fn config_for(user: &str) -> Config {
    Config {
        users: vec![(user.into(), "hp".into())],
        ..Config::default()
    }
}

#[test]
fn a_tcp_client_gone_before_the_relay_answer_gets_both_ports_released() {
    let mut p = Pair::new(config());
    p.client.protocol = Protocol::Tcp;
    let client = p.client;
    let outs = allocate_with(&mut p, client, &[Attribute::EvenPort(true)]);
    let (request, _) = relay_request(&outs);
    p.s.close_transport(p.now, p.client);
    assert!(p.drain().is_empty());
    p.s.relay_allocated(p.now, request, Ok(addr(RELAY)));
    assert_eq!(
        p.drain(),
        vec![
            Output::ReleaseRelay { relay: addr(RELAY) },
            Output::ReleaseRelay { relay: addr(NEXT) },
        ]
    );
    assert_eq!((p.s.stats().allocations, p.s.stats().reservations), (0, 0));
}
