//! In-memory tests of the TURN server on a simulated clock: a test client builds requests with
//! the codec, and the test plays the driver (relay sockets, hook answers).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::handler::Handler;
use std::sync::{Arc, Mutex};

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

const PEER: &str = "203.0.113.9:6000";

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
    let (_, raw) = p.authed(
        Method::Allocate,
        &[Attribute::RequestedTransport(17), Attribute::EvenPort(true)],
    );
    assert_eq!(code(&p.call(p.client, &raw).0), Some(508));
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
        even_port: false,
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
        even_port: true,
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
fn wrong_password_unknown_user_and_bad_realm_are_401() {
    let mut p = Pair::new(config());
    for (u, pw) in [(USER, "nope"), ("mallory", "x")] {
        let n = p.nonce();
        let (_, raw) = p.build(
            Class::Request,
            Method::Allocate,
            &[Attribute::RequestedTransport(17)],
            Some((u, pw, &n)),
        );
        let (m, _, rest) = p.call(p.client, &raw);
        assert_eq!(code(&m), Some(401));
        assert!(m.nonce().is_some() && rest.is_empty());
    }
    assert_eq!(p.s.stats().auth_failures, 2);
    // Missing USERNAME with an MI: 400.
    let tid = p.next_tid();
    let mut b = MessageBuilder::new(Class::Request, Method::Refresh, tid);
    b.add_message_integrity(b"k").unwrap();
    assert_eq!(code(&p.call(p.client, &b.finish()).0), Some(400));
}

#[test]
fn stale_nonce_is_438_then_fresh_nonce_works() {
    let mut p = Pair::new(config());
    let old = p.nonce();
    p.advance(3600);
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((USER, PW, &old)),
    );
    let (m, _, _) = p.call(p.client, &raw);
    assert_eq!(code(&m), Some(438));
    let fresh = m.nonce().unwrap().to_owned();
    assert_ne!(fresh, old);
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((USER, PW, &fresh)),
    );
    assert!(matches!(
        p.input(p.client, &raw).as_slice(),
        [Output::AllocateRelay { .. }]
    ));
    // A forged nonce is 438 too.
    let (_, raw) = p.build(
        Class::Request,
        Method::Refresh,
        &[],
        Some((USER, PW, "0000000000000000000000000000000000000000000000ff")),
    );
    assert_eq!(code(&p.call(p.client, &raw).0), Some(438));
}

#[test]
fn rest_credentials_valid_expired_wrong() {
    let secret = "s3cret";
    let mut p = Pair::new(Config {
        auth_secret: Some(secret.into()),
        ..Config::default()
    });
    let user = format!("{}:bob", p.unix + 60);
    let pw = auth::rest_password(secret.as_bytes(), &user);
    p.allocate_as(p.client, &user, &pw);
    let other = udp("203.0.113.5:50001");
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((&user, "wrong", &n)),
    );
    assert_eq!(code(&p.call(other, &raw).0), Some(401));
    let expired = format!("{}:bob", p.unix - 1);
    let pw = auth::rest_password(secret.as_bytes(), &expired);
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some((&expired, &pw, &n)),
    );
    assert_eq!(code(&p.call(other, &raw).0), Some(401));
}

#[test]
fn hook_password_path() {
    let mut p = Pair::new(Config {
        password_hook: true,
        ..Config::default()
    });
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("carol", "pw", &n)),
    );
    let outs = p.input(p.client, &raw);
    let [Output::PasswordRequest {
        request,
        username,
        realm,
        client,
    }] = outs.as_slice()
    else {
        panic!("{outs:?}")
    };
    assert_eq!(
        (username.as_str(), realm.as_str(), *client),
        ("carol", "ferrostream", p.client.client)
    );
    assert_eq!(p.s.stats().parked_auth, 1);
    // Retransmission while parked: nothing new.
    assert!(p.input(p.client, &raw).is_empty());
    p.s.provide_password(p.now, *request, Some("pw".into()));
    assert!(matches!(
        p.drain().as_slice(),
        [Output::AllocateRelay { .. }]
    ));
    assert_eq!(p.s.stats().parked_auth, 0);
    // Cached now: a second request does not ask.
    let other = udp("203.0.113.5:40000");
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("carol", "pw", &n)),
    );
    assert!(matches!(
        p.input(other, &raw).as_slice(),
        [Output::AllocateRelay { .. }]
    ));
    // Unknown user: None → 401.
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("dave", "pw", &n)),
    );
    let outs = p.input(udp("203.0.113.5:40001"), &raw);
    let [Output::PasswordRequest { request, .. }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    p.s.provide_password(p.now, *request, None);
    assert_eq!(code(&split(p.drain()).0), Some(401));
    // No answer in time: 401 at the deadline.
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("erin", "pw", &n)),
    );
    p.input(udp("203.0.113.5:40002"), &raw);
    assert_eq!(p.s.poll_timeout(), Some(p.now + Duration::from_secs(5)));
    assert_eq!(code(&split(p.advance(5)).0), Some(401));
}

#[test]
fn parked_requests_are_bounded() {
    let mut p = Pair::new(Config {
        password_hook: true,
        max_parked_auth: 1,
        ..Config::default()
    });
    let n = p.nonce();
    let (_, raw) = p.build(Class::Request, Method::Refresh, &[], Some(("u1", "pw", &n)));
    assert!(matches!(
        p.input(p.client, &raw).as_slice(),
        [Output::PasswordRequest { .. }]
    ));
    let (_, raw) = p.build(Class::Request, Method::Refresh, &[], Some(("u2", "pw", &n)));
    assert_eq!(code(&p.call(p.client, &raw).0), Some(500));
    assert_eq!(p.s.stats().parked_overflow, 1);
}

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
    let peer_other_port = addr("203.0.113.9:6001");
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
fn permission_and_channel_expiry() {
    let mut p = Pair::new(Config {
        max_lifetime: Duration::from_secs(3600),
        ..config()
    });
    let relay = p.allocate();
    let peer = addr(PEER);
    let peer2 = addr("203.0.113.10:1");
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

#[derive(Default)]
struct Log(Vec<String>);

struct Recording {
    log: Arc<Mutex<Log>>,
    veto_allocate: bool,
    veto_send: bool,
}

impl Recording {
    fn push(&self, s: String) {
        self.log.lock().unwrap().0.push(s);
    }
}

impl Handler for Recording {
    fn password(&mut self, username: &str, _: &str, _: SocketAddr) -> Authorization {
        self.push(format!("password {username}"));
        if username == "h" {
            Authorization::Password("hp".into())
        } else {
            Authorization::Unknown
        }
    }
    fn before_allocate(&mut self, name: &str, _: SocketAddr, relay: SocketAddr) -> bool {
        self.push(format!("before_allocate {name} {relay}"));
        !self.veto_allocate
    }
    fn allocation_created(&mut self, name: &str, _: SocketAddr, _: SocketAddr) {
        self.push(format!("created {name}"));
    }
    fn allocation_deleted(&mut self, name: &str, _: SocketAddr, _: SocketAddr) {
        self.push(format!("deleted {name}"));
    }
    fn before_relay_send(&mut self, _: SocketAddr, _: SocketAddr, len: usize) -> bool {
        self.push(format!("send {len}"));
        !self.veto_send
    }
    fn before_relay_channel_data(
        &mut self,
        _: SocketAddr,
        _: SocketAddr,
        channel: u16,
        _: usize,
    ) -> bool {
        self.push(format!("channel {channel:#x}"));
        !self.veto_send
    }
    fn channel_data_discarded(&mut self, _: SocketAddr, channel: u16, reason: DiscardReason) {
        self.push(format!("cd discarded {channel:#x} {reason:?}"));
    }
    fn message_discarded(&mut self, _: SocketAddr, reason: DiscardReason) {
        self.push(format!("discarded {reason:?}"));
    }
    fn on_request_error(&mut self, _: &Message, code: u16) -> bool {
        self.push(format!("error {code}"));
        code != 442
    }
}

fn recording(veto_allocate: bool, veto_send: bool) -> (Pair, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let h = Recording {
        log: log.clone(),
        veto_allocate,
        veto_send,
    };
    let s = Server::with_handler(Config::default(), [1; 32], Box::new(h));
    (Pair::with(s), log)
}

#[test]
fn handler_password_and_callbacks() {
    let (mut p, log) = recording(false, true);
    let relay = p.allocate_as(p.client, "h", "hp");
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(6)],
        Some(("h", "hp", &n)),
    );
    // 442 suppressed by on_request_error.
    assert!(p.input(udp("203.0.113.5:9"), &raw).is_empty());
    let (_, raw) = p.build(
        Class::Request,
        Method::ChannelBind,
        &[
            Attribute::ChannelNumber(0x4000),
            Attribute::XorPeerAddress(addr(PEER)),
        ],
        Some(("h", "hp", &n)),
    );
    assert_eq!(p.call(p.client, &raw).0.class, Class::Success);
    assert!(p.send(addr(PEER), b"abc").is_empty());
    assert!(p.input(p.client, &[0x40, 0x00, 0, 1, 0]).is_empty());
    assert!(p.input(p.client, &[0x40, 0x01, 0, 1, 0]).is_empty());
    p.s.handle_peer(p.now, relay, addr("203.0.113.99:1"), b"x");
    p.advance(600);
    let log = log.lock().unwrap().0.clone();
    for want in [
        "password h",
        &format!("before_allocate h {relay}"),
        "created h",
        "error 442",
        "send 3",
        "discarded Vetoed",
        "channel 0x4000",
        "cd discarded 0x4000 Vetoed",
        "cd discarded 0x4001 UnboundChannel",
        "discarded NoPermission",
        "deleted h",
    ] {
        assert!(log.iter().any(|l| l == want), "{want} missing from {log:?}");
    }
    // Unknown from the handler (no hook configured): 401.
    let n = p.nonce();
    let (_, raw) = p.build(Class::Request, Method::Refresh, &[], Some(("zed", "x", &n)));
    assert_eq!(code(&p.call(p.client, &raw).0), Some(401));
}

#[test]
fn handler_vetoes_allocation_with_403() {
    let (mut p, _) = recording(true, false);
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("h", "hp", &n)),
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay { request, .. }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    let relay = addr("198.51.100.1:50000");
    p.s.relay_allocated(p.now, *request, Ok(relay));
    let (m, _, rest) = split(p.drain());
    assert_eq!(code(&m), Some(403));
    assert_eq!(rest, vec![Output::ReleaseRelay { relay }]);
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
