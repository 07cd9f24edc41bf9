//! The hook client: one pooled HTTP client, the reply rules, retries, and the auth hooks.

use crate::body::{origin_type, Request};
use crate::queue::{Queue, Then};
use crate::sign::{body_signature, signed_url, url_path, SIGNATURE_HEADER};
use crate::{Hook, HookConfig, HookError};
use registry::SessionInfo;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest reply body read from a backend; a reply is a few hundred bytes.
const MAX_REPLY: usize = 1 << 20;

/// A cheap-to-clone handle that calls the hooks of a [`HookConfig`].
#[derive(Clone)]
pub struct Hooks {
    caller: Arc<Caller>,
    queue: Arc<Queue>,
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
    /// A client for `config`. Starts the lifecycle workers, so it must be called inside a tokio
    /// runtime.
    pub fn new(config: HookConfig) -> Hooks {
        let http = reqwest::Client::builder()
            .timeout(config.timeout.max(Duration::from_millis(10)))
            .user_agent(concat!("ferrostream/", env!("CARGO_PKG_VERSION")))
            // A redirect is not an answer: a 3xx counts as a failure, as any status but 200.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|e| {
                tracing::error!("hook HTTP client with settings failed ({e}); using defaults");
                reqwest::Client::new()
            });
        let workers = config.workers;
        let capacity = config.queue_capacity;
        let caller = Arc::new(Caller {
            config,
            http,
            index: AtomicU64::new(0),
        });
        let queue = Arc::new(Queue::new(Arc::clone(&caller), workers, capacity));
        Hooks { caller, queue }
    }

    /// The configuration.
    pub fn config(&self) -> &HookConfig {
        &self.caller.config
    }

    /// Whether `hook` is called at all (`hook.enable` and a URL).
    pub fn enabled(&self, hook: Hook) -> bool {
        self.caller.config.url(hook).is_some()
    }

    /// Calls `hook` now with `body` (to which `mediaServerId` and `hook_index` are added) and
    /// returns the reply; `Ok(None)` when the hook is disabled.
    pub async fn call(
        &self,
        hook: Hook,
        body: Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, HookError> {
        self.caller.call(hook, body).await
    }

    /// Queues `hook` behind the earlier hooks of `order` (a stream), not waiting for it.
    pub fn notify(&self, hook: Hook, order: &str, body: Map<String, Value>) {
        if self.enabled(hook) {
            self.queue.push(order, hook, body, None);
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
            self.queue.push(order, hook, body, Some(then));
        }
    }

    /// Hooks dropped because a queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Waits until every queued hook has been sent (or given up on), at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.queue.flush()).await;
    }

    fn bypass(&self, req: &Request) -> bool {
        let config = &self.caller.config;
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

/// Sends hooks: the reply rules and retries.
pub(crate) struct Caller {
    pub(crate) config: HookConfig,
    http: reqwest::Client,
    index: AtomicU64,
}

enum Attempt {
    Denied { code: i64, msg: String },
    Failed(String),
}

impl Caller {
    pub(crate) async fn call(
        &self,
        hook: Hook,
        mut body: Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, HookError> {
        let Some(url) = self.config.url(hook) else {
            return Ok(None);
        };
        let vhost = body.get("vhost").and_then(Value::as_str).map(str::to_owned);
        body.insert(
            "mediaServerId".into(),
            self.config.media_server_id.as_str().into(),
        );
        let attempts = self.config.retry.saturating_add(1);
        let mut reason = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(self.config.retry_delay).await;
            }
            // Every attempt gets its own index, as ZLMediaKit's retries do.
            let index = self.index.fetch_add(1, Ordering::Relaxed);
            body.insert("hook_index".into(), index.into());
            let bytes = match serde_json::to_vec(&body) {
                Ok(bytes) => bytes,
                Err(e) => {
                    return Err(HookError::Failed {
                        attempts: attempt,
                        reason: format!("body: {e}"),
                    })
                }
            };
            match self.attempt(url, bytes, vhost.as_deref()).await {
                Ok(reply) => return Ok(Some(reply)),
                Err(Attempt::Denied { code, msg }) => {
                    tracing::info!(hook = hook.name(), code, msg, "[auth failed] hook denied");
                    return Err(HookError::Denied { code, msg });
                }
                Err(Attempt::Failed(why)) => {
                    tracing::debug!(hook = hook.name(), attempt, "hook attempt failed: {why}");
                    reason = why;
                }
            }
        }
        Err(HookError::Failed { attempts, reason })
    }

    async fn attempt(
        &self,
        url: &str,
        body: Vec<u8>,
        vhost: Option<&str>,
    ) -> Result<Map<String, Value>, Attempt> {
        let mut req = match &self.config.sign_token {
            Some(token) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                self.http.post(signed_url(url, token, now)).header(
                    SIGNATURE_HEADER,
                    body_signature(token, now, url_path(url), &body),
                )
            }
            None => self.http.post(url),
        };
        req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(vhost) = vhost {
            req = req.header("X-VHOST", vhost);
        }
        let mut resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| Attempt::Failed(describe(&e)))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(Attempt::Failed(format!("HTTP status {}", resp.status())));
        }
        let mut reply = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Attempt::Failed(describe(&e)))?
        {
            if reply.len() + chunk.len() > MAX_REPLY {
                return Err(Attempt::Failed("reply larger than 1 MiB".into()));
            }
            reply.extend_from_slice(&chunk);
        }
        let map = match serde_json::from_slice::<Value>(&reply) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Attempt::Failed("reply is not a JSON object".into())),
            Err(e) => return Err(Attempt::Failed(format!("reply is not JSON: {e}"))),
        };
        let code = match map.get("code") {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_i64().unwrap_or(i64::MAX),
            Some(other) => {
                return Err(Attempt::Failed(format!(
                    "reply code is not an integer: {other}"
                )))
            }
            None => return Err(Attempt::Failed("reply has no code".into())),
        };
        if code != 0 {
            let msg = map
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            return Err(Attempt::Denied { code, msg });
        }
        Ok(map)
    }
}

/// A reqwest error with its cause (reqwest's own text is just "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connect failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("enable", &self.caller.config.enable)
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
