//! What listStreamProxy and listStreamPusherProxy report of a running proxy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The live state of one proxy, shared by its task and the API.
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<Inner>,
    /// Attempts after the first (ZLMediaKit's `rePullCount` / `rePublishCount`).
    retries: AtomicU64,
    /// Media bytes moved over every attempt.
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Since when the current attempt is live.
    live_since: Option<Instant>,
    /// Time live in the attempts before.
    live_before: Duration,
    /// Start of the second over which the speed is being measured, and the byte count then.
    window: Option<(Instant, u64)>,
    /// Bytes per second over the last whole window, and when it ended.
    speed: (u64, Option<Instant>),
}

impl Status {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current attempt got through.
    pub fn went_live(&self) {
        let mut inner = self.lock();
        if inner.live_since.is_none() {
            inner.live_since = Some(Instant::now());
        }
    }

    /// The current attempt ended.
    pub fn went_down(&self) {
        let mut inner = self.lock();
        if let Some(since) = inner.live_since.take() {
            inner.live_before += since.elapsed();
        }
    }

    /// Another attempt starts.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// ZLMediaKit's `status`: 0 while an attempt is live, 1 while connecting or waiting to
    /// retry.
    pub fn code(&self) -> u32 {
        if self.lock().live_since.is_some() {
            0
        } else {
            1
        }
    }

    /// Seconds live over every attempt (`liveSecs`).
    pub fn live_secs(&self) -> u64 {
        let inner = self.lock();
        let now = inner.live_since.map(|s| s.elapsed()).unwrap_or_default();
        (inner.live_before + now).as_secs()
    }

    /// Attempts after the first.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Counts `n` media bytes moved.
    pub fn add_bytes(&self, n: u64) {
        let total = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.window {
            Some((start, at)) if now.duration_since(start) >= Duration::from_secs(1) => {
                let elapsed = now.duration_since(start).as_secs_f64();
                inner.speed = (((total - at) as f64 / elapsed) as u64, Some(now));
                inner.window = Some((now, total));
            }
            Some(_) => {}
            None => inner.window = Some((now, total)),
        }
    }

    /// Media bytes moved (`totalBytes`).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Bytes per second over the last second (`bytesSpeed`); 0 once nothing moved for two.
    pub fn speed(&self) -> u64 {
        let inner = self.lock();
        match inner.speed {
            (speed, Some(at)) if at.elapsed() < Duration::from_secs(2) => speed,
            _ => 0,
        }
    }
}

/// ZLMediaKit's retry rule: up to `limit` attempts after a failure (negative = forever), the
/// count starting over after an attempt that got through, waiting [`backoff`] between them.
#[derive(Debug)]
pub(crate) struct Retries {
    limit: i64,
    failures: u32,
}

impl Retries {
    pub(crate) fn new(limit: i64) -> Self {
        Retries { limit, failures: 0 }
    }

    /// After an attempt ended: the wait before the next one, `None` when none is left.
    pub(crate) fn next(&mut self, got_through: bool) -> Option<Duration> {
        self.failures = if got_through {
            1
        } else {
            self.failures.saturating_add(1)
        };
        if self.limit >= 0 && i64::from(self.failures) > self.limit {
            return None;
        }
        Some(backoff(self.failures))
    }

    /// Failed attempts in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

/// ZLMediaKit's retry delay: 2 s more after each failed attempt, at most 60 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_secs(u64::from(failures.max(1)).saturating_mul(2).min(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(6));
        assert_eq!(backoff(30), Duration::from_secs(60));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn retries_count_failures_in_a_row() {
        let mut r = Retries::new(2);
        assert_eq!(r.next(false), Some(Duration::from_secs(2)));
        assert_eq!(r.next(false), Some(Duration::from_secs(4)));
        assert_eq!(r.next(false), None);
        // An attempt that got through starts the count over.
        let mut r = Retries::new(1);
        assert_eq!(r.next(false), Some(Duration::from_secs(2)));
        assert_eq!(r.next(true), Some(Duration::from_secs(2)));
        assert_eq!(r.next(false), None);
        assert_eq!(Retries::new(0).next(true), None);
        let mut forever = Retries::new(-1);
        for _ in 0..100 {
            assert!(forever.next(false).is_some());
        }
        assert_eq!(forever.failures(), 100);
    }

    #[test]
    fn status_is_live_only_during_an_attempt() {
        let s = Status::default();
        assert_eq!(s.code(), 1);
        s.went_live();
        assert_eq!(s.code(), 0);
        s.went_down();
        assert_eq!(s.code(), 1);
        s.retried();
        assert_eq!(s.retries(), 1);
    }
}
