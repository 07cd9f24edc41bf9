//! The `ferrostream` server: configuration, listeners and the tokio drivers that connect the
//! sans-IO protocol crates (`rtmp`, …) to sockets, the `registry` and the `api` routes.
//!
//! This is the only crate that installs a tracing subscriber (in `main.rs`) and the only one
//! that uses `anyhow`; the protocol crates below it do no IO.
//!
//! Layout:
//! - [`config`]: the `config` crate, re-exported: `config.ini` (ZLMediaKit key names) plus
//!   `FERROSTREAM__<SECTION>__<KEY>` environment overrides, and the live handle.
//! - `server.rs`: [`Server`] binds the listeners from [`Options`] and stops them.
//! - `rtmp.rs`: the RTMP listener and session driver around `rtmp::server::Session`.
//! - `rtsp.rs`: the RTSP listener and session driver (play and record, TCP and UDP, Digest).
//! - `http.rs`: the HTTP listener serving the `api` routes with hyper, with the request head
//!   deadline and the idle keep-alive timeout.
//! - `turn.rs`: the STUN/TURN listener (UDP and TCP), relay sockets and the TURN hooks around
//!   `turn::server::Server`.
//! - `webrtc.rs`: the WebRTC driver (WHEP play, WHIP publish): one UDP socket and one task
//!   for every peer, around str0m's sans-IO `Rtc`.
//! - `shell.rs`: the admin shell listener (`shell.port`) around the sans-IO console in
//!   `shell/console.rs`: login through on_shell_login, streams, sessions, kick, close.
//! - `cluster.rs`: the cluster's edge: a play of a stream another node has pulls it from there.
//! - `stall.rs`: a socket wrapper that fails writes to a peer who stopped reading.
//! - `limits.rs`: connection caps (process, listener, client address) and the accept loop
//!   every TCP listener shares.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

pub use ::config;
mod cluster;
mod http;
mod limits;
mod listeners;
mod rtmp;
mod rtsp;
mod server;
mod shell;
mod stall;
mod turn;
mod webrtc;

#[doc(hidden)]
pub mod fuzzing;

pub use cluster::ClusterOptions;
pub use limits::LimitsConfig;
pub(crate) use server::Shared;
pub use server::{
    HttpOptions, Options, RtmpOptions, RtspOptions, Server, TurnOptions, MERGE_WRITE_MAX_MS,
};
pub use shell::{
    ShellOptions, IDLE_TIMEOUT as SHELL_IDLE_TIMEOUT, LOGIN_TIMEOUT as SHELL_LOGIN_TIMEOUT,
};
pub use webrtc::RtcOptions;
