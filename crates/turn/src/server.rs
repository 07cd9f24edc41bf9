//! The sans-IO TURN server (RFC 8656 over RFC 8489): allocations keyed by 5-tuple,
//! permissions, channel bindings, long-term credentials, the peer policy and a per-allocation
//! byte rate limit. It owns no socket, no clock and no random number generator: the driver
//! passes in datagrams and the time, and carries out the [`Output`]s.
//!
//! # Drain rule
//!
//! After **every** call that takes input — [`Server::handle_client`], [`Server::handle_peer`],
//! [`Server::handle_timeout`], and the policy answers [`Server::relay_allocated`] and
//! [`Server::provide_password`] — call [`Server::poll_output`] until it returns `None`, then
//! re-arm the timer with [`Server::poll_timeout`].
//!
//! ```text
//!  client socket ──▶ handle_client ─┐                      ┌─▶ ToClient     ──▶ client socket
//!  relay socket  ──▶ handle_peer ───┤                      ├─▶ ToPeer       ──▶ relay socket
//!  timer fires   ──▶ handle_timeout ┼─▶ poll_output() ... ─┼─▶ AllocateRelay ─▶ bind a UDP port
//!  bind result   ──▶ relay_allocated┤   until None         │       └──────────▶ relay_allocated
//!  hook answer   ──▶ provide_password                      ├─▶ ReleaseRelay  ─▶ close the socket
//!                                   │                      └─▶ PasswordRequest ▶ GET /password
//!                                   │                              └──────────▶ provide_password
//!                                   ▼
//!                              poll_timeout() ──▶ sleep until then, then handle_timeout
//! ```
//!
//! # Fast path
//!
//! With [`Config::publish_channels`] the server publishes every channel of a UDP client to
//! the driver ([`Output::PublishChannel`], again whenever a ChannelBind, CreatePermission or
//! Refresh moves its deadline; [`Output::WithdrawChannel`] when it expires or its allocation
//! goes), and the driver relays the ChannelData of published channels itself until their
//! deadline, both ways, without calling `handle_client` / `handle_peer` per packet. The server
//! stays the only authority: it decides what is published and for how long, and whatever the
//! driver does not find published (or finds past its deadline) still comes in through the
//! `handle_*` calls, which decide as they always did. The driver hands its counts back with
//! [`Server::count_relayed`] so that [`Stats`] stays complete. Packets relayed by the driver
//! skip [`Handler::before_relay_channel_data`]; a server whose handler vetoes relayed packets
//! must leave the flag off. Channels are not published when
//! [`Config::bytes_per_second_per_allocation`] is set (the rate limit needs every packet), nor
//! to the server's own addresses unless [`Config::allow_peers`] lists them (otherwise the
//! policy allowed them for a relay's port, and checks them again per packet).
//!
//! Outputs are IO only. Notifications (allocation created, refreshed, deleted, permissions,
//! channels, bindings, discards) and vetoes go to the [`Handler`] given to
//! [`Server::with_handler`], synchronously, at the point they happen.
//!
//! TCP clients: cut the stream with [`channel::next_frame`] and pass each frame's bytes
//! (STUN message, or ChannelData with its padding) to `handle_client` with
//! [`Protocol::Tcp`]; ChannelData sent to a TCP client is padded to 4 bytes.
//!
//! # Layout
//!
//! This file holds the types, the public entry points and the STUN dispatch; the methods
//! behind them live by concept in `allocation` (Allocate, Refresh, the relay answer),
//! `credentials` (nonces, password sources, parked requests), `permission` (CreatePermission,
//! ChannelBind, the peer checks) and `relay` (Send, ChannelData, peer datagrams, rate limit).
//! The tests (`tests.rs`, with `tests/` by the same concepts) drive it on a simulated clock.
//!
//! # Choices
//!
//! - Only UDP relaying (REQUESTED-TRANSPORT 17; anything else is 442).
//! - Port reservations (RFC 8656 §7.2): EVEN-PORT with the R bit asks the driver for an even
//!   port N with N+1 bound too ([`RelayPort::EvenReserveNext`]); N+1 is kept for
//!   [`Config::reservation_lifetime`] under the RESERVATION-TOKEN of the success response, and
//!   a later Allocate carrying the token gets it ([`RelayPort::Reserved`]), once. An unused
//!   reservation ends with [`Output::ReleaseRelay`]. Reservations count against both quotas
//!   (they hold a socket), so they are bounded like allocations.
//!   ADDITIONAL-ADDRESS-FAMILY (dual allocation) is ignored: one relay of the requested family.
//! - DONT-FRAGMENT is accepted and not acted on.
//! - Only MESSAGE-INTEGRITY (HMAC-SHA1, MD5 key) is supported; PASSWORD-ALGORITHMS is not
//!   offered, so RFC 8489 clients fall back to it.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::attr::{self, AddressFamily, Attribute, ErrorCode};
use crate::auth::{self, RestUsername};
use crate::channel::{self, ChannelData};
use crate::handler::{Authorization, DefaultHandler, DiscardReason, Handler};
use crate::policy::{self, Cidr};
use crate::stun::{Class, Message, MessageBuilder, Method, TransactionId};

/// Server settings. Each field's doc gives its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// REALM of the long-term credentials. Default: `"ferrostream"`.
    pub realm: String,
    /// SOFTWARE attribute on responses; empty = none. Default: `"ferrostream"`.
    pub software: String,
    /// How long a NONCE stays valid; after it, requests get 438 Stale Nonce. Default: 1 h.
    pub nonce_lifetime: Duration,
    /// Allocation lifetime when the client asks for none (or less). Default: 600 s.
    pub default_lifetime: Duration,
    /// Longest allocation lifetime granted. Default: 3600 s.
    pub max_lifetime: Duration,
    /// Permission lifetime (RFC 8656 §9). Default: 300 s.
    pub permission_lifetime: Duration,
    /// Channel binding lifetime (RFC 8656 §12). Default: 600 s.
    pub channel_lifetime: Duration,
    /// Most allocations at once (pending ones and port reservations included). Default: 1000.
    pub max_allocations: usize,
    /// Most allocations per username (port reservations included). Default: 10.
    pub max_allocations_per_user: usize,
    /// How long a port reserved by EVEN-PORT with the R bit waits for the Allocate that
    /// redeems its RESERVATION-TOKEN (RFC 8656 §7.2: at least 30 s). Default: 30 s.
    pub reservation_lifetime: Duration,
    /// Relayed bytes per second per allocation, both directions together (a token bucket
    /// holding one second); excess packets are dropped and counted. 0 = unlimited.
    /// Default: 0.
    pub bytes_per_second_per_allocation: u64,
    /// Peers allowed although [`policy::check_peer`] refuses them (special-purpose ranges, the
    /// server's own addresses). Default: none.
    pub allow_peers: Vec<Cidr>,
    /// The server's own addresses (every local interface's, filled in by the driver; see
    /// [`Server::set_own_addresses`]). Together with [`Config::external_ip`] and the relay
    /// addresses, peers there are refused except on a relay's port or an
    /// [`own_media_ports`](Config::own_media_ports) port. Default: none.
    pub own_addresses: Vec<IpAddr>,
    /// The server's own media ports (the WebRTC port, filled in by the server) that relays may
    /// always reach on its own addresses. Default: none.
    pub own_media_ports: Vec<u16>,
    /// Static `(username, password)` pairs. Default: none.
    pub users: Vec<(String, String)>,
    /// Shared secret of REST credentials (`expiry:name`, password
    /// [`auth::rest_password`]). Default: none.
    pub auth_secret: Option<String>,
    /// Whether [`Authorization::Ask`] parks the request and emits
    /// [`Output::PasswordRequest`] (a password hook is configured). Default: false.
    pub password_hook: bool,
    /// Most requests parked waiting for a password; past it requests are answered 500.
    /// Default: 128.
    pub max_parked_auth: usize,
    /// How long a parked request waits for [`Server::provide_password`] before it is answered
    /// 401. Default: 5 s.
    pub password_timeout: Duration,
    /// Address advertised in XOR-RELAYED-ADDRESS instead of the relay socket's own IP (the
    /// port is kept), for a server behind 1:1 NAT. Default: none.
    pub external_ip: Option<IpAddr>,
    /// Publish the channels of UDP clients to the driver ([`Output::PublishChannel`],
    /// [`Output::WithdrawChannel`]) so that it relays their ChannelData itself, both ways,
    /// without a call per packet (see [Fast path](self#fast-path)). Default: false.
    pub publish_channels: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            realm: "ferrostream".into(),
            software: "ferrostream".into(),
            nonce_lifetime: Duration::from_secs(3600),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            max_allocations: 1000,
            max_allocations_per_user: 10,
            reservation_lifetime: Duration::from_secs(30),
            bytes_per_second_per_allocation: 0,
            allow_peers: Vec::new(),
            own_addresses: Vec::new(),
            own_media_ports: Vec::new(),
            users: Vec::new(),
            auth_secret: None,
            password_hook: false,
            max_parked_auth: 128,
            password_timeout: Duration::from_secs(5),
            external_ip: None,
            publish_channels: false,
        }
    }
}

/// Transport protocol between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// UDP.
    Udp,
    /// TCP (frames cut by [`channel::next_frame`]).
    Tcp,
}

/// The client's 5-tuple (RFC 8656 §2): protocol, client address, server address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transport {
    /// UDP or TCP.
    pub protocol: Protocol,
    /// The client's address as the server sees it.
    pub client: SocketAddr,
    /// The server's listening address the client reached.
    pub server: SocketAddr,
}

/// Identifies an [`Output::AllocateRelay`] until [`Server::relay_allocated`] answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayRequestId(pub u64);

/// Identifies an [`Output::PasswordRequest`] until [`Server::provide_password`] answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthRequestId(pub u64);

/// Why the driver could not give a relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayError {
    /// No free port in the range (answered 508 Insufficient Capacity).
    Exhausted,
    /// The server has no address of the requested family (answered 440).
    FamilyUnsupported,
    /// Any other bind failure (answered 508).
    Failed,
}

/// Which port [`Output::AllocateRelay`] asks for (RFC 8656 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayPort {
    /// Any free port of the relay range.
    Any,
    /// An even port (EVEN-PORT without the R bit).
    Even,
    /// An even port N, with N+1 on the same IP bound as well and kept (EVEN-PORT with the R
    /// bit): answer with N's address. The server owns the N+1 socket from then on, and ends it
    /// with [`Output::ReleaseRelay`] unless a RESERVATION-TOKEN redeems it.
    EvenReserveNext,
    /// The socket kept at this address by an earlier [`RelayPort::EvenReserveNext`] (a
    /// RESERVATION-TOKEN was redeemed): answer with this address, or an error if the socket is
    /// gone.
    Reserved(SocketAddr),
}

/// Something for the driver to do, from [`Server::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `bytes` to the client over its 5-tuple.
    ToClient {
        /// The client's 5-tuple.
        to: Transport,
        /// One datagram, or one TCP frame.
        bytes: Vec<u8>,
    },
    /// Send `bytes` from the relay socket bound at `relay` to `peer`.
    ToPeer {
        /// The relay socket's address (as given to [`Server::relay_allocated`]).
        relay: SocketAddr,
        /// The peer.
        peer: SocketAddr,
        /// The payload.
        bytes: Vec<u8>,
    },
    /// Bind a UDP socket of `family` in the relay port range, then call
    /// [`Server::relay_allocated`].
    AllocateRelay {
        /// Pass back to [`Server::relay_allocated`].
        request: RelayRequestId,
        /// The client the relay is for (a TCP connection with an allocation may live longer).
        transport: Transport,
        /// The address family asked for.
        family: AddressFamily,
        /// Which port.
        port: RelayPort,
    },
    /// Close the relay socket bound at `relay`.
    ReleaseRelay {
        /// The relay socket's address.
        relay: SocketAddr,
    },
    /// (With [`Config::publish_channels`].) ChannelData on `channel` between the UDP client
    /// `transport` and `peer`, through the relay socket at `relay`, may be relayed by the
    /// driver itself until `expires` (the earliest of the channel's, the peer permission's and
    /// the allocation's expiry), both ways: the client's ChannelData on `channel` goes to
    /// `peer` from `relay` as its payload, and a datagram from exactly `peer` on `relay` goes
    /// to the client as ChannelData on `channel`. Anything else, and everything at or after
    /// `expires`, still goes to [`Server::handle_client`] / [`Server::handle_peer`]. Replaces
    /// an earlier publication of the same `(transport, channel)`; hand the driver's counts to
    /// [`Server::count_relayed`].
    PublishChannel {
        /// The client's 5-tuple (always [`Protocol::Udp`]).
        transport: Transport,
        /// The allocation's relay socket.
        relay: SocketAddr,
        /// The channel number.
        channel: u16,
        /// The peer bound to it.
        peer: SocketAddr,
        /// Relay nothing on this publication from this instant on.
        expires: Instant,
    },
    /// (With [`Config::publish_channels`].) The channel published earlier is gone (expired,
    /// or its allocation deleted): stop relaying it.
    WithdrawChannel {
        /// The client's 5-tuple.
        transport: Transport,
        /// The allocation's relay socket.
        relay: SocketAddr,
        /// The channel number.
        channel: u16,
        /// The peer it was bound to.
        peer: SocketAddr,
    },
    /// Look up a password (the hook), then call [`Server::provide_password`].
    PasswordRequest {
        /// Pass back to [`Server::provide_password`].
        request: AuthRequestId,
        /// The USERNAME of the request.
        username: String,
        /// The REALM.
        realm: String,
        /// The client's address.
        client: SocketAddr,
    },
}

/// Counters, from [`Server::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Allocations now (not counting those waiting for a relay socket).
    pub allocations: usize,
    /// Inputs that did not decode.
    pub malformed: u64,
    /// Well-formed inputs dropped: unexpected messages, relaying without allocation,
    /// permission or channel, vetoed by the handler.
    pub discarded: u64,
    /// Packets relayed, both directions.
    pub relayed_packets: u64,
    /// Payload bytes relayed, both directions.
    pub relayed_bytes: u64,
    /// Requests refused for credentials (401 after a MESSAGE-INTEGRITY was sent, 441).
    pub auth_failures: u64,
    /// Requests parked waiting for a password now.
    pub parked_auth: usize,
    /// Requests refused because too many were parked.
    pub parked_overflow: u64,
    /// Allocate requests refused with 486.
    pub quota_rejections: u64,
    /// Packets dropped by the rate limit.
    pub rate_limited: u64,
    /// Ports reserved now (EVEN-PORT with the R bit), waiting for their RESERVATION-TOKEN.
    pub reservations: usize,
}

#[derive(Debug)]
struct Channel {
    peer: SocketAddr,
    expires: Instant,
    /// The peer is one of the server's own addresses, allowed for its port: checked again per
    /// packet, since the relay or media port may be gone.
    own: bool,
}

#[derive(Debug)]
struct Bucket {
    tokens: u64,
    last: Instant,
}

#[derive(Debug)]
struct Allocation {
    username: String,
    relay: SocketAddr,
    expires: Instant,
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<u16, Channel>,
    allocate_tid: TransactionId,
    allocate_response: Vec<u8>,
    bucket: Bucket,
}

impl Allocation {
    fn permitted(&self, now: Instant, ip: IpAddr) -> bool {
        self.permissions.get(&ip).is_some_and(|&t| t > now)
    }

    fn channel_of(&self, now: Instant, peer: SocketAddr) -> Option<u16> {
        self.channels
            .iter()
            .find(|(_, c)| c.peer == peer && c.expires > now)
            .map(|(&n, _)| n)
    }
}

#[derive(Debug)]
struct PendingAllocate {
    transport: Transport,
    tid: TransactionId,
    username: String,
    key: [u8; 16],
    lifetime: Duration,
    fingerprint: bool,
    /// EVEN-PORT with the R bit: the driver binds N+1 too, and it becomes a reservation.
    reserve: bool,
}

/// A port kept by EVEN-PORT with the R bit for the Allocate carrying its token.
#[derive(Debug)]
struct Reservation {
    relay: SocketAddr,
    /// Who reserved it (counted in their quota until it is redeemed or ends).
    username: String,
    expires: Instant,
}

#[derive(Debug)]
struct Parked {
    from: Transport,
    raw: Vec<u8>,
    unix_now: u64,
    username: String,
    deadline: Instant,
}

/// A request that passed authentication.
struct Auth {
    username: String,
    key: [u8; 16],
}

/// How a response is protected.
#[derive(Clone, Copy)]
struct Reply<'a> {
    to: Transport,
    req: &'a Message,
    key: Option<[u8; 16]>,
    fingerprint: bool,
}

/// The TURN server state machine. See the [module docs](self) for the drain rule.
pub struct Server {
    config: Config,
    seed: [u8; 32],
    handler: Box<dyn Handler>,
    base: Option<Instant>,
    nonce_counter: u64,
    allocations: HashMap<Transport, Allocation>,
    by_relay: HashMap<SocketAddr, Transport>,
    /// The ports of `by_relay`, with how many relays use each (an IPv4 and an IPv6 relay may
    /// share one): the peer policy's "own relay port" without a scan per packet.
    relay_ports: HashMap<u16, u32>,
    pending: HashMap<RelayRequestId, PendingAllocate>,
    /// Relay requests whose client went away before the driver answered, with whether a
    /// reservation was asked for (so both sockets are released when the answer comes).
    cancelled: HashMap<RelayRequestId, bool>,
    /// RESERVATION-TOKEN → the reserved port.
    reservations: HashMap<[u8; 8], Reservation>,
    parked: HashMap<AuthRequestId, Parked>,
    /// Hook passwords: username → (password, kept until).
    passwords: HashMap<String, (String, Instant)>,
    next_id: u64,
    out: VecDeque<Output>,
    stats: Stats,
    /// Refusing new allocations (the relay moved to another port); the others go on.
    draining: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("realm", &self.config.realm)
            .field("allocations", &self.allocations.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        486 => "Allocation Quota Reached",
        500 => "Server Error",
        _ => "Insufficient Capacity",
    }
}

fn family_of(addr: SocketAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Ipv4
    } else {
        AddressFamily::Ipv6
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

impl Server {
    /// A server with the [`DefaultHandler`]. `seed` keys the nonces: pass 32 random bytes.
    pub fn new(config: Config, seed: [u8; 32]) -> Self {
        Self::with_handler(config, seed, Box::new(DefaultHandler))
    }

    /// A server calling `handler` for passwords, vetoes and notifications.
    pub fn with_handler(config: Config, seed: [u8; 32], handler: Box<dyn Handler>) -> Self {
        Server {
            config,
            seed,
            handler,
            base: None,
            nonce_counter: 0,
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            relay_ports: HashMap::new(),
            pending: HashMap::new(),
            cancelled: HashMap::new(),
            reservations: HashMap::new(),
            parked: HashMap::new(),
            passwords: HashMap::new(),
            next_id: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
            draining: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            allocations: self.allocations.len(),
            parked_auth: self.parked.len(),
            reservations: self.reservations.len(),
            ..self.stats
        }
    }

    /// Stops taking new allocations (508 Insufficient Capacity) while those made go on
    /// (Refresh, permissions, channels, relaying): the relay is moving to another port and this
    /// one ends once [`Stats::allocations`] is 0.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Replaces [`Config::users`] and [`Config::auth_secret`] (the operator changed
    /// `turn.users` or `turn.auth_secret` while running). Requests from now on are checked
    /// against them; an allocation whose user is gone lasts until its next Refresh fails.
    pub fn set_credentials(&mut self, users: Vec<(String, String)>, auth_secret: Option<String>) {
        self.config.users = users;
        self.config.auth_secret = auth_secret;
    }

    /// Replaces [`Config::own_addresses`] (the driver re-reads the interfaces now and then).
    /// Permissions already granted stay; channels to an address that became the server's own
    /// are not re-checked.
    pub fn set_own_addresses(&mut self, addresses: Vec<IpAddr>) {
        self.config.own_addresses = addresses;
    }

    /// Adds what the driver relayed itself on published channels (see
    /// [Fast path](self#fast-path)) to [`Stats::relayed_packets`] and
    /// [`Stats::relayed_bytes`].
    pub fn count_relayed(&mut self, packets: u64, bytes: u64) {
        self.stats.relayed_packets = self.stats.relayed_packets.saturating_add(packets);
        self.stats.relayed_bytes = self.stats.relayed_bytes.saturating_add(bytes);
    }

    /// The next thing for the driver to do; call until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let allocs = self.allocations.values().flat_map(|a| {
            std::iter::once(a.expires)
                .chain(a.permissions.values().copied())
                .chain(a.channels.values().map(|c| c.expires))
        });
        allocs
            .chain(self.reservations.values().map(|r| r.expires))
            .chain(self.parked.values().map(|p| p.deadline))
            .chain(self.passwords.values().map(|(_, t)| *t))
            .min()
    }

    /// Expires allocations (with [`Output::ReleaseRelay`] and
    /// [`Handler::allocation_deleted`]), permissions,
    /// channels, parked requests (answered 401) and cached hook passwords.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
        let expired: Vec<Transport> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            self.delete_allocation(t);
        }
        self.expire_reservations(now);
        let mut gone = Vec::new();
        for (t, a) in &mut self.allocations {
            a.permissions.retain(|_, t| *t > now);
            a.channels.retain(|&n, c| {
                let keep = c.expires > now;
                if !keep {
                    gone.push((*t, a.relay, n, c.peer));
                }
                keep
            });
        }
        for (transport, relay, channel, peer) in gone {
            self.withdraw(transport, relay, channel, peer);
        }
        let late: Vec<AuthRequestId> = self
            .parked
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.provide_password(now, id, None);
        }
        self.passwords.retain(|_, (_, t)| *t > now);
    }

    /// One datagram (UDP) or one frame (TCP) from a client: a STUN message or ChannelData.
    /// `unix_now` (seconds since the UNIX epoch) checks REST credential expiry.
    pub fn handle_client(&mut self, now: Instant, unix_now: u64, from: Transport, bytes: &[u8]) {
        self.touch(now);
        match channel::classify(bytes) {
            channel::Kind::Stun => match Message::decode(bytes) {
                Ok(msg) => self.handle_stun(now, unix_now, from, bytes, msg, false),
                Err(_) => self.malformed(from.client),
            },
            channel::Kind::ChannelData => match ChannelData::decode(bytes) {
                Ok(cd) => self.client_channel_data(now, from, cd),
                Err(_) => self.malformed(from.client),
            },
            channel::Kind::Other => self.malformed(from.client),
        }
    }

    /// The client's TCP connection ended: its allocation is deleted (RFC 8656: over TCP the
    /// allocation lives only as long as its connection), with [`Output::ReleaseRelay`] and
    /// [`Handler::allocation_deleted`], and an Allocate still waiting for its relay is
    /// forgotten (the relay, and a reserved next port, are released when they come). A port the
    /// client reserved stays reserved: a reservation is server-wide (RFC 8656 §7.2).
    pub fn close_transport(&mut self, now: Instant, transport: Transport) {
        self.touch(now);
        let gone: Vec<RelayRequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.transport == transport)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(p) = self.pending.remove(&id) {
                self.cancelled.insert(id, p.reserve);
            }
        }
        self.delete_allocation(transport);
    }

    /// True when `transport` has an allocation (not one still waiting for its relay).
    pub fn has_allocation(&self, transport: &Transport) -> bool {
        self.allocations.contains_key(transport)
    }

    fn touch(&mut self, now: Instant) {
        if self.base.is_none() {
            self.base = Some(now);
        }
    }

    fn mac(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.seed) else {
            return [0; 32];
        };
        mac.update(label);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    fn elapsed_secs(&self, now: Instant) -> u64 {
        self.base
            .map_or(0, |b| now.saturating_duration_since(b).as_secs())
    }

    fn malformed(&mut self, from: SocketAddr) {
        self.stats.malformed += 1;
        self.handler
            .message_discarded(from, DiscardReason::Malformed);
    }

    fn discard(&mut self, from: SocketAddr, reason: DiscardReason) {
        self.stats.discarded += 1;
        self.handler.message_discarded(from, reason);
    }

    /// `replay`: true when replaying a request that waited for a password.
    fn handle_stun(
        &mut self,
        now: Instant,
        unix_now: u64,
        from: Transport,
        raw: &[u8],
        msg: Message,
        replay: bool,
    ) {
        let fingerprint = msg.attribute(attr::FINGERPRINT).is_some();
        if fingerprint && !Message::check_fingerprint(raw) {
            self.malformed(from.client);
            return;
        }
        match (msg.class, msg.method) {
            (Class::Indication, Method::Send) => self.send_indication(now, from, &msg),
            (Class::Request, Method::Binding) => {
                let reply = Reply {
                    to: from,
                    req: &msg,
                    key: None,
                    fingerprint,
                };
                if self.unknown_attributes(reply) {
                    return;
                }
                self.success(reply, vec![Attribute::XorMappedAddress(from.client)]);
                self.handler.binding(from.client);
            }
            (
                Class::Request,
                Method::Allocate | Method::Refresh | Method::CreatePermission | Method::ChannelBind,
            ) => {
                let Some(auth) = self.authenticate(now, unix_now, from, raw, &msg, replay) else {
                    return;
                };
                let reply = Reply {
                    to: from,
                    req: &msg,
                    key: Some(auth.key),
                    fingerprint,
                };
                if self.unknown_attributes(reply) {
                    return;
                }
                match msg.method {
                    Method::Allocate => self.allocate(now, reply, auth),
                    Method::Refresh => self.refresh(now, reply, &auth),
                    Method::CreatePermission => self.create_permission(now, reply, &auth),
                    _ => self.channel_bind(now, reply, &auth),
                }
            }
            (Class::Request, _) => {
                let reply = Reply {
                    to: from,
                    req: &msg,
                    key: None,
                    fingerprint,
                };
                self.error(reply, 400, Vec::new());
            }
            _ => self.discard(from.client, DiscardReason::Unexpected),
        }
    }

    /// Answers 420 when the request has unknown comprehension-required attributes.
    fn unknown_attributes(&mut self, reply: Reply<'_>) -> bool {
        let unknown = reply.req.unknown_comprehension_required();
        if unknown.is_empty() {
            return false;
        }
        self.error(reply, 420, vec![Attribute::UnknownAttributes(unknown)]);
        true
    }

    fn success(&mut self, reply: Reply<'_>, attrs: Vec<Attribute>) -> Option<Vec<u8>> {
        self.respond(reply, Class::Success, attrs, None)
    }

    fn error(&mut self, reply: Reply<'_>, code: u16, mut attrs: Vec<Attribute>) -> Option<Vec<u8>> {
        if code == 486 {
            self.stats.quota_rejections += 1;
        }
        if code == 441 {
            self.stats.auth_failures += 1;
        }
        attrs.insert(0, Attribute::ErrorCode(ErrorCode::new(code, reason(code))));
        self.respond(reply, Class::Error, attrs, Some(code))
    }

    fn respond(
        &mut self,
        reply: Reply<'_>,
        class: Class,
        mut attrs: Vec<Attribute>,
        code: Option<u16>,
    ) -> Option<Vec<u8>> {
        if !self.config.software.is_empty() {
            attrs.push(Attribute::Software(self.config.software.clone()));
        }
        let mut response = Message::new(class, reply.req.method, reply.req.transaction_id);
        response.attributes = attrs;
        let send = match code {
            Some(code) => self.handler.on_request_error(&response, code),
            None => self.handler.on_request_success(&response),
        };
        if !send {
            return None;
        }
        let mut b = MessageBuilder::new(class, reply.req.method, reply.req.transaction_id);
        let mut ok = response.attributes.iter().all(|a| b.add(a).is_ok());
        if let Some(key) = reply.key {
            ok = ok && b.add_message_integrity(&key).is_ok();
        }
        if reply.fingerprint {
            ok = ok && b.add_fingerprint().is_ok();
        }
        if !ok {
            self.handler.on_exception("response does not encode");
            return None;
        }
        let bytes = b.finish();
        self.out.push_back(Output::ToClient {
            to: reply.to,
            bytes: bytes.clone(),
        });
        Some(bytes)
    }
}

mod allocation;
mod credentials;
mod fast;
mod permission;
mod relay;
#[cfg(test)]
mod tests;
