//! In-memory tests of the TURN server on a simulated clock: a test client builds requests with
//! the codec, and the test plays the driver (relay sockets, hook answers).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::handler::Handler;
use std::sync::{Arc, Mutex};

mod credentials;
mod fast;
mod handler;
mod permission;
mod relay;
mod reservation;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const USER: &str = "alice";
const PW: &str = "secret";

/// A lifecycle notification, as the [`Events`] handler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Binding {
        client: SocketAddr,
    },
    Allocated {
        name: String,
        client: SocketAddr,
        relay: SocketAddr,
    },
    Refreshed {
        name: String,
        client: SocketAddr,
        expiration_secs: u32,
    },
    Permission {
        name: String,
        client: SocketAddr,
        peer: SocketAddr,
    },
    ChannelBound {
        name: String,
        client: SocketAddr,
        channel: u16,
        peer: SocketAddr,
    },
    Deleted {
        name: String,
        client: SocketAddr,
        relay: SocketAddr,
    },
}

/// Records the lifecycle notifications; every other method keeps its default.
struct Events(Arc<Mutex<Vec<Ev>>>);

impl Events {
    fn push(&self, e: Ev) {
        self.0.lock().unwrap().push(e);
    }
}

impl Handler for Events {
    fn binding(&mut self, client: SocketAddr) {
        self.push(Ev::Binding { client });
    }
    fn allocation_created(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        self.push(Ev::Allocated {
            name: name.into(),
            client,
            relay,
        });
    }
    fn refreshed(&mut self, name: &str, client: SocketAddr, expiration_secs: u32) {
        self.push(Ev::Refreshed {
            name: name.into(),
            client,
            expiration_secs,
        });
    }
    fn permission_created(&mut self, name: &str, client: SocketAddr, peer: SocketAddr) {
        self.push(Ev::Permission {
            name: name.into(),
            client,
            peer,
        });
    }
    fn channel_bound(&mut self, name: &str, client: SocketAddr, channel: u16, peer: SocketAddr) {
        self.push(Ev::ChannelBound {
            name: name.into(),
            client,
            channel,
            peer,
        });
    }
    fn allocation_deleted(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        self.push(Ev::Deleted {
            name: name.into(),
            client,
            relay,
        });
    }
}

struct Pair {
    s: Server,
    /// What the [`Events`] handler recorded; `None` for a server with another handler.
    events: Option<Arc<Mutex<Vec<Ev>>>>,
    now: Instant,
    unix: u64,
    tid: u64,
    client: Transport,
    relay_port: u16,
}

fn config() -> Config {
    Config {
        users: vec![(USER.into(), PW.into())],
        ..Config::default()
    }
}

impl Pair {
    fn new(config: Config) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let h = Box::new(Events(Arc::clone(&events)));
        let mut p = Self::with(Server::with_handler(config, [7; 32], h));
        p.events = Some(events);
        p
    }

    fn with(s: Server) -> Self {
        let base = Instant::now();
        Pair {
            s,
            events: None,
            now: base,
            unix: 1_700_000_000,
            tid: 0,
            client: udp("203.0.113.5:50000"),
            relay_port: 49152,
        }
    }

    fn advance(&mut self, secs: u64) -> Vec<Output> {
        self.now += Duration::from_secs(secs);
        self.unix += secs;
        self.s.handle_timeout(self.now);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.s.poll_output()).collect()
    }

    /// The notifications recorded since the last call.
    fn take_events(&mut self) -> Vec<Ev> {
        let events = self
            .events
            .as_ref()
            .expect("a server with the Events handler");
        std::mem::take(&mut *events.lock().unwrap())
    }

    fn next_tid(&mut self) -> TransactionId {
        self.tid += 1;
        let mut t = [0u8; 12];
        t[4..].copy_from_slice(&self.tid.to_be_bytes());
        TransactionId(t)
    }

    /// A request; `cred` = (username, password, nonce) adds USERNAME/REALM/NONCE + MI.
    fn build(
        &mut self,
        class: Class,
        method: Method,
        attrs: &[Attribute],
        cred: Option<(&str, &str, &str)>,
    ) -> (TransactionId, Vec<u8>) {
        let tid = self.next_tid();
        let mut b = MessageBuilder::new(class, method, tid);
        for a in attrs {
            b.add(a).unwrap();
        }
        if let Some((u, p, n)) = cred {
            b.add(&Attribute::Username(u.into())).unwrap();
            b.add(&Attribute::Realm("ferrostream".into())).unwrap();
            b.add(&Attribute::Nonce(n.into())).unwrap();
            b.add_message_integrity(&auth::long_term_key(u, "ferrostream", p))
                .unwrap();
        }
        b.add_fingerprint().unwrap();
        (tid, b.finish())
    }

    fn input(&mut self, from: Transport, bytes: &[u8]) -> Vec<Output> {
        self.s.handle_client(self.now, self.unix, from, bytes);
        self.drain()
    }

    /// Sends a request and returns the one response (decoded) and the other outputs.
    fn call(&mut self, from: Transport, bytes: &[u8]) -> (Message, Vec<u8>, Vec<Output>) {
        let outs = self.input(from, bytes);
        split(outs)
    }

    /// A nonce from a 401 challenge.
    fn nonce(&mut self) -> String {
        let (_, raw) = self.build(
            Class::Request,
            Method::Allocate,
            &[Attribute::RequestedTransport(17)],
            None,
        );
        let (m, _, _) = self.call(self.client, &raw);
        assert_eq!(code(&m), Some(401));
        m.nonce().unwrap().to_owned()
    }

    /// Authenticated request as `USER`.
    fn authed(&mut self, method: Method, attrs: &[Attribute]) -> (TransactionId, Vec<u8>) {
        let n = self.nonce();
        self.build(Class::Request, method, attrs, Some((USER, PW, &n)))
    }

    /// Full allocation for `from` as (user, pw); returns the relay address.
    fn allocate_as(&mut self, from: Transport, user: &str, pw: &str) -> SocketAddr {
        let n = self.nonce();
        let (_, raw) = self.build(
            Class::Request,
            Method::Allocate,
            &[Attribute::RequestedTransport(17)],
            Some((user, pw, &n)),
        );
        let outs = self.input(from, &raw);
        let [Output::AllocateRelay {
            request, family, ..
        }] = outs.as_slice()
        else {
            panic!("{outs:?}");
        };
        assert_eq!(*family, AddressFamily::Ipv4);
        let relay = SocketAddr::new(addr("198.51.100.1:0").ip(), self.relay_port);
        self.relay_port += 1;
        self.s.relay_allocated(self.now, *request, Ok(relay));
        let (m, bytes, rest) = split(self.drain());
        assert_eq!(m.class, Class::Success, "{m:?}");
        assert!(Message::check_integrity(
            &bytes,
            &auth::long_term_key(user, "ferrostream", pw)
        ));
        assert!(Message::check_fingerprint(&bytes));
        assert!(rest.is_empty(), "{rest:?}");
        if self.events.is_some() {
            let events = self.take_events();
            let want = Ev::Allocated {
                name: user.into(),
                client: from.client,
                relay,
            };
            assert!(events.contains(&want), "{events:?}");
        }
        relay
    }

    fn allocate(&mut self) -> SocketAddr {
        self.allocate_as(self.client, USER, PW)
    }

    fn permit(&mut self, peer: SocketAddr) -> Message {
        let (_, raw) = self.authed(Method::CreatePermission, &[Attribute::XorPeerAddress(peer)]);
        self.call(self.client, &raw).0
    }

    fn bind(&mut self, channel: u16, peer: SocketAddr) -> Message {
        let (_, raw) = self.authed(
            Method::ChannelBind,
            &[
                Attribute::ChannelNumber(channel),
                Attribute::XorPeerAddress(peer),
            ],
        );
        self.call(self.client, &raw).0
    }

    fn send(&mut self, peer: SocketAddr, data: &[u8]) -> Vec<Output> {
        let (_, raw) = self.build(
            Class::Indication,
            Method::Send,
            &[
                Attribute::XorPeerAddress(peer),
                Attribute::Data(data.to_vec()),
            ],
            None,
        );
        self.input(self.client, &raw)
    }
}

fn udp(client: &str) -> Transport {
    Transport {
        protocol: Protocol::Udp,
        client: addr(client),
        server: addr("198.51.100.1:3478"),
    }
}

fn code(m: &Message) -> Option<u16> {
    m.error_code().map(|e| e.code)
}

/// The one ToClient STUN response among `outs`, decoded, and the rest.
fn split(outs: Vec<Output>) -> (Message, Vec<u8>, Vec<Output>) {
    let mut resp = None;
    let mut rest = Vec::new();
    for o in outs {
        match o {
            Output::ToClient { bytes, .. } if resp.is_none() => resp = Some(bytes),
            o => rest.push(o),
        }
    }
    let bytes = resp.expect("a response");
    (Message::decode(&bytes).unwrap(), bytes, rest)
}

/// A global unicast peer (nothing is sent: the tests play the driver). The documentation
/// ranges are refused peers, so they serve only as client and server addresses here.
const PEER: &str = "8.8.4.4:6000";

#[test]
fn binding_returns_mapped_address_and_event() {
    let mut p = Pair::new(config());
    let (tid, raw) = p.build(Class::Request, Method::Binding, &[], None);
    let (m, bytes, rest) = p.call(p.client, &raw);
    assert_eq!((m.class, m.transaction_id), (Class::Success, tid));
    assert_eq!(
        m.attribute(attr::XOR_MAPPED_ADDRESS),
        Some(&Attribute::XorMappedAddress(p.client.client))
    );
    assert!(Message::check_fingerprint(&bytes));
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        p.take_events(),
        vec![Ev::Binding {
            client: p.client.client
        }]
    );
}

#[test]
fn allocate_flow_with_xor_addresses() {
    let mut p = Pair::new(config());
    // 401 without credentials.
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        None,
    );
    let (m, bytes, _) = p.call(p.client, &raw);
    assert_eq!(code(&m), Some(401));
    assert_eq!(m.realm(), Some("ferrostream"));
    assert!(m.attribute(attr::MESSAGE_INTEGRITY).is_none());
    assert!(Message::check_fingerprint(&bytes));
    assert_eq!(p.s.stats().auth_failures, 0);
    let relay = p.allocate();
    let s = p.s.stats();
    assert_eq!(s.allocations, 1);
    // The success carried the relay and mapped address and lifetime (checked again here).
    let (tid, raw) = p.authed(Method::Refresh, &[Attribute::Lifetime(100)]);
    let (m, _, rest) = p.call(p.client, &raw);
    assert_eq!((m.class, m.transaction_id), (Class::Success, tid));
    assert_eq!(m.attribute(attr::LIFETIME), Some(&Attribute::Lifetime(100)));
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        p.take_events(),
        vec![Ev::Refreshed {
            name: USER.into(),
            client: p.client.client,
            expiration_secs: 100
        }]
    );
    assert_eq!(relay.port(), 49152);
}

#[test]
fn allocate_success_attributes_and_external_ip() {
    let mut p = Pair::new(Config {
        external_ip: Some(addr("192.0.2.77:0").ip()),
        ..config()
    });
    let (tid, raw) = p.authed(
        Method::Allocate,
        &[
            Attribute::RequestedTransport(17),
            Attribute::Lifetime(99_999),
            Attribute::DontFragment,
        ],
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay { request, .. }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    p.s.relay_allocated(p.now, *request, Ok(addr("10.0.0.2:50001")));
    let (m, _, _) = split(p.drain());
    assert_eq!(m.transaction_id, tid);
    assert_eq!(
        m.attribute(attr::XOR_RELAYED_ADDRESS),
        Some(&Attribute::XorRelayedAddress(addr("192.0.2.77:50001")))
    );
    assert_eq!(
        m.attribute(attr::XOR_MAPPED_ADDRESS),
        Some(&Attribute::XorMappedAddress(p.client.client))
    );
    assert_eq!(
        m.attribute(attr::LIFETIME),
        Some(&Attribute::Lifetime(3600))
    );
}

#[test]
fn retransmitted_allocate_is_answered_identically_and_other_tid_is_437() {
    let mut p = Pair::new(config());
    let (_, raw) = p.authed(Method::Allocate, &[Attribute::RequestedTransport(17)]);
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay { request, .. }] = outs.as_slice() else {
        panic!()
    };
    // A retransmission while the relay is being bound: no second relay.
    assert!(p.input(p.client, &raw).is_empty());
    p.s.relay_allocated(p.now, *request, Ok(addr("198.51.100.1:49999")));
    let (_, first, _) = split(p.drain());
    let outs = p.input(p.client, &raw);
    assert_eq!(
        outs,
        vec![Output::ToClient {
            to: p.client,
            bytes: first
        }]
    );
    let (_, raw) = p.authed(Method::Allocate, &[Attribute::RequestedTransport(17)]);
    assert_eq!(code(&p.call(p.client, &raw).0), Some(437));
}

#[test]
fn allocate_errors_442_400_508_and_relay_failures() {
    let mut p = Pair::new(config());
    let (_, raw) = p.authed(Method::Allocate, &[Attribute::RequestedTransport(6)]);
    let (m, bytes, _) = p.call(p.client, &raw);
    assert_eq!(code(&m), Some(442));
    assert!(Message::check_integrity(
        &bytes,
        &auth::long_term_key(USER, "ferrostream", PW)
    ));
    let (_, raw) = p.authed(Method::Allocate, &[]);
    assert_eq!(code(&p.call(p.client, &raw).0), Some(400));
    // A RESERVATION-TOKEN the server never gave: 508 (RFC 8656 §7.2 step 5).
    let (_, raw) = p.authed(
        Method::Allocate,
        &[
            Attribute::RequestedTransport(17),
            Attribute::ReservationToken([1; 8]),
        ],
    );
    assert_eq!(code(&p.call(p.client, &raw).0), Some(508));
    // IPv6 requested, driver has none: 440; then exhausted: 508.
    let (_, raw) = p.authed(
        Method::Allocate,
        &[
            Attribute::RequestedTransport(17),
            Attribute::RequestedAddressFamily(AddressFamily::Ipv6),
        ],
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay {
        request,
        family: AddressFamily::Ipv6,
        port: RelayPort::Any,
        ..
    }] = outs.as_slice()
    else {
        panic!("{outs:?}")
    };
    p.s.relay_allocated(p.now, *request, Err(RelayError::FamilyUnsupported));
    assert_eq!(code(&split(p.drain()).0), Some(440));
    // EVEN-PORT without the R bit (coturn's uclient sends it): passed on to the driver.
    let (_, raw) = p.authed(
        Method::Allocate,
        &[
            Attribute::RequestedTransport(17),
            Attribute::EvenPort(false),
        ],
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay {
        request,
        port: RelayPort::Even,
        ..
    }] = outs.as_slice()
    else {
        panic!("{outs:?}")
    };
    p.s.relay_allocated(p.now, *request, Err(RelayError::Exhausted));
    assert_eq!(code(&split(p.drain()).0), Some(508));
    assert_eq!(p.s.stats().allocations, 0);
    // An unknown answer id with a socket: released.
    p.s.relay_allocated(p.now, RelayRequestId(999), Ok(addr("198.51.100.1:1")));
    assert_eq!(
        p.drain(),
        vec![Output::ReleaseRelay {
            relay: addr("198.51.100.1:1")
        }]
    );
}

#[test]
fn requests_without_allocation_are_437() {
    let mut p = Pair::new(config());
    for (method, attrs) in [
        (Method::Refresh, vec![]),
        (
            Method::CreatePermission,
            vec![Attribute::XorPeerAddress(addr(PEER))],
        ),
        (
            Method::ChannelBind,
            vec![
                Attribute::ChannelNumber(0x4000),
                Attribute::XorPeerAddress(addr(PEER)),
            ],
        ),
    ] {
        let (_, raw) = p.authed(method, &attrs);
        assert_eq!(code(&p.call(p.client, &raw).0), Some(437));
    }
}

#[test]
fn other_user_on_allocation_is_441() {
    let mut p = Pair::new(Config {
        users: vec![(USER.into(), PW.into()), ("bob".into(), "b".into())],
        ..Config::default()
    });
    p.allocate();
    let n = p.nonce();
    let (_, raw) = p.build(Class::Request, Method::Refresh, &[], Some(("bob", "b", &n)));
    assert_eq!(code(&p.call(p.client, &raw).0), Some(441));
}

#[test]
fn closing_a_tcp_transport_deletes_its_allocation() {
    let mut p = Pair::new(config());
    p.client.protocol = Protocol::Tcp;
    let relay = p.allocate();
    p.s.close_transport(p.now, p.client);
    assert_eq!(p.drain(), vec![Output::ReleaseRelay { relay }]);
    assert_eq!(
        p.take_events(),
        vec![Ev::Deleted {
            name: USER.into(),
            client: p.client.client,
            relay,
        }]
    );
    assert_eq!(p.s.stats().allocations, 0);
    // An Allocate waiting for its relay when the connection closes: the relay is released.
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((USER, PW, &n)),
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay { request, .. }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    p.s.close_transport(p.now, p.client);
    assert!(p.drain().is_empty());
    p.s.relay_allocated(p.now, *request, Ok(relay));
    assert_eq!(p.drain(), vec![Output::ReleaseRelay { relay }]);
    assert_eq!(p.s.stats().allocations, 0);
}

#[test]
fn refresh_zero_deletes_and_lifetime_is_capped() {
    let mut p = Pair::new(config());
    let relay = p.allocate();
    let (_, raw) = p.authed(Method::Refresh, &[Attribute::Lifetime(1_000_000)]);
    let (m, _, _) = p.call(p.client, &raw);
    assert_eq!(
        m.attribute(attr::LIFETIME),
        Some(&Attribute::Lifetime(3600))
    );
    let (_, raw) = p.authed(Method::Refresh, &[Attribute::Lifetime(0)]);
    p.take_events();
    let (m, _, rest) = p.call(p.client, &raw);
    assert_eq!(m.class, Class::Success);
    assert_eq!(rest, vec![Output::ReleaseRelay { relay }]);
    assert_eq!(
        p.take_events(),
        vec![Ev::Deleted {
            name: USER.into(),
            client: p.client.client,
            relay,
        }]
    );
    assert_eq!(p.s.stats().allocations, 0);
}

#[test]
fn allocation_expires() {
    let mut p = Pair::new(config());
    let relay = p.allocate();
    assert_eq!(p.s.poll_timeout(), Some(p.now + Duration::from_secs(600)));
    assert!(p.advance(599).is_empty());
    assert!(p.take_events().is_empty());
    assert_eq!(p.advance(1), vec![Output::ReleaseRelay { relay }]);
    assert_eq!(
        p.take_events(),
        vec![Ev::Deleted {
            name: USER.into(),
            client: p.client.client,
            relay,
        }]
    );
    assert_eq!(p.s.poll_timeout(), None);
}

#[test]
fn quotas_per_user_and_total() {
    let mut p = Pair::new(Config {
        max_allocations_per_user: 2,
        max_allocations: 3,
        users: vec![(USER.into(), PW.into()), ("bob".into(), "b".into())],
        ..Config::default()
    });
    p.allocate_as(udp("203.0.113.5:1"), USER, PW);
    p.allocate_as(udp("203.0.113.5:2"), USER, PW);
    let (_, raw) = p.authed(Method::Allocate, &[Attribute::RequestedTransport(17)]);
    assert_eq!(code(&p.call(udp("203.0.113.5:3"), &raw).0), Some(486));
    p.allocate_as(udp("203.0.113.5:4"), "bob", "b");
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("bob", "b", &n)),
    );
    assert_eq!(code(&p.call(udp("203.0.113.5:5"), &raw).0), Some(486));
    assert_eq!(p.s.stats().quota_rejections, 2);
}

#[test]
fn unknown_comprehension_required_attribute_is_420() {
    let mut p = Pair::new(config());
    let unknown = Attribute::Unknown {
        kind: 0x7777,
        value: vec![1],
    };
    let (_, raw) = p.build(
        Class::Request,
        Method::Binding,
        std::slice::from_ref(&unknown),
        None,
    );
    let (m, _, _) = p.call(p.client, &raw);
    assert_eq!(code(&m), Some(420));
    assert_eq!(
        m.attribute(attr::UNKNOWN_ATTRIBUTES),
        Some(&Attribute::UnknownAttributes(vec![0x7777]))
    );
    let (_, raw) = p.authed(
        Method::Allocate,
        &[Attribute::RequestedTransport(17), unknown],
    );
    let (m, bytes, _) = p.call(p.client, &raw);
    assert_eq!(code(&m), Some(420));
    assert!(Message::check_integrity(
        &bytes,
        &auth::long_term_key(USER, "ferrostream", PW)
    ));
}

#[test]
fn unexpected_and_malformed_messages_are_dropped() {
    let mut p = Pair::new(config());
    let (_, raw) = p.build(Class::Success, Method::Binding, &[], None);
    assert!(p.input(p.client, &raw).is_empty());
    let (_, raw) = p.build(Class::Indication, Method::Data, &[], None);
    assert!(p.input(p.client, &raw).is_empty());
    let (_, raw) = p.build(Class::Request, Method::Other(0x0FF), &[], None);
    assert_eq!(code(&p.call(p.client, &raw).0), Some(400));
    assert!(p.input(p.client, &[0x00, 0x01, 0x00]).is_empty());
    assert!(p.input(p.client, &[0x16, 0xfe, 0xfd]).is_empty());
    assert!(p.input(p.client, &[]).is_empty());
    assert!(p.input(p.client, &[0x40, 0x00, 0x00, 0x09]).is_empty());
    // A bad FINGERPRINT.
    let (_, mut raw) = p.build(Class::Request, Method::Binding, &[], None);
    if let Some(last) = raw.last_mut() {
        *last ^= 1;
    }
    assert!(p.input(p.client, &raw).is_empty());
    let s = p.s.stats();
    assert_eq!((s.discarded, s.malformed), (2, 5));
}

#[test]
fn fuzz_corpus_never_panics_the_server() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut p = Pair::new(config());
    p.allocate();
    p.permit(addr(PEER));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("turn_") {
            continue;
        }
        for f in std::fs::read_dir(entry.path()).unwrap().flatten() {
            let data = std::fs::read(f.path()).unwrap();
            p.input(p.client, &data);
            p.input(udp("192.0.2.1:1"), &data);
            n += 1;
        }
    }
    assert!(n > 20);
}

#[test]
fn a_draining_relay_refuses_new_allocations_and_keeps_the_others() {
    let mut p = Pair::new(config());
    p.allocate();
    p.s.set_draining(true);
    // A second client: 508.
    let other = udp("192.0.2.77:4000");
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((USER, PW, &n)),
    );
    let (m, _, rest) = p.call(other, &raw);
    assert_eq!(code(&m), Some(508));
    assert!(rest.is_empty(), "{rest:?}");
    // The first one refreshes as before.
    let (tid, raw) = p.authed(Method::Refresh, &[Attribute::Lifetime(100)]);
    let (m, _, _) = p.call(p.client, &raw);
    assert_eq!((m.class, m.transaction_id), (Class::Success, tid));
    assert_eq!(p.s.stats().allocations, 1);
}
