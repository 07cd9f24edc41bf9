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
//! Outputs are IO only. Notifications (allocation created, refreshed, deleted, permissions,
//! channels, bindings, discards) and vetoes go to the [`Handler`] given to
//! [`Server::with_handler`], synchronously, at the point they happen.
//!
//! TCP clients: cut the stream with [`channel::next_frame`] and pass each frame's bytes
//! (STUN message, or ChannelData with its padding) to `handle_client` with
//! [`Protocol::Tcp`]; ChannelData sent to a TCP client is padded to 4 bytes.
//!
//! # Choices
//!
//! - Only UDP relaying (REQUESTED-TRANSPORT 17; anything else is 442).
//! - EVEN-PORT with the R bit (reserve the next port) and RESERVATION-TOKEN are answered 508
//!   Insufficient Capacity: the driver picks ports from a range and keeps no reservations
//!   (RFC 8656 §7.2 allows the rejection). EVEN-PORT without it is passed on as
//!   [`Output::AllocateRelay`]'s `even_port`.
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
    /// Most allocations at once (pending ones included). Default: 1000.
    pub max_allocations: usize,
    /// Most allocations per username. Default: 10.
    pub max_allocations_per_user: usize,
    /// Relayed bytes per second per allocation, both directions together (a token bucket
    /// holding one second); excess packets are dropped and counted. 0 = unlimited.
    /// Default: 0.
    pub bytes_per_second_per_allocation: u64,
    /// Peers allowed even though [`policy::is_restricted`] refuses them. Default: none.
    pub allow_peers: Vec<Cidr>,
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
            bytes_per_second_per_allocation: 0,
            allow_peers: Vec::new(),
            users: Vec::new(),
            auth_secret: None,
            password_hook: false,
            max_parked_auth: 128,
            password_timeout: Duration::from_secs(5),
            external_ip: None,
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
        /// The address family asked for.
        family: AddressFamily,
        /// EVEN-PORT (without the R bit) was asked for: bind an even port (RFC 8656 §7.2).
        even_port: bool,
    },
    /// Close the relay socket bound at `relay`.
    ReleaseRelay {
        /// The relay socket's address.
        relay: SocketAddr,
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
}

#[derive(Debug)]
struct Channel {
    peer: SocketAddr,
    expires: Instant,
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
    pending: HashMap<RelayRequestId, PendingAllocate>,
    parked: HashMap<AuthRequestId, Parked>,
    /// Hook passwords: username → (password, kept until).
    passwords: HashMap<String, (String, Instant)>,
    next_id: u64,
    out: VecDeque<Output>,
    stats: Stats,
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
            pending: HashMap::new(),
            parked: HashMap::new(),
            passwords: HashMap::new(),
            next_id: 0,
            out: VecDeque::new(),
            stats: Stats::default(),
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
            ..self.stats
        }
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
        for a in self.allocations.values_mut() {
            a.permissions.retain(|_, t| *t > now);
            a.channels.retain(|_, c| c.expires > now);
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

    /// A datagram from `peer` on the relay socket bound at `relay`: relayed to the client as
    /// ChannelData (when a channel is bound to the peer) or a Data indication, if the peer's IP
    /// has a permission; dropped and counted otherwise.
    pub fn handle_peer(&mut self, now: Instant, relay: SocketAddr, peer: SocketAddr, bytes: &[u8]) {
        self.touch(now);
        let rate = self.config.bytes_per_second_per_allocation;
        let Some(&transport) = self.by_relay.get(&relay) else {
            self.discard(peer, DiscardReason::NoAllocation);
            return;
        };
        let Some(a) = self.allocations.get_mut(&transport) else {
            self.discard(peer, DiscardReason::NoAllocation);
            return;
        };
        if !a.permitted(now, peer.ip()) {
            self.discard(peer, DiscardReason::NoPermission);
            return;
        }
        if !take_tokens(&mut a.bucket, rate, now, bytes.len()) {
            self.stats.rate_limited += 1;
            self.handler
                .message_discarded(peer, DiscardReason::RateLimited);
            return;
        }
        let out = match a.channel_of(now, peer) {
            Some(channel) => {
                let mut out = Vec::with_capacity(bytes.len() + 8);
                let cd = ChannelData {
                    channel,
                    data: bytes,
                };
                if cd
                    .encode(transport.protocol == Protocol::Tcp, &mut out)
                    .is_err()
                {
                    self.discard(peer, DiscardReason::Malformed);
                    return;
                }
                out
            }
            None => {
                let mut tid = [0u8; 12];
                tid.copy_from_slice(&self.mac(b"tid", &self.next_id.to_be_bytes())[..12]);
                self.next_id += 1;
                let mut b =
                    MessageBuilder::new(Class::Indication, Method::Data, TransactionId(tid));
                let built = b
                    .add(&Attribute::XorPeerAddress(peer))
                    .and_then(|b| b.add(&Attribute::Data(bytes.to_vec())))
                    .is_ok();
                if !built {
                    self.discard(peer, DiscardReason::Malformed);
                    return;
                }
                b.finish()
            }
        };
        self.stats.relayed_packets += 1;
        self.stats.relayed_bytes += bytes.len() as u64;
        self.out.push_back(Output::ToClient {
            to: transport,
            bytes: out,
        });
    }

    /// The client's TCP connection ended: its allocation is deleted (RFC 8656: over TCP the
    /// allocation lives only as long as its connection), with [`Output::ReleaseRelay`] and
    /// [`Handler::allocation_deleted`], and an Allocate still waiting for its relay is forgotten (the relay,
    /// when it comes, is released).
    pub fn close_transport(&mut self, now: Instant, transport: Transport) {
        self.touch(now);
        self.pending.retain(|_, p| p.transport != transport);
        self.delete_allocation(transport);
    }

    /// The driver's answer to [`Output::AllocateRelay`]: the relay socket's bound address, or
    /// why there is none. Sends the Allocate response.
    pub fn relay_allocated(
        &mut self,
        now: Instant,
        request: RelayRequestId,
        result: Result<SocketAddr, RelayError>,
    ) {
        self.touch(now);
        let Some(p) = self.pending.remove(&request) else {
            if let Ok(relay) = result {
                self.out.push_back(Output::ReleaseRelay { relay });
            }
            return;
        };
        let req = Message::new(Class::Request, Method::Allocate, p.tid);
        let reply = Reply {
            to: p.transport,
            req: &req,
            key: Some(p.key),
            fingerprint: p.fingerprint,
        };
        let relay = match result {
            Ok(relay) => relay,
            Err(RelayError::FamilyUnsupported) => {
                self.error(reply, 440, Vec::new());
                return;
            }
            Err(_) => {
                self.error(reply, 508, Vec::new());
                return;
            }
        };
        let client = p.transport.client;
        if self.by_relay.contains_key(&relay)
            || !self.handler.before_allocate(&p.username, client, relay)
        {
            self.out.push_back(Output::ReleaseRelay { relay });
            self.error(reply, 403, Vec::new());
            return;
        }
        let advertised =
            SocketAddr::new(self.config.external_ip.unwrap_or(relay.ip()), relay.port());
        let attrs = vec![
            Attribute::XorRelayedAddress(advertised),
            Attribute::XorMappedAddress(client),
            Attribute::Lifetime(secs(p.lifetime)),
        ];
        let response = self.success(reply, attrs).unwrap_or_default();
        let expires = now + p.lifetime;
        self.extend_password(&p.username, expires);
        self.by_relay.insert(relay, p.transport);
        self.allocations.insert(
            p.transport,
            Allocation {
                username: p.username.clone(),
                relay,
                expires,
                permissions: HashMap::new(),
                channels: HashMap::new(),
                allocate_tid: p.tid,
                allocate_response: response,
                bucket: Bucket {
                    tokens: self.config.bytes_per_second_per_allocation,
                    last: now,
                },
            },
        );
        self.handler.allocation_created(&p.username, client, relay);
    }

    /// The driver's answer to [`Output::PasswordRequest`]: the password, or `None` for an
    /// unknown user (or a failed hook). The parked request is processed now; a password is
    /// cached for the user while it has allocations.
    pub fn provide_password(
        &mut self,
        now: Instant,
        request: AuthRequestId,
        password: Option<String>,
    ) {
        self.touch(now);
        let Some(p) = self.parked.remove(&request) else {
            return;
        };
        match password {
            Some(pw) => {
                let keep = now + self.config.nonce_lifetime;
                self.passwords.insert(p.username.clone(), (pw, keep));
            }
            None => {
                self.passwords.remove(&p.username);
            }
        }
        let Ok(msg) = Message::decode(&p.raw) else {
            return;
        };
        self.handle_stun(now, p.unix_now, p.from, &p.raw, msg, true);
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

    /// A fresh nonce: issue time (seconds since the server's first input), a counter, and an
    /// HMAC of both under the seed, in hex.
    fn nonce(&mut self, now: Instant) -> String {
        let t = self.elapsed_secs(now);
        let c = self.nonce_counter;
        self.nonce_counter += 1;
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&t.to_be_bytes());
        data[8..].copy_from_slice(&c.to_be_bytes());
        let mac = self.mac(b"nonce", &data);
        let mut s = format!("{t:016x}{c:016x}");
        for b in &mac[..8] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// True when `nonce` is one of ours and younger than `nonce_lifetime`.
    fn nonce_valid(&self, now: Instant, nonce: &str) -> bool {
        if nonce.len() != 48 || !nonce.is_ascii() {
            return false;
        }
        let (Ok(t), Ok(c)) = (
            u64::from_str_radix(&nonce[..16], 16),
            u64::from_str_radix(&nonce[16..32], 16),
        ) else {
            return false;
        };
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&t.to_be_bytes());
        data[8..].copy_from_slice(&c.to_be_bytes());
        let mac = self.mac(b"nonce", &data);
        let mut want = String::new();
        for b in &mac[..8] {
            want.push_str(&format!("{b:02x}"));
        }
        want == nonce[32..]
            && self.elapsed_secs(now).saturating_sub(t) < self.config.nonce_lifetime.as_secs()
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

    fn extend_password(&mut self, username: &str, until: Instant) {
        if let Some((_, t)) = self.passwords.get_mut(username) {
            *t = (*t).max(until);
        }
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

    /// Long-term credential check (RFC 8489 §9.2.4). Answers and returns `None` on failure,
    /// or parks the request.
    fn authenticate(
        &mut self,
        now: Instant,
        unix_now: u64,
        from: Transport,
        raw: &[u8],
        msg: &Message,
        replay: bool,
    ) -> Option<Auth> {
        let fingerprint = msg.attribute(attr::FINGERPRINT).is_some();
        let reply = Reply {
            to: from,
            req: msg,
            key: None,
            fingerprint,
        };
        if msg.attribute(attr::MESSAGE_INTEGRITY).is_none() {
            self.challenge(now, reply, 401);
            return None;
        }
        let (Some(username), Some(realm), Some(nonce)) = (msg.username(), msg.realm(), msg.nonce())
        else {
            self.error(reply, 400, Vec::new());
            return None;
        };
        if !self.nonce_valid(now, nonce) {
            self.challenge(now, reply, 438);
            return None;
        }
        if realm != self.config.realm {
            self.stats.auth_failures += 1;
            self.challenge(now, reply, 401);
            return None;
        }
        let password = if let Some((_, pw)) = self.config.users.iter().find(|(u, _)| u == username)
        {
            Some(pw.clone())
        } else if let (Some(secret), Some(rest)) =
            (&self.config.auth_secret, RestUsername::parse(username))
        {
            (!rest.is_expired(unix_now)).then(|| auth::rest_password(secret.as_bytes(), username))
        } else if let Some((pw, _)) = self.passwords.get(username) {
            Some(pw.clone())
        } else if replay {
            None
        } else {
            match self.handler.password(username, realm, from.client) {
                Authorization::Password(pw) => Some(pw),
                Authorization::Unknown => None,
                Authorization::Ask if self.config.password_hook => {
                    self.park(now, unix_now, from, raw, msg, username);
                    return None;
                }
                Authorization::Ask => None,
            }
        };
        let key = password.map(|pw| auth::long_term_key(username, realm, &pw));
        match key {
            Some(key) if Message::check_integrity(raw, &key) => Some(Auth {
                username: username.to_owned(),
                key,
            }),
            _ => {
                self.stats.auth_failures += 1;
                self.challenge(now, reply, 401);
                None
            }
        }
    }

    fn park(
        &mut self,
        now: Instant,
        unix_now: u64,
        from: Transport,
        raw: &[u8],
        msg: &Message,
        username: &str,
    ) {
        // A retransmission of a request already waiting: the answer comes with the first.
        if self.parked.values().any(|p| {
            p.from == from
                && Message::decode(&p.raw).is_ok_and(|m| m.transaction_id == msg.transaction_id)
        }) {
            return;
        }
        if self.parked.len() >= self.config.max_parked_auth {
            self.stats.parked_overflow += 1;
            let reply = Reply {
                to: from,
                req: msg,
                key: None,
                fingerprint: msg.attribute(attr::FINGERPRINT).is_some(),
            };
            self.error(reply, 500, Vec::new());
            return;
        }
        let request = AuthRequestId(self.next_id);
        self.next_id += 1;
        self.parked.insert(
            request,
            Parked {
                from,
                raw: raw.to_vec(),
                unix_now,
                username: username.to_owned(),
                deadline: now + self.config.password_timeout,
            },
        );
        self.out.push_back(Output::PasswordRequest {
            request,
            username: username.to_owned(),
            realm: self.config.realm.clone(),
            client: from.client,
        });
    }

    /// 401 or 438 with REALM and a fresh NONCE.
    fn challenge(&mut self, now: Instant, reply: Reply<'_>, code: u16) {
        let nonce = self.nonce(now);
        let attrs = vec![
            Attribute::Realm(self.config.realm.clone()),
            Attribute::Nonce(nonce),
        ];
        self.error(reply, code, attrs);
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

    fn allocate(&mut self, now: Instant, reply: Reply<'_>, auth: Auth) {
        let msg = reply.req;
        if let Some(a) = self.allocations.get(&reply.to) {
            if a.allocate_tid == msg.transaction_id {
                let bytes = a.allocate_response.clone();
                self.out.push_back(Output::ToClient {
                    to: reply.to,
                    bytes,
                });
            } else {
                self.error(reply, 437, Vec::new());
            }
            return;
        }
        if let Some(p) = self.pending.values().find(|p| p.transport == reply.to) {
            if p.tid != msg.transaction_id {
                self.error(reply, 437, Vec::new());
            }
            return;
        }
        match msg.attribute(attr::REQUESTED_TRANSPORT) {
            Some(Attribute::RequestedTransport(17)) => {}
            Some(_) => {
                self.error(reply, 442, Vec::new());
                return;
            }
            None => {
                self.error(reply, 400, Vec::new());
                return;
            }
        }
        // EVEN-PORT without the R bit only asks for an even port, which the driver can pick
        // (coturn 4.6's turnutils_uclient adds it to half its Allocates); reserving the next
        // port, and redeeming a reservation, is not supported.
        let reserve = matches!(
            msg.attribute(attr::EVEN_PORT),
            Some(Attribute::EvenPort(true))
        );
        let even_port = msg.attribute(attr::EVEN_PORT).is_some();
        if reserve || msg.attribute(attr::RESERVATION_TOKEN).is_some() {
            self.error(reply, 508, Vec::new());
            return;
        }
        let family = match msg.attribute(attr::REQUESTED_ADDRESS_FAMILY) {
            Some(Attribute::RequestedAddressFamily(f)) => *f,
            _ => AddressFamily::Ipv4,
        };
        let user_count = self
            .allocations
            .values()
            .filter(|a| a.username == auth.username)
            .count()
            + self
                .pending
                .values()
                .filter(|p| p.username == auth.username)
                .count();
        if self.allocations.len() + self.pending.len() >= self.config.max_allocations
            || user_count >= self.config.max_allocations_per_user
        {
            self.error(reply, 486, Vec::new());
            return;
        }
        let requested = match msg.attribute(attr::LIFETIME) {
            Some(Attribute::Lifetime(s)) => Duration::from_secs(u64::from(*s)),
            _ => self.config.default_lifetime,
        };
        let lifetime = requested
            .max(self.config.default_lifetime)
            .min(self.config.max_lifetime);
        let request = RelayRequestId(self.next_id);
        self.next_id += 1;
        self.pending.insert(
            request,
            PendingAllocate {
                transport: reply.to,
                tid: msg.transaction_id,
                username: auth.username,
                key: auth.key,
                lifetime,
                fingerprint: reply.fingerprint,
            },
        );
        let _ = now;
        self.out.push_back(Output::AllocateRelay {
            request,
            family,
            even_port,
        });
    }

    /// The allocation of the 5-tuple, checked against the request's username; answers 437 or
    /// 441 and returns `None` when it does not fit.
    fn allocation_for(&mut self, reply: Reply<'_>, auth: &Auth) -> Option<Transport> {
        match self.allocations.get(&reply.to) {
            None => {
                self.error(reply, 437, Vec::new());
                None
            }
            Some(a) if a.username != auth.username => {
                self.error(reply, 441, Vec::new());
                None
            }
            Some(_) => Some(reply.to),
        }
    }

    fn refresh(&mut self, now: Instant, reply: Reply<'_>, auth: &Auth) {
        let Some(t) = self.allocation_for(reply, auth) else {
            return;
        };
        let requested = match reply.req.attribute(attr::LIFETIME) {
            Some(Attribute::Lifetime(s)) => Duration::from_secs(u64::from(*s)),
            _ => self.config.default_lifetime,
        };
        if requested.is_zero() {
            self.delete_allocation(t);
            self.success(reply, vec![Attribute::Lifetime(0)]);
            return;
        }
        let lifetime = requested.min(self.config.max_lifetime);
        let expires = now + lifetime;
        if let Some(a) = self.allocations.get_mut(&t) {
            a.expires = expires;
        }
        self.extend_password(&auth.username, expires);
        self.success(reply, vec![Attribute::Lifetime(secs(lifetime))]);
        self.handler
            .refreshed(&auth.username, t.client, secs(lifetime));
    }

    /// Checks a peer against the relay's family and the peer policy; answers 443 or 403.
    fn peer_ok(&mut self, reply: Reply<'_>, relay: SocketAddr, peer: SocketAddr) -> bool {
        if family_of(peer) != family_of(relay) {
            self.error(reply, 443, Vec::new());
            return false;
        }
        let own = self.by_relay.contains_key(&peer)
            || self.config.external_ip.is_some_and(|ip| {
                ip == peer.ip() && self.by_relay.keys().any(|r| r.port() == peer.port())
            });
        if !own && !policy::is_peer_allowed(peer.ip(), &self.config.allow_peers) {
            self.error(reply, 403, Vec::new());
            return false;
        }
        true
    }

    fn create_permission(&mut self, now: Instant, reply: Reply<'_>, auth: &Auth) {
        let Some(t) = self.allocation_for(reply, auth) else {
            return;
        };
        let peers: Vec<SocketAddr> = reply.req.xor_peer_addresses().collect();
        if peers.is_empty() {
            self.error(reply, 400, Vec::new());
            return;
        }
        let relay = self.allocations.get(&t).map_or(t.server, |a| a.relay);
        for &peer in &peers {
            if !self.peer_ok(reply, relay, peer) {
                return;
            }
        }
        let expires = now + self.config.permission_lifetime;
        if let Some(a) = self.allocations.get_mut(&t) {
            for peer in &peers {
                a.permissions.insert(peer.ip(), expires);
            }
        }
        self.success(reply, Vec::new());
        for peer in peers {
            self.handler
                .permission_created(&auth.username, t.client, peer);
        }
    }

    fn channel_bind(&mut self, now: Instant, reply: Reply<'_>, auth: &Auth) {
        let Some(t) = self.allocation_for(reply, auth) else {
            return;
        };
        let channel = match reply.req.attribute(attr::CHANNEL_NUMBER) {
            Some(Attribute::ChannelNumber(c)) if channel::is_valid_channel(*c) => *c,
            other => {
                tracing::debug!(?other, "ChannelBind refused: bad or missing CHANNEL-NUMBER");
                self.error(reply, 400, Vec::new());
                return;
            }
        };
        let Some(peer) = reply.req.xor_peer_addresses().next() else {
            tracing::debug!("ChannelBind refused: no XOR-PEER-ADDRESS");
            self.error(reply, 400, Vec::new());
            return;
        };
        let relay = self.allocations.get(&t).map_or(t.server, |a| a.relay);
        if !self.peer_ok(reply, relay, peer) {
            return;
        }
        let conflict = self.allocations.get(&t).is_some_and(|a| {
            a.channels
                .iter()
                .any(|(&n, c)| (n == channel) != (c.peer == peer))
        });
        if conflict {
            tracing::debug!(channel, %peer, "ChannelBind refused: channel or peer bound otherwise");
            self.error(reply, 400, Vec::new());
            return;
        }
        let channel_expires = now + self.config.channel_lifetime;
        let permission_expires = now + self.config.permission_lifetime;
        if let Some(a) = self.allocations.get_mut(&t) {
            a.channels.insert(
                channel,
                Channel {
                    peer,
                    expires: channel_expires,
                },
            );
            let p = a.permissions.entry(peer.ip()).or_insert(permission_expires);
            *p = (*p).max(permission_expires);
        }
        self.success(reply, Vec::new());
        self.handler
            .channel_bound(&auth.username, t.client, channel, peer);
    }

    fn send_indication(&mut self, now: Instant, from: Transport, msg: &Message) {
        let rate = self.config.bytes_per_second_per_allocation;
        let (Some(peer), Some(Attribute::Data(data))) =
            (msg.xor_peer_addresses().next(), msg.attribute(attr::DATA))
        else {
            self.discard(from.client, DiscardReason::Malformed);
            return;
        };
        let Some(a) = self.allocations.get_mut(&from) else {
            self.discard(from.client, DiscardReason::NoAllocation);
            return;
        };
        if !a.permitted(now, peer.ip()) {
            self.discard(from.client, DiscardReason::NoPermission);
            return;
        }
        let relay = a.relay;
        if !take_tokens(&mut a.bucket, rate, now, data.len()) {
            self.stats.rate_limited += 1;
            self.handler
                .message_discarded(from.client, DiscardReason::RateLimited);
            return;
        }
        if !self
            .handler
            .before_relay_send(from.client, peer, data.len())
        {
            self.discard(from.client, DiscardReason::Vetoed);
            return;
        }
        self.relay_to_peer(relay, peer, data.clone());
    }

    fn client_channel_data(&mut self, now: Instant, from: Transport, cd: ChannelData<'_>) {
        let rate = self.config.bytes_per_second_per_allocation;
        let found = match self.allocations.get_mut(&from) {
            None => Err(DiscardReason::NoAllocation),
            Some(a) => match a.channels.get(&cd.channel) {
                Some(c) if c.expires > now => {
                    let peer = c.peer;
                    if !a.permitted(now, peer.ip()) {
                        Err(DiscardReason::NoPermission)
                    } else if !take_tokens(&mut a.bucket, rate, now, cd.data.len()) {
                        Err(DiscardReason::RateLimited)
                    } else {
                        Ok((a.relay, peer))
                    }
                }
                _ => Err(DiscardReason::UnboundChannel),
            },
        };
        let found = found.and_then(|(relay, peer)| {
            if self
                .handler
                .before_relay_channel_data(from.client, peer, cd.channel, cd.data.len())
            {
                Ok((relay, peer))
            } else {
                Err(DiscardReason::Vetoed)
            }
        });
        match found {
            Ok((relay, peer)) => self.relay_to_peer(relay, peer, cd.data.to_vec()),
            Err(reason) => {
                if reason == DiscardReason::RateLimited {
                    self.stats.rate_limited += 1;
                } else {
                    self.stats.discarded += 1;
                }
                self.handler
                    .channel_data_discarded(from.client, cd.channel, reason);
            }
        }
    }

    fn relay_to_peer(&mut self, relay: SocketAddr, peer: SocketAddr, bytes: Vec<u8>) {
        self.stats.relayed_packets += 1;
        self.stats.relayed_bytes += bytes.len() as u64;
        self.out.push_back(Output::ToPeer { relay, peer, bytes });
    }

    fn delete_allocation(&mut self, t: Transport) {
        let Some(a) = self.allocations.remove(&t) else {
            return;
        };
        self.by_relay.remove(&a.relay);
        if !self.allocations.values().any(|o| o.username == a.username) {
            self.passwords.remove(&a.username);
        }
        self.out.push_back(Output::ReleaseRelay { relay: a.relay });
        self.handler
            .allocation_deleted(&a.username, t.client, a.relay);
    }
}

/// Takes `len` tokens from a bucket refilled at `rate` bytes per second, holding at most one
/// second's worth. `rate` 0 = unlimited.
fn take_tokens(bucket: &mut Bucket, rate: u64, now: Instant, len: usize) -> bool {
    if rate == 0 {
        return true;
    }
    let elapsed = now.saturating_duration_since(bucket.last);
    let refill = u64::try_from(elapsed.as_micros().saturating_mul(u128::from(rate)) / 1_000_000)
        .unwrap_or(u64::MAX);
    if refill > 0 {
        bucket.tokens = bucket.tokens.saturating_add(refill).min(rate);
        bucket.last = now;
    }
    let len = len as u64;
    if bucket.tokens >= len {
        bucket.tokens -= len;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests;
