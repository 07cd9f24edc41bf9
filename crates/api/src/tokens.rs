//! Random tokens that stand for a decision for a while: on_http_access grants (their
//! directory scope) and API logins (ZLMediaKit's `ZLM_UNLOGIN` / `ZLM_LOGINED` cookies).
//! Bounded in number: at the cap the expired ones go first, then all of them (a flood of
//! logins or grants costs their holders a new one, never unbounded memory).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tokens with a value and an expiry, at most `cap` of them.
pub(crate) struct Tokens<V> {
    cap: usize,
    map: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> Tokens<V> {
    /// An empty store of at most `cap` tokens.
    pub(crate) fn new(cap: usize) -> Self {
        Tokens {
            cap,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A new random token for `value`, valid for `life`.
    pub(crate) fn issue(&self, value: V, life: Duration) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut map = self.lock();
        if map.len() >= self.cap {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.cap {
                map.clear();
            }
        }
        map.insert(token.clone(), (value, Instant::now() + life));
        token
    }

    /// The value of `token` while it is valid (an expired one is forgotten).
    pub(crate) fn get(&self, token: &str) -> Option<V> {
        let mut map = self.lock();
        match map.get(token) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Forgets `token`; its value if it was valid.
    pub(crate) fn remove(&self, token: &str) -> Option<V> {
        let (value, until) = self.lock().remove(token)?;
        (until > Instant::now()).then_some(value)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (V, Instant)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_stay_bounded() {
        let tokens = Tokens::new(3);
        let a = tokens.issue("a", Duration::from_secs(60));
        assert_eq!(tokens.get(&a), Some("a"));
        let gone = tokens.issue("b", Duration::ZERO);
        assert_eq!(tokens.get(&gone), None);
        for _ in 0..10 {
            tokens.issue("c", Duration::from_secs(60));
        }
        assert!(tokens.lock().len() <= 3);
        let d = tokens.issue("d", Duration::from_secs(60));
        assert_eq!(tokens.remove(&d), Some("d"));
        assert_eq!(tokens.get(&d), None);
    }
}
