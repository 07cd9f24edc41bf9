//! The fast path's publications (see [Fast path](super#fast-path)): which channels the driver
//! may relay itself, and until when.

use super::*;

impl Server {
    /// Whether a channel of `transport` is handed to the driver.
    fn publishable(&self, transport: Transport, own: bool) -> bool {
        self.config.publish_channels
            && self.config.bytes_per_second_per_allocation == 0
            && transport.protocol == Protocol::Udp
            && !own
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
            if !self.publishable(transport, c.own) {
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

    /// Withdraws a channel that ended (expiry, or its allocation deleted).
    pub(super) fn withdraw(
        &mut self,
        transport: Transport,
        relay: SocketAddr,
        channel: u16,
        peer: SocketAddr,
        own: bool,
    ) {
        if self.publishable(transport, own) {
            self.out.push_back(Output::WithdrawChannel {
                transport,
                relay,
                channel,
                peer,
            });
        }
    }
}
