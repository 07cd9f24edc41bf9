//! Test doubles (feature `test-util`): [`RecordingHooks`] for the ZLMediaKit hooks and
//! [`RecordingTurnHooks`] for the TURN ones. Each records every call with its body and answers
//! from a script, so a test asserts what a backend would have been sent and steers what it
//! answers without a socket.

use crate::client::{HookClient, Reply, Then};
use crate::turn::{TurnEvent, TurnHooks};
use crate::{BoxFuture, Hook, HookConfig, HookError};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// How the script answers a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Success: the reply `{"code": 0}` plus these keys (`close`, `realm`, `stream_replace`…).
    Allow(Map<String, Value>),
    /// A denial (`code` ≠ 0), as [`HookError::Denied`].
    Deny {
        /// The reply's `code`.
        code: i64,
        /// The reply's `msg`.
        msg: String,
    },
    /// No usable answer after the retries, as [`HookError::Failed`].
    Fail,
}

impl Answer {
    /// Success with nothing but `code: 0`.
    pub fn allow() -> Answer {
        Answer::Allow(Map::new())
    }

    /// Success with the keys of `reply` (a JSON object; anything else adds nothing).
    pub fn reply(reply: Value) -> Answer {
        match reply {
            Value::Object(map) => Answer::Allow(map),
            _ => Answer::allow(),
        }
    }

    /// A denial with `code` and `msg`.
    pub fn deny(code: i64, msg: &str) -> Answer {
        Answer::Deny {
            code,
            msg: msg.to_owned(),
        }
    }

    fn result(&self) -> Reply {
        match self {
            Answer::Allow(keys) => {
                let mut reply = Map::new();
                reply.insert("code".into(), 0.into());
                reply.extend(keys.clone());
                Ok(Some(reply))
            }
            Answer::Deny { code, msg } => Err(HookError::Denied {
                code: *code,
                msg: msg.clone(),
            }),
            Answer::Fail => Err(HookError::Failed {
                attempts: 1,
                reason: "scripted failure".into(),
            }),
        }
    }
}

/// One hook a [`RecordingHooks`] was asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The hook.
    pub hook: Hook,
    /// The order key of a queued hook ([`HookClient::notify`]); `None` for a direct call.
    pub order: Option<String>,
    /// The body (without `mediaServerId` and `hook_index`, which the transport adds).
    pub body: Map<String, Value>,
}

#[derive(Default)]
struct Script {
    answers: HashMap<Hook, Answer>,
    calls: Vec<Call>,
}

/// A [`HookClient`] that sends nothing: it records every call of an enabled hook and answers
/// it from the script. A hook without an answer is disabled (its default action, and not
/// recorded, as an HTTP client sends nothing for it). Queued hooks are answered at once, on
/// the caller's task, so a test sees their effect without waiting.
pub struct RecordingHooks {
    config: Mutex<Arc<HookConfig>>,
    script: Mutex<Script>,
    recorded: Notify,
}

impl Default for RecordingHooks {
    fn default() -> Self {
        RecordingHooks::new()
    }
}

impl RecordingHooks {
    /// Every hook disabled, the default [`HookConfig`] for the rest (no bypasses).
    pub fn new() -> Self {
        RecordingHooks::with_config(HookConfig::default())
    }

    /// With `config`'s bypasses and schemas (its `enable` and URLs are not used: the script
    /// decides which hooks are on).
    pub fn with_config(config: HookConfig) -> Self {
        RecordingHooks {
            config: Mutex::new(Arc::new(config)),
            script: Mutex::default(),
            recorded: Notify::new(),
        }
    }

    /// Turns `hook` on, answered with `answer` from now on.
    pub fn answer(&self, hook: Hook, answer: Answer) -> &Self {
        self.script().answers.insert(hook, answer);
        self
    }

    /// Turns `hook` off again.
    pub fn disable(&self, hook: Hook) -> &Self {
        self.script().answers.remove(&hook);
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.script().calls.clone()
    }

    /// The bodies `hook` was called with so far, in order.
    pub fn bodies(&self, hook: Hook) -> Vec<Map<String, Value>> {
        self.script()
            .calls
            .iter()
            .filter(|c| c.hook == hook)
            .map(|c| c.body.clone())
            .collect()
    }

    /// The bodies of `hook` once there are at least `count` of them, or those there are after
    /// `timeout`.
    pub async fn wait_for(
        &self,
        hook: Hook,
        count: usize,
        timeout: Duration,
    ) -> Vec<Map<String, Value>> {
        let wait = async {
            loop {
                let recorded = self.recorded.notified();
                tokio::pin!(recorded);
                // Registered before looking, so a call between the look and the wait wakes it.
                recorded.as_mut().enable();
                if self.bodies(hook).len() >= count {
                    return;
                }
                recorded.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.bodies(hook)
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        // A test that panicked while holding the lock has already failed; the calls are
        // still worth reading.
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the call of `hook` and returns its scripted reply (`Ok(None)` when disabled).
    fn record(&self, hook: Hook, order: Option<&str>, body: Map<String, Value>) -> Reply {
        let reply = {
            let mut script = self.script();
            let Some(answer) = script.answers.get(&hook) else {
                return Ok(None);
            };
            let reply = answer.result();
            script.calls.push(Call {
                hook,
                order: order.map(str::to_owned),
                body,
            });
            reply
        };
        self.recorded.notify_waiters();
        reply
    }
}

impl HookClient for RecordingHooks {
    fn config(&self) -> Arc<HookConfig> {
        Arc::clone(
            &self
                .config
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn set_config(&self, config: HookConfig) {
        *self
            .config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
    }

    fn enabled(&self, hook: Hook) -> bool {
        self.script().answers.contains_key(&hook)
    }

    fn call(&self, hook: Hook, body: Map<String, Value>) -> BoxFuture<'_, Reply> {
        let reply = self.record(hook, None, body);
        Box::pin(std::future::ready(reply))
    }

    fn notify(&self, hook: Hook, order: &str, body: Map<String, Value>, then: Option<Then>) {
        let reply = self.record(hook, Some(order), body);
        if let Some(then) = then {
            then(reply);
        }
    }

    fn dropped(&self) -> u64 {
        0
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

impl std::fmt::Debug for RecordingHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let script = self.script();
        f.debug_struct("RecordingHooks")
            .field("answers", &script.answers)
            .field("calls", &script.calls)
            .finish()
    }
}

/// One TURN hook a [`RecordingTurnHooks`] was asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnCall {
    /// `GET /password?addr=&name=`.
    Password {
        /// The username.
        name: String,
        /// The client.
        addr: SocketAddr,
    },
    /// `POST /events`.
    Event(TurnEvent),
}

#[derive(Default)]
struct TurnScript {
    passwords: HashMap<String, String>,
    calls: Vec<TurnCall>,
}

/// A [`TurnHooks`] that sends nothing: it records every password lookup and event, and
/// answers lookups from a script of passwords (a name without one is an unknown user).
#[derive(Default)]
pub struct RecordingTurnHooks {
    script: Mutex<TurnScript>,
}

impl RecordingTurnHooks {
    /// No passwords: every user is unknown.
    pub fn new() -> Self {
        RecordingTurnHooks::default()
    }

    /// `name`'s password from now on.
    pub fn password_of(&self, name: &str, password: &str) -> &Self {
        self.script()
            .passwords
            .insert(name.to_owned(), password.to_owned());
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<TurnCall> {
        self.script().calls.clone()
    }

    /// The events so far, in order.
    pub fn events(&self) -> Vec<TurnEvent> {
        self.script()
            .calls
            .iter()
            .filter_map(|c| match c {
                TurnCall::Event(e) => Some(e.clone()),
                TurnCall::Password { .. } => None,
            })
            .collect()
    }

    fn script(&self) -> MutexGuard<'_, TurnScript> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TurnHooks for RecordingTurnHooks {
    fn password(&self, name: &str, addr: SocketAddr) -> BoxFuture<'_, Option<String>> {
        let mut script = self.script();
        script.calls.push(TurnCall::Password {
            name: name.to_owned(),
            addr,
        });
        let password = script.passwords.get(name).cloned();
        Box::pin(std::future::ready(password))
    }

    fn event(&self, event: TurnEvent) {
        self.script().calls.push(TurnCall::Event(event));
    }

    fn dropped(&self) -> u64 {
        0
    }
}

impl std::fmt::Debug for RecordingTurnHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingTurnHooks")
            .field("calls", &self.script().calls)
            .finish()
    }
}
