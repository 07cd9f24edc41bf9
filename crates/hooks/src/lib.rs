//! ZLMediaKit's web hooks (its `[hook]` contract, seed 002 and DESIGN.md §1), so a backend
//! written for ZLMediaKit authorizes and hears ferrostream unchanged.
//!
//! Every hook is a JSON POST to its own URL. Each body carries `mediaServerId` and `hook_index`
//! (a process-wide counter, bumped by every attempt); the request carries `X-VHOST` when the body
//! names a vhost and `User-Agent: ferrostream/<version>`. A reply is a success only as HTTP 200
//! with a JSON object whose `code` is the integer 0; another integer is a denial
//! ([`HookError::Denied`], never retried); anything else (network error, timeout, other status,
//! not JSON, `"code":"0"`) is a failure, retried `retry` times after `retry_delay`, and then
//! [`HookError::Failed`]. The auth calls turn a failure into a refusal (fail closed); the rest log
//! it. A disabled hook (`enable=0` or no URL) takes its default action.
//!
//! ```text
//!  session driver ──await──▶ Hooks::on_publish / on_play / on_rtsp_* / on_stream_not_found
//!                            / on_shell_login
//!                            (direct: never queued behind anything)
//!  registry events ─▶ lifecycle task ─▶ Hooks::notify ─▶ N ordered workers (bounded queues)
//!                     on_stream_changed, on_flow_report, on_stream_none_reader, keepalive
//! ```
//!
//! Lifecycle hooks of one stream go through one worker, so they arrive in order; a full queue
//! drops the hook (counted and logged), so a dead backend never holds memory or media. One
//! pooled keep-alive HTTP client serves every hook.
//!
//! With a `sign_token`, each URL gets `RequestTime` and `Sign=hex(sha256(token + RequestTime))`
//! (seed 003) and the request `X-Ferrostream-Signature: t=<unix s>,v1=hex(hmac_sha256(token,
//! t + "." + path + "." + body))`, which binds the hook's URL path and the body too ([`sign`]).
//!
//! The transports sit behind traits so drivers and tests do not care how a hook travels:
//! [`Hooks`] (the handle every driver holds) calls an `Arc<dyn` [`HookClient`]`>`, which is
//! [`HttpHooks`] in the server and `RecordingHooks` (feature `test-util`) in tests.
//!
//! The TURN relay's web hooks (seed 000, DESIGN.md §1 TURN) are a second contract behind a
//! second trait, [`TurnHooks`]: `GET {hook_url}/password?addr=&name=` and `POST
//! {hook_url}/events` with a [`TurnEvent`] body, both with the headers `realm` and `rid` (random
//! per start), through one pooled client and a bounded event queue ([`HttpTurnHooks`]);
//! `RecordingTurnHooks` is its test double.
//!
//! Layout:
//! - `lib.rs`: [`HookConfig`], [`Hook`], errors.
//! - `client.rs`: the [`HookClient`] trait and the [`Hooks`] handle: bodies, the auth hooks
//!   and their bypasses, the replies.
//! - `http.rs`: [`HttpHooks`]: one pooled HTTP client, reply rules, retries, signing.
//! - `admission.rs`: [`admit_publish`], [`admit_play`]: auth hooks, then the registry.
//! - `body.rs`: request bodies ([`Request`], stream descriptions).
//! - `reply.rs`: the on_publish reply as [`registry::StreamOptions`].
//! - `queue.rs`: ordered, bounded workers for the lifecycle hooks.
//! - `lifecycle.rs`: registry events to on_stream_changed, on_flow_report,
//!   on_stream_none_reader; on_server_keepalive.
//! - `sign.rs`: signing and verifying.
//! - `turn.rs`: the TURN web hooks: [`TurnHooks`], [`TurnEvent`], [`HttpTurnHooks`].
//! - `recording.rs` (feature `test-util`): `RecordingHooks`, `RecordingTurnHooks`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod admission;
mod body;
mod client;
mod http;
mod lifecycle;
mod metrics;
mod queue;
#[cfg(any(test, feature = "test-util"))]
mod recording;
mod reply;
pub mod sign;
mod turn;

pub use admission::{
    admit_play, admit_publish, find_stream, PlayRefusal, PublishRefusal, RemoteStreams,
};
pub use body::{
    origin_type, record_json, rtp_server_timeout_json, statistic_json, stream_json, Request,
    RtpServerTimeout,
};
pub use client::{HookClient, Hooks, HttpAccess, Refused, Reply, RtspPassword, Then};
pub use http::HttpHooks;
pub use lifecycle::{spawn_lifecycle, LifecycleConfig, LifecycleTask};
pub use metrics::{HookMetrics, Outcome};
#[cfg(any(test, feature = "test-util"))]
pub use recording::{Answer, Call, RecordingHooks, RecordingTurnHooks, TurnCall};
pub use reply::stream_options;
pub use turn::{HttpTurnHooks, TurnEvent, TurnHookConfig, TurnHookError, TurnHooks};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future a hook trait method returns: boxed, so the traits stay usable as `Arc<dyn …>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One hook of the contract, by its ZLMediaKit name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// A publisher asks to go live (auth; the reply may set the stream's options).
    OnPublish,
    /// A player asks to watch (auth).
    OnPlay,
    /// A session ended having moved at least `general.flowThreshold` KB.
    OnFlowReport,
    /// A file under `http.rootPath` is requested (auth).
    OnHttpAccess,
    /// An MP4 recording segment was closed.
    OnRecordMp4,
    /// RTSP: does this stream need a password? (the realm).
    OnRtspRealm,
    /// RTSP: the password of a user.
    OnRtspAuth,
    /// An output of a stream registered or unregistered.
    OnStreamChanged,
    /// A stream has had no reader for `general.streamNoneReaderDelayMS`.
    OnStreamNoneReader,
    /// A player asked for a stream that is not live.
    OnStreamNotFound,
    /// The server started (the whole config).
    OnServerStarted,
    /// Every `hook.alive_interval` seconds.
    OnServerKeepalive,
    /// The server is stopping cleanly.
    OnServerExited,
    /// A login on the admin shell (auth).
    OnShellLogin,
    /// A port opened by openRtpServer received no RTP for `rtp_proxy.timeoutSec`.
    OnRtpServerTimeout,
}

impl Hook {
    /// Every hook.
    pub const ALL: [Hook; 15] = [
        Hook::OnPublish,
        Hook::OnPlay,
        Hook::OnFlowReport,
        Hook::OnHttpAccess,
        Hook::OnRecordMp4,
        Hook::OnRtspRealm,
        Hook::OnRtspAuth,
        Hook::OnStreamChanged,
        Hook::OnStreamNoneReader,
        Hook::OnStreamNotFound,
        Hook::OnServerStarted,
        Hook::OnServerKeepalive,
        Hook::OnServerExited,
        Hook::OnShellLogin,
        Hook::OnRtpServerTimeout,
    ];

    /// The hook's name, which is also its `[hook]` config key.
    pub fn name(self) -> &'static str {
        match self {
            Hook::OnPublish => "on_publish",
            Hook::OnPlay => "on_play",
            Hook::OnFlowReport => "on_flow_report",
            Hook::OnHttpAccess => "on_http_access",
            Hook::OnRecordMp4 => "on_record_mp4",
            Hook::OnRtspRealm => "on_rtsp_realm",
            Hook::OnRtspAuth => "on_rtsp_auth",
            Hook::OnStreamChanged => "on_stream_changed",
            Hook::OnStreamNoneReader => "on_stream_none_reader",
            Hook::OnStreamNotFound => "on_stream_not_found",
            Hook::OnServerStarted => "on_server_started",
            Hook::OnServerKeepalive => "on_server_keepalive",
            Hook::OnServerExited => "on_server_exited",
            Hook::OnShellLogin => "on_shell_login",
            Hook::OnRtpServerTimeout => "on_rtp_server_timeout",
        }
    }

    fn index(self) -> usize {
        Hook::ALL.iter().position(|h| *h == self).unwrap_or(0)
    }
}

/// How hooks are called (`[hook]` and `general.mediaServerId`), built from a
/// [`config::Config`]: a field named after a config key defaults to that key's default.
#[derive(Debug, Clone)]
pub struct HookConfig {
    /// `hook.enable`: false = every hook takes its default action.
    pub enable: bool,
    /// `hook.timeoutSec`: the whole request, connect to last byte.
    pub timeout: Duration,
    /// `hook.retry`: further attempts after a failure (not after a denial).
    pub retry: u32,
    /// `hook.retry_delay`: the wait between attempts.
    pub retry_delay: Duration,
    /// `general.mediaServerId`, sent in every body.
    pub media_server_id: String,
    /// `hook.sign_token`: sign every call when set.
    pub sign_token: Option<String>,
    /// `hook.admin_params`: a publish or play whose params contain every `key=value` of this
    /// skips the auth hooks; empty = never.
    pub admin_params: String,
    /// `hook.local_bypass`: publishers and players on a loopback address skip the auth hooks.
    pub local_bypass: bool,
    /// `hook.stream_changed_schemas`: which output schemas on_stream_changed reports.
    pub stream_changed_schemas: Vec<String>,
    /// Lifecycle workers; one stream's hooks always use the same one. Default: 4.
    pub workers: usize,
    /// Hooks each worker may hold waiting; past it they are dropped. Default: 1024.
    pub queue_capacity: usize,
    urls: [Option<String>; Hook::ALL.len()],
}

impl Default for HookConfig {
    /// The built-in defaults of the config table.
    fn default() -> Self {
        HookConfig::from(&config::Config::default())
    }
}

impl From<&config::Config> for HookConfig {
    /// `[hook]` and `general.mediaServerId`; the queue settings, which are not config keys,
    /// at their documented defaults.
    fn from(config: &config::Config) -> Self {
        let h = &config.hook;
        let mut c = HookConfig {
            enable: h.enable,
            timeout: h.timeout_sec,
            retry: h.retry,
            retry_delay: h.retry_delay,
            media_server_id: config.general.media_server_id.clone(),
            sign_token: (!h.sign_token.is_empty()).then(|| h.sign_token.expose().to_owned()),
            admin_params: h.admin_params.expose().to_owned(),
            local_bypass: h.local_bypass,
            stream_changed_schemas: h.stream_changed_schemas.clone(),
            workers: 4,
            queue_capacity: 1024,
            urls: Default::default(),
        };
        for hook in Hook::ALL {
            let url = match hook {
                Hook::OnPublish => &h.on_publish,
                Hook::OnPlay => &h.on_play,
                Hook::OnFlowReport => &h.on_flow_report,
                Hook::OnHttpAccess => &h.on_http_access,
                Hook::OnRecordMp4 => &h.on_record_mp4,
                Hook::OnRtspRealm => &h.on_rtsp_realm,
                Hook::OnRtspAuth => &h.on_rtsp_auth,
                Hook::OnStreamChanged => &h.on_stream_changed,
                Hook::OnStreamNoneReader => &h.on_stream_none_reader,
                Hook::OnStreamNotFound => &h.on_stream_not_found,
                Hook::OnServerStarted => &h.on_server_started,
                Hook::OnServerKeepalive => &h.on_server_keepalive,
                Hook::OnServerExited => &h.on_server_exited,
                Hook::OnShellLogin => &h.on_shell_login,
                Hook::OnRtpServerTimeout => &h.on_rtp_server_timeout,
            };
            c.set_url(hook, url.clone());
        }
        c
    }
}

impl HookConfig {
    /// Sets the URL of `hook` (empty or `None` = disabled).
    pub fn set_url(&mut self, hook: Hook, url: Option<String>) {
        self.urls[hook.index()] = url.filter(|u| !u.trim().is_empty());
    }

    /// The URL `hook` is sent to, if it is on.
    pub fn url(&self, hook: Hook) -> Option<&str> {
        if !self.enable {
            return None;
        }
        self.urls[hook.index()].as_deref()
    }
}

/// Why a hook call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The backend answered with a non-zero `code`: a decision, never retried.
    #[error("denied by the backend (code {code}): {msg}")]
    Denied {
        /// The `code` of the reply.
        code: i64,
        /// The `msg` of the reply (empty if none).
        msg: String,
    },
    /// No usable answer after every attempt.
    #[error("failed after {attempts} attempt(s): {reason}")]
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Why the last attempt failed.
        reason: String,
    },
}
