//! Sans-IO RTMP for ferrostream: the handshake, the chunk stream, AMF0, server and client
//! sessions, and the FLV tag formats RTMP carries (including Enhanced RTMP's FourCC codecs).
//!
//! The crate never touches a socket, a clock, a thread or a random number generator. Bytes
//! read from the network go in, events and bytes to write come out; the driver in
//! `crates/server/src/rtmp.rs` (or the load generator) owns the socket, the timeouts and the
//! randomness (the random field of C1/S1, [`handshake::RANDOM_SIZE`] bytes per session).
//!
//! # Drive loop
//!
//! ```text
//!   socket ──read──▶ handle_input(&bytes)?          (Err: log it, close the socket)
//!                         │
//!                         ▼
//!                    poll_event() until None ──▶ policy: accept_publish / reject_play / …
//!                         │                         media: send_audio / send_video / …
//!                         ▼
//!   socket ◀─write── take_output() until None
//! ```
//!
//! Drain rule: after every `handle_input`, call `poll_event` until it returns `None`, then
//! write everything `take_output` returns. Policy and `send_*` calls may come at any time (a
//! webhook answer, a frame from the registry); each only appends to the output, so call
//! `take_output` after them too. Partial input is never an error: the session keeps the bytes
//! until the rest arrives. The session has no timers: handshake and idle timeouts are the
//! driver's (`Session::is_handshake_done` tells it when the first one may stop).
//!
//! ```
//! use rtmp::{client, handshake::RANDOM_SIZE, server};
//!
//! let mut srv = server::Session::new(server::Config::default(), [1; RANDOM_SIZE]);
//! let mut cli = client::Session::new(client::Config::default(), [2; RANDOM_SIZE]);
//! cli.connect("live", "rtmp://localhost/live");
//! cli.publish("cam?token=abc");
//! // In-memory "sockets": shuttle bytes until both sides are quiet.
//! let mut requested = None;
//! for _ in 0..10 {
//!     while let Some(b) = cli.take_output() {
//!         srv.handle_input(&b).unwrap();
//!     }
//!     while let Some(ev) = srv.poll_event() {
//!         if let server::Event::PublishRequested { stream_id, name, query, .. } = ev {
//!             assert_eq!((name.as_str(), query.as_str()), ("cam", "token=abc"));
//!             requested = Some(stream_id);
//!             srv.accept_publish(stream_id);
//!         }
//!     }
//!     while let Some(b) = srv.take_output() {
//!         cli.handle_input(&b).unwrap();
//!     }
//! }
//! assert!(requested.is_some());
//! assert!(std::iter::from_fn(|| cli.poll_event()).any(|e| e == client::Event::PublishStarted));
//! ```
//!
//! # Layout
//!
//! - [`handshake`]: C0/C1/C2 and S0/S1/S2, plain and Flash digest (RTMP spec 1.0 §5.2).
//! - [`chunk`]: chunk stream [`chunk::Decoder`] and [`chunk::Encoder`] (§5.3).
//! - [`amf0`]: AMF0 values (§7.1.1, AMF0 spec).
//! - [`message`]: message type ids, protocol and user control messages, commands (§5.4, §6.2,
//!   §7).
//! - [`server`]: [`server::Session`], one connection from a publisher or player.
//! - [`client`]: [`client::Session`], for the load generator and pull proxies.
//! - [`flv`]: FLV file header and tags, tag body parsing (legacy and Enhanced RTMP),
//!   [`flv::Demuxer`] to [`media::Frame`]s and [`flv::Muxer`] back.
//! - [`Error`]: the crate's one error type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

pub mod amf0;
pub mod chunk;
pub mod client;
mod error;
pub mod flv;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod message;
pub mod server;

pub use error::Error;
