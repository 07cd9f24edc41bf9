//! Allocate, Refresh and the relay socket's answer (RFC 8656 §7, §8): quotas, lifetimes,
//! the allocation's creation and deletion.

use super::*;

impl Server {
    /// The driver's answer to [`Output::AllocateRelay`]: the relay socket's bound address, or
    /// why there is none. Sends the Allocate response.
    pub fn relay_allocated(
        &mut self,
        now: Instant,
        request: RelayRequestId,
        result: Result<SocketAddr, RelayError>,
    ) {
        self.touch(now);
        let Some(p) = self.pending.remove(&request) else {
            let reserved = self.cancelled.remove(&request).unwrap_or(false);
            if let Ok(relay) = result {
                self.out.push_back(Output::ReleaseRelay { relay });
                if let Some(next) = reserved.then(|| next_port(relay)).flatten() {
                    self.out.push_back(Output::ReleaseRelay { relay: next });
                }
            }
            return;
        };
        let req = Message::new(Class::Request, Method::Allocate, p.tid);
        let reply = Reply {
            to: p.transport,
            req: &req,
            key: Some(p.key),
            fingerprint: p.fingerprint,
        };
        let relay = match result {
            Ok(relay) => relay,
            Err(RelayError::FamilyUnsupported) => {
                self.error(reply, 440, Vec::new());
                return;
            }
            Err(_) => {
                self.error(reply, 508, Vec::new());
                return;
            }
        };
        let client = p.transport.client;
        // The reserved port is N+1 of an even N (RFC 8656 §7.2); a driver that answered
        // otherwise gets both sockets back.
        let reserved = if p.reserve {
            match next_port(relay) {
                Some(next) if relay.port() % 2 == 0 => Some(next),
                next => {
                    tracing::warn!(%relay, "relay for a reservation is not an even port below 65535");
                    self.out.push_back(Output::ReleaseRelay { relay });
                    if let Some(relay) = next {
                        self.out.push_back(Output::ReleaseRelay { relay });
                    }
                    self.error(reply, 508, Vec::new());
                    return;
                }
            }
        } else {
            None
        };
        if self.by_relay.contains_key(&relay)
            || !self.handler.before_allocate(&p.username, client, relay)
        {
            self.out.push_back(Output::ReleaseRelay { relay });
            if let Some(relay) = reserved {
                self.out.push_back(Output::ReleaseRelay { relay });
            }
            self.error(reply, 403, Vec::new());
            return;
        }
        let advertised =
            SocketAddr::new(self.config.external_ip.unwrap_or(relay.ip()), relay.port());
        let mut attrs = vec![
            Attribute::XorRelayedAddress(advertised),
            Attribute::XorMappedAddress(client),
            Attribute::Lifetime(secs(p.lifetime)),
        ];
        if let Some(reserved) = reserved {
            let token = self.reservation_token();
            self.reservations.insert(
                token,
                Reservation {
                    relay: reserved,
                    username: p.username.clone(),
                    expires: now + self.config.reservation_lifetime,
                },
            );
            attrs.push(Attribute::ReservationToken(token));
        }
        let response = self.success(reply, attrs).unwrap_or_default();
        let expires = now + p.lifetime;
        self.extend_password(&p.username, expires);
        self.by_relay.insert(relay, p.transport);
        *self.relay_ports.entry(relay.port()).or_insert(0) += 1;
        self.allocations.insert(
            p.transport,
            Allocation {
                username: p.username.clone(),
                relay,
                expires,
                permissions: HashMap::new(),
                channels: HashMap::new(),
                allocate_tid: p.tid,
                allocate_response: response,
                bucket: Bucket {
                    tokens: self.config.bytes_per_second_per_allocation,
                    last: now,
                },
            },
        );
        self.handler.allocation_created(&p.username, client, relay);
    }

    pub(super) fn allocate(&mut self, now: Instant, reply: Reply<'_>, auth: Auth) {
        let msg = reply.req;
        if let Some(a) = self.allocations.get(&reply.to) {
            if a.allocate_tid == msg.transaction_id {
                let bytes = a.allocate_response.clone();
                self.out.push_back(Output::ToClient {
                    to: reply.to,
                    bytes,
                });
            } else {
                self.error(reply, 437, Vec::new());
            }
            return;
        }
        if let Some(p) = self.pending.values().find(|p| p.transport == reply.to) {
            if p.tid != msg.transaction_id {
                self.error(reply, 437, Vec::new());
            }
            return;
        }
        if self.draining {
            tracing::debug!("Allocate refused: this relay is draining (it moved to another port)");
            self.error(reply, 508, Vec::new());
            return;
        }
        match msg.attribute(attr::REQUESTED_TRANSPORT) {
            Some(Attribute::RequestedTransport(17)) => {}
            Some(_) => {
                self.error(reply, 442, Vec::new());
                return;
            }
            None => {
                self.error(reply, 400, Vec::new());
                return;
            }
        }
        // RFC 8656 §7.2 steps 5 and 6: a token excludes EVEN-PORT and the address family
        // attributes (the reserved port has its own), and an invalid or expired token is 508.
        let even = match msg.attribute(attr::EVEN_PORT) {
            Some(Attribute::EvenPort(reserve)) => Some(*reserve),
            _ => None,
        };
        let token = match msg.attribute(attr::RESERVATION_TOKEN) {
            Some(Attribute::ReservationToken(t)) => Some(*t),
            _ => None,
        };
        let additional = msg.attribute(attr::ADDITIONAL_ADDRESS_FAMILY).is_some();
        let requested_family = msg.attribute(attr::REQUESTED_ADDRESS_FAMILY).is_some();
        if token.is_some() && (even.is_some() || requested_family || additional)
            || even == Some(true) && additional
        {
            self.error(reply, 400, Vec::new());
            return;
        }
        let redeemed = match token {
            Some(t) => match self.reservations.get(&t) {
                Some(r) if r.expires > now => Some((t, r.relay, r.username.clone())),
                _ => {
                    tracing::debug!("Allocate refused: unknown or expired RESERVATION-TOKEN");
                    self.error(reply, 508, Vec::new());
                    return;
                }
            },
            None => None,
        };
        let family = match (msg.attribute(attr::REQUESTED_ADDRESS_FAMILY), &redeemed) {
            (_, Some((_, relay, _))) => family_of(*relay),
            (Some(Attribute::RequestedAddressFamily(f)), None) => *f,
            _ => AddressFamily::Ipv4,
        };
        let reserve = even == Some(true);
        // A reservation holds a socket, so it counts like an allocation; the one being redeemed
        // becomes this allocation and is not counted twice.
        let needed = if reserve { 2 } else { 1 };
        let (mut total, mut user) = self.usage(&auth.username);
        if let Some((_, _, owner)) = &redeemed {
            total -= 1;
            if *owner == auth.username {
                user -= 1;
            }
        }
        if total + needed > self.config.max_allocations
            || user + needed > self.config.max_allocations_per_user
        {
            self.error(reply, 486, Vec::new());
            return;
        }
        let port = match redeemed {
            Some((t, relay, _)) => {
                // Used once: a second Allocate with the token gets 508.
                self.reservations.remove(&t);
                RelayPort::Reserved(relay)
            }
            None if reserve => RelayPort::EvenReserveNext,
            None if even.is_some() => RelayPort::Even,
            None => RelayPort::Any,
        };
        let requested = match msg.attribute(attr::LIFETIME) {
            Some(Attribute::Lifetime(s)) => Duration::from_secs(u64::from(*s)),
            _ => self.config.default_lifetime,
        };
        let lifetime = requested
            .max(self.config.default_lifetime)
            .min(self.config.max_lifetime);
        let request = RelayRequestId(self.next_id);
        self.next_id += 1;
        self.pending.insert(
            request,
            PendingAllocate {
                transport: reply.to,
                tid: msg.transaction_id,
                username: auth.username,
                key: auth.key,
                lifetime,
                fingerprint: reply.fingerprint,
                reserve,
            },
        );
        self.out.push_back(Output::AllocateRelay {
            request,
            transport: reply.to,
            family,
            port,
        });
    }

    /// Relays, relays being bound and reserved ports: in all, and of `username`.
    fn usage(&self, username: &str) -> (usize, usize) {
        let total = self.allocations.len() + self.pending.len() + self.reservations.len();
        let user = self
            .allocations
            .values()
            .filter(|a| a.username == username)
            .count()
            + self
                .pending
                .values()
                .filter(|p| p.username == username)
                .count()
            + self
                .reservations
                .values()
                .filter(|r| r.username == username)
                .count();
        (total, user)
    }

    /// A fresh RESERVATION-TOKEN: unguessable (an HMAC under the seed) so that only the client
    /// it was given to can redeem it, and unique among the live ones.
    fn reservation_token(&mut self) -> [u8; 8] {
        loop {
            let id = self.next_id;
            self.next_id += 1;
            let mac = self.mac(b"reservation", &id.to_be_bytes());
            let mut token = [0u8; 8];
            token.copy_from_slice(&mac[..8]);
            if !self.reservations.contains_key(&token) {
                return token;
            }
        }
    }

    /// Ends the reservations nobody redeemed in time, releasing their sockets.
    pub(super) fn expire_reservations(&mut self, now: Instant) {
        let mut released = Vec::new();
        self.reservations.retain(|_, r| {
            let keep = r.expires > now;
            if !keep {
                released.push(r.relay);
            }
            keep
        });
        for relay in released {
            tracing::debug!(%relay, "port reservation expired");
            self.out.push_back(Output::ReleaseRelay { relay });
        }
    }

    /// The allocation of the 5-tuple, checked against the request's username; answers 437 or
    /// 441 and returns `None` when it does not fit.
    pub(super) fn allocation_for(&mut self, reply: Reply<'_>, auth: &Auth) -> Option<Transport> {
        match self.allocations.get(&reply.to) {
            None => {
                self.error(reply, 437, Vec::new());
                None
            }
            Some(a) if a.username != auth.username => {
                self.error(reply, 441, Vec::new());
                None
            }
            Some(_) => Some(reply.to),
        }
    }

    pub(super) fn refresh(&mut self, now: Instant, reply: Reply<'_>, auth: &Auth) {
        let Some(t) = self.allocation_for(reply, auth) else {
            return;
        };
        let requested = match reply.req.attribute(attr::LIFETIME) {
            Some(Attribute::Lifetime(s)) => Duration::from_secs(u64::from(*s)),
            _ => self.config.default_lifetime,
        };
        if requested.is_zero() {
            self.delete_allocation(t);
            self.success(reply, vec![Attribute::Lifetime(0)]);
            return;
        }
        let lifetime = requested.min(self.config.max_lifetime);
        let expires = now + lifetime;
        if let Some(a) = self.allocations.get_mut(&t) {
            a.expires = expires;
        }
        self.extend_password(&auth.username, expires);
        self.success(reply, vec![Attribute::Lifetime(secs(lifetime))]);
        self.publish(t);
        self.handler
            .refreshed(&auth.username, t.client, secs(lifetime));
    }

    pub(super) fn delete_allocation(&mut self, t: Transport) {
        let Some(a) = self.allocations.remove(&t) else {
            return;
        };
        self.by_relay.remove(&a.relay);
        if let Some(n) = self.relay_ports.get_mut(&a.relay.port()) {
            *n -= 1;
            if *n == 0 {
                self.relay_ports.remove(&a.relay.port());
            }
        }
        if !self.allocations.values().any(|o| o.username == a.username) {
            self.passwords.remove(&a.username);
        }
        let mut channels: Vec<(u16, SocketAddr)> =
            a.channels.iter().map(|(&n, c)| (n, c.peer)).collect();
        channels.sort_unstable_by_key(|c| c.0);
        for (channel, peer) in channels {
            self.withdraw(t, a.relay, channel, peer);
        }
        self.out.push_back(Output::ReleaseRelay { relay: a.relay });
        self.handler
            .allocation_deleted(&a.username, t.client, a.relay);
    }
}

/// The address after `relay` on the same IP: the port a reservation keeps.
fn next_port(relay: SocketAddr) -> Option<SocketAddr> {
    relay
        .port()
        .checked_add(1)
        .map(|port| SocketAddr::new(relay.ip(), port))
}
