//! The embedding program's hooks into the TURN server (the event API of seed 001): password
//! lookup, vetoes on responses, allocations and relayed packets, and notifications — among
//! them the lifecycle notifications of seed 000's `POST /events` ([`Handler::binding`],
//! [`Handler::allocation_created`], [`Handler::refreshed`], [`Handler::permission_created`],
//! [`Handler::channel_bound`], [`Handler::allocation_deleted`]). Every method has a default that
//! accepts and does nothing, so an implementation overrides only what it needs. The methods
//! are called synchronously from inside the [`Server`](crate::server::Server)'s `handle_*`
//! calls and must not block: a password that needs IO is answered with [`Authorization::Ask`]
//! and supplied later through
//! [`Server::provide_password`](crate::server::Server::provide_password); a notification that
//! needs IO is queued by the implementation.
//!
//! The handler is the only way events leave the server: the state machine's
//! [`Output`](crate::server::Output)s are IO to carry out, never notifications. The ferrostream
//! server's webhook (seed 000's `GET /password` and `POST /events`) is one implementation of
//! [`Handler`], `WebhookHandler` in the `server` crate's `turn` module: it asks for passwords
//! and queues the lifecycle notifications as JSON for a sender task.

use std::net::SocketAddr;

use crate::stun::Message;

/// A password source's answer for a username (RFC 8489 §9.2 long-term credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// The user's password.
    Password(String),
    /// No such user: the request is answered 401.
    Unknown,
    /// Ask the driver: when [`Config::password_hook`](crate::server::Config::password_hook) is
    /// set, the server parks the request and emits
    /// [`Output::PasswordRequest`](crate::server::Output::PasswordRequest); otherwise this is
    /// [`Authorization::Unknown`].
    Ask,
}

/// Why a ChannelData message from a client was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardReason {
    /// The 5-tuple has no allocation.
    NoAllocation,
    /// No channel with that number is bound (or it expired).
    UnboundChannel,
    /// The channel's peer has no current permission.
    NoPermission,
    /// [`Handler::before_relay_channel_data`] or [`Handler::before_relay_send`] refused it.
    Vetoed,
    /// The peer policy refuses the peer (a Send indication to one of the server's own
    /// addresses on a port that is no relay's or media port, or a channel to a relay since
    /// gone).
    PeerRefused,
    /// The allocation's byte rate limit was exceeded.
    RateLimited,
    /// The bytes did not decode.
    Malformed,
    /// A well-formed message the server does not expect (a response, an unknown indication).
    Unexpected,
}

/// Callbacks from the TURN server. All methods have accepting, do-nothing defaults.
pub trait Handler: Send {
    /// The password of `username` in `realm`, for a request from `client`. Consulted after the
    /// static users and the REST secret. Default: [`Authorization::Ask`].
    fn password(&mut self, username: &str, realm: &str, client: SocketAddr) -> Authorization {
        let _ = (username, realm, client);
        Authorization::Ask
    }

    /// A success response is about to be sent; `false` suppresses it.
    fn on_request_success(&mut self, response: &Message) -> bool {
        let _ = response;
        true
    }

    /// An error response with `code` is about to be sent; `false` suppresses it.
    fn on_request_error(&mut self, response: &Message, code: u16) -> bool {
        let _ = (response, code);
        true
    }

    /// Something went wrong inside the server while answering (a response that does not
    /// encode).
    fn on_exception(&mut self, what: &str) {
        let _ = what;
    }

    /// An allocation for `name` from `client` is about to be created on `relay`; `false`
    /// rejects the Allocate with 403 Forbidden and releases the relay.
    fn before_allocate(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) -> bool {
        let _ = (name, client, relay);
        true
    }

    /// A Binding request from `client` was answered (seed 000's `binding` event).
    fn binding(&mut self, client: SocketAddr) {
        let _ = client;
    }

    /// An allocation for `name` from `client` was created on `relay` (the socket's bound
    /// address; its port is seed 000's `allocated` event's `port`), after its success response
    /// was queued.
    fn allocation_created(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        let _ = (name, client, relay);
    }

    /// The allocation of `name` from `client` was refreshed with a non-zero lifetime; it now
    /// expires in `expiration_secs` seconds (seed 000's `refresh` event). A refresh to zero is
    /// [`Handler::allocation_deleted`].
    fn refreshed(&mut self, name: &str, client: SocketAddr, expiration_secs: u32) {
        let _ = (name, client, expiration_secs);
    }

    /// A CreatePermission of `name` from `client` installed or refreshed the permission for
    /// `peer`'s IP; called once per XOR-PEER-ADDRESS (seed 000's `create_permission` event,
    /// whose `relay` field is `peer`'s port).
    fn permission_created(&mut self, name: &str, client: SocketAddr, peer: SocketAddr) {
        let _ = (name, client, peer);
    }

    /// A ChannelBind of `name` from `client` bound or refreshed `channel` to `peer` (seed
    /// 000's `channel_bind` event).
    fn channel_bound(&mut self, name: &str, client: SocketAddr, channel: u16, peer: SocketAddr) {
        let _ = (name, client, channel, peer);
    }

    /// The allocation of `name` from `client` on `relay` was deleted, for any reason: refresh
    /// to zero, expiry, or the client's TCP connection closing (seed 000's `abort` event).
    fn allocation_deleted(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        let _ = (name, client, relay);
    }

    /// A Send indication's `len` bytes are about to be relayed to `peer`; `false` drops them.
    fn before_relay_send(&mut self, client: SocketAddr, peer: SocketAddr, len: usize) -> bool {
        let _ = (client, peer, len);
        true
    }

    /// A ChannelData message's `len` bytes are about to be relayed to `peer`; `false` drops
    /// them.
    fn before_relay_channel_data(
        &mut self,
        client: SocketAddr,
        peer: SocketAddr,
        channel: u16,
        len: usize,
    ) -> bool {
        let _ = (client, peer, channel, len);
        true
    }

    /// A ChannelData message from `client` was dropped.
    fn channel_data_discarded(&mut self, client: SocketAddr, channel: u16, reason: DiscardReason) {
        let _ = (client, channel, reason);
    }

    /// A message from `from` was dropped without an answer.
    fn message_discarded(&mut self, from: SocketAddr, reason: DiscardReason) {
        let _ = (from, reason);
    }
}

/// The default handler: accepts everything, asks the driver for passwords.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultHandler;

impl Handler for DefaultHandler {}
