//! The crate's only IO: reading the config file and writing it back.

use crate::ConfigError;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The file's text. Not UTF-8 is an error, like a missing file.
pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Replaces the file's text with `text`, atomically: written to a temporary file beside it,
/// synced, then renamed over it, so a crash or a full disk leaves the old file whole rather
/// than half a config. The new file keeps the old one's permissions (it may hold secrets); a
/// symbolic link is followed and its target replaced, as an editor would.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), ConfigError> {
    /// Tells apart the temporary files of handles writing at once in one process.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let error = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = std::fs::canonicalize(path).map_err(error)?;
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let temp = target.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.set_permissions(std::fs::metadata(&target)?.permissions())?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(error)
}
