//! Connection caps: per listener, per client address and for the whole process.
//!
//! Every listener asks [`Limits::admit`] for each accepted socket before it spawns a session.
//! A connection starts *pending* (it has not completed its protocol's opening: the RTMP
//! handshake and `connect`, the first RTSP or HTTP request) and becomes *established* when the
//! driver calls [`ConnGuard::established`]. At a cap:
//!
//! - the process-wide or the listener's: the oldest pending connection (of that listener, for
//!   the listener's cap) is closed to make room for the new one, so a client that opens sockets
//!   and never speaks cannot lock real viewers out; when every connection is established the
//!   new one is refused (closed at once);
//! - per client address: the new connection is refused.
//!
//! Refusals and evictions are logged on the first and every 1000th, so a flood cannot flood the
//! log too. Dropping the guard (the session ended) frees the slot.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long accepting pauses after an error (out of file descriptors, out of memory): long
/// enough not to spin, short enough to pick up again as soon as sessions end.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The accept loop every TCP listener shares: accepts until `shutdown` turns true, admits each
/// socket through `limits` (closing it at once when refused) and runs `serve` for it in its own
/// task, which ends early if the connection is evicted to make room for a newer one. Accept
/// errors (`EMFILE` when out of descriptors) back off and are logged on the first and every
/// 1000th.
pub(crate) async fn accept_loop<F, Fut>(
    socket: TcpListener,
    listener: Listener,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr, ConnGuard) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut failures = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    failures += 1;
                    if failures % 1000 == 1 {
                        tracing::error!(
                            failures,
                            "{} accept failed (backing off {ACCEPT_BACKOFF:?}): {e}",
                            listener.name()
                        );
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let guard = match limits.admit(listener, peer.ip()) {
            Ok(guard) => guard,
            Err(_) => continue, // dropping the stream closes it; `admit` logged why
        };
        let evicted = guard.evict.clone();
        // Boxed, so the session's future is stored once, in an allocation of its own size:
        // moved into the task and then into the select below, it would be stored twice over,
        // for as long as the connection lives (a thousand idle players, each twice their size).
        let mut session = Box::pin(serve(stream, peer, guard));
        tokio::spawn(async move {
            tokio::select! {
                () = &mut session => {}
                () = evicted.cancelled() => {
                    tracing::debug!(%peer, "connection closed to make room for a newer one");
                }
            }
        });
    }
}

/// The caps. 0 = no cap. Built from a [`config::Config`]; `Default` is the config table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `general.maxConnections`: connections of every listener together.
    pub max_total: usize,
    /// `general.maxConnectionsPerIp`: connections from one client address.
    pub max_per_ip: usize,
    /// `rtmp.maxConnections`.
    pub rtmp: usize,
    /// `rtsp.maxConnections`.
    pub rtsp: usize,
    /// `http.maxConnections`.
    pub http: usize,
    /// `turn.max_tcp_connections`.
    pub turn_tcp: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig::from(&config::Config::default())
    }
}

impl From<&config::Config> for LimitsConfig {
    fn from(config: &config::Config) -> Self {
        let cap = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        LimitsConfig {
            max_total: cap(config.general.max_connections),
            max_per_ip: cap(config.general.max_connections_per_ip),
            rtmp: cap(config.rtmp.max_connections),
            rtsp: cap(config.rtsp.max_connections),
            http: cap(config.http.max_connections),
            turn_tcp: cap(config.turn.max_tcp_connections),
        }
    }
}

/// A listener's identity and cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Listener {
    Rtmp,
    Rtsp,
    Http,
    TurnTcp,
    Shell,
}

impl Listener {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Listener::Rtmp => "RTMP",
            Listener::Rtsp => "RTSP",
            Listener::Http => "HTTP",
            Listener::TurnTcp => "TURN TCP",
            Listener::Shell => "shell",
        }
    }
}

/// The shared connection table.
#[derive(Clone)]
pub(crate) struct Limits {
    inner: Arc<Inner>,
}

struct Inner {
    config: LimitsConfig,
    /// Per-listener caps (0 = none).
    listener_caps: HashMap<Listener, usize>,
    // A std Mutex: held for a few map operations per accept and per close, never across an
    // `.await`.
    table: Mutex<Table>,
    next_id: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
}

#[derive(Default)]
struct Table {
    total: usize,
    per_listener: HashMap<Listener, usize>,
    per_ip: HashMap<IpAddr, usize>,
    /// Pending connections, oldest first (ids grow), with the token that closes them.
    pending: BTreeMap<u64, (Listener, CancellationToken)>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("{0} connections at the process-wide cap, none of them still in its handshake")]
    Total(usize),
    #[error("the {0} listener is at its cap of {1}, none of them still in its handshake")]
    Listener(&'static str, usize),
    #[error("{0} connections from this address, its cap")]
    PerIp(usize),
}

/// One admitted connection's slot; dropping it frees the slot.
pub(crate) struct ConnGuard {
    inner: Arc<Inner>,
    id: u64,
    listener: Listener,
    ip: IpAddr,
    evict: CancellationToken,
}

impl Limits {
    /// A table with the caps of `config`.
    pub(crate) fn new(config: LimitsConfig) -> Self {
        let listener_caps = [
            (Listener::Rtmp, config.rtmp),
            (Listener::Rtsp, config.rtsp),
            (Listener::Http, config.http),
            (Listener::TurnTcp, config.turn_tcp),
        ];
        Limits {
            inner: Arc::new(Inner {
                config,
                listener_caps: listener_caps.into_iter().collect(),
                table: Mutex::new(Table::default()),
                next_id: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// Admits a connection from `ip` on `listener`, evicting the oldest pending connection when
    /// a cap is reached (see the module docs).
    pub(crate) fn admit(&self, listener: Listener, ip: IpAddr) -> Result<ConnGuard, Refused> {
        let ip = ip.to_canonical();
        let inner = &self.inner;
        let listener_cap = inner.listener_caps.get(&listener).copied().unwrap_or(0);
        let mut table = inner.table();
        let from_ip = table.per_ip.get(&ip).copied().unwrap_or(0);
        if inner.config.max_per_ip != 0 && from_ip >= inner.config.max_per_ip {
            return Err(self.refuse(Refused::PerIp(from_ip)));
        }
        let on_listener = table.per_listener.get(&listener).copied().unwrap_or(0);
        if listener_cap != 0 && on_listener >= listener_cap {
            if !table.evict_oldest(Some(listener)) {
                return Err(self.refuse(Refused::Listener(listener.name(), listener_cap)));
            }
            self.count_eviction(listener);
        } else if inner.config.max_total != 0 && table.total >= inner.config.max_total {
            if !table.evict_oldest(None) {
                return Err(self.refuse(Refused::Total(table.total)));
            }
            self.count_eviction(listener);
        }
        table.total += 1;
        *table.per_listener.entry(listener).or_default() += 1;
        *table.per_ip.entry(ip).or_default() += 1;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = CancellationToken::new();
        table.pending.insert(id, (listener, evict.clone()));
        Ok(ConnGuard {
            inner: Arc::clone(inner),
            id,
            listener,
            ip,
            evict,
        })
    }

    fn refuse(&self, why: Refused) -> Refused {
        let n = self.inner.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n % 1000 == 1 {
            tracing::warn!(refused = n, "connection refused: {why}");
        }
        why
    }

    fn count_eviction(&self, listener: Listener) {
        let n = self.inner.evicted.fetch_add(1, Ordering::Relaxed) + 1;
        if n % 1000 == 1 {
            tracing::warn!(
                evicted = n,
                "{} connection cap reached: the oldest connection still in its handshake was \
                 closed to make room",
                listener.name()
            );
        }
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.inner.table().total
    }
}

impl Inner {
    fn table(&self) -> MutexGuard<'_, Table> {
        // Each critical section leaves the counters consistent; a poisoned lock is reusable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Table {
    /// Closes the oldest pending connection (of `listener`, or of any); false when none is.
    fn evict_oldest(&mut self, listener: Option<Listener>) -> bool {
        let victim = self
            .pending
            .iter()
            .find(|(_, (l, _))| listener.is_none_or(|want| *l == want))
            .map(|(id, _)| *id);
        match victim.and_then(|id| self.pending.remove(&id)) {
            Some((_, token)) => {
                // Its slot is freed when its session drops the guard; until then the table
                // runs one over the cap, which bounds it at twice the cap in the worst case.
                token.cancel();
                true
            }
            None => false,
        }
    }
}

impl ConnGuard {
    /// The connection completed its protocol's opening: it is no longer evicted for newcomers.
    pub(crate) fn established(&self) {
        self.inner.table().pending.remove(&self.id);
    }

    /// Resolves when the connection is closed to make room for a newer one (for a driver that
    /// does not run its connections through [`accept_loop`]).
    pub(crate) async fn evicted(&self) {
        self.evict.cancelled().await;
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut table = self.inner.table();
        table.pending.remove(&self.id);
        table.total = table.total.saturating_sub(1);
        if let Some(n) = table.per_listener.get_mut(&self.listener) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = table.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                table.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

    #[test]
    fn the_oldest_pending_connection_makes_room() {
        let limits = Limits::new(LimitsConfig {
            max_total: 2,
            ..LimitsConfig::default()
        });
        let first = limits.admit(Listener::Rtmp, A).expect("first");
        let second = limits.admit(Listener::Http, A).expect("second");
        second.established();
        let third = limits.admit(Listener::Rtmp, B).expect("evicts the first");
        assert!(first.evict.is_cancelled());
        assert!(!second.evict.is_cancelled());
        drop(first);
        third.established();
        // Everything established: refused.
        assert_eq!(
            limits.admit(Listener::Rtsp, B).err(),
            Some(Refused::Total(2))
        );
        drop(third);
        assert!(limits.admit(Listener::Rtsp, B).is_ok());
        assert_eq!(limits.open(), 1);
    }

    #[test]
    fn listener_and_address_caps() {
        let limits = Limits::new(LimitsConfig {
            max_per_ip: 2,
            rtsp: 1,
            ..LimitsConfig::default()
        });
        let a1 = limits.admit(Listener::Rtmp, A).expect("a1");
        let _a2 = limits.admit(Listener::Http, A).expect("a2");
        assert_eq!(
            limits.admit(Listener::Rtmp, A).err(),
            Some(Refused::PerIp(2))
        );
        // Another address is not affected; the v4-mapped form is the same address.
        let b1 = limits.admit(Listener::Rtsp, B).expect("b1");
        b1.established();
        assert_eq!(
            limits
                .admit(Listener::Rtsp, "::ffff:127.0.0.1".parse().expect("ip"))
                .err(),
            Some(Refused::Listener("RTSP", 1))
        );
        drop(a1);
        assert!(limits.admit(Listener::Rtmp, A).is_ok());
    }
}
