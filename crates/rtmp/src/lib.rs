//! Sans-IO RTMP for ferrostream: the handshake, the chunk stream, AMF0, server and client
//! sessions, and the FLV tag formats RTMP carries (including Enhanced RTMP's FourCC codecs).
//!
//! The crate never touches a socket, a clock, a thread or a random number generator. Bytes
//! read from the network and the time they came (`now`) go in; events, bytes to write and the
//! next deadline come out. The driver in `crates/server/src/rtmp.rs` (or the load generator)
//! owns the socket, the sleeping and the randomness (the random field of C1/S1,
//! [`handshake::RANDOM_SIZE`] bytes per session).
//!
//! # Drive loop
//!
//! The server session uses STYLE §2's five verbs:
//!
//! ```text
//!   socket ──read──▶ handle_input(now, &bytes)?    (Err: log it, close the socket)
//!                         │
//!   timer fires ──▶ handle_timeout(now)
//!                         │
//!                         ▼
//!                    poll_event() until None ──▶ policy: accept_publish(now, ..) / …
//!                         │                         media: send_audio / send_video / …
//!                         │                         TimedOut: write the rest, close
//!                         ▼
//!   socket ◀─write── poll_transmit(&mut out)
//!                         │
//!                         ▼
//!                    poll_timeout() ──▶ sleep until then (None: no clock), then handle_timeout
//! ```
//!
//! Drain rule: after every `handle_input` and `handle_timeout`, call `poll_event` until it
//! returns `None`, then write what `poll_transmit` gives, then re-arm the timer with
//! `poll_timeout`. Policy and `send_*` calls may come at any time (a webhook answer, a frame from
//! the registry); each only appends to the output, so call `poll_transmit` after them too, and
//! re-arm the timer after a policy answer (it restarts the keep-alive). Partial input is never an
//! error: the session keeps the bytes until the rest arrives. The server session's clocks are
//! the handshake-and-connect deadline and the keep-alive of a publisher or a session that has
//! not started (a player may stay silent); see [`server`]. The client session has no clock.
//!
//! ```
//! use bytes::BytesMut;
//! use rtmp::{client, handshake::RANDOM_SIZE, server};
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let mut srv = server::Session::new(server::Config::default(), [1; RANDOM_SIZE], now);
//! let mut cli = client::Session::new(client::Config::default(), [2; RANDOM_SIZE]);
//! cli.connect("live", "rtmp://localhost/live");
//! cli.publish("cam?token=abc");
//! // In-memory "sockets": shuttle bytes until both sides are quiet.
//! let mut requested = None;
//! let mut wire = BytesMut::new();
//! for _ in 0..10 {
//!     while cli.poll_transmit(&mut wire) {
//!         srv.handle_input(now, &wire.split()).unwrap();
//!     }
//!     while let Some(ev) = srv.poll_event() {
//!         if let server::Event::PublishRequested { stream_id, name, query, .. } = ev {
//!             assert_eq!((name.as_str(), query.as_str()), ("cam", "token=abc"));
//!             requested = Some(stream_id);
//!             srv.accept_publish(now, stream_id);
//!         }
//!     }
//!     while srv.poll_transmit(&mut wire) {
//!         cli.handle_input(&wire.split()).unwrap();
//!     }
//! }
//! assert!(requested.is_some());
//! assert!(std::iter::from_fn(|| cli.poll_event()).any(|e| e == client::Event::PublishStarted));
//! // A publisher is held to the keep-alive: silent for 15 s, it times out.
//! let deadline = srv.poll_timeout().unwrap();
//! srv.handle_timeout(deadline);
//! assert!(matches!(srv.poll_event(), Some(server::Event::TimedOut { .. })));
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
