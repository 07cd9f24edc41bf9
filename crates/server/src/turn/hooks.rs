//! The state machine's [`Handler`] wired to the seed 000 web hooks ([`hooks::TurnHooks`]):
//! lifecycle notifications become [`TurnEvent`]s, and unknown users are asked of the password
//! hook when one is configured. The HTTP side (client, queue, headers) is in the hooks crate.

use super::*;
use ::hooks::{TurnEvent, TurnHooks};
use ::turn::handler::{Authorization, Handler};

/// The server's webhook as a [`Handler`] of the state machine. Events are handed to the hook
/// without waiting (its queue drops what a slow backend cannot take); passwords are asked of
/// `GET {hook_url}/password` by the owner task on [`Authorization::Ask`]. Vetoes and discards
/// keep the accepting defaults.
pub(super) struct WebhookHandler {
    /// `None` without a hook URL: no `POST /events` and nobody is asked for passwords.
    hooks: Option<Arc<dyn TurnHooks>>,
    /// Seed 004's events (`turn` envelopes); a no-op when no provider is configured.
    events: events::Events,
}

impl WebhookHandler {
    pub(super) fn new(hooks: Option<Arc<dyn TurnHooks>>, events: events::Events) -> Self {
        WebhookHandler { hooks, events }
    }

    /// Hands the event `event` builds to the hook and to the events; builds nothing when
    /// neither takes it.
    fn event(&self, event: impl FnOnce() -> TurnEvent) {
        if self.hooks.is_none() && !self.events.enabled() {
            return;
        }
        let event = event();
        self.events.turn(&event);
        if let Some(hooks) = &self.hooks {
            hooks.event(event);
        }
    }
}

impl Handler for WebhookHandler {
    fn password(&mut self, username: &str, realm: &str, client: SocketAddr) -> Authorization {
        let _ = (username, realm, client);
        if self.hooks.is_some() {
            Authorization::Ask
        } else {
            Authorization::Unknown
        }
    }

    fn binding(&mut self, client: SocketAddr) {
        self.event(|| TurnEvent::Binding { addr: client });
    }

    fn allocation_created(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        self.event(|| TurnEvent::Allocated {
            name: name.to_owned(),
            addr: client,
            port: relay.port(),
        });
    }

    fn refreshed(&mut self, name: &str, client: SocketAddr, expiration_secs: u32) {
        self.event(|| TurnEvent::Refresh {
            name: name.to_owned(),
            addr: client,
            expiration: expiration_secs,
        });
    }

    fn permission_created(&mut self, name: &str, client: SocketAddr, peer: SocketAddr) {
        self.event(|| TurnEvent::CreatePermission {
            name: name.to_owned(),
            addr: client,
            relay: peer.port(),
        });
    }

    fn channel_bound(&mut self, name: &str, client: SocketAddr, channel: u16, peer: SocketAddr) {
        let _ = peer;
        self.event(|| TurnEvent::ChannelBind {
            name: name.to_owned(),
            addr: client,
            channel,
        });
    }

    fn allocation_deleted(&mut self, name: &str, client: SocketAddr, relay: SocketAddr) {
        let _ = relay;
        self.event(|| TurnEvent::Abort {
            name: name.to_owned(),
            addr: client,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::hooks::RecordingTurnHooks;

    #[test]
    fn notifications_become_seed_000_events() {
        let recording = Arc::new(RecordingTurnHooks::new());
        let mut h = WebhookHandler::new(
            Some(Arc::clone(&recording) as Arc<dyn TurnHooks>),
            events::Events::disabled(),
        );
        let client: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        let relay: SocketAddr = "198.51.100.1:50000".parse().expect("addr");
        let peer: SocketAddr = "203.0.113.9:6000".parse().expect("addr");
        h.binding(client);
        h.allocation_created("alice", client, relay);
        h.refreshed("alice", client, 600);
        h.permission_created("alice", client, peer);
        h.channel_bound("alice", client, 0x4000, peer);
        h.allocation_deleted("alice", client, relay);
        let name = || "alice".to_owned();
        assert_eq!(
            recording.events(),
            vec![
                TurnEvent::Binding { addr: client },
                TurnEvent::Allocated {
                    name: name(),
                    addr: client,
                    port: 50000
                },
                TurnEvent::Refresh {
                    name: name(),
                    addr: client,
                    expiration: 600
                },
                TurnEvent::CreatePermission {
                    name: name(),
                    addr: client,
                    relay: 6000
                },
                TurnEvent::ChannelBind {
                    name: name(),
                    addr: client,
                    channel: 0x4000
                },
                TurnEvent::Abort {
                    name: name(),
                    addr: client
                },
            ]
        );
        assert_eq!(h.password("u", "r", client), Authorization::Ask);
    }

    #[test]
    fn without_a_hook_nobody_is_asked() {
        let client: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        let mut none = WebhookHandler::new(None, events::Events::disabled());
        none.binding(client);
        assert_eq!(none.password("u", "r", client), Authorization::Unknown);
        // Vetoes keep the accepting defaults.
        assert!(none.before_allocate("u", client, client));
    }
}
