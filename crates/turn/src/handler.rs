//! The embedding program's hooks into the TURN server (the event API of seed 001): password
//! lookup, vetoes on responses, allocations and relayed packets, and notifications. Every
//! method has a default that accepts and does nothing, so an implementation overrides only
//! what it needs. The methods are called synchronously from inside the
//! [`Server`](crate::server::Server)'s `handle_*` calls and must not block: a password that
//! needs IO is answered with [`Authorization::Ask`] and supplied later through
//! [`Server::provide_password`](crate::server::Server::provide_password).

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

    /// An allocation was created.
    fn allocation_created(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        let _ = (name, client, relay);
    }

    /// An allocation was deleted (refresh to zero, expiry).
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
