//! Long-term credentials (RFC 8489 §9.2): nonces, the password sources in order (static
//! users, REST secret, cached hook passwords, the handler), and requests parked while the
//! driver asks the password hook.

use super::*;

impl Server {
    /// The driver's answer to [`Output::PasswordRequest`]: the password, or `None` for an
    /// unknown user (or a failed hook). The parked request is processed now; a password is
    /// cached for the user while it has allocations.
    pub fn provide_password(
        &mut self,
        now: Instant,
        request: AuthRequestId,
        password: Option<String>,
    ) {
        self.touch(now);
        let Some(p) = self.parked.remove(&request) else {
            return;
        };
        match password {
            Some(pw) => {
                let keep = now + self.config.nonce_lifetime;
                self.passwords.insert(p.username.clone(), (pw, keep));
            }
            None => {
                self.passwords.remove(&p.username);
            }
        }
        let Ok(msg) = Message::decode(&p.raw) else {
            return;
        };
        self.handle_stun(now, p.unix_now, p.from, &p.raw, msg, true);
    }

    /// A fresh nonce: issue time (seconds since the server's first input), a counter, and an
    /// HMAC of both under the seed, in hex.
    pub(super) fn nonce(&mut self, now: Instant) -> String {
        let t = self.elapsed_secs(now);
        let c = self.nonce_counter;
        self.nonce_counter += 1;
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&t.to_be_bytes());
        data[8..].copy_from_slice(&c.to_be_bytes());
        let mac = self.mac(b"nonce", &data);
        let mut s = format!("{t:016x}{c:016x}");
        for b in &mac[..8] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// True when `nonce` is one of ours and younger than `nonce_lifetime`.
    pub(super) fn nonce_valid(&self, now: Instant, nonce: &str) -> bool {
        if nonce.len() != 48 || !nonce.is_ascii() {
            return false;
        }
        let (Ok(t), Ok(c)) = (
            u64::from_str_radix(&nonce[..16], 16),
            u64::from_str_radix(&nonce[16..32], 16),
        ) else {
            return false;
        };
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&t.to_be_bytes());
        data[8..].copy_from_slice(&c.to_be_bytes());
        let mac = self.mac(b"nonce", &data);
        let mut want = String::new();
        for b in &mac[..8] {
            want.push_str(&format!("{b:02x}"));
        }
        want == nonce[32..]
            && self.elapsed_secs(now).saturating_sub(t) < self.config.nonce_lifetime.as_secs()
    }

    pub(super) fn extend_password(&mut self, username: &str, until: Instant) {
        if let Some((_, t)) = self.passwords.get_mut(username) {
            *t = (*t).max(until);
        }
    }

    /// Long-term credential check (RFC 8489 §9.2.4). Answers and returns `None` on failure,
    /// or parks the request.
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        unix_now: u64,
        from: Transport,
        raw: &[u8],
        msg: &Message,
        replay: bool,
    ) -> Option<Auth> {
        let fingerprint = msg.attribute(attr::FINGERPRINT).is_some();
        let reply = Reply {
            to: from,
            req: msg,
            key: None,
            fingerprint,
        };
        if msg.attribute(attr::MESSAGE_INTEGRITY).is_none() {
            self.challenge(now, reply, 401);
            return None;
        }
        let (Some(username), Some(realm), Some(nonce)) = (msg.username(), msg.realm(), msg.nonce())
        else {
            self.error(reply, 400, Vec::new());
            return None;
        };
        if !self.nonce_valid(now, nonce) {
            self.challenge(now, reply, 438);
            return None;
        }
        if realm != self.config.realm {
            self.stats.auth_failures += 1;
            self.challenge(now, reply, 401);
            return None;
        }
        let password = if let Some((_, pw)) = self.config.users.iter().find(|(u, _)| u == username)
        {
            Some(pw.clone())
        } else if let (Some(secret), Some(rest)) =
            (&self.config.auth_secret, RestUsername::parse(username))
        {
            (!rest.is_expired(unix_now)).then(|| auth::rest_password(secret.as_bytes(), username))
        } else if let Some((pw, _)) = self.passwords.get(username) {
            Some(pw.clone())
        } else if replay {
            None
        } else {
            match self.handler.password(username, realm, from.client) {
                Authorization::Password(pw) => Some(pw),
                Authorization::Unknown => None,
                Authorization::Ask if self.config.password_hook => {
                    self.park(now, unix_now, from, raw, msg, username);
                    return None;
                }
                Authorization::Ask => None,
            }
        };
        let key = password.map(|pw| auth::long_term_key(username, realm, &pw));
        match key {
            Some(key) if Message::check_integrity(raw, &key) => Some(Auth {
                username: username.to_owned(),
                key,
            }),
            _ => {
                self.stats.auth_failures += 1;
                self.challenge(now, reply, 401);
                None
            }
        }
    }

    pub(super) fn park(
        &mut self,
        now: Instant,
        unix_now: u64,
        from: Transport,
        raw: &[u8],
        msg: &Message,
        username: &str,
    ) {
        // A retransmission of a request already waiting: the answer comes with the first.
        if self.parked.values().any(|p| {
            p.from == from
                && Message::decode(&p.raw).is_ok_and(|m| m.transaction_id == msg.transaction_id)
        }) {
            return;
        }
        if self.parked.len() >= self.config.max_parked_auth {
            self.stats.parked_overflow += 1;
            let reply = Reply {
                to: from,
                req: msg,
                key: None,
                fingerprint: msg.attribute(attr::FINGERPRINT).is_some(),
            };
            self.error(reply, 500, Vec::new());
            return;
        }
        let request = AuthRequestId(self.next_id);
        self.next_id += 1;
        self.parked.insert(
            request,
            Parked {
                from,
                raw: raw.to_vec(),
                unix_now,
                username: username.to_owned(),
                deadline: now + self.config.password_timeout,
            },
        );
        self.out.push_back(Output::PasswordRequest {
            request,
            username: username.to_owned(),
            realm: self.config.realm.clone(),
            client: from.client,
        });
    }

    /// 401 or 438 with REALM and a fresh NONCE.
    pub(super) fn challenge(&mut self, now: Instant, reply: Reply<'_>, code: u16) {
        let nonce = self.nonce(now);
        let attrs = vec![
            Attribute::Realm(self.config.realm.clone()),
            Attribute::Nonce(nonce),
        ];
        self.error(reply, code, attrs);
    }
}
