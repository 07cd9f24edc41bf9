//! Reading the configuration ([`Config::load`]: file, then environment), the flat
//! `section.key` view and the INI writer.

use crate::document::Document;
use crate::table::{find_key, Key, KEYS};
use crate::{Config, ConfigError, ENV_PREFIX};
use std::path::{Path, PathBuf};

/// The result of [`Config::load`]: the config, what was ignored on the way, and the file it
/// came from (for writing changes back).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The parsed configuration.
    pub config: Config,
    /// One line per ignored item (unknown section or key, keys outside any section, unknown
    /// `FERROSTREAM__…` variables), each naming `section.key` and where it was found.
    pub warnings: Vec<String>,
    /// The file read, as parsed: `None` when the config came from the defaults or from text.
    pub file: Option<ConfigFile>,
}

/// A config file as read: where it is and its lines, which
/// [`Live::set`](crate::Live::set) edits and writes back.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// The path it was read from.
    pub path: PathBuf,
    /// Its text, line by line.
    pub document: Document,
}

/// The first lines of the file [`Config::to_ini`] writes.
const INI_HEADER: &[&str] = &[
    "ferrostream configuration. Section and key names follow ZLMediaKit's config.ini.",
    "Any key can be overridden from the environment as FERROSTREAM__<SECTION>__<KEY>,",
    "e.g. FERROSTREAM__RTMP__PORT=1936. A port of 0 disables that listener.",
];

impl Config {
    /// Reads `path` (or starts from the defaults when `None`), then applies the
    /// `FERROSTREAM__<SECTION>__<KEY>` variables among `env` (pass `std::env::vars()`); the
    /// environment wins over the file. Section and key names match case-insensitively.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let mut loaded = match path {
            Some(path) => {
                let text = crate::file::read(path)?;
                let document = Document::parse(&text, &path.display().to_string())?;
                let mut loaded = Self::from_document(&document)?;
                loaded.file = Some(ConfigFile {
                    path: path.to_path_buf(),
                    document,
                });
                loaded
            }
            None => Loaded {
                config: Config::default(),
                warnings: Vec::new(),
                file: None,
            },
        };
        loaded.apply_env(env)?;
        Ok(loaded)
    }

    /// Parses INI text over the defaults (no environment).
    pub fn from_ini(text: &str) -> Result<Loaded, ConfigError> {
        Self::from_document(&Document::parse(text, "config")?)
    }

    /// The config a parsed file describes, over the defaults (no environment). Unknown
    /// sections and keys, and keys before the first section, are warnings; for a key given
    /// twice the last one wins.
    pub fn from_document(document: &Document) -> Result<Loaded, ConfigError> {
        let mut config = Config::default();
        let mut warnings = Vec::new();
        for entry in document.entries() {
            let at = || format!("{} line {}", document.origin(), entry.line);
            let Some(section) = entry.section else {
                warnings.push(format!(
                    "key {} outside any section ({}), ignored",
                    entry.key,
                    at()
                ));
                continue;
            };
            match find_key(section, entry.key) {
                Some(key) => key.apply(&mut config, entry.value, at)?,
                None => warnings.push(format!(
                    "unknown key {section}.{} ({}), ignored",
                    entry.key,
                    at()
                )),
            }
        }
        Ok(Loaded {
            config,
            warnings,
            file: None,
        })
    }

    /// The table of every key, in file order.
    pub fn keys() -> &'static [Key] {
        KEYS
    }

    /// The value of `section.key` (case-insensitive) as INI text.
    pub fn get(&self, path: &str) -> Option<String> {
        let (section, name) = path.split_once('.')?;
        find_key(section, name).map(|key| key.value(self))
    }

    /// Sets `section.key` (case-insensitive) from INI text, as `setServerConfig` does.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), ConfigError> {
        let key = crate::table::key_at(path)?;
        key.apply(self, value.trim(), || "set".to_owned())
    }

    /// Every key as `("section.key", value)`, in file order.
    pub fn to_flat(&self) -> Vec<(String, String)> {
        KEYS.iter()
            .map(|key| (key.path.to_owned(), key.value(self)))
            .collect()
    }

    /// [`Config::to_flat`] with credentials (`api.secret`, `hook.sign_token`,
    /// `turn.auth_secret`, `turn.users`) blanked, for hooks and logs.
    pub fn to_flat_redacted(&self) -> Vec<(String, String)> {
        KEYS.iter()
            .map(|key| {
                let value = if key.secret {
                    String::new()
                } else {
                    key.value(self)
                };
                (key.path.to_owned(), value)
            })
            .collect()
    }

    /// The whole config as INI text: every section and key in file order, each preceded by
    /// its one-line doc as a `#` comment. [`Config::from_ini`] reads it back unchanged;
    /// `conf/config.ini` is `Config::default().to_ini()`. Built the way
    /// [`Document::set`] adds a key missing from a file, so both look the same.
    pub fn to_ini(&self) -> String {
        let mut document = Document::comments("to_ini", INI_HEADER);
        for key in KEYS {
            document.set_text(key, &key.value(self));
        }
        document.render()
    }
}

impl Loaded {
    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, name)) = rest.split_once("__") else {
                self.warnings.push(format!(
                    "environment variable {var} is not {ENV_PREFIX}<SECTION>__<KEY>, ignored"
                ));
                continue;
            };
            match find_key(section, name) {
                Some(key) => key.apply(&mut self.config, value.trim(), || var.clone())?,
                None => self.warnings.push(format!(
                    "unknown key {}.{} (environment variable {var}), ignored",
                    section.to_ascii_lowercase(),
                    name.to_ascii_lowercase()
                )),
            }
        }
        Ok(())
    }
}
