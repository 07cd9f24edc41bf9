//! The lifecycle every output shares: started by its first reader, stopped after its last.
//!
//! An output is an `Arc<O>` whose readers each hold a clone; the table keeps only a `Weak`, so
//! the output (and with it its muxing [`Task`]) goes away when the last reader does. A second
//! reader that comes while the first is still starting the output gets the same one.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::task::JoinHandle;

/// What [`OnDemand`] asks of an output.
pub(crate) trait Live {
    /// Whether the output still serves its stream (false once the stream ended).
    fn live(&self) -> bool;
}

/// The outputs of one kind, by key.
pub(crate) struct OnDemand<K, O> {
    // A std Mutex: held for a look-up or an insert, never across an `.await`.
    map: Mutex<HashMap<K, Weak<O>>>,
}

impl<K, O> Default for OnDemand<K, O> {
    fn default() -> Self {
        OnDemand {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, O: Live> OnDemand<K, O> {
    fn map(&self) -> MutexGuard<'_, HashMap<K, Weak<O>>> {
        // Single inserts and removes: a poisoned lock cannot hold a half-made entry.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self, key: &K) -> Option<Arc<O>> {
        self.map()
            .get(key)
            .and_then(Weak::upgrade)
            .filter(|o| o.live())
    }

    /// The running output of `key`, or the one `start` makes (`None` when it cannot: the
    /// stream is not live, or has no track the output carries).
    pub(crate) async fn get_or_start<F, Fut>(&self, key: &K, start: F) -> Option<Arc<O>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Arc<O>>>,
    {
        if let Some(running) = self.running(key) {
            return Some(running);
        }
        let started = start().await?;
        let mut map = self.map();
        if let Some(other) = map.get(key).and_then(Weak::upgrade).filter(|o| o.live()) {
            // Another reader started one meanwhile; ours stops as it is dropped here.
            return Some(other);
        }
        map.retain(|_, o| o.strong_count() > 0);
        map.insert(key.clone(), Arc::downgrade(&started));
        Some(started)
    }

    /// Outputs running now.
    #[cfg(test)]
    fn count(&self) -> usize {
        self.map().values().filter(|o| o.strong_count() > 0).count()
    }
}

/// An output's muxing task, aborted when the output is dropped.
pub(crate) struct Task(JoinHandle<()>);

impl Task {
    pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) -> Task {
        Task(tokio::spawn(future))
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    struct Out {
        live: AtomicBool,
    }

    impl Live for Out {
        fn live(&self) -> bool {
            self.live.load(Ordering::Relaxed)
        }
    }

    #[tokio::test]
    async fn started_once_shared_and_gone_with_the_last_reader() {
        let outputs: OnDemand<&str, Out> = OnDemand::default();
        let starts = AtomicUsize::new(0);
        let start = || async {
            starts.fetch_add(1, Ordering::Relaxed);
            Some(Arc::new(Out {
                live: AtomicBool::new(true),
            }))
        };
        let a = outputs.get_or_start(&"s", start).await.expect("started");
        let b = outputs.get_or_start(&"s", start).await.expect("shared");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(starts.load(Ordering::Relaxed), 1);
        assert_eq!(outputs.count(), 1);
        // An ended output is replaced by a new one.
        a.live.store(false, Ordering::Relaxed);
        let c = outputs.get_or_start(&"s", start).await.expect("restarted");
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b, c));
        assert_eq!(outputs.count(), 0);
        let none = outputs.get_or_start(&"t", || async { None }).await;
        assert!(none.is_none());
    }

    #[tokio::test]
    async fn a_task_stops_with_its_output() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = Task::spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        drop(task);
        assert!(
            rx.await.is_err(),
            "the task was aborted and dropped its sender"
        );
    }
}
