//! A provider's bounded queue, and the task that drains it into its sink in order.

use crate::Envelope;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// First wait after a failed send; doubled after each further failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two tries of a sink that is down.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A failure is logged at warn level once per this many in a row.
const WARN_EVERY: u64 = 50;

/// Where a provider delivers envelopes.
pub(crate) trait Sink: Send + 'static {
    /// Delivers one envelope; `Ok` only once the sink has it (2xx, JetStream ack).
    fn send(&mut self, envelope: &Envelope) -> impl Future<Output = Result<(), String>> + Send;
}

/// Envelopes waiting for one provider, oldest first, at most `capacity`.
pub(crate) struct Queue {
    name: &'static str,
    capacity: usize,
    // A std Mutex: held for a push or a pop, never across an `.await`, so emitting from a
    // media task never waits on a provider.
    items: Mutex<VecDeque<Arc<Envelope>>>,
    ready: Notify,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl Queue {
    pub(crate) fn new(name: &'static str, capacity: usize) -> Queue {
        Queue {
            name,
            capacity: capacity.max(1),
            items: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    fn items(&self) -> MutexGuard<'_, VecDeque<Arc<Envelope>>> {
        // Single pushes and pops: a poisoned lock cannot hold a half-made queue.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Adds `envelope` last; a full queue drops its oldest first (counted).
    pub(crate) fn push(&self, envelope: Arc<Envelope>) {
        let mut items = self.items();
        while items.len() >= self.capacity {
            items.pop_front();
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(1000) {
                tracing::warn!(
                    provider = self.name,
                    dropped = n,
                    "events buffer full: oldest dropped"
                );
            }
        }
        items.push_back(envelope);
        drop(items);
        self.ready.notify_one();
    }

    fn front(&self) -> Option<Arc<Envelope>> {
        self.items().front().cloned()
    }

    /// Removes `envelope` if it is still the oldest (a full queue may have dropped it while it
    /// was being sent).
    fn delivered(&self, envelope: &Arc<Envelope>) {
        let mut items = self.items();
        if items.front().is_some_and(|f| Arc::ptr_eq(f, envelope)) {
            items.pop_front();
        }
        drop(items);
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn len(&self) -> usize {
        self.items().len()
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Sends `queue`'s envelopes to `sink` one at a time, oldest first, forever (the task is
/// aborted when the server stops). A failed send is retried with a growing wait; the queue
/// keeps filling meanwhile and drops its oldest past its capacity.
pub(crate) async fn run(queue: Arc<Queue>, mut sink: impl Sink) {
    let mut backoff = BACKOFF_MIN;
    let mut failures: u64 = 0;
    loop {
        let Some(envelope) = queue.front() else {
            queue.ready.notified().await;
            continue;
        };
        match sink.send(&envelope).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(
                        provider = queue.name,
                        "events sink is back after {failures} failed tries"
                    );
                }
                queue.delivered(&envelope);
                backoff = BACKOFF_MIN;
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(WARN_EVERY) {
                    tracing::warn!(provider = queue.name, failures, "events not delivered: {e}");
                } else {
                    tracing::debug!(provider = queue.name, "events not delivered: {e}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use serde_json::Map;

    fn envelope(n: u64) -> Arc<Envelope> {
        Arc::new(Envelope::new(0, n, Kind::Peer, Map::new()))
    }

    /// A sink that is down while `down` is set, recording what it took.
    struct Flaky {
        down: Arc<std::sync::atomic::AtomicBool>,
        got: Arc<Mutex<Vec<String>>>,
    }

    impl Sink for Flaky {
        async fn send(&mut self, envelope: &Envelope) -> Result<(), String> {
            if self.down.load(Ordering::Relaxed) {
                return Err("down".into());
            }
            self.got
                .lock()
                .map_err(|_| "poisoned".to_owned())?
                .push(envelope.uuid.clone());
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_and_counts() {
        let q = Queue::new("t", 3);
        let all: Vec<_> = (0..5).map(envelope).collect();
        for e in &all {
            q.push(Arc::clone(e));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 2);
        assert!(Arc::ptr_eq(&q.front().expect("front"), &all[2]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sink_that_comes_back_gets_the_buffer_in_order() {
        let q = Arc::new(Queue::new("t", 4));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let got = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(run(
            Arc::clone(&q),
            Flaky {
                down: Arc::clone(&down),
                got: Arc::clone(&got),
            },
        ));
        let all: Vec<_> = (0..6).map(envelope).collect();
        for e in &all {
            q.push(Arc::clone(e));
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(got.lock().expect("lock").is_empty());
        assert_eq!(q.dropped(), 2);
        down.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let want: Vec<String> = all[2..].iter().map(|e| e.uuid.clone()).collect();
        assert_eq!(*got.lock().expect("lock"), want);
        assert_eq!(q.sent(), 4);
        assert_eq!(q.len(), 0);
        task.abort();
    }
}
