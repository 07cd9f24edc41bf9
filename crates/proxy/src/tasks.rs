//! The running proxies of one kind, by key: each a task and what the API reports of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinHandle;

/// Tasks by key. A task removes itself when it ends ([`Tasks::remove_own`]), so a key is
/// listed exactly while its task runs.
pub(crate) struct Tasks<M> {
    entries: Mutex<HashMap<String, Entry<M>>>,
    next_id: AtomicU64,
}

struct Entry<M> {
    id: u64,
    meta: M,
    task: JoinHandle<()>,
}

impl<M> Default for Tasks<M> {
    fn default() -> Self {
        Tasks {
            entries: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }
}

impl<M> Tasks<M> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry<M>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `spawn(id)`'s task under `key` unless the key is taken (false). The task gets
    /// its `id` to remove itself with.
    pub(crate) fn start(
        self: &Arc<Self>,
        key: &str,
        meta: M,
        spawn: impl FnOnce(u64) -> JoinHandle<()>,
    ) -> bool {
        let mut entries = self.lock();
        if entries.contains_key(key) {
            return false;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let task = spawn(id);
        entries.insert(key.to_owned(), Entry { id, meta, task });
        true
    }

    /// Whether `key` runs.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    /// The task `id` under `key` ended by itself (not a newer one under the same key).
    pub(crate) fn remove_own(&self, key: &str, id: u64) {
        let mut entries = self.lock();
        if entries.get(key).is_some_and(|e| e.id == id) {
            entries.remove(key);
        }
    }

    /// Stops the task under `key` and waits until it has ended; false when there is none.
    pub(crate) async fn remove(&self, key: &str) -> bool {
        let entry = self.lock().remove(key);
        match entry {
            Some(entry) => {
                entry.task.abort();
                let _ = entry.task.await;
                true
            }
            None => false,
        }
    }

    /// `f` of the task under `key`.
    pub(crate) fn get<R>(&self, key: &str, f: impl Fn(&str, &M) -> R) -> Option<R> {
        self.lock().get(key).map(|e| f(key, &e.meta))
    }

    /// `f` of every task, by key.
    pub(crate) fn list<R>(&self, f: impl Fn(&str, &M) -> R) -> Vec<R> {
        let entries = self.lock();
        let mut keys: Vec<&String> = entries.keys().collect();
        keys.sort();
        keys.into_iter().map(|k| f(k, &entries[k].meta)).collect()
    }

    /// Stops every task.
    pub(crate) fn shutdown(&self) {
        for (_, entry) in self.lock().drain() {
            entry.task.abort();
        }
    }
}
