//! [`HttpHooks`]: the [`HookClient`] that POSTs to the URLs of a [`HookConfig`]. One pooled
//! keep-alive HTTP client, the reply rules, retries and signing; the queued hooks go through
//! the ordered workers of `queue.rs`.

use crate::client::{HookClient, Reply, Then};
use crate::queue::Queue;
use crate::sign::{body_signature, signed_url, url_path, SIGNATURE_HEADER};
use crate::{BoxFuture, Hook, HookConfig, HookError};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest reply body read from a backend; a reply is a few hundred bytes.
const MAX_REPLY: usize = 1 << 20;

/// The ZLMediaKit hooks over HTTP, as [`HookConfig`] describes them (the crate docs give the
/// reply rules).
pub struct HttpHooks {
    caller: Arc<Caller>,
    queue: Queue,
}

impl HttpHooks {
    /// A client for `config`. Starts the lifecycle workers, so it must be called inside a tokio
    /// runtime.
    pub fn new(config: HookConfig) -> HttpHooks {
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
            metrics: crate::HookMetrics::default(),
        });
        let queue = Queue::new(Arc::clone(&caller), workers, capacity);
        HttpHooks { caller, queue }
    }
}

impl HookClient for HttpHooks {
    fn config(&self) -> &HookConfig {
        &self.caller.config
    }

    fn enabled(&self, hook: Hook) -> bool {
        self.caller.config.url(hook).is_some()
    }

    fn call(&self, hook: Hook, body: Map<String, Value>) -> BoxFuture<'_, Reply> {
        Box::pin(self.caller.call(hook, body))
    }

    fn notify(&self, hook: Hook, order: &str, body: Map<String, Value>, then: Option<Then>) {
        self.queue.push(order, hook, body, then);
    }

    fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    fn metrics(&self) -> Option<&crate::HookMetrics> {
        Some(&self.caller.metrics)
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.queue.flush())
    }
}

/// Sends hooks: the reply rules and retries.
pub(crate) struct Caller {
    pub(crate) config: HookConfig,
    http: reqwest::Client,
    index: AtomicU64,
    metrics: crate::HookMetrics,
}

enum Attempt {
    Denied { code: i64, msg: String },
    Failed(String),
}

impl Caller {
    pub(crate) async fn call(&self, hook: Hook, body: Map<String, Value>) -> Reply {
        if self.config.url(hook).is_none() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let reply = self.call_enabled(hook, body).await;
        let outcome = match &reply {
            Ok(_) => crate::metrics::Outcome::Allowed,
            Err(HookError::Denied { .. }) => crate::metrics::Outcome::Denied,
            Err(HookError::Failed { .. }) => crate::metrics::Outcome::Failed,
        };
        self.metrics.record(hook, outcome, started.elapsed());
        reply
    }

    async fn call_enabled(&self, hook: Hook, mut body: Map<String, Value>) -> Reply {
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
