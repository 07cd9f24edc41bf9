//! The fast path's publications (see [Fast path](super#fast-path)): which channels the driver
//! may relay itself, and until when.

use super::*;

impl Server {
    /// Whether channels of `transport` are handed to the driver at all.
    fn publishing(&self, transport: Transport) -> bool {
        self.config.publish_channels
            && self.config.bytes_per_second_per_allocation == 0
            && transport.protocol == Protocol::Udp
    }

    /// Whether a channel of `transport` to `peer` is handed to the driver. A channel to one of
    /// the server's own addresses (`own`) is checked against the policy per packet, since it
    /// may have been allowed for a port that stops being a relay's; it is published only when
    /// the policy admits the peer whatever the server's ports are (`allow_peers` lists it).
    fn publishable(&self, transport: Transport, own: bool, peer: SocketAddr) -> bool {
        self.publishing(transport) && (!own || self.admitted_for_any_port(peer))
    }

    /// Publishes every channel of the allocation of `transport` with its deadline now: after
    /// anything that moved a channel's, a permission's or the allocation's expiry. A channel
    /// whose peer has no permission left is not published (its last publication has passed its
    /// deadline already).
    pub(super) fn publish(&mut self, transport: Transport) {
        let Some(a) = self.allocations.get(&transport) else {
            return;
        };
        let mut publications = Vec::new();
        for (&channel, c) in &a.channels {
            if !self.publishable(transport, c.own, c.peer) {
                continue;
            }
            let Some(&permission) = a.permissions.get(&c.peer.ip()) else {
                continue;
            };
            publications.push(Output::PublishChannel {
                transport,
                relay: a.relay,
                channel,
                peer: c.peer,
                expires: c.expires.min(permission).min(a.expires),
            });
        }
        // One order whatever the map's: the channel number.
        publications.sort_by_key(|o| match o {
            Output::PublishChannel { channel, .. } => *channel,
            _ => 0,
        });
        self.out.extend(publications);
    }

    /// Withdraws a channel that ended (expiry, or its allocation deleted). Sent for every
    /// channel of a client whose channels are published, whether or not this one was (the
    /// policy's facts may have changed since): the driver ignores what it does not hold.
    pub(super) fn withdraw(
        &mut self,
        transport: Transport,
        relay: SocketAddr,
        channel: u16,
        peer: SocketAddr,
    ) {
        if self.publishing(transport) {
            self.out.push_back(Output::WithdrawChannel {
                transport,
                relay,
                channel,
                peer,
            });
        }
    }
}
