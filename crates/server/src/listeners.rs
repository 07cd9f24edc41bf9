//! The TCP listeners the config can move at run time: RTMP, RTSP, HTTP and the admin shell. A
//! changed `rtmp.port` (`rtsp.port`, `http.port`, `shell.port`) binds the new port first, then the old listener stops
//! accepting; sessions it accepted go on until they end by themselves (their end is the
//! server's shutdown, not the listener's). A port of 0 closes the listener. A port that cannot
//! be bound leaves the old listener as it was, with an error in the log.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Rtmp,
    Rtsp,
    Http,
    Shell,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rtmp => "RTMP",
            Kind::Rtsp => "RTSP",
            Kind::Http => "HTTP",
            Kind::Shell => "admin shell",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Kind::Rtmp => "rtmp",
            Kind::Rtsp => "rtsp",
            Kind::Http => "http",
            Kind::Shell => "telnet",
        }
    }
}

/// Starts serving a bound listener until its `accept` receiver turns true.
pub(crate) type Spawn =
    Box<dyn Fn(TcpListener, SocketAddr, watch::Receiver<bool>) -> JoinHandle<()> + Send + Sync>;

struct Slot {
    kind: Kind,
    spawn: Spawn,
    /// The address bound now and the switch that stops its accept loop.
    bound: Option<(SocketAddr, watch::Sender<bool>)>,
}

/// The movable listeners of a server and every accept task they ran.
#[derive(Default)]
pub(crate) struct Listeners {
    slots: Mutex<Vec<Slot>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Listeners {
    /// Binds `addr` for `kind` (or records `kind` as off when `None`) and starts serving it
    /// with `spawn`, which is kept to serve the port the config moves it to.
    pub(crate) async fn start(
        &self,
        kind: Kind,
        addr: Option<SocketAddr>,
        spawn: Spawn,
    ) -> std::io::Result<Option<SocketAddr>> {
        let mut slot = Slot {
            kind,
            spawn,
            bound: None,
        };
        let bound = match addr {
            Some(addr) => Some(self.serve(&mut slot, addr).await?),
            None => None,
        };
        lock(&self.slots).push(slot);
        Ok(bound)
    }

    async fn serve(&self, slot: &mut Slot, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        tracing::info!(
            "{} listening on {}://{bound}",
            slot.kind.name(),
            slot.kind.scheme()
        );
        let (stop, accept) = watch::channel(false);
        let task = (slot.spawn)(listener, bound, accept);
        lock(&self.tasks).push(task);
        slot.bound = Some((bound, stop));
        Ok(bound)
    }

    /// Waits for `task` too when the server stops (the TURN relay's, which moves on its own).
    pub(crate) fn adopt(&self, task: JoinHandle<()>) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// The address `kind` is bound to now.
    pub(crate) fn addr(&self, kind: Kind) -> Option<SocketAddr> {
        lock(&self.slots)
            .iter()
            .find(|s| s.kind == kind)
            .and_then(|s| s.bound.as_ref().map(|(addr, _)| *addr))
    }

    /// Moves `kind` to `port` (0 = closes it), on the interface it was bound to (all of them
    /// when it was off).
    pub(crate) async fn move_to(&self, kind: Kind, port: u16) {
        let Some(mut slot) = ({
            let mut slots = lock(&self.slots);
            let at = slots.iter().position(|s| s.kind == kind);
            at.map(|i| slots.swap_remove(i))
        }) else {
            return;
        };
        let old = slot.bound.take();
        if old.as_ref().is_some_and(|(addr, _)| addr.port() == port) {
            slot.bound = old;
            lock(&self.slots).push(slot);
            return;
        }
        let ip = old
            .as_ref()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |(addr, _)| addr.ip());
        if port != 0 {
            if let Err(e) = self.serve(&mut slot, SocketAddr::new(ip, port)).await {
                tracing::error!(
                    "{} stays where it was: cannot listen on port {port}: {e}",
                    kind.name()
                );
                slot.bound = old;
                lock(&self.slots).push(slot);
                return;
            }
        }
        if let Some((addr, stop)) = old {
            stop.send_replace(true);
            tracing::info!(
                "{} stopped listening on {addr}; its sessions go on",
                kind.name()
            );
        }
        lock(&self.slots).push(slot);
    }

    /// Stops every listener and waits for their accept loops to end.
    pub(crate) async fn stop(&self) {
        for slot in lock(&self.slots).iter_mut() {
            if let Some((_, stop)) = slot.bound.take() {
                stop.send_replace(true);
            }
        }
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            let _ = task.await;
        }
    }
}
