//! [`ConfigError`]: what can go wrong reading, changing or writing the configuration.

use std::path::PathBuf;

/// Errors from loading or changing the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file named with `-c`.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A line is neither `[section]`, `key=value`, blank nor a `#`/`;` comment.
    #[error("{origin} line {line}: expected `[section]`, `key=value` or a comment, got {text:?}")]
    Syntax {
        /// The file (or `"config"` for text given directly).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// The offending line, trimmed.
        text: String,
    },
    /// A known key has a value that does not parse.
    #[error("bad value {value:?} for {key} ({origin}): {reason}")]
    BadValue {
        /// `section.key`, e.g. `rtmp.port`.
        key: String,
        /// The value as written.
        value: String,
        /// Why it does not parse.
        reason: String,
        /// Where it came from: `file line N` or the environment variable's name.
        origin: String,
    },
    /// [`Config::set`](crate::Config::set), [`Document::set`](crate::Document::set) or
    /// [`Live::set`](crate::Live::set) was given a key that does not exist.
    #[error("unknown config key {key}")]
    UnknownKey {
        /// The key as given.
        key: String,
    },
    /// [`Live::set`](crate::Live::set) could not write the changed file back; nothing changed.
    #[error("cannot write config file {}", path.display())]
    Write {
        /// The file the config was read from.
        path: PathBuf,
        /// Why it could not be written.
        #[source]
        source: std::io::Error,
    },
}
