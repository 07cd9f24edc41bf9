//! Relaying (RFC 8656 §10–12): Send indications and ChannelData from the client, datagrams
//! from peers, and the per-allocation byte rate limit.

use super::*;

impl Server {
    /// A datagram from `peer` on the relay socket bound at `relay`: relayed to the client as
    /// ChannelData (when a channel is bound to the peer) or a Data indication, if the peer's IP
    /// has a permission; dropped and counted otherwise.
    pub fn handle_peer(&mut self, now: Instant, relay: SocketAddr, peer: SocketAddr, bytes: &[u8]) {
        self.touch(now);
        let rate = self.config.bytes_per_second_per_allocation;
        let Some(&transport) = self.by_relay.get(&relay) else {
            self.discard(peer, DiscardReason::NoAllocation);
            return;
        };
        let Some(a) = self.allocations.get_mut(&transport) else {
            self.discard(peer, DiscardReason::NoAllocation);
            return;
        };
        if !a.permitted(now, peer.ip()) {
            self.discard(peer, DiscardReason::NoPermission);
            return;
        }
        if !take_tokens(&mut a.bucket, rate, now, bytes.len()) {
            self.stats.rate_limited += 1;
            self.handler
                .message_discarded(peer, DiscardReason::RateLimited);
            return;
        }
        let out = match a.channel_of(now, peer) {
            Some(channel) => {
                let mut out = Vec::with_capacity(bytes.len() + 8);
                let cd = ChannelData {
                    channel,
                    data: bytes,
                };
                if cd
                    .encode(transport.protocol == Protocol::Tcp, &mut out)
                    .is_err()
                {
                    self.discard(peer, DiscardReason::Malformed);
                    return;
                }
                out
            }
            None => {
                let mut tid = [0u8; 12];
                tid.copy_from_slice(&self.mac(b"tid", &self.next_id.to_be_bytes())[..12]);
                self.next_id += 1;
                let mut b =
                    MessageBuilder::new(Class::Indication, Method::Data, TransactionId(tid));
                let built = b
                    .add(&Attribute::XorPeerAddress(peer))
                    .and_then(|b| b.add(&Attribute::Data(bytes.to_vec())))
                    .is_ok();
                if !built {
                    self.discard(peer, DiscardReason::Malformed);
                    return;
                }
                b.finish()
            }
        };
        self.stats.relayed_packets += 1;
        self.stats.relayed_bytes += bytes.len() as u64;
        self.out.push_back(Output::ToClient {
            to: transport,
            bytes: out,
        });
    }

    pub(super) fn send_indication(&mut self, now: Instant, from: Transport, msg: &Message) {
        let rate = self.config.bytes_per_second_per_allocation;
        let (Some(peer), Some(Attribute::Data(data))) =
            (msg.xor_peer_addresses().next(), msg.attribute(attr::DATA))
        else {
            self.discard(from.client, DiscardReason::Malformed);
            return;
        };
        let Some(a) = self.allocations.get(&from) else {
            self.discard(from.client, DiscardReason::NoAllocation);
            return;
        };
        if !a.permitted(now, peer.ip()) {
            self.discard(from.client, DiscardReason::NoPermission);
            return;
        }
        // Permissions are per IP (RFC 8656 §9), but the policy also looks at the port: a
        // permission for one of the server's own addresses, granted for a relay's port, must
        // not carry packets to its other ports (ssh, DNS, a database).
        if self.check_peer(peer).is_err() {
            self.discard(from.client, DiscardReason::PeerRefused);
            return;
        }
        let Some(a) = self.allocations.get_mut(&from) else {
            return;
        };
        let relay = a.relay;
        if !take_tokens(&mut a.bucket, rate, now, data.len()) {
            self.stats.rate_limited += 1;
            self.handler
                .message_discarded(from.client, DiscardReason::RateLimited);
            return;
        }
        if !self
            .handler
            .before_relay_send(from.client, peer, data.len())
        {
            self.discard(from.client, DiscardReason::Vetoed);
            return;
        }
        self.relay_to_peer(relay, peer, data.clone());
    }

    pub(super) fn client_channel_data(
        &mut self,
        now: Instant,
        from: Transport,
        cd: ChannelData<'_>,
    ) {
        let rate = self.config.bytes_per_second_per_allocation;
        let found = match self.allocations.get_mut(&from) {
            None => Err(DiscardReason::NoAllocation),
            Some(a) => match a.channels.get(&cd.channel) {
                Some(c) if c.expires > now => {
                    let peer = c.peer;
                    if !a.permitted(now, peer.ip()) {
                        Err(DiscardReason::NoPermission)
                    } else if !take_tokens(&mut a.bucket, rate, now, cd.data.len()) {
                        Err(DiscardReason::RateLimited)
                    } else {
                        Ok((a.relay, peer, c.own))
                    }
                }
                _ => Err(DiscardReason::UnboundChannel),
            },
        };
        let found = found.and_then(|(relay, peer, own)| {
            // A channel to one of the server's own addresses was allowed for its port, which
            // may since have stopped being a relay's.
            if own && self.check_peer(peer).is_err() {
                Err(DiscardReason::PeerRefused)
            } else {
                Ok((relay, peer))
            }
        });
        let found = found.and_then(|(relay, peer)| {
            if self
                .handler
                .before_relay_channel_data(from.client, peer, cd.channel, cd.data.len())
            {
                Ok((relay, peer))
            } else {
                Err(DiscardReason::Vetoed)
            }
        });
        match found {
            Ok((relay, peer)) => self.relay_to_peer(relay, peer, cd.data.to_vec()),
            Err(reason) => {
                if reason == DiscardReason::RateLimited {
                    self.stats.rate_limited += 1;
                } else {
                    self.stats.discarded += 1;
                }
                self.handler
                    .channel_data_discarded(from.client, cd.channel, reason);
            }
        }
    }

    pub(super) fn relay_to_peer(&mut self, relay: SocketAddr, peer: SocketAddr, bytes: Vec<u8>) {
        self.stats.relayed_packets += 1;
        self.stats.relayed_bytes += bytes.len() as u64;
        self.out.push_back(Output::ToPeer { relay, peer, bytes });
    }
}

/// Takes `len` tokens from a bucket refilled at `rate` bytes per second, holding at most one
/// second's worth. `rate` 0 = unlimited.
fn take_tokens(bucket: &mut Bucket, rate: u64, now: Instant, len: usize) -> bool {
    if rate == 0 {
        return true;
    }
    let elapsed = now.saturating_duration_since(bucket.last);
    let refill = u64::try_from(elapsed.as_micros().saturating_mul(u128::from(rate)) / 1_000_000)
        .unwrap_or(u64::MAX);
    if refill > 0 {
        bucket.tokens = bucket.tokens.saturating_add(refill).min(rate);
        bucket.last = now;
    }
    let len = len as u64;
    if bucket.tokens >= len {
        bucket.tokens -= len;
        true
    } else {
        false
    }
}
