//! ferrostream's configuration: ZLMediaKit's `config.ini` layout and key names, plus our own
//! `[turn]` and `[events]` sections.
//!
//! One table (the `sections!` macro in `table.rs`) lists every key once: its section, its INI
//! name, its one-line doc, its default (as the INI text a user would write) and how it is
//! parsed into its Rust type. It is the only place a default is written: every crate that
//! needs settings builds them from a [`Config`] (`HookConfig::from(&config)`, …) and their
//! `Default`s are `From::from(&Config::default())`. Everything here is derived from it:
//! - the section structs and their `Default` impls (each field's rustdoc ends in `Default: …`),
//! - [`Config::load`] (INI file, then `FERROSTREAM__<SECTION>__<KEY>` environment overrides),
//! - [`Config::to_flat`] / [`Config::to_flat_redacted`] (`"section.key" => value`, for the
//!   `on_server_started` hook and `getServerConfig`),
//! - [`Config::to_ini`] (the whole config as INI with each doc as a comment; `conf/config.ini`
//!   is `Config::default().to_ini()` and a test keeps it so),
//! - [`Document::set`], which writes a change back into the user's file keeping its comments,
//!   order and unknown keys,
//! - [`Config::keys`] (the table itself, for docs and `setServerConfig`).
//!
//! Values are parsed, not validated: ports are `u16`, booleans accept `0/1/true/false`,
//! second and millisecond keys become [`Duration`](std::time::Duration)s, lists become `Vec`s
//! of typed items. Rust field names are the snake_case INI names; a trailing `MS`/`_ms` is
//! dropped because the `Duration` carries the unit. A port of 0 disables its listener
//! (`listen_port()` is `None`). No value may hold a line break or another control character,
//! or pass [`MAX_VALUE_LEN`] bytes, whatever its source.
//!
//! Unknown sections and keys (a full ZLMediaKit `config.ini` has dozens) are reported as
//! warnings naming `section.key`, never silently ignored and never fatal. A value that does not
//! parse is a [`ConfigError::BadValue`] naming the key and the value (not a secret's).
//!
//! At run time the config lives in a [`Live`] handle: `get()` a snapshot, `set(changes)` with
//! typed checks and write-back, `subscribe()` to changes.
//!
//! The crate does no IO except reading the file in [`Config::load`] and writing it back in
//! [`Live::set`]; it spawns nothing and reads no clock (tokio only for the watch channel).
//!
//! Layout:
//! - `table.rs`: the key table, [`Config`] and its section structs, [`Key`].
//! - `value.rs`: [`Secret`], [`StampMode`], [`IpRange`], [`TurnUser`].
//! - `codec.rs`: how each key's text becomes its type.
//! - `load.rs`: [`Config::load`], environment overrides, the flat view, [`Config::to_ini`].
//! - `document.rs`: [`Document`], the file as lines, for write-back.
//! - `live.rs`: [`Live`].
//! - `file.rs`: reading the file and replacing it atomically.
//! - `error.rs`: [`ConfigError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod codec;
mod document;
mod error;
mod file;
mod live;
mod load;
mod table;
mod value;

pub use document::Document;
pub use error::ConfigError;
pub use live::Live;
pub use load::{ConfigFile, Loaded};
pub use table::{
    Api, Config, Events, General, Hls, Hook, Http, Key, Protocol, Record, Rtmp, Rtsp, Turn,
    MAX_VALUE_LEN,
};
pub use value::{IpRange, Secret, StampMode, TurnUser};

/// ZLMediaKit's well-known default `api.secret`; like an empty secret, it is replaced by a
/// random one at start (see [`Api::ensure_secret`]).
pub const ZLM_DEFAULT_SECRET: &str = "035c73f7-bb6b-4889-a715-d9eb2d1925cc";

/// Prefix of the environment variables that override config keys:
/// `FERROSTREAM__<SECTION>__<KEY>`.
pub const ENV_PREFIX: &str = "FERROSTREAM__";
