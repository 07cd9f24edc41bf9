//! Ordered, bounded workers for the hooks nobody waits on (lifecycle and notifications).
//!
//! A hook goes to the worker its order key (the stream) hashes to, so one stream's hooks are
//! sent one after another in the order they happened, while other streams' hooks proceed on
//! the other workers. Each worker's queue is bounded: when a dead or slow backend fills it,
//! further hooks are dropped and counted rather than held in memory.

use crate::client::Then;
use crate::http::Caller;
use crate::{Hook, HookError};
use serde_json::{Map, Value};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(crate) enum Job {
    Call {
        hook: Hook,
        body: Map<String, Value>,
        then: Option<Then>,
    },
    Flush(oneshot::Sender<()>),
}

pub(crate) struct Queue {
    senders: Vec<mpsc::Sender<Job>>,
    dropped: AtomicU64,
}

impl Queue {
    /// Starts `workers` workers on the current tokio runtime.
    pub(crate) fn new(caller: Arc<Caller>, workers: usize, capacity: usize) -> Queue {
        let senders = (0..workers.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(capacity.max(1));
                tokio::spawn(work(Arc::clone(&caller), rx));
                tx
            })
            .collect();
        Queue {
            senders,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `hook` behind the earlier hooks of `order`; drops it when that queue is full.
    pub(crate) fn push(
        &self,
        order: &str,
        hook: Hook,
        body: Map<String, Value>,
        then: Option<Then>,
    ) {
        let mut hasher = DefaultHasher::new();
        order.hash(&mut hasher);
        let worker = (hasher.finish() % self.senders.len() as u64) as usize;
        let Some(tx) = self.senders.get(worker) else {
            return;
        };
        if tx.try_send(Job::Call { hook, body, then }).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // The first drop, then every 100th: a dead backend must not flood the log either.
            if dropped == 1 || dropped.is_multiple_of(100) {
                tracing::warn!(
                    hook = hook.name(),
                    dropped,
                    "hook queue full (backend slow or down): hook dropped"
                );
            }
        }
    }

    /// Hooks dropped so far because their queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every hook queued before this call has been sent (or given up).
    pub(crate) async fn flush(&self) {
        let mut waits = Vec::new();
        for tx in &self.senders {
            let (done, wait) = oneshot::channel();
            if tx.send(Job::Flush(done)).await.is_ok() {
                waits.push(wait);
            }
        }
        for wait in waits {
            let _ = wait.await;
        }
    }
}

async fn work(caller: Arc<Caller>, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Call { hook, body, then } => {
                let result = caller.call(hook, body).await;
                match &result {
                    Err(e @ HookError::Failed { .. }) => {
                        tracing::warn!(hook = hook.name(), "hook not delivered: {e}")
                    }
                    Err(e) => tracing::debug!(hook = hook.name(), "{e}"),
                    Ok(_) => {}
                }
                if let Some(then) = then {
                    then(result);
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
