//! A real hook backend for the tests: an axum server on 127.0.0.1:0 that records every hook
//! request (path, query, headers, body) and answers each hook as the test scripted it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hooks::{Hook, HookConfig};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One received hook request.
#[derive(Debug, Clone)]
pub struct Call {
    pub hook: String,
    /// The request's URL path (`/index/hook/on_play`).
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub raw: Bytes,
    pub body: Value,
    pub at: Instant,
}

/// How the backend answers a hook.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 200 with this JSON.
    Json(Value),
    /// This status with `{"code":0}` (not 200 = a failure).
    Status(u16),
    /// HTTP 200 with this raw body.
    Raw(&'static str),
    /// Waits, then answers.
    Delay(Duration, Box<Reply>),
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    replies: HashMap<String, Reply>,
}

#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Backend {
    pub async fn start() -> Backend {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Backend {
            addr,
            inner,
            task: Arc::new(task),
        }
    }

    /// Stops answering (connections are refused from now on).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Answers `hook` with `reply` from now on (default: `{"code":0}`).
    pub fn reply(&self, hook: &str, reply: Reply) {
        self.inner
            .lock()
            .expect("lock")
            .replies
            .insert(hook.to_owned(), reply);
    }

    pub fn url(&self, hook: Hook) -> String {
        format!("http://{}/index/hook/{}", self.addr, hook.name())
    }

    /// A hook config with every hook pointing here, fast retries.
    pub fn config(&self) -> HookConfig {
        let mut config = HookConfig::default();
        config.enable = true;
        config.media_server_id = "test-server".into();
        config.timeout = Duration::from_secs(2);
        config.retry = 1;
        config.retry_delay = Duration::from_millis(200);
        for hook in Hook::ALL {
            config.set_url(hook, Some(self.url(hook)));
        }
        config
    }

    pub fn calls(&self, hook: &str) -> Vec<Call> {
        self.inner
            .lock()
            .expect("lock")
            .calls
            .iter()
            .filter(|c| c.hook == hook)
            .cloned()
            .collect()
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.inner.lock().expect("lock").calls.clone()
    }

    /// Waits until `hook` was called `n` times matching `filter`, or panics after `limit`.
    pub async fn wait_for(
        &self,
        hook: &str,
        n: usize,
        limit: Duration,
        filter: impl Fn(&Call) -> bool,
    ) -> Vec<Call> {
        let deadline = Instant::now() + limit;
        loop {
            let calls: Vec<Call> = self.calls(hook).into_iter().filter(|c| filter(c)).collect();
            if calls.len() >= n {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "{hook}: {} of {n} calls within {limit:?}; all calls: {:?}",
                calls.len(),
                self.all_calls()
                    .iter()
                    .map(|c| c.hook.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let hook = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let reply = {
        let mut inner = inner.lock().expect("lock");
        inner.calls.push(Call {
            hook: hook.clone(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            headers,
            raw,
            body,
            at: Instant::now(),
        });
        inner
            .replies
            .get(&hook)
            .cloned()
            .unwrap_or(Reply::Json(json!({"code": 0})))
    };
    answer(reply).await
}

async fn answer(mut reply: Reply) -> Response {
    loop {
        match reply {
            Reply::Json(v) => return axum::Json(v).into_response(),
            Reply::Status(code) => {
                let status = StatusCode::from_u16(code).expect("status");
                return (status, axum::Json(json!({"code": 0}))).into_response();
            }
            Reply::Raw(text) => return text.into_response(),
            Reply::Delay(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
        }
    }
}
