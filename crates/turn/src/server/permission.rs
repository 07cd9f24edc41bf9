//! CreatePermission and ChannelBind (RFC 8656 §9, §12): the peer checks and what they
//! install.

use super::*;

impl Server {
    /// Checks a peer against the relay's family and the peer policy; answers 443 or 403.
    pub(super) fn peer_ok(
        &mut self,
        reply: Reply<'_>,
        relay: SocketAddr,
        peer: SocketAddr,
    ) -> bool {
        if family_of(peer) != family_of(relay) {
            self.error(reply, 443, Vec::new());
            return false;
        }
        if let Err(why) = self.check_peer(peer) {
            tracing::debug!(%peer, "peer refused: {why}");
            self.error(reply, 403, Vec::new());
            return false;
        }
        true
    }

    /// [`policy::check_peer`] with this server's facts: its own addresses are
    /// [`Config::own_addresses`], [`Config::external_ip`] and the relays' own addresses; its
    /// own ports are the relays' and [`Config::own_media_ports`].
    pub(super) fn check_peer(&self, peer: SocketAddr) -> Result<(), policy::Refusal> {
        // Another allocation's relay, exactly: a relay of this server whatever its range.
        if self.by_relay.contains_key(&peer) {
            return Ok(());
        }
        let own_ip = |ip: IpAddr| {
            self.config.own_addresses.contains(&ip) || self.config.external_ip == Some(ip)
        };
        let own_port = |port: u16| {
            self.relay_ports.contains_key(&port) || self.config.own_media_ports.contains(&port)
        };
        policy::check_peer(peer, &self.config.allow_peers, own_ip, own_port)
    }

    /// True when the peer policy admits `peer` whatever the server's own ports are: a verdict
    /// no relay's coming or going can change, so a channel to it need not be checked per
    /// packet (the fast path relays it).
    pub(super) fn admitted_for_any_port(&self, peer: SocketAddr) -> bool {
        let own_ip = |ip: IpAddr| {
            self.config.own_addresses.contains(&ip) || self.config.external_ip == Some(ip)
        };
        policy::check_peer(peer, &self.config.allow_peers, own_ip, |_| false).is_ok()
    }

    /// True when `peer` is a relay or one of the server's own addresses (which the policy
    /// allows for the port alone, so a channel to it is checked again per packet).
    pub(super) fn is_own_address(&self, peer: SocketAddr) -> bool {
        let ip = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer.ip(), IpAddr::V4),
            ip => ip,
        };
        self.by_relay.contains_key(&peer)
            || self.config.own_addresses.contains(&ip)
            || self.config.external_ip == Some(ip)
    }

    pub(super) fn create_permission(&mut self, now: Instant, reply: Reply<'_>, auth: &Auth) {
        let Some(t) = self.allocation_for(reply, auth) else {
            return;
        };
        let peers: Vec<SocketAddr> = reply.req.xor_peer_addresses().collect();
        if peers.is_empty() {
            self.error(reply, 400, Vec::new());
            return;
        }
        let relay = self.allocations.get(&t).map_or(t.server, |a| a.relay);
        for &peer in &peers {
            if !self.peer_ok(reply, relay, peer) {
                return;
            }
        }
        let expires = now + self.config.permission_lifetime;
        if let Some(a) = self.allocations.get_mut(&t) {
            for peer in &peers {
                a.permissions.insert(peer.ip(), expires);
            }
        }
        self.success(reply, Vec::new());
        self.publish(t);
        for peer in peers {
            self.handler
                .permission_created(&auth.username, t.client, peer);
        }
    }

    pub(super) fn channel_bind(&mut self, now: Instant, reply: Reply<'_>, auth: &Auth) {
        let Some(t) = self.allocation_for(reply, auth) else {
            return;
        };
        let channel = match reply.req.attribute(attr::CHANNEL_NUMBER) {
            Some(Attribute::ChannelNumber(c)) if channel::is_valid_channel(*c) => *c,
            other => {
                tracing::debug!(?other, "ChannelBind refused: bad or missing CHANNEL-NUMBER");
                self.error(reply, 400, Vec::new());
                return;
            }
        };
        let Some(peer) = reply.req.xor_peer_addresses().next() else {
            tracing::debug!("ChannelBind refused: no XOR-PEER-ADDRESS");
            self.error(reply, 400, Vec::new());
            return;
        };
        let relay = self.allocations.get(&t).map_or(t.server, |a| a.relay);
        if !self.peer_ok(reply, relay, peer) {
            return;
        }
        let own = self.is_own_address(peer);
        let conflict = self.allocations.get(&t).is_some_and(|a| {
            a.channels
                .iter()
                .any(|(&n, c)| (n == channel) != (c.peer == peer))
        });
        if conflict {
            tracing::debug!(channel, %peer, "ChannelBind refused: channel or peer bound otherwise");
            self.error(reply, 400, Vec::new());
            return;
        }
        let channel_expires = now + self.config.channel_lifetime;
        let permission_expires = now + self.config.permission_lifetime;
        if let Some(a) = self.allocations.get_mut(&t) {
            a.channels.insert(
                channel,
                Channel {
                    peer,
                    expires: channel_expires,
                    own,
                },
            );
            let p = a.permissions.entry(peer.ip()).or_insert(permission_expires);
            *p = (*p).max(permission_expires);
        }
        self.success(reply, Vec::new());
        self.publish(t);
        self.handler
            .channel_bound(&auth.username, t.client, channel, peer);
    }
}
