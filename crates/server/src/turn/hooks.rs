//! The seed 000 web hooks of the TURN relay: `GET {hook_url}/password` answered off the owner
//! task, and the [`WebhookHandler`] turning the state machine's notifications into
//! `POST {hook_url}/events` bodies.

use super::*;
use ::turn::handler::{Authorization, Handler};
use serde_json::json;

/// Events waiting to be POSTed; past it they are dropped.
const EVENT_QUEUE: usize = 1024;

/// The seed 000 hooks: `GET {hook_url}/password`, `POST {hook_url}/events`.
pub(super) struct Hooks {
    client: reqwest::Client,
    base: String,
    realm: String,
    rid: String,
}

impl Hooks {
    /// The hook client, and the queue of `POST /events` bodies drained by a sender task.
    pub(super) fn start(
        url: &str,
        realm: &str,
        timeout: Duration,
    ) -> anyhow::Result<(Hooks, mpsc::Sender<serde_json::Value>)> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("TURN hook HTTP client")?;
        let rid: String = {
            use rand::Rng;
            rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(16)
                .map(char::from)
                .collect()
        };
        let base = url.trim_end_matches('/').to_owned();
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(
            post_events(
                client.clone(),
                format!("{base}/events"),
                realm.to_owned(),
                rid.clone(),
                rx,
            )
            .instrument(tracing::Span::current()),
        );
        let hooks = Hooks {
            client,
            base,
            realm: realm.to_owned(),
            rid,
        };
        Ok((hooks, events))
    }

    /// Asks the backend for `name`'s password off the owner task; the answer comes back on
    /// `answer`. Anything but a 200 (or no answer in time) is an unknown user.
    pub(super) fn password(
        &self,
        request: AuthRequestId,
        name: String,
        client: SocketAddr,
        answer: mpsc::Sender<(AuthRequestId, Option<String>)>,
    ) {
        let call = self
            .client
            .get(format!("{}/password", self.base))
            .query(&[("addr", client.to_string()), ("name", name)])
            .header("realm", &self.realm)
            .header("rid", &self.rid);
        tokio::spawn(
            async move {
                let password = match call.send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::OK => match r.text().await {
                        Ok(body) => Some(body.trim().to_owned()),
                        Err(e) => {
                            tracing::warn!("TURN password hook body: {e}");
                            None
                        }
                    },
                    Ok(r) => {
                        tracing::debug!("TURN password hook answered {}", r.status());
                        None
                    }
                    Err(e) => {
                        tracing::warn!("TURN password hook failed: {e}");
                        None
                    }
                };
                let _ = answer.send((request, password)).await;
            }
            .instrument(tracing::Span::current()),
        );
    }
}

/// Sends queued events one at a time, in order.
async fn post_events(
    client: reqwest::Client,
    url: String,
    realm: String,
    rid: String,
    mut rx: mpsc::Receiver<serde_json::Value>,
) {
    let mut failures = 0u64;
    while let Some(body) = rx.recv().await {
        let sent = client
            .post(&url)
            .header("realm", &realm)
            .header("rid", &rid)
            .json(&body)
            .send()
            .await;
        let problem = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("status {}", r.status())),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            failures += 1;
            if failures % WARN_EVERY == 1 {
                tracing::warn!(failures, "TURN events hook failed: {problem}");
            }
        }
    }
}

/// The server's webhook as a [`Handler`] of the state machine: the lifecycle notifications
/// become seed 000's `POST {hook_url}/events` bodies, queued without waiting (a full queue
/// drops the event, counted, with a warning once per [`WARN_EVERY`]), and passwords are asked
/// of `GET {hook_url}/password` when a hook is configured. Vetoes and discards keep the
/// accepting defaults.
pub(super) struct WebhookHandler {
    /// The bounded queue of the sender task; `None` without a hook URL (events go nowhere).
    events: Option<mpsc::Sender<serde_json::Value>>,
    /// Events dropped because the queue was full.
    dropped: u64,
    /// A password hook is configured: unknown users are asked of it.
    password_hook: bool,
}

impl WebhookHandler {
    pub(super) fn new(
        events: Option<mpsc::Sender<serde_json::Value>>,
        password_hook: bool,
    ) -> Self {
        WebhookHandler {
            events,
            dropped: 0,
            password_hook,
        }
    }

    /// Queues the body `event` builds; never waits.
    fn queue(&mut self, event: impl FnOnce() -> serde_json::Value) {
        let Some(events) = &self.events else {
            return;
        };
        if events.try_send(event()).is_err() {
            self.dropped += 1;
            if self.dropped % WARN_EVERY == 1 {
                tracing::warn!(
                    dropped = self.dropped,
                    "TURN events backend not keeping up: events dropped"
                );
            }
        }
    }
}

impl Handler for WebhookHandler {
    fn password(&mut self, username: &str, realm: &str, client: SocketAddr) -> Authorization {
        let _ = (username, realm, client);
        if self.password_hook {
            Authorization::Ask
        } else {
            Authorization::Unknown
        }
    }

    fn binding(&mut self, client: SocketAddr) {
        self.queue(|| json!({"kind": "binding", "addr": client.to_string()}));
    }

    fn allocation_created(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        self.queue(|| {
            json!({
                "kind": "allocated", "name": name, "addr": client.to_string(),
                "port": relay.port(),
            })
        });
    }

    fn refreshed(&mut self, name: &str, client: SocketAddr, expiration_secs: u32) {
        self.queue(|| {
            json!({
                "kind": "refresh", "name": name, "addr": client.to_string(),
                "expiration": expiration_secs,
            })
        });
    }

    fn permission_created(&mut self, name: &str, client: SocketAddr, peer: SocketAddr) {
        self.queue(|| {
            json!({
                "kind": "create_permission", "name": name, "addr": client.to_string(),
                "relay": peer.port(),
            })
        });
    }

    fn channel_bound(&mut self, name: &str, client: SocketAddr, channel: u16, peer: SocketAddr) {
        let _ = peer;
        self.queue(|| {
            json!({
                "kind": "channel_bind", "name": name, "addr": client.to_string(),
                "channel": channel,
            })
        });
    }

    fn allocation_deleted(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        let _ = relay;
        self.queue(|| json!({"kind": "abort", "name": name, "addr": client.to_string()}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(rx: &mut mpsc::Receiver<serde_json::Value>) -> Vec<serde_json::Value> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn webhook_bodies_follow_seed_000() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut h = WebhookHandler::new(Some(tx), true);
        let client: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        let relay: SocketAddr = "198.51.100.1:50000".parse().expect("addr");
        let peer: SocketAddr = "203.0.113.9:6000".parse().expect("addr");
        h.binding(client);
        h.allocation_created("alice", client, relay);
        h.refreshed("alice", client, 600);
        h.permission_created("alice", client, peer);
        h.channel_bound("alice", client, 0x4000, peer);
        h.allocation_deleted("alice", client, relay);
        let addr = "192.0.2.7:5000";
        assert_eq!(
            drained(&mut rx),
            vec![
                json!({"kind": "binding", "addr": addr}),
                json!({"kind": "allocated", "name": "alice", "addr": addr, "port": 50000}),
                json!({"kind": "refresh", "name": "alice", "addr": addr, "expiration": 600}),
                json!({"kind": "create_permission", "name": "alice", "addr": addr, "relay": 6000}),
                json!({"kind": "channel_bind", "name": "alice", "addr": addr, "channel": 0x4000}),
                json!({"kind": "abort", "name": "alice", "addr": addr}),
            ]
        );
        assert_eq!(h.dropped, 0);
    }

    #[test]
    fn webhook_drops_when_full_and_asks_only_with_a_hook() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut h = WebhookHandler::new(Some(tx), true);
        let client: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        h.binding(client);
        h.binding(client);
        h.binding(client);
        assert_eq!((drained(&mut rx).len(), h.dropped), (1, 2));
        assert_eq!(h.password("u", "r", client), Authorization::Ask);
        let mut none = WebhookHandler::new(None, false);
        none.binding(client);
        assert_eq!(none.dropped, 0);
        assert_eq!(none.password("u", "r", client), Authorization::Unknown);
        // Vetoes keep the accepting defaults.
        assert!(none.before_allocate("u", client, client));
    }
}
