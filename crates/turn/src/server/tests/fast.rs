//! The fast path's publications (`Config::publish_channels`): what is published, with which
//! deadline, when it is withdrawn, and what is never published.

use super::*;

fn fast() -> Config {
    Config {
        publish_channels: true,
        ..config()
    }
}

/// The publications among `outs`, as (channel, peer, seconds from `base` to the deadline).
fn published(outs: &[Output], base: Instant) -> Vec<(u16, SocketAddr, u64)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::PublishChannel {
                channel,
                peer,
                expires,
                ..
            } => Some((*channel, *peer, expires.duration_since(base).as_secs())),
            _ => None,
        })
        .collect()
}

fn withdrawn(outs: &[Output]) -> Vec<(u16, SocketAddr)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::WithdrawChannel { channel, peer, .. } => Some((*channel, *peer)),
            _ => None,
        })
        .collect()
}

impl Pair {
    /// An authenticated request's outputs (its response included).
    fn request(&mut self, method: Method, attrs: &[Attribute]) -> Vec<Output> {
        let (_, raw) = self.authed(method, attrs);
        self.input(self.client, &raw)
    }

    fn bind_outputs(&mut self, channel: u16, peer: SocketAddr) -> Vec<Output> {
        self.request(
            Method::ChannelBind,
            &[
                Attribute::ChannelNumber(channel),
                Attribute::XorPeerAddress(peer),
            ],
        )
    }
}

#[test]
fn a_bound_channel_is_published_with_its_earliest_deadline() {
    let mut p = Pair::new(fast());
    let relay = p.allocate();
    let base = p.now;
    let peer = addr(PEER);
    let outs = p.bind_outputs(0x4001, peer);
    // Channel 600 s, permission 300 s, allocation 600 s (the default lifetime).
    assert_eq!(published(&outs, base), vec![(0x4001, peer, 300)]);
    let publication = outs
        .iter()
        .find(|o| matches!(o, Output::PublishChannel { .. }))
        .cloned();
    assert_eq!(
        publication,
        Some(Output::PublishChannel {
            transport: p.client,
            relay,
            channel: 0x4001,
            peer,
            expires: base + Duration::from_secs(300),
        })
    );
    // A CreatePermission 100 s later moves the deadline with the permission.
    p.advance(100);
    let outs = p.request(Method::CreatePermission, &[Attribute::XorPeerAddress(peer)]);
    assert_eq!(published(&outs, base), vec![(0x4001, peer, 400)]);
    // A permission for another IP republishes the channels too (same deadline here).
    let outs = p.request(
        Method::CreatePermission,
        &[Attribute::XorPeerAddress(addr("8.8.4.5:1"))],
    );
    assert_eq!(published(&outs, base), vec![(0x4001, peer, 400)]);
    // A Refresh to 120 s makes the allocation the earliest.
    let outs = p.request(Method::Refresh, &[Attribute::Lifetime(120)]);
    assert_eq!(published(&outs, base), vec![(0x4001, peer, 220)]);
    // Relaying through the server still works on a published channel.
    assert_eq!(
        p.input(p.client, &[0x40, 0x01, 0, 1, 7]),
        vec![Output::ToPeer {
            relay,
            peer,
            bytes: vec![7]
        }]
    );
}

#[test]
fn expiry_and_deletion_withdraw_the_channel() {
    let mut p = Pair::new(Config {
        channel_lifetime: Duration::from_secs(100),
        ..fast()
    });
    p.allocate();
    let (peer, peer2) = (addr(PEER), addr("8.8.4.5:1"));
    p.bind_outputs(0x4000, peer);
    p.advance(50);
    p.bind_outputs(0x4002, peer2);
    // The first channel's end withdraws it alone.
    let outs = p.advance(50);
    assert_eq!(withdrawn(&outs), vec![(0x4000, peer)]);
    assert!(withdrawn(&p.advance(10)).is_empty());
    // A Refresh to 0 withdraws what is left before the relay is released.
    let outs = p.request(Method::Refresh, &[Attribute::Lifetime(0)]);
    assert_eq!(withdrawn(&outs), vec![(0x4002, peer2)]);
    let w = outs
        .iter()
        .position(|o| matches!(o, Output::WithdrawChannel { .. }));
    let r = outs
        .iter()
        .position(|o| matches!(o, Output::ReleaseRelay { .. }));
    assert!(w < r, "{outs:?}");
}

#[test]
fn nothing_is_published_without_the_flag_over_tcp_with_a_rate_limit_or_to_own_addresses() {
    let peer = addr(PEER);
    // Flag off (the default).
    let mut p = Pair::new(config());
    p.allocate();
    assert!(published(&p.bind_outputs(0x4000, peer), p.now).is_empty());
    let outs = p.request(Method::Refresh, &[Attribute::Lifetime(0)]);
    assert!(withdrawn(&outs).is_empty());
    // TCP client.
    let mut p = Pair::new(fast());
    p.client.protocol = Protocol::Tcp;
    p.allocate();
    assert!(published(&p.bind_outputs(0x4000, peer), p.now).is_empty());
    // Rate limit.
    let mut p = Pair::new(Config {
        bytes_per_second_per_allocation: 1000,
        ..fast()
    });
    p.allocate();
    assert!(published(&p.bind_outputs(0x4000, peer), p.now).is_empty());
    // A peer on one of the server's own addresses (allowed for a relay's port).
    let mut p = Pair::new(Config {
        own_addresses: vec![addr("8.8.4.4:0").ip()],
        ..fast()
    });
    let relay = p.allocate();
    let own_relay = SocketAddr::new(addr(PEER).ip(), relay.port());
    let outs = p.bind_outputs(0x4000, own_relay);
    assert!(
        outs.iter().any(|o| matches!(o, Output::ToClient { .. })),
        "{outs:?}"
    );
    assert!(published(&outs, p.now).is_empty(), "{outs:?}");
    // The same, listed in `allow_peers`: admitted whatever the ports, so published.
    let mut p = Pair::new(Config {
        own_addresses: vec![addr("8.8.4.4:0").ip()],
        allow_peers: vec![Cidr::new(addr("8.8.4.4:0").ip(), 32).unwrap()],
        ..fast()
    });
    let relay = p.allocate();
    let own_relay = SocketAddr::new(addr(PEER).ip(), relay.port());
    let outs = p.bind_outputs(0x4000, own_relay);
    assert_eq!(published(&outs, p.now), vec![(0x4000, own_relay, 300)]);
}

#[test]
fn counts_from_the_driver_add_to_the_stats() {
    let mut p = Pair::new(fast());
    let relay = p.allocate();
    let peer = addr(PEER);
    p.bind_outputs(0x4000, peer);
    p.input(p.client, &[0x40, 0x00, 0, 2, 1, 2]);
    p.s.count_relayed(10, 1000);
    let stats = p.s.stats();
    assert_eq!((stats.relayed_packets, stats.relayed_bytes), (11, 1002));
    p.s.handle_peer(p.now, relay, peer, b"abc");
    p.drain();
    assert_eq!(p.s.stats().relayed_bytes, 1005);
}
