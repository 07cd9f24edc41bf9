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
            if let Ok(relay) = result {
                self.out.push_back(Output::ReleaseRelay { relay });
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
        if self.by_relay.contains_key(&relay)
            || !self.handler.before_allocate(&p.username, client, relay)
        {
            self.out.push_back(Output::ReleaseRelay { relay });
            self.error(reply, 403, Vec::new());
            return;
        }
        let advertised =
            SocketAddr::new(self.config.external_ip.unwrap_or(relay.ip()), relay.port());
        let attrs = vec![
            Attribute::XorRelayedAddress(advertised),
            Attribute::XorMappedAddress(client),
            Attribute::Lifetime(secs(p.lifetime)),
        ];
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
        // EVEN-PORT without the R bit only asks for an even port, which the driver can pick
        // (coturn 4.6's turnutils_uclient adds it to half its Allocates); reserving the next
        // port, and redeeming a reservation, is not supported.
        let reserve = matches!(
            msg.attribute(attr::EVEN_PORT),
            Some(Attribute::EvenPort(true))
        );
        let even_port = msg.attribute(attr::EVEN_PORT).is_some();
        if reserve || msg.attribute(attr::RESERVATION_TOKEN).is_some() {
            self.error(reply, 508, Vec::new());
            return;
        }
        let family = match msg.attribute(attr::REQUESTED_ADDRESS_FAMILY) {
            Some(Attribute::RequestedAddressFamily(f)) => *f,
            _ => AddressFamily::Ipv4,
        };
        let user_count = self
            .allocations
            .values()
            .filter(|a| a.username == auth.username)
            .count()
            + self
                .pending
                .values()
                .filter(|p| p.username == auth.username)
                .count();
        if self.allocations.len() + self.pending.len() >= self.config.max_allocations
            || user_count >= self.config.max_allocations_per_user
        {
            self.error(reply, 486, Vec::new());
            return;
        }
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
            },
        );
        let _ = now;
        self.out.push_back(Output::AllocateRelay {
            request,
            family,
            even_port,
        });
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
        self.out.push_back(Output::ReleaseRelay { relay: a.relay });
        self.handler
            .allocation_deleted(&a.username, t.client, a.relay);
    }
}
