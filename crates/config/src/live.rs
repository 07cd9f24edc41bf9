//! [`Live`]: the running configuration, shared by every part of the server, changed as a whole
//! (`setServerConfig`, SIGHUP) and watched by the parts that apply changes while running.

use crate::load::ConfigFile;
use crate::{Config, ConfigError};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// A cheap-to-clone handle on the running configuration.
///
/// - [`Live::get`] is the config now: an `Arc` snapshot that never changes under its reader.
/// - [`Live::set`] changes keys: each value is parsed as its key's type first, the file the
///   config came from (if any) is edited in place ([`Document::set`](crate::Document::set))
///   and written back, and only then is the new config published. A bad value, an unknown key
///   or a failed write changes nothing.
/// - [`Live::subscribe`] is a `watch` receiver that sees every published change.
///
/// The config a handle starts with may differ from its file (environment overrides, a
/// generated `api.secret`): only the keys a [`Live::set`] names are written to the file, so
/// those differences stay out of it.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    /// The published config. A watch channel rather than a lock: readers take a snapshot and
    /// async parts can wait for the next change.
    current: watch::Sender<Arc<Config>>,
    /// The file being edited. The std lock also makes `set` calls one at a time, so two
    /// changes cannot both start from the same config and lose one; nothing awaits while it
    /// is held.
    file: Mutex<Option<ConfigFile>>,
    /// The config the server's applier (the task that applies changes while running) applied
    /// last; `None` until an applier reports, and then [`Live::wait_applied`] waits for it.
    applied: watch::Sender<Option<Arc<Config>>>,
}

impl Live {
    /// A handle on `config`, writing changes back to `file` when there is one (pass
    /// [`Loaded::file`](crate::Loaded::file)).
    pub fn new(config: Config, file: Option<ConfigFile>) -> Live {
        let (current, _) = watch::channel(Arc::new(config));
        Live {
            inner: Arc::new(Inner {
                current,
                file: Mutex::new(file),
                applied: watch::channel(None).0,
            }),
        }
    }

    /// The applier reports that `config` (a value [`Live::subscribe`] gave it) is in effect.
    pub fn mark_applied(&self, config: &Arc<Config>) {
        self.inner.applied.send_replace(Some(Arc::clone(config)));
    }

    /// Waits until the applier has applied `config` or a config published after it, so a
    /// caller that changed the config ([`Live::set`]) can answer once the change is in effect
    /// (bound it with a timeout: an applier may take a while to move a listener). Returns at
    /// once when no applier ever reported (an embedder without one).
    pub async fn wait_applied(&self, config: &Arc<Config>) {
        let mut applied = self.inner.applied.subscribe();
        let done = |a: &Option<Arc<Config>>| match a {
            None => true,
            Some(a) => {
                Arc::ptr_eq(a, config) || {
                    // Superseded: the applier may skip straight to the newest config.
                    let now = self.get();
                    !Arc::ptr_eq(&now, config) && Arc::ptr_eq(a, &now)
                }
            }
        };
        // An error: the sender is gone with the handle, so nothing is left to wait for.
        let _ = applied.wait_for(done).await;
    }

    /// The config now.
    pub fn get(&self) -> Arc<Config> {
        Arc::clone(&self.inner.current.borrow())
    }

    /// A receiver of every change published after this call (and the config now, as its
    /// current value).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.inner.current.subscribe()
    }

    /// The file changes are written to, if the config came from one.
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().as_ref().map(|file| file.path.clone())
    }

    /// Sets each `section.key` (case-insensitive) to its value, as INI text, all or nothing:
    /// every value must parse as its key's type ([`ConfigError::BadValue`],
    /// [`ConfigError::UnknownKey`]), and a file-backed config must be written back
    /// ([`ConfigError::Write`]), before anything changes. Later pairs win over earlier ones
    /// for the same key. Returns the new config; subscribers are woken only if it differs from
    /// the old one (the file is written either way: the caller asked for those values).
    ///
    /// Writing the file is blocking IO on a small file; async callers on a busy runtime may
    /// prefer `spawn_blocking`.
    pub fn set<K, V>(
        &self,
        changes: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Arc<Config>, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut file = self.lock();
        let changes: Vec<(K, V)> = changes.into_iter().collect();
        let mut next = Config::clone(&self.get());
        for (key, value) in &changes {
            next.set(key.as_ref(), value.as_ref())?;
        }
        if let Some(file) = file.as_mut() {
            let mut document = file.document.clone();
            for (key, value) in &changes {
                document.set(key.as_ref(), value.as_ref())?;
            }
            crate::file::write(&file.path, &document.render())?;
            file.document = document;
        }
        let next = Arc::new(next);
        self.inner.current.send_if_modified(|current| {
            let changed = **current != *next;
            if changed {
                *current = Arc::clone(&next);
            }
            changed
        });
        Ok(self.get())
    }

    /// Publishes `config` as read again from the file (SIGHUP): nothing is written, and the
    /// file's document is replaced by `file` so later [`Live::set`] calls edit what is on disk
    /// now. An `api.secret` that is empty or ZLMediaKit's default in the new config keeps the
    /// one running (a reload must not lock the API out or change its secret). Returns whether
    /// anything changed.
    pub fn reload(&self, mut config: Config, file: Option<ConfigFile>) -> bool {
        let mut current_file = self.lock();
        let now = self.get();
        if config.api.clone().ensure_secret() {
            config.api.secret = now.api.secret.clone();
        }
        if let Some(file) = file {
            *current_file = Some(file);
        }
        let next = Arc::new(config);
        self.inner.current.send_if_modified(|current| {
            let changed = **current != *next;
            if changed {
                *current = Arc::clone(&next);
            }
            changed
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ConfigFile>> {
        // The document is replaced only after a successful write, so a panic elsewhere while
        // the lock was held cannot have left it half-changed.
        self.inner
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Live {
    /// A handle on the built-in defaults, with no file.
    fn default() -> Self {
        Live::new(Config::default(), None)
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}
