//! The TURN TCP connections (RFC 8656 §12.5 framing): the accept with its cap on connections
//! without an allocation, the connection task with its deadlines, and the owner's record of
//! each connection.

use super::*;
use crate::limits::{ConnGuard, Listener};

/// The warning about TCP connections refused at accept (the cap on connections without an
/// allocation) is logged at most once per this, with the count so far.
const TCP_REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Largest TCP read buffer: a STUN message or ChannelData frame is at most 64 KiB.
const TCP_MAX_FRAME: usize = 0x1_0004;

/// From the TCP connection tasks to the owner.
pub(super) enum TcpMsg {
    Frame {
        transport: Transport,
        bytes: Vec<u8>,
    },
    Closed {
        transport: Transport,
    },
}

/// The owner's side of one TCP connection.
pub(super) struct TcpClient {
    /// Frames to write.
    pub(super) out: mpsc::Sender<Vec<u8>>,
    /// The 5-tuple.
    transport: Transport,
    /// Whether the connection has an allocation, as its task sees it: true moves it to the
    /// idle rule, false (the allocation was deleted or expired) back to an allocation deadline.
    allocated: watch::Sender<bool>,
}

impl TcpClient {
    /// Whether the connection is counted as having an allocation.
    pub(super) fn has_allocation(&self) -> bool {
        *self.allocated.borrow()
    }
}

/// The deadlines of a TCP connection (see [`TurnOptions`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct TcpLimits {
    /// From accept to the first complete frame.
    pub(super) first_message: Duration,
    /// From accept to the allocation.
    pub(super) allocation: Duration,
    /// Silence allowed once allocated.
    pub(super) idle: Duration,
}

impl Owner {
    /// A new TCP connection: refused (closed at once) when [`TurnOptions::tcp_max_unallocated`]
    /// connections are waiting for their allocation, else registered and returned as the
    /// connection task to spawn.
    pub(super) fn tcp_accept(
        &mut self,
        socket: TcpStream,
        client: SocketAddr,
        registry: &registry::Registry,
        tcp_tx: &mpsc::Sender<TcpMsg>,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        // The process-wide, listener and address caps first (they log their own refusals).
        let guard = self.limits.admit(Listener::TurnTcp, client.ip()).ok()?;
        if self.tcp_unallocated >= self.tcp_max_unallocated {
            self.tcp_refused += 1;
            let now = Instant::now();
            if self
                .tcp_refusal_logged
                .is_none_or(|t| now.duration_since(t) >= TCP_REFUSAL_LOG_EVERY)
            {
                self.tcp_refusal_logged = Some(now);
                tracing::warn!(
                    refused = self.tcp_refused,
                    cap = self.tcp_max_unallocated,
                    "TURN TCP: too many connections without an allocation, closing new ones \
                     (latest from {client})"
                );
            }
            return None;
        }
        let server = socket.local_addr().ok()?;
        let transport = Transport {
            protocol: Protocol::Tcp,
            client,
            server,
        };
        let (out, out_rx) = mpsc::channel(TCP_OUT_QUEUE);
        let (allocated, allocated_rx) = watch::channel(false);
        let entry = TcpClient {
            out,
            transport,
            allocated,
        };
        if let Some(old) = self.tcp_clients.insert(client, entry) {
            // The same address and port again before the old connection's end was seen.
            if !old.has_allocation() {
                self.tcp_unallocated -= 1;
            }
        }
        self.tcp_unallocated += 1;
        let id = registry.next_session_id();
        let span = tracing::info_span!("session", proto = "turn", id, peer = %client);
        let conn = tcp_conn(
            socket,
            transport,
            self.tcp_limits,
            out_rx,
            allocated_rx,
            tcp_tx.clone(),
            guard,
        );
        Some(conn.instrument(span))
    }

    /// The TCP client at `client` has its allocation: it leaves the unallocated count and its
    /// connection task switches to the idle rule.
    pub(super) fn tcp_allocated(&mut self, client: SocketAddr) {
        if let Some(c) = self.tcp_clients.get(&client) {
            if !c.has_allocation() {
                c.allocated.send_replace(true);
                self.tcp_unallocated -= 1;
            }
        }
    }

    /// Connections whose allocation is gone (a Refresh to 0, expiry) count as unallocated
    /// again and get a fresh allocation deadline: otherwise an authenticated client could
    /// allocate, delete the allocation and keep an idle socket for `max_lifetime` + 60 s, as
    /// many times as it opens connections. `only` limits the check to one client.
    pub(super) fn tcp_allocations_lost(&mut self, only: Option<SocketAddr>) {
        let mut lost = 0;
        let server = &self.server;
        let clients = self
            .tcp_clients
            .iter()
            .filter(|(a, _)| only.is_none_or(|o| o == **a))
            .map(|(_, c)| c);
        for c in clients {
            if c.has_allocation() && !server.has_allocation(&c.transport) {
                c.allocated.send_replace(false);
                lost += 1;
            }
        }
        self.tcp_unallocated += lost;
    }
}

/// One TCP client: frames in to the owner, frames out from its queue, and the deadlines of
/// [`TcpLimits`]: the first complete frame, then the allocation, within their time of the
/// accept (absolute deadlines, so trickling bytes does not extend them), then the idle rule.
pub(super) async fn tcp_conn(
    socket: TcpStream,
    transport: Transport,
    limits: TcpLimits,
    mut out_rx: mpsc::Receiver<Vec<u8>>,
    mut allocated: watch::Receiver<bool>,
    tx: mpsc::Sender<TcpMsg>,
    guard: ConnGuard,
) {
    let accepted = Instant::now();
    let _ = socket.set_nodelay(true);
    let (mut rd, mut wr) = socket.into_split();
    tracing::debug!("TURN TCP connection opened");
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let first_frame_by = accepted + limits.first_message;
    let mut allocation_by = accepted + limits.allocation;
    let mut framed = false;
    let mut has_allocation = false;
    // The owner drops its sender when it forgets the connection; stop polling then.
    let mut waiting = true;
    let mut last_read = accepted;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let end = loop {
        if buf.len() >= TCP_MAX_FRAME {
            break "frame too long".to_owned();
        }
        let (deadline, why) = if has_allocation {
            (
                last_read + limits.idle,
                format!("silent for {:?}", limits.idle),
            )
        } else if !framed && first_frame_by <= allocation_by {
            let why = format!("no complete message within {:?}", limits.first_message);
            (first_frame_by, why)
        } else {
            let why = format!("no allocation within {:?}", limits.allocation);
            (allocation_by, why)
        };
        tokio::select! {
            // Cancel-safe: when another branch wins, nothing was read.
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) => break "closed by the peer".to_owned(),
                Ok(_) => last_read = Instant::now(),
                Err(e) => break e.to_string(),
            },
            changed = allocated.changed(), if waiting => {
                match changed {
                    Ok(()) => {
                        let now_allocated = *allocated.borrow_and_update();
                        if has_allocation && !now_allocated {
                            allocation_by = Instant::now() + limits.allocation;
                        }
                        if now_allocated {
                            // An allocated client is a real one: never evicted for newcomers.
                            guard.established();
                        }
                        has_allocation = now_allocated;
                    }
                    Err(_) => waiting = false,
                }
                continue;
            }
            () = tokio::time::sleep_until(deadline) => break why,
            () = guard.evicted() => break "closed to make room for a newer connection".to_owned(),
        }
        let mut used = 0;
        let framing = loop {
            match ::turn::channel::next_frame(&buf[used..]) {
                Ok(Some((_, n))) => {
                    let bytes = buf[used..used + n].to_vec();
                    used += n;
                    framed = true;
                    if tx.send(TcpMsg::Frame { transport, bytes }).await.is_err() {
                        break Err("server stopped".to_owned());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("framing lost: {e}")),
            }
        };
        buf.drain(..used);
        if let Err(e) = framing {
            break e;
        }
    };
    tracing::debug!("TURN TCP connection ended: {end}");
    writer.abort();
    let _ = tx.send(TcpMsg::Closed { transport }).await;
}
