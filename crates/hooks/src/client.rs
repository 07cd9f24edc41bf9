//! The hook client: the [`HookClient`] trait the transports implement, and the [`Hooks`]
//! handle every driver calls, which builds the bodies, applies the bypasses and reads the
//! replies of the auth hooks the same way whichever client sends them.

use crate::body::{origin_type, Request};
use crate::http::HttpHooks;
use crate::{BoxFuture, Hook, HookConfig, HookError};
use registry::SessionInfo;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// What a hook call got: `Ok(Some(reply))` a success (the whole reply object, `code` 0),
/// `Ok(None)` the hook is disabled, `Err` a denial or a failure.
pub type Reply = Result<Option<Map<String, Value>>, HookError>;

/// What to do with the reply of a queued hook (run on the sender's task, so it must not
/// block).
pub type Then = Box<dyn FnOnce(Reply) + Send>;

/// How hooks reach the backend: [`HttpHooks`] for real, `RecordingHooks` (feature
/// `test-util`) in tests. Bodies arrive complete but for `mediaServerId` and `hook_index`,
/// which belong to the transport (every attempt gets its own index).
///
/// Boxed futures keep it usable as `Arc<dyn HookClient>`, which is what [`Hooks`] holds.
pub trait HookClient: Send + Sync + 'static {
    /// The configuration: [`Hooks`] reads the bypasses and the lifecycle task the schemas.
    fn config(&self) -> Arc<HookConfig>;

    /// Replaces the configuration (setServerConfig, SIGHUP): calls made from now on use it;
    /// the queue's size and workers stay as they started.
    fn set_config(&self, config: HookConfig);

    /// Whether `hook` is sent at all; a disabled hook takes its default action.
    fn enabled(&self, hook: Hook) -> bool;

    /// Sends `hook` now (never queued behind anything) and resolves with its reply, after
    /// the retries; a disabled hook resolves to `Ok(None)` without sending.
    fn call(&self, hook: Hook, body: Map<String, Value>) -> BoxFuture<'_, Reply>;

    /// Queues `hook` behind the earlier hooks of `order` (a stream) without waiting; a full
    /// queue drops it (counted in [`HookClient::dropped`]). `then`, if any, gets the reply.
    fn notify(&self, hook: Hook, order: &str, body: Map<String, Value>, then: Option<Then>);

    /// Queued hooks dropped so far because their queue was full.
    fn dropped(&self) -> u64;

    /// Resolves once every hook queued before the call has been sent (or given up on).
    fn flush(&self) -> BoxFuture<'_, ()>;

    /// Figures of the calls made, for `/metrics` (`None`: this client keeps none).
    fn metrics(&self) -> Option<&crate::HookMetrics> {
        None
    }
}

/// A cheap-to-clone handle on a [`HookClient`]: the auth calls drivers await, the queued
/// lifecycle side, and the bodies and reply rules of each hook.
#[derive(Clone)]
pub struct Hooks {
    client: Arc<dyn HookClient>,
    /// Asked for a stream that is not live here before on_stream_not_found (the cluster); set
    /// once at start.
    remote: Arc<std::sync::OnceLock<Arc<dyn crate::RemoteStreams>>>,
}

/// Why an auth hook refused a client; `msg` is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct Refused {
    /// The backend's `msg`, or a generic reason when the backend could not be asked.
    pub msg: String,
}

impl Refused {
    fn from_hook(hook: Hook, e: HookError) -> Refused {
        match e {
            HookError::Denied { msg, .. } if !msg.is_empty() => Refused { msg },
            HookError::Denied { code, .. } => Refused {
                msg: format!("denied by {} (code {code})", hook.name()),
            },
            HookError::Failed { .. } => {
                // Fail closed: no answer is no permission.
                tracing::warn!(
                    hook = hook.name(),
                    "refused, the backend could not be asked: {e}"
                );
                Refused {
                    msg: format!("{} failed: authorization unavailable", hook.name()),
                }
            }
        }
    }
}

/// The on_rtsp_auth answer: the user's password, plain or as `md5(user:realm:password)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspPassword {
    /// `passwd` is `md5(user:realm:password)` in lowercase hex.
    pub encrypted: bool,
    /// The password (or its hash).
    pub passwd: String,
}

/// The on_http_access answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAccess {
    /// The directory the decision covers (empty = the requested file's directory).
    pub path: String,
    /// How long the decision may be cached, seconds (0 = not at all).
    pub second: u64,
}

impl Hooks {
    /// The HTTP client for `config` ([`HttpHooks`]). Starts the lifecycle workers, so it must
    /// be called inside a tokio runtime.
    pub fn new(config: HookConfig) -> Hooks {
        Hooks::from_client(Arc::new(HttpHooks::new(config)))
    }

    /// A handle on `client` (a test double, another transport).
    pub fn from_client(client: Arc<dyn HookClient>) -> Hooks {
        Hooks {
            client,
            remote: Arc::default(),
        }
    }

    /// Installs where a play of a stream that is not live here looks before
    /// on_stream_not_found ([`crate::find_stream`]); only the first call counts.
    pub fn set_remote(&self, remote: Arc<dyn crate::RemoteStreams>) {
        let _ = self.remote.set(remote);
    }

    /// What [`Hooks::set_remote`] installed.
    pub fn remote(&self) -> Option<&Arc<dyn crate::RemoteStreams>> {
        self.remote.get()
    }

    /// The configuration.
    pub fn config(&self) -> Arc<HookConfig> {
        self.client.config()
    }

    /// Replaces the configuration; calls made from now on use it.
    pub fn set_config(&self, config: HookConfig) {
        self.client.set_config(config);
    }

    /// Whether `hook` is called at all (`hook.enable` and a URL).
    pub fn enabled(&self, hook: Hook) -> bool {
        self.client.enabled(hook)
    }

    /// Calls `hook` now with `body` (to which `mediaServerId` and `hook_index` are added) and
    /// returns the reply; `Ok(None)` when the hook is disabled.
    pub async fn call(&self, hook: Hook, body: Map<String, Value>) -> Reply {
        self.client.call(hook, body).await
    }

    /// Queues `hook` behind the earlier hooks of `order` (a stream), not waiting for it.
    pub fn notify(&self, hook: Hook, order: &str, body: Map<String, Value>) {
        if self.enabled(hook) {
            self.client.notify(hook, order, body, None);
        }
    }

    /// Like [`Hooks::notify`], then hands the reply to `then` (not called when disabled).
    pub(crate) fn notify_then(
        &self,
        hook: Hook,
        order: &str,
        body: Map<String, Value>,
        then: Then,
    ) {
        if self.enabled(hook) {
            self.client.notify(hook, order, body, Some(then));
        }
    }

    /// Figures of the hook calls made, for `/metrics`.
    pub fn metrics(&self) -> Option<&crate::HookMetrics> {
        self.client.metrics()
    }

    /// Hooks dropped because a queue was full.
    pub fn dropped(&self) -> u64 {
        self.client.dropped()
    }

    /// Waits until every queued hook has been sent (or given up on), at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.client.flush()).await;
    }

    fn bypass(&self, req: &Request) -> bool {
        let config = self.config();
        if config.local_bypass && req.peer.ip().to_canonical().is_loopback() {
            return true;
        }
        admin_params_match(&config.admin_params, &req.params)
    }

    /// on_publish: `Ok(Some(reply))` allowed with the backend's reply (its keys override
    /// `[protocol]`, see [`crate::stream_options`]), `Ok(None)` allowed without asking (disabled
    /// or bypassed), `Err` refused.
    pub async fn on_publish(&self, req: &Request) -> Result<Option<Map<String, Value>>, Refused> {
        if self.bypass(req) {
            return Ok(None);
        }
        let mut body = req.json();
        let (origin, origin_str) = origin_type(req.protocol);
        body.insert("originType".into(), origin.into());
        body.insert("originTypeStr".into(), origin_str.into());
        self.call(Hook::OnPublish, body)
            .await
            .map_err(|e| Refused::from_hook(Hook::OnPublish, e))
    }

    /// on_play: allowed or refused.
    pub async fn on_play(&self, req: &Request) -> Result<(), Refused> {
        if self.bypass(req) {
            return Ok(());
        }
        self.call(Hook::OnPlay, req.json())
            .await
            .map(|_| ())
            .map_err(|e| Refused::from_hook(Hook::OnPlay, e))
    }

    /// on_rtsp_realm: `Ok(Some(realm))` = this RTSP play needs Digest (or Basic) credentials
    /// checked with [`Hooks::on_rtsp_auth`] and on_play is skipped; `Ok(None)` = no RTSP auth
    /// (disabled, bypassed or an empty realm), on_play decides; `Err` = refused (the backend
    /// could not be asked: fail closed).
    pub async fn on_rtsp_realm(&self, req: &Request) -> Result<Option<String>, Refused> {
        if self.bypass(req) {
            return Ok(None);
        }
        match self.call(Hook::OnRtspRealm, req.json()).await {
            Ok(reply) => Ok(reply
                .as_ref()
                .and_then(|r| r.get("realm"))
                .and_then(Value::as_str)
                .filter(|realm| !realm.is_empty())
                .map(str::to_owned)),
            Err(e) => Err(Refused::from_hook(Hook::OnRtspRealm, e)),
        }
    }

    /// on_rtsp_auth: the password of `user_name` in `realm`. Disabled, denied or failed =
    /// refused (nobody can be checked).
    pub async fn on_rtsp_auth(
        &self,
        req: &Request,
        realm: &str,
        user_name: &str,
        must_no_encrypt: bool,
    ) -> Result<RtspPassword, Refused> {
        let mut body = req.json();
        body.insert("realm".into(), realm.into());
        body.insert("user_name".into(), user_name.into());
        body.insert("must_no_encrypt".into(), must_no_encrypt.into());
        let reply = self
            .call(Hook::OnRtspAuth, body)
            .await
            .map_err(|e| Refused::from_hook(Hook::OnRtspAuth, e))?
            .ok_or_else(|| Refused {
                msg: "on_rtsp_auth is not configured".into(),
            })?;
        let passwd = reply
            .get("passwd")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let encrypted = reply
            .get("encrypted")
            .is_some_and(|v| v.as_bool().unwrap_or(false) || v.as_i64() == Some(1));
        Ok(RtspPassword { encrypted, passwd })
    }

    /// on_shell_login for a login on the admin shell: `Ok(true)` the backend allowed it,
    /// `Ok(false)` the hook is off (the shell then applies its own check), `Err` refused,
    /// also when the backend could not be asked (fail closed, as on_play). The body is
    /// ZLMediaKit's: `ip`, `port`, `id` (a string), `user_name`, `passwd` (as typed: the
    /// backend checks it). No bypass applies: `admin_params` and `local_bypass` are about
    /// publishers and players, and an admin console is worth more than a stream.
    pub async fn on_shell_login(
        &self,
        peer: std::net::SocketAddr,
        id: u64,
        user_name: &str,
        passwd: &str,
    ) -> Result<bool, Refused> {
        let mut body = Map::new();
        body.insert("ip".into(), peer.ip().to_canonical().to_string().into());
        body.insert("port".into(), peer.port().into());
        body.insert("id".into(), id.to_string().into());
        body.insert("user_name".into(), user_name.into());
        body.insert("passwd".into(), passwd.into());
        match self.call(Hook::OnShellLogin, body).await {
            Ok(reply) => Ok(reply.is_some()),
            Err(e) => Err(Refused::from_hook(Hook::OnShellLogin, e)),
        }
    }

    /// on_stream_not_found: true when the backend says `close: true` (fail the player now
    /// instead of waiting for the stream). Disabled or failed = false (wait).
    pub async fn on_stream_not_found(&self, req: &Request) -> bool {
        match self.call(Hook::OnStreamNotFound, req.json()).await {
            Ok(Some(reply)) => reply_close(&reply),
            _ => false,
        }
    }

    /// on_http_access for a file under `http.rootPath`: `Ok(None)` when the hook is disabled
    /// (the caller then applies `http.allow_ip_range`), `Ok(Some(scope))` allowed, `Err`
    /// refused with the backend's `err`.
    pub async fn on_http_access(
        &self,
        session: &SessionInfo,
        path: &str,
        file_path: &str,
        is_dir: bool,
        headers: &[(String, String)],
    ) -> Result<Option<HttpAccess>, Refused> {
        let mut body = Map::new();
        body.insert(
            "ip".into(),
            session.peer.ip().to_canonical().to_string().into(),
        );
        body.insert("port".into(), session.peer.port().into());
        body.insert("id".into(), session.id.to_string().into());
        body.insert("path".into(), path.into());
        body.insert("file_path".into(), file_path.into());
        body.insert("is_dir".into(), is_dir.into());
        body.insert("params".into(), session.params.as_str().into());
        for (name, value) in headers {
            body.insert(format!("header.{name}"), value.as_str().into());
        }
        let reply = match self.call(Hook::OnHttpAccess, body).await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Ok(None),
            Err(e) => return Err(Refused::from_hook(Hook::OnHttpAccess, e)),
        };
        match reply.get("err").and_then(Value::as_str).unwrap_or("") {
            "" => Ok(Some(HttpAccess {
                path: reply
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                second: reply.get("second").and_then(Value::as_u64).unwrap_or(0),
            })),
            err => Err(Refused {
                msg: err.to_owned(),
            }),
        }
    }

    /// on_server_started with the flat `"section.key": "value"` config (secrets redacted).
    pub async fn on_server_started(&self, config: Map<String, Value>) {
        if let Err(e) = self.call(Hook::OnServerStarted, config).await {
            tracing::warn!("on_server_started: {e}");
        }
    }

    /// on_server_exited, waited for (bounded by the hook timeout and retries).
    pub async fn on_server_exited(&self) {
        if let Err(e) = self.call(Hook::OnServerExited, Map::new()).await {
            tracing::warn!("on_server_exited: {e}");
        }
    }

    /// on_server_keepalive with `data` (statistics), queued.
    pub fn on_server_keepalive(&self, data: Value) {
        let mut body = Map::new();
        body.insert("data".into(), data);
        self.notify(Hook::OnServerKeepalive, "", body);
    }

    /// on_rtp_server_timeout for a port opened by openRtpServer that received nothing for
    /// `rtp_proxy.timeoutSec`, queued behind the stream's other hooks; the reply is ignored.
    pub fn on_rtp_server_timeout(&self, ev: &crate::RtpServerTimeout) {
        let body = crate::body::rtp_server_timeout_json(ev);
        self.notify(Hook::OnRtpServerTimeout, &ev.key.to_string(), body);
    }

    /// on_record_mp4 for a closed segment, queued behind the stream's other hooks.
    pub fn on_record_mp4(&self, file: &outputs::RecordedFile) {
        let body = crate::body::record_json(file);
        self.notify(Hook::OnRecordMp4, &file.key.to_string(), body);
    }
}

/// Whether a reply asks to close (`close: true`, also `1` or `"true"`).
pub(crate) fn reply_close(reply: &Map<String, Value>) -> bool {
    match reply.get("close") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    }
}

/// Whether `params` carries every `key=value` pair of `admin` (empty `admin` = never).
fn admin_params_match(admin: &str, params: &str) -> bool {
    let mut wanted = admin.split('&').filter(|p| !p.is_empty()).peekable();
    wanted.peek().is_some() && wanted.all(|pair| params.split('&').any(|p| p == pair))
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("enable", &self.config().enable)
            .field("dropped", &self.dropped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn admin_params_need_every_pair() {
        assert!(admin_params_match("secret=abc", "a=1&secret=abc"));
        assert!(!admin_params_match("secret=abc", "secret=abcd"));
        assert!(!admin_params_match("secret=abc", "xsecret=abc"));
        assert!(admin_params_match("a=1&b=2", "b=2&c=3&a=1"));
        assert!(!admin_params_match("a=1&b=2", "a=1"));
        assert!(!admin_params_match("", "anything"));
    }

    #[tokio::test]
    async fn shell_login_sends_zlms_body_and_fails_closed() {
        use crate::{Answer, RecordingHooks};
        let recording = Arc::new(RecordingHooks::new());
        let hooks = Hooks::from_client(Arc::clone(&recording) as Arc<dyn HookClient>);
        let peer = "[::ffff:192.0.2.10]:4000".parse().expect("addr");
        // Off: allowed by nobody, the shell applies its own check.
        assert_eq!(hooks.on_shell_login(peer, 9, "root", "pw").await, Ok(false));
        recording.answer(Hook::OnShellLogin, Answer::allow());
        assert_eq!(hooks.on_shell_login(peer, 9, "root", "pw").await, Ok(true));
        let Value::Object(body) = json!({
            "ip": "192.0.2.10", "port": 4000, "id": "9", "user_name": "root", "passwd": "pw",
        }) else {
            unreachable!()
        };
        assert_eq!(recording.bodies(Hook::OnShellLogin), vec![body]);
        recording.answer(Hook::OnShellLogin, Answer::deny(1, "no shell for you"));
        assert_eq!(
            hooks.on_shell_login(peer, 9, "root", "pw").await,
            Err(Refused {
                msg: "no shell for you".into()
            })
        );
        recording.answer(Hook::OnShellLogin, Answer::Fail);
        let refused = hooks.on_shell_login(peer, 9, "root", "pw").await;
        assert_eq!(
            refused.expect_err("fail closed").msg,
            "on_shell_login failed: authorization unavailable"
        );
    }

    #[tokio::test]
    async fn rtp_server_timeout_sends_the_open_calls_arguments() {
        use crate::{RecordingHooks, RtpServerTimeout};
        let recording = Arc::new(RecordingHooks::new());
        let hooks = Hooks::from_client(Arc::clone(&recording) as Arc<dyn HookClient>);
        recording.answer(Hook::OnRtpServerTimeout, crate::Answer::allow());
        hooks.on_rtp_server_timeout(&RtpServerTimeout {
            local_port: 30_002,
            key: media::StreamKey::new("rtp", "cam1").expect("key"),
            tcp_mode: 1,
            re_use_port: false,
            ssrc: 0x0100_0001,
        });
        hooks.flush(std::time::Duration::from_secs(5)).await;
        let Value::Object(body) = json!({
            "local_port": 30002, "vhost": "__defaultVhost__", "app": "rtp", "stream_id": "cam1",
            "tcp_mode": 1, "re_use_port": false, "ssrc": 16777217,
        }) else {
            unreachable!()
        };
        assert_eq!(recording.bodies(Hook::OnRtpServerTimeout), vec![body]);
    }

    #[test]
    fn close_accepts_zlm_spellings() {
        for (reply, close) in [
            (json!({"close": true}), true),
            (json!({"close": 1}), true),
            (json!({"close": "true"}), true),
            (json!({"close": false}), false),
            (json!({}), false),
        ] {
            let Value::Object(map) = reply else {
                unreachable!()
            };
            assert_eq!(reply_close(&map), close, "{map:?}");
        }
    }
}
