//! Sans-IO RTSP for ferrostream (RFC 2326, with RFC 7826 where they agree): the pieces an RTSP
//! server (and the client that pulls from cameras and pushes to servers) is built from. Request framing and responses, SDP, RTP and RTCP, packetizers and
//! depacketizers for H.264, H.265 and AAC, Digest and Basic authentication.
//!
//! The crate never touches a socket, a clock, a thread or a random number generator. Bytes read
//! from the network and the time they came (`now`) go in; events, bytes to write and the next
//! deadline come out. The driver in `crates/server` owns the TCP connection, the UDP port pairs,
//! the sleeping, the session ids and the nonces. [`session::Session`] is one connection's
//! session: it decodes requests and interleaved frames, answers what needs no policy, keeps the
//! handshake and keep-alive clocks, and asks the driver about the rest (hooks, the registry,
//! sockets), whose answers go back in as calls. [`mux::Muxer`] (one per live stream, shared by
//! its viewers) and [`demux::Demuxer`] (one per publisher) are the media side a session uses.
//!
//! # Drive loop
//!
//! [`session::Session`] uses STYLE §2's five verbs:
//!
//! ```text
//!   TCP socket ──read──▶ handle_input(now, &bytes)?     (Err: write the 400 it queued, close)
//!   UDP socket ──recv──▶ handle_udp_activity(now)       (the packet itself: media, below)
//!   timer fires ───────▶ handle_timeout(now)
//!                             │
//!                             ▼
//!                        poll_event() until None
//!                          Describe / Announce / Setup / Play ──▶ policy (hooks, registry,
//!                              sockets), then describe_ok / announce_ok / setup_ok /
//!                              play_ok / auth_required / reject (now, ..)?
//!                          Pause / Record ──▶ stop sending / take the publisher's media
//!                          Interleaved{channel, payload} ──▶ media, below
//!                          Teardown / TimedOut ──▶ write the rest, close
//!                             │
//!                             ▼
//!   TCP socket ◀─write── poll_transmit(&mut out)
//!                             │
//!                             ▼
//!                        poll_timeout() ──▶ sleep until then (None: no clock), then
//!                                           handle_timeout(now)
//! ```
//!
//! Drain rule: after every `handle_input`, `handle_udp_activity`, `handle_timeout` and every
//! answer, call `poll_event` until it returns `None` (an answer lets the session decode what the
//! client pipelined behind the request answered, so more events can follow it), then write what
//! `poll_transmit` gives, then re-arm the timer with `poll_timeout`. Partial input is never an
//! error: the session keeps the bytes until the rest arrives (within the request clock).
//!
//! ```
//! use bytes::BytesMut;
//! use rtsp::session::{Event, Session, Timeout};
//! use rtsp::RtspConfig;
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let mut session = Session::new("5e55".into(), &RtspConfig::default(), start);
//! let mut wire = BytesMut::new();
//! // A keep-alive is answered by the session itself.
//! session.handle_input(start, b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n").unwrap();
//! assert_eq!(session.poll_event(), None);
//! assert!(session.poll_transmit(&mut wire));
//! assert!(wire.starts_with(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE"));
//! wire.clear();
//! // DESCRIBE needs policy: an event, then the driver's answer, which the session frames.
//! let describe = b"DESCRIBE rtsp://h/live/cam RTSP/1.0\r\nCSeq: 2\r\n\r\n";
//! session.handle_input(start, describe).unwrap();
//! let Some(Event::Describe { uri, credentials: None }) = session.poll_event() else { panic!() };
//! assert_eq!(uri, "rtsp://h/live/cam");
//! assert_eq!(session.poll_timeout(), None, "no clock runs while the driver decides");
//! let later = start + Duration::from_secs(1);
//! session.reject(later, 404).unwrap();
//! assert!(session.poll_transmit(&mut wire));
//! assert_eq!(&wire[..], b"RTSP/1.0 404 Not Found\r\nCSeq: 2\r\n\r\n");
//! // Then silence: the keep-alive (15 s by default) counts from the answer.
//! let deadline = session.poll_timeout().unwrap();
//! assert_eq!(deadline, later + Duration::from_secs(15));
//! session.handle_timeout(deadline);
//! assert_eq!(session.poll_event(), Some(Event::TimedOut { reason: Timeout::KeepAlive }));
//! ```
//!
//! The media, from the interleaved frames and UDP packets:
//!
//! ```text
//!   Interleaved payloads and UDP packets ──────────────┐
//!                                                       ▼
//!   publisher (ANNOUNCE, RECORD):  demux::Demuxer::push(track, packet, arrival_ms)
//!                                  demux::Demuxer::push_rtcp(track, &rtcp)
//!                                                       │
//!                                                       ▼
//!                                  pull() until None ──▶ DemuxEvent::Track / Frame
//!
//!   live stream's frames ──▶ mux::Muxer::push(&frame)   (one Muxer per stream)
//!                                                       │
//!                                                       ▼
//!                            pull() until None ──▶ MuxPacket: RTP or RTCP SR of a track,
//!                                                  the same Bytes to every viewer
//! ```
//!
//! [`demux::Demuxer`] and [`mux::Muxer`] are built from the lower pieces
//! (`rtp::Packet::parse` ──▶ `h264`/`h265`/`aac` depacketizers, and the packetizers), which
//! can also be driven directly.
//!
//! Every transform here (the decoder, the muxer and demuxer, the packetizers and
//! depacketizers) follows retina's contract. After one `push`, call `pull` (`poll` for the
//! decoder) until it returns `None` before the next `push`; output is handed out in input order
//! and nothing is lost by draining late, but the queue only shrinks when drained. Partial input
//! is never an error: the decoder keeps the bytes until the rest arrives. Loss and reordering
//! are never errors either: a depacketizer (and so the demuxer) drops the access unit it cannot
//! rebuild and starts clean at the next one, so no partial frame ever reaches a viewer.
//!
//! ```
//! use bytes::Bytes;
//! use rtsp::{h264, RtspConfig};
//!
//! let config = RtspConfig::default();
//! let mut packetizer = h264::Packetizer::new(config.max_rtp_payload, 96, 0x1234, 0);
//! let mut depacketizer = h264::Depacketizer::new(&[], config.max_access_unit);
//! let idr = Bytes::from_static(&[0, 0, 0, 3, 0x65, 0x88, 0x84]);
//! packetizer.push(90_000, &idr).unwrap();
//! while let Some(packet) = packetizer.pull() {
//!     depacketizer.push(&packet);
//!     while let Some(event) = depacketizer.pull() {
//!         let h264::Event::AccessUnit(au) = event else { continue };
//!         assert!(au.keyframe);
//!         assert_eq!(au.data, idr);
//!     }
//! }
//! ```
//!
//! The same through a stream's [`mux::Muxer`] and a publisher's [`demux::Demuxer`]:
//!
//! ```
//! use bytes::Bytes;
//! use media::{Codec, Frame, TrackInfo};
//! use rtsp::demux::{DemuxEvent, Demuxer};
//! use rtsp::{mux::Muxer, sdp, RtspConfig};
//!
//! let config = RtspConfig::default();
//! let tracks = [TrackInfo::new(Codec::G711U, Bytes::new())];
//! let mut muxer = Muxer::new(&tracks, &config, std::time::Duration::ZERO, 0x5eed);
//! let announced = sdp::parse(muxer.sdp("live/cam").as_bytes()).unwrap();
//! let mut demuxer = Demuxer::new(&announced, &config);
//! let frame = Frame { codec: Codec::G711U, dts: 0, cts: 0, keyframe: true,
//!                     data: Bytes::from_static(&[0xff; 160]) };
//! muxer.push(&frame);
//! while let Some(packet) = muxer.pull() {
//!     if packet.rtcp {
//!         demuxer.push_rtcp(packet.track, &packet.data).unwrap();
//!     } else {
//!         demuxer.push(packet.track, packet.data, 0).unwrap();
//!     }
//! }
//! let events: Vec<DemuxEvent> = std::iter::from_fn(|| demuxer.pull()).collect();
//! assert_eq!(events.last(), Some(&DemuxEvent::Frame(frame)));
//! ```
//!
//! # Layout
//!
//! - [`message`]: request framing ([`message::Decoder`]), interleaved frames (RFC 2326
//!   §10.12), [`message::Response`], the `Transport` header (§12.39).
//! - [`sdp`]: the DESCRIBE answer from [`media::TrackInfo`]s and the tracks of an ANNOUNCE.
//! - [`rtp`]: RTP packets (RFC 3550 §5.1), RTCP sender and receiver reports (§6.4).
//! - [`h264`]: RFC 6184 packetizer and depacketizer (single NAL, STAP-A, FU-A).
//! - [`h265`]: RFC 7798 packetizer and depacketizer (single NAL, AP, FU).
//! - [`aac`]: RFC 3640 AAC-hbr packetizer and depacketizer.
//! - [`mux`]: [`mux::Muxer`], one live stream's frames to RTP packets and RTCP sender
//!   reports for every viewer, with the DESCRIBE SDP and `RTP-Info`.
//! - [`demux`]: [`demux::Demuxer`], a publisher's RTP and RTCP to track configurations and
//!   frames on the session's timeline.
//! - [`session`]: [`session::Session`], one server connection's session: decoding, states and
//!   checks (RFC 2326 §A.1), replies and clocks.
//! - [`rfc4571`]: RTP over TCP framing (a 16-bit length before each packet), as GB28181
//!   devices send it.
//! - [`reorder`]: a bounded reorder of RTP by sequence number, for RTP received without RTSP.
//! - [`client`]: [`client::Client`], the client side of a connection: playing a camera
//!   (OPTIONS, DESCRIBE, SETUP, PLAY) or recording to a server (ANNOUNCE, SETUP, RECORD),
//!   with Digest/Basic answers, keep-alives and clocks.
//! - [`auth`]: Digest (RFC 2617 MD5) and Basic challenges, verification and answers.
//! - [`RtspConfig`]: the limits and sizes, with their defaults.
//! - [`Error`]: the crate's one error type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

pub mod aac;
pub mod auth;
pub mod client;
pub mod demux;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod h264;
pub mod h265;
pub mod message;
pub mod mux;
mod nal;
pub mod reorder;
pub mod rfc4571;
pub mod rtp;
pub mod sdp;
pub mod session;

pub use error::Error;
pub use nal::{AccessUnit, Event};

use std::time::Duration;

/// Limits and sizes for the RTSP pieces; the server's `[rtsp]` section builds on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspConfig {
    /// Largest request, headers and body together, in bytes; a longer one is refused with
    /// [`Error::LimitExceeded`] (and a 400). Default: 65 536.
    pub max_message: usize,
    /// Largest RTP payload the packetizers write, in bytes: an Ethernet MTU of 1 500 less IP,
    /// UDP and RTP headers, with room for tunnels. Default: 1 400.
    pub max_rtp_payload: usize,
    /// Largest video access unit a depacketizer gathers before dropping it, in bytes.
    /// Default: 8 MiB.
    pub max_access_unit: usize,
    /// SETUPs one session may complete, repeats of a track included; later ones are answered
    /// 453 (RFC 2326 §11.3.3). Each UDP SETUP costs the server a port pair, and real clients
    /// send one per track. Default: 16.
    pub max_setups: usize,
    /// A session's first complete request must arrive within this of its start, and every
    /// request (or interleaved frame) within this of its first byte (`rtsp.handshakeSecond`).
    /// Default: 15 s.
    pub handshake_timeout: Duration,
    /// A session with no complete request, interleaved frame or UDP packet for this long is
    /// closed, and its `Session` header says so as `timeout=` (`rtsp.keepAliveSecond`).
    /// Default: 15 s.
    pub keep_alive: Duration,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            max_message: message::MAX_MESSAGE,
            max_rtp_payload: 1400,
            max_access_unit: 8 << 20,
            max_setups: 16,
            handshake_timeout: Duration::from_secs(15),
            keep_alive: Duration::from_secs(15),
        }
    }
}
