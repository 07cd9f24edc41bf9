//! Sans-IO STUN and TURN for ferrostream: the message codec of RFC 8489 (STUN) and RFC 8656
//! (TURN), ChannelData framing, the credential computations, and on top of them the TURN server
//! state machine ([`server::Server`]: allocations, permissions, channel bindings, long-term
//! authentication, the peer [`policy`] and the embedding program's [`handler::Handler`]).
//!
//! The crate never touches a socket, a clock, a thread or a random number generator: callers
//! pass in bytes, keys, transaction ids and the current time, and get back values and bytes.
//! It does not depend on tokio.
//!
//! # Handling one datagram
//!
//! ```text
//!   UDP datagram ──▶ channel::classify
//!                      ├─ Stun ─────────▶ stun::Message::decode ──▶ unknown_comprehension_required?
//!                      │                      │                       (non-empty: answer 420)
//!                      │                      ▼
//!                      │              Message::check_integrity(raw, key), check_fingerprint(raw)
//!                      ├─ ChannelData ─▶ channel::ChannelData::decode
//!                      └─ Other ───────▶ drop
//!   TCP bytes ──▶ buffer ──▶ channel::next_frame until None (partial input: keep the bytes)
//! ```
//!
//! Decode errors on UDP mean "drop the datagram" (RFC 8489 §6.3); on TCP they mean the stream
//! lost its framing: close it.
//!
//! ```
//! use turn::attr::Attribute;
//! use turn::stun::{Class, Message, MessageBuilder, Method, TransactionId};
//!
//! // A 401 challenge (RFC 8489 §9.2.4) and the client's authenticated Allocate.
//! let tid = TransactionId([1; 12]);
//! let mut b = MessageBuilder::new(Class::Error, Method::Allocate, tid);
//! b.add(&Attribute::ErrorCode(turn::attr::ErrorCode::new(401, "Unauthorized")))?
//!     .add(&Attribute::Realm("example.org".into()))?
//!     .add(&Attribute::Nonce("abcd".into()))?;
//! let challenge = Message::decode(&b.finish())?;
//! assert_eq!(challenge.error_code().map(|e| e.code), Some(401));
//!
//! let key = turn::auth::long_term_key("alice", "example.org", "pw");
//! let mut b = MessageBuilder::new(Class::Request, Method::Allocate, TransactionId([2; 12]));
//! b.add(&Attribute::RequestedTransport(17))?
//!     .add(&Attribute::Username("alice".into()))?
//!     .add(&Attribute::Realm("example.org".into()))?
//!     .add(&Attribute::Nonce("abcd".into()))?
//!     .add_message_integrity(&key)?
//!     .add_fingerprint()?;
//! let raw = b.finish();
//! assert_eq!(turn::channel::classify(&raw), turn::channel::Kind::Stun);
//! assert!(Message::check_integrity(&raw, &key) && Message::check_fingerprint(&raw));
//! # Ok::<(), turn::Error>(())
//! ```
//!
//! # Layout
//!
//! - [`stun`]: header, [`stun::Message`] decoding, [`stun::MessageBuilder`], MESSAGE-INTEGRITY
//!   and FINGERPRINT (RFC 8489 §5, §6, §14.5–14.7; TURN methods of RFC 8656 §17).
//! - [`attr`]: the typed [`attr::Attribute`] enum and attribute type codes (RFC 8489 §14,
//!   RFC 8656 §18), XOR address encoding.
//! - [`channel`]: ChannelData (RFC 8656 §12.4), UDP demultiplexing, the TCP framer (§12.5).
//! - [`auth`]: long-term credential key (RFC 8489 §9.2.2) and REST API credentials.
//! - [`server`]: the sans-IO TURN server; its module docs give the drain rule.
//! - [`policy`]: which peers a relay may reach; [`policy::Cidr`].
//! - [`handler`]: the event API (password lookup, vetoes, notifications).
//! - [`Error`]: the crate's one error type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

pub mod attr;
pub mod auth;
pub mod channel;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
pub mod policy;
pub mod server;
pub mod stun;

pub use error::Error;
