//! The ChannelData fast path: the channels the state machine published
//! ([`Output::PublishChannel`]), read by the UDP listener task and the relay readers, which
//! relay ChannelData of those channels themselves, without the owner task.
//!
//! The owner is the only writer: it carries out `PublishChannel`, `WithdrawChannel` and
//! `ReleaseRelay`. The readers only look up, relay what they find before its deadline and
//! count it; everything else goes to the owner as before, and the state machine decides. The
//! tables hold one entry per published channel (two maps, one per direction), so they are
//! bounded by the state machine's channels.
//!
//! std `RwLock`s: the readers hold a read lock only for a map lookup and a copy of the entry
//! (never across an `.await` or a syscall), the owner writes only on channel changes.

use super::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

/// Where a client's ChannelData on a published channel goes.
struct ToPeer {
    relay: SocketAddr,
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    expires: std::time::Instant,
}

/// Where a datagram from a peer with a published channel goes.
#[derive(Clone, Copy)]
struct ToClient {
    client: SocketAddr,
    channel: u16,
    expires: std::time::Instant,
}

/// The published channels of one TURN listener, and what the fast path relayed.
#[derive(Default)]
pub(super) struct FastPath {
    /// (client, channel number) → relay socket and peer. Only UDP clients of this listener
    /// are published, so the client address names the 5-tuple.
    to_peer: RwLock<HashMap<(SocketAddr, u16), ToPeer>>,
    /// (relay, peer) → client and channel number.
    to_client: RwLock<HashMap<(SocketAddr, SocketAddr), ToClient>>,
    /// Packets relayed by the fast path not yet handed to the state machine's counters.
    packets: AtomicU64,
    /// Their payload bytes.
    bytes: AtomicU64,
}

/// The state machine's clock (see [`clocks`]).
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl FastPath {
    /// Carries out [`Output::PublishChannel`]: `client`'s ChannelData on `channel` goes to
    /// `peer` from `socket` (the relay at `relay`), and `peer`'s datagrams on `relay` come
    /// back on `channel`, until `expires`.
    pub(super) fn publish(
        &self,
        client: SocketAddr,
        relay: SocketAddr,
        socket: Arc<UdpSocket>,
        channel: u16,
        peer: SocketAddr,
        expires: std::time::Instant,
    ) {
        // Lock order: `to_peer`, then `to_client` (the readers take one at a time).
        let mut to_peer = self.to_peer.write().unwrap_or_else(PoisonError::into_inner);
        let mut to_client = self
            .to_client
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = ToPeer {
            relay,
            socket,
            peer,
            expires,
        };
        if let Some(old) = to_peer.insert((client, channel), entry) {
            if (old.relay, old.peer) != (relay, peer) {
                remove_to_client(&mut to_client, old.relay, old.peer, client, channel);
            }
        }
        to_client.insert(
            (relay, peer),
            ToClient {
                client,
                channel,
                expires,
            },
        );
    }

    /// Carries out [`Output::WithdrawChannel`].
    pub(super) fn withdraw(
        &self,
        client: SocketAddr,
        relay: SocketAddr,
        channel: u16,
        peer: SocketAddr,
    ) {
        let mut to_peer = self.to_peer.write().unwrap_or_else(PoisonError::into_inner);
        let mut to_client = self
            .to_client
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if to_peer
            .get(&(client, channel))
            .is_some_and(|e| (e.relay, e.peer) == (relay, peer))
        {
            to_peer.remove(&(client, channel));
        }
        remove_to_client(&mut to_client, relay, peer, client, channel);
    }

    /// Forgets every channel through `relay` (its socket is being closed).
    pub(super) fn release(&self, relay: SocketAddr) {
        let mut to_peer = self.to_peer.write().unwrap_or_else(PoisonError::into_inner);
        let mut to_client = self
            .to_client
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        to_peer.retain(|_, e| e.relay != relay);
        to_client.retain(|&(r, _), _| r != relay);
    }

    /// The packets and bytes relayed since the last call.
    pub(super) fn take_counts(&self) -> (u64, u64) {
        (
            self.packets.swap(0, Ordering::Relaxed),
            self.bytes.swap(0, Ordering::Relaxed),
        )
    }

    fn count(&self, len: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// Relays `datagram` from `client` to its peer when it is ChannelData on a published
    /// channel before its deadline; false (nothing sent) otherwise.
    pub(super) async fn client_to_peer(&self, client: SocketAddr, datagram: &[u8]) -> bool {
        if ::turn::channel::classify(datagram) != ::turn::channel::Kind::ChannelData {
            return false;
        }
        let Ok(cd) = ::turn::channel::ChannelData::decode(datagram) else {
            return false;
        };
        let (socket, peer) = {
            let to_peer = self.to_peer.read().unwrap_or_else(PoisonError::into_inner);
            match to_peer.get(&(client, cd.channel)) {
                Some(e) if e.expires > now() => (Arc::clone(&e.socket), e.peer),
                _ => return false,
            }
        };
        // Counted whether or not the send succeeds, as the state machine counts what it
        // hands to the driver.
        self.count(cd.data.len());
        if let Err(e) = socket.send_to(cd.data, peer).await {
            tracing::debug!("relay to {peer}: {e}");
        }
        true
    }

    /// Relays the datagram `buf[CHANNEL_HEADER_LEN..][..len]` that `peer` sent to `relay` to
    /// the client on `udp` as ChannelData, written in place in front of it, when the pair has
    /// a published channel before its deadline; false (nothing sent, the payload untouched)
    /// otherwise.
    pub(super) async fn peer_to_client(
        &self,
        udp: &UdpSocket,
        relay: SocketAddr,
        peer: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> bool {
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        let found = {
            let to_client = self
                .to_client
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            to_client.get(&(relay, peer)).copied()
        };
        let Some(to) = found.filter(|e| e.expires > now()) else {
            return false;
        };
        let Some(message) = buf.get_mut(..CHANNEL_HEADER_LEN + len) else {
            return false;
        };
        message[..2].copy_from_slice(&to.channel.to_be_bytes());
        message[2..CHANNEL_HEADER_LEN].copy_from_slice(&len16.to_be_bytes());
        self.count(len);
        if let Err(e) = udp.send_to(message, to.client).await {
            tracing::debug!("TURN UDP send to {}: {e}", to.client);
        }
        true
    }
}

/// Removes `(relay, peer)` from `to_client` if it still leads to `client`'s `channel`.
fn remove_to_client(
    to_client: &mut HashMap<(SocketAddr, SocketAddr), ToClient>,
    relay: SocketAddr,
    peer: SocketAddr,
    client: SocketAddr,
    channel: u16,
) {
    if to_client
        .get(&(relay, peer))
        .is_some_and(|e| (e.client, e.channel) == (client, channel))
    {
        to_client.remove(&(relay, peer));
    }
}

/// The UDP listener's reader: ChannelData on published channels goes straight to the peer,
/// everything else to the owner (waiting for room: the kernel buffers meanwhile).
pub(super) async fn listener(
    udp: Arc<UdpSocket>,
    fast: Arc<FastPath>,
    tx: mpsc::Sender<ClientPacket>,
) {
    let mut buf = vec![0u8; LISTENER_BUF];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, client)) => {
                let datagram = &buf[..n];
                if fast.client_to_peer(client, datagram).await {
                    continue;
                }
                let packet = ClientPacket {
                    client,
                    bytes: datagram.to_vec(),
                };
                if tx.send(packet).await.is_err() {
                    return;
                }
            }
            // ICMP port unreachable from an earlier send shows up here on some systems; it
            // concerns one client, not the socket.
            Err(e) => tracing::debug!("TURN UDP receive on {:?}: {e}", udp.local_addr()),
        }
    }
}

/// A relay socket's reader: datagrams from peers with a published channel go straight to the
/// client as ChannelData, everything else to the owner.
pub(super) async fn relay_reader(
    socket: Arc<UdpSocket>,
    relay: SocketAddr,
    tx: mpsc::Sender<PeerPacket>,
    udp: Arc<UdpSocket>,
    fast: Arc<FastPath>,
) {
    // Room for the ChannelData header in front of the payload.
    let mut buf = vec![0u8; CHANNEL_HEADER_LEN + RELAY_BUF];
    loop {
        match socket.recv_from(&mut buf[CHANNEL_HEADER_LEN..]).await {
            Ok((n, peer)) => {
                if fast.peer_to_client(&udp, relay, peer, &mut buf, n).await {
                    continue;
                }
                let packet = PeerPacket {
                    relay,
                    peer,
                    bytes: buf[CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + n].to_vec(),
                };
                if tx.send(packet).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::debug!("relay {relay} receive: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn socket() -> (Arc<UdpSocket>, SocketAddr) {
        let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let a = s.local_addr().expect("addr");
        (Arc::new(s), a)
    }

    async fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(300), s.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
            _ => None,
        }
    }

    #[tokio::test]
    async fn relays_published_channels_until_their_deadline_and_counts_them() {
        let fast = FastPath::default();
        let (relay_socket, relay) = socket().await;
        let (peer, peer_addr) = socket().await;
        let (client, client_addr) = socket().await;
        let (listener, _) = socket().await;
        let later = now() + Duration::from_secs(60);
        fast.publish(
            client_addr,
            relay,
            Arc::clone(&relay_socket),
            0x4001,
            peer_addr,
            later,
        );
        // Client → peer: the payload, from the relay socket.
        assert!(
            fast.client_to_peer(client_addr, &[0x40, 0x01, 0, 3, 1, 2, 3, 0])
                .await
        );
        assert_eq!(recv(&peer).await, Some((vec![1, 2, 3], relay)));
        // Another channel number, another client, or STUN: not taken.
        assert!(
            !fast
                .client_to_peer(client_addr, &[0x40, 0x02, 0, 1, 9])
                .await
        );
        assert!(!fast.client_to_peer(peer_addr, &[0x40, 0x01, 0, 1, 9]).await);
        assert!(!fast.client_to_peer(client_addr, &[0, 1, 0, 0]).await);
        // Peer → client: ChannelData written in front of the payload.
        let mut buf = [0u8; 16];
        buf[CHANNEL_HEADER_LEN..CHANNEL_HEADER_LEN + 2].copy_from_slice(b"hi");
        assert!(
            fast.peer_to_client(&listener, relay, peer_addr, &mut buf, 2)
                .await
        );
        let got = recv(&client).await.expect("ChannelData");
        assert_eq!(got.0, vec![0x40, 0x01, 0, 2, b'h', b'i']);
        // Another peer on the relay: not taken.
        assert!(
            !fast
                .peer_to_client(&listener, relay, client_addr, &mut buf, 2)
                .await
        );
        assert_eq!(fast.take_counts(), (2, 5));
        assert_eq!(fast.take_counts(), (0, 0));
        // Past the deadline nothing is taken, though still in the table.
        let past = now();
        fast.publish(
            client_addr,
            relay,
            Arc::clone(&relay_socket),
            0x4001,
            peer_addr,
            past,
        );
        assert!(
            !fast
                .client_to_peer(client_addr, &[0x40, 0x01, 0, 1, 9])
                .await
        );
        assert!(
            !fast
                .peer_to_client(&listener, relay, peer_addr, &mut buf, 2)
                .await
        );
        assert_eq!(recv(&peer).await, None);
        assert_eq!(fast.take_counts(), (0, 0));
    }

    #[tokio::test]
    async fn withdraw_rebind_and_release_leave_no_stale_entry() {
        let fast = FastPath::default();
        let (relay_socket, relay) = socket().await;
        let (_, peer_a) = socket().await;
        let (_, peer_b) = socket().await;
        let client: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let later = now() + Duration::from_secs(60);
        let entries = |f: &FastPath| {
            (
                f.to_peer.read().expect("lock").len(),
                f.to_client.read().expect("lock").len(),
            )
        };
        fast.publish(
            client,
            relay,
            Arc::clone(&relay_socket),
            0x4000,
            peer_a,
            later,
        );
        // The channel number rebound to another peer (after its expiry): the old peer's way
        // back goes.
        fast.publish(
            client,
            relay,
            Arc::clone(&relay_socket),
            0x4000,
            peer_b,
            later,
        );
        assert_eq!(entries(&fast), (1, 1));
        assert!(fast
            .to_client
            .read()
            .expect("lock")
            .contains_key(&(relay, peer_b)));
        // A withdrawal of what is no longer there changes nothing.
        fast.withdraw(client, relay, 0x4000, peer_a);
        assert_eq!(entries(&fast), (1, 1));
        fast.withdraw(client, relay, 0x4000, peer_b);
        assert_eq!(entries(&fast), (0, 0));
        // Releasing the relay drops all its channels.
        fast.publish(
            client,
            relay,
            Arc::clone(&relay_socket),
            0x4000,
            peer_a,
            later,
        );
        fast.publish(
            client,
            relay,
            Arc::clone(&relay_socket),
            0x4001,
            peer_b,
            later,
        );
        assert_eq!(entries(&fast), (2, 2));
        fast.release(relay);
        assert_eq!(entries(&fast), (0, 0));
    }
}
