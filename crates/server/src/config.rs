//! The server's configuration: ZLMediaKit's `config.ini` layout and key names, plus our own
//! `[turn]` and `[events]` sections.
//!
//! One table, written by the `sections!` macro below, lists every key once: its section, its
//! INI name, its one-line doc, its default (as the INI text a user would write) and how it is
//! parsed into its Rust type. Everything else is derived from that table, so nothing can drift:
//! - the section structs and their `Default` impls (each field's rustdoc ends in `Default: …`),
//! - [`Config::load`] (INI file, then `FERROSTREAM__<SECTION>__<KEY>` environment overrides),
//! - [`Config::to_flat`] / [`Config::to_flat_redacted`] (`"section.key" => value`, for the
//!   `on_server_started` hook and `getServerConfig`),
//! - [`Config::to_ini`] (the whole config as INI with each doc as a comment; `conf/config.ini`
//!   is `Config::default().to_ini()` and a test keeps it so),
//! - [`Config::keys`] (the table itself, for docs and `setServerConfig`).
//!
//! Values are parsed, not validated: ports are `u16`, booleans accept `0/1/true/false`,
//! second and millisecond keys become [`Duration`]s, lists become `Vec`s of typed items. Rust
//! field names are the snake_case INI names; a trailing `MS`/`_ms` is dropped because the
//! [`Duration`] carries the unit. A port of 0 disables its listener (`listen_port()` is `None`).
//!
//! Unknown sections and keys (a full ZLMediaKit `config.ini` has dozens) are reported as
//! warnings naming `section.key`, never silently ignored and never fatal. A value that does not
//! parse is a [`ConfigError::BadValue`] naming the key and the value.

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// ZLMediaKit's well-known default `api.secret`; like an empty secret, it is replaced by a
/// random one at start (see [`Api::ensure_secret`]).
pub const ZLM_DEFAULT_SECRET: &str = "035c73f7-bb6b-4889-a715-d9eb2d1925cc";

/// Prefix of the environment variables that override config keys:
/// `FERROSTREAM__<SECTION>__<KEY>`.
pub const ENV_PREFIX: &str = "FERROSTREAM__";

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
    /// [`Config::set`] was given a key that does not exist.
    #[error("unknown config key {key}")]
    UnknownKey {
        /// The key as given.
        key: String,
    },
}

/// The result of [`Config::load`]: the config and what was ignored on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The parsed configuration.
    pub config: Config,
    /// One line per ignored item (unknown section or key, keys outside any section, unknown
    /// `FERROSTREAM__…` variables), each naming `section.key` and where it was found.
    pub warnings: Vec<String>,
}

/// A secret string (API secret, signing token, TURN credentials): `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (comparing, signing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

/// How timestamps of a published stream are rewritten (`protocol.modify_stamp`, ZLMediaKit's
/// numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampMode {
    /// `0`: keep the publisher's timestamps.
    Absolute,
    /// `1`: replace them with the server's clock.
    System,
    /// `2`: relative to the first frame, with jumps and rollbacks smoothed out.
    Relative,
}

impl FromStr for StampMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "0" => Ok(StampMode::Absolute),
            "1" => Ok(StampMode::System),
            "2" => Ok(StampMode::Relative),
            _ => Err("expected 0 (absolute), 1 (system) or 2 (relative)".into()),
        }
    }
}

impl fmt::Display for StampMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            StampMode::Absolute => 0,
            StampMode::System => 1,
            StampMode::Relative => 2,
        };
        write!(f, "{n}")
    }
}

/// One entry of an address list (`http.allow_ip_range`, `turn.allow_peers`): a single address,
/// an inclusive `first-last` range (ZLMediaKit's form) or a CIDR block `addr/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRange {
    /// One address, e.g. `127.0.0.1` or `::1`.
    Single(IpAddr),
    /// `first-last`, both of the same family, `first <= last`.
    Span(IpAddr, IpAddr),
    /// `addr/len`; `len` is at most 32 (IPv4) or 128 (IPv6).
    Cidr(IpAddr, u8),
}

impl IpRange {
    /// Whether `ip` falls in this entry. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
    /// dual-stack socket reports for an IPv4 peer) is matched as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match *self {
            IpRange::Single(a) => a.to_canonical() == ip,
            IpRange::Span(first, last) => match (first, last, ip) {
                (IpAddr::V4(f), IpAddr::V4(l), IpAddr::V4(x)) => (f..=l).contains(&x),
                (IpAddr::V6(f), IpAddr::V6(l), IpAddr::V6(x)) => (f..=l).contains(&x),
                _ => false,
            },
            IpRange::Cidr(net, len) => match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(x)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(x) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(x)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(x) & mask
                }
                _ => false,
            },
        }
    }

    /// Whether any entry of `list` contains `ip`.
    pub fn any_contains(list: &[IpRange], ip: IpAddr) -> bool {
        list.iter().any(|r| r.contains(ip))
    }

    /// The entry as CIDR blocks (the TURN peer policy's form): one for an address or a block,
    /// the fewest blocks covering exactly a `first-last` span.
    pub fn to_cidrs(&self) -> Vec<::turn::policy::Cidr> {
        let block = |addr: IpAddr, len: u8| ::turn::policy::Cidr::new(addr, len);
        match *self {
            IpRange::Single(a) => block(a, if a.is_ipv4() { 32 } else { 128 })
                .into_iter()
                .collect(),
            IpRange::Cidr(a, len) => block(a, len).into_iter().collect(),
            IpRange::Span(IpAddr::V4(f), IpAddr::V4(l)) => {
                span_blocks(u128::from(f.to_bits()), u128::from(l.to_bits()), 32)
                    .into_iter()
                    .filter_map(|(start, len)| {
                        let start = u32::try_from(start).ok()?;
                        block(IpAddr::V4(std::net::Ipv4Addr::from_bits(start)), len)
                    })
                    .collect()
            }
            IpRange::Span(IpAddr::V6(f), IpAddr::V6(l)) => {
                span_blocks(f.to_bits(), l.to_bits(), 128)
                    .into_iter()
                    .filter_map(|(start, len)| {
                        block(IpAddr::V6(std::net::Ipv6Addr::from_bits(start)), len)
                    })
                    .collect()
            }
            IpRange::Span(..) => Vec::new(),
        }
    }
}

/// The aligned blocks `(start, prefix length)` covering `first..=last` of a `width`-bit
/// address space, largest first.
fn span_blocks(first: u128, last: u128, width: u32) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    let mut start = first;
    loop {
        // The largest block aligned at `start` that does not run past `last`.
        let mut host_bits = start.trailing_zeros().min(width);
        while host_bits > 0 {
            let size_minus_one = if host_bits >= 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            if start
                .checked_add(size_minus_one)
                .is_some_and(|end| end <= last)
            {
                break;
            }
            host_bits -= 1;
        }
        out.push((start, u8::try_from(width - host_bits).unwrap_or(0)));
        let size_minus_one = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        match start.checked_add(size_minus_one) {
            Some(end) if end < last => start = end + 1,
            _ => return out,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let addr = |a: &str| {
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{:?} is not an IP address", a.trim()))
        };
        if let Some((net, len)) = s.split_once('/') {
            let net = addr(net)?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            match len.trim().parse::<u8>() {
                Ok(len) if len <= max => Ok(IpRange::Cidr(net, len)),
                _ => Err(format!("{s:?}: prefix length must be 0..={max}")),
            }
        } else if let Some((first, last)) = s.split_once('-') {
            let (first, last) = (addr(first)?, addr(last)?);
            let ordered = match (first, last) {
                (IpAddr::V4(f), IpAddr::V4(l)) => f <= l,
                (IpAddr::V6(f), IpAddr::V6(l)) => f <= l,
                _ => return Err(format!("{s:?}: both ends must be IPv4 or both IPv6")),
            };
            if !ordered {
                return Err(format!("{s:?}: first address is after the last"));
            }
            Ok(IpRange::Span(first, last))
        } else {
            Ok(IpRange::Single(addr(s)?))
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpRange::Single(a) => write!(f, "{a}"),
            IpRange::Span(a, b) => write!(f, "{a}-{b}"),
            IpRange::Cidr(a, len) => write!(f, "{a}/{len}"),
        }
    }
}

/// A static TURN user from `turn.users` (`name:password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUser {
    /// The long-term-credential user name.
    pub name: String,
    /// Its password.
    pub password: Secret,
}

impl FromStr for TurnUser {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((name, password)) if !name.trim().is_empty() => Ok(TurnUser {
                name: name.trim().to_owned(),
                password: Secret::new(password.trim()),
            }),
            _ => Err(format!(
                "{:?} is not name:password",
                s.split(':').next().unwrap_or_default()
            )),
        }
    }
}

/// How one key's INI text maps to its Rust field type. The implementors are zero-sized markers
/// named in the key table.
trait Codec<T> {
    /// Whether the value is a credential, blanked by [`Config::to_flat_redacted`].
    const SECRET: bool = false;
    fn parse(text: &str) -> Result<T, String>;
    fn render(value: &T) -> String;
}

/// Any `FromStr + Display` type: numbers, strings, [`StampMode`].
enum Plain {}
/// `0`/`1`/`true`/`false` (written as `0`/`1`, like ZLMediaKit).
enum Flag {}
/// Whole seconds.
enum Secs {}
/// Milliseconds.
enum Millis {}
/// Seconds, fractions allowed (`3.0`, `0.5`).
enum FracSecs {}
/// A file system path.
enum Dir {}
/// A string where empty means "not set" (hook URLs).
enum OptText {}
/// An IP address where empty means "not set".
enum OptIp {}
/// A [`Secret`].
enum SecretText {}
/// A comma-separated list of [`FromStr`] items (empty items skipped).
enum CommaList {}
/// A `/`-separated list of names.
enum SlashList {}
/// `first-last` ports.
enum PortSpan {}
/// `name:password,…` TURN users.
enum Users {}

impl<T: FromStr + fmt::Display> Codec<T> for Plain
where
    T::Err: fmt::Display,
{
    fn parse(text: &str) -> Result<T, String> {
        text.parse().map_err(|e: T::Err| e.to_string())
    }
    fn render(value: &T) -> String {
        value.to_string()
    }
}

impl Codec<bool> for Flag {
    fn parse(text: &str) -> Result<bool, String> {
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err("expected 0, 1, true or false".into()),
        }
    }
    fn render(value: &bool) -> String {
        u8::from(*value).to_string()
    }
}

impl Codec<Duration> for Secs {
    fn parse(text: &str) -> Result<Duration, String> {
        text.parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("expected whole seconds: {e}"))
    }
    fn render(value: &Duration) -> String {
        value.as_secs().to_string()
    }
}

impl Codec<Duration> for Millis {
    fn parse(text: &str) -> Result<Duration, String> {
        text.parse()
            .map(Duration::from_millis)
            .map_err(|e| format!("expected milliseconds: {e}"))
    }
    fn render(value: &Duration) -> String {
        value.as_millis().to_string()
    }
}

impl Codec<Duration> for FracSecs {
    fn parse(text: &str) -> Result<Duration, String> {
        let secs: f64 = text.parse().map_err(|e| format!("expected seconds: {e}"))?;
        Duration::try_from_secs_f64(secs).map_err(|e| format!("expected seconds: {e}"))
    }
    fn render(value: &Duration) -> String {
        // Whole numbers come out without a fraction (`10`), as ZLMediaKit's `segDur=2`.
        value.as_secs_f64().to_string()
    }
}

impl Codec<PathBuf> for Dir {
    fn parse(text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }
    fn render(value: &PathBuf) -> String {
        value.display().to_string()
    }
}

impl Codec<Option<String>> for OptText {
    fn parse(text: &str) -> Result<Option<String>, String> {
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
    fn render(value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }
}

impl Codec<Option<IpAddr>> for OptIp {
    fn parse(text: &str) -> Result<Option<IpAddr>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| "expected an IP address or nothing".into())
    }
    fn render(value: &Option<IpAddr>) -> String {
        value.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

impl Codec<Secret> for SecretText {
    const SECRET: bool = true;
    fn parse(text: &str) -> Result<Secret, String> {
        Ok(Secret::new(text))
    }
    fn render(value: &Secret) -> String {
        value.expose().to_owned()
    }
}

impl<T: FromStr<Err = String> + fmt::Display> Codec<Vec<T>> for CommaList {
    fn parse(text: &str) -> Result<Vec<T>, String> {
        comma_items(text)
    }
    fn render(value: &Vec<T>) -> String {
        let items: Vec<String> = value.iter().map(T::to_string).collect();
        items.join(",")
    }
}

impl Codec<Vec<String>> for SlashList {
    fn parse(text: &str) -> Result<Vec<String>, String> {
        Ok(text
            .split('/')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn render(value: &Vec<String>) -> String {
        value.join("/")
    }
}

impl Codec<RangeInclusive<u16>> for PortSpan {
    fn parse(text: &str) -> Result<RangeInclusive<u16>, String> {
        let (first, last) = text.split_once('-').ok_or("expected first-last")?;
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|e| format!("{:?} is not a port: {e}", p.trim()))
        };
        let (first, last) = (port(first)?, port(last)?);
        if first == 0 || first > last {
            return Err("expected 1 <= first <= last".into());
        }
        Ok(first..=last)
    }
    fn render(value: &RangeInclusive<u16>) -> String {
        format!("{}-{}", value.start(), value.end())
    }
}

impl Codec<Vec<TurnUser>> for Users {
    const SECRET: bool = true;
    fn parse(text: &str) -> Result<Vec<TurnUser>, String> {
        comma_items(text)
    }
    fn render(value: &Vec<TurnUser>) -> String {
        let items: Vec<String> = value
            .iter()
            .map(|u| format!("{}:{}", u.name, u.password.expose()))
            .collect();
        items.join(",")
    }
}

fn comma_items<T: FromStr<Err = String>>(text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::parse)
        .collect()
}

/// Parses a built-in default; a failure is a bug in the key table, caught by every test.
fn builtin<C: Codec<T>, T>(key: &str, text: &str) -> T {
    C::parse(text)
        .unwrap_or_else(|reason| panic!("built-in default of {key} ({text:?}) is bad: {reason}"))
}

/// One key of the table: where it lives, what it means, how to read and write it.
pub struct Key {
    /// Section name, e.g. `rtmp`.
    pub section: &'static str,
    /// Key name as written in the INI file, e.g. `handshakeSecond`.
    pub name: &'static str,
    /// `section.name`.
    pub path: &'static str,
    /// One-line description (the comment above the key in `conf/config.ini`).
    pub doc: &'static str,
    /// The built-in default, as INI text.
    pub default: &'static str,
    /// Whether the value is a credential (blanked by [`Config::to_flat_redacted`]).
    pub secret: bool,
    get: fn(&Config) -> String,
    set: fn(&mut Config, &str) -> Result<(), String>,
}

impl Key {
    /// This key's value in `config`, as INI text.
    pub fn value(&self, config: &Config) -> String {
        (self.get)(config)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("path", &self.path)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// The rustdoc line giving a field's default.
macro_rules! default_doc {
    ("") => {
        "Default: empty."
    };
    ($default:tt) => {
        concat!("Default: `", $default, "`.")
    };
}

/// Declares the section structs, [`Config`] and the key table from one list.
///
/// Each key is `/// doc` then `"iniName" => field: Type = "default" via Codec;`.
macro_rules! sections {
    ($(
        #[doc = $sdoc:literal]
        $section:literal => $field:ident: $Struct:ident {
            $(
                #[doc = $doc:literal]
                $key:literal => $f:ident: $T:ty = $default:tt via $codec:ident;
            )*
        }
    )*) => {
        $(
            #[doc = $sdoc]
            #[doc = ""]
            #[doc = concat!("The `[", $section, "]` section.")]
            #[derive(Debug, Clone, PartialEq)]
            pub struct $Struct {
                $(
                    #[doc = concat!("`", $key, "`:", $doc)]
                    #[doc = ""]
                    #[doc = default_doc!($default)]
                    pub $f: $T,
                )*
            }

            impl Default for $Struct {
                fn default() -> Self {
                    Self {
                        $(
                            $f: builtin::<$codec, $T>(
                                concat!($section, ".", $key),
                                $default,
                            ),
                        )*
                    }
                }
            }
        )*

        /// The whole configuration: one field per INI section.
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct Config {
            $(
                #[doc = concat!("`[", $section, "]`:", $sdoc)]
                pub $field: $Struct,
            )*
        }

        /// Section names with their one-line docs, in file order.
        static SECTIONS: &[(&str, &str)] = &[$(($section, $sdoc.trim_ascii())),*];

        /// Every key, in file order.
        static KEYS: &[Key] = &[$($(
            Key {
                section: $section,
                name: $key,
                path: concat!($section, ".", $key),
                doc: $doc.trim_ascii(),
                default: $default,
                secret: <$codec as Codec<$T>>::SECRET,
                get: |c: &Config| <$codec as Codec<$T>>::render(&c.$field.$f),
                set: |c: &mut Config, text: &str| {
                    c.$field.$f = <$codec as Codec<$T>>::parse(text)?;
                    Ok(())
                },
            },
        )*)*];
    };
}

sections! {
    /// Server identity, vhosts and stream lifetime.
    "general" => general: General {
        /// Server id sent as `mediaServerId` in every hook body and event.
        "mediaServerId" => media_server_id: String = "your_server_id" via Plain;
        /// 1 = streams are addressed per virtual host (from the Host header or `?vhost=`).
        "enableVhost" => enable_vhost: bool = "0" via Flag;
        /// on_flow_report fires only for sessions that moved at least this many KB.
        "flowThreshold" => flow_threshold: u64 = "1024" via Plain;
        /// How long a player of a missing stream waits for it to be published (ms).
        "maxStreamWaitMS" => max_stream_wait: Duration = "15000" via Millis;
        /// A stream without readers for this long fires on_stream_none_reader (ms).
        "streamNoneReaderDelayMS" => stream_none_reader_delay: Duration = "20000" via Millis;
        /// Most client connections over all listeners; at the cap the oldest one still in its handshake makes room; 0 = no cap.
        "maxConnections" => max_connections: u32 = "10000" via Plain;
        /// Most connections from one client address (refused beyond); 0 = no cap.
        "maxConnectionsPerIp" => max_connections_per_ip: u32 = "0" via Plain;
    }

    /// Which outputs a published stream gets (on_publish may override them per stream).
    "protocol" => protocol: Protocol {
        /// 1 = remux to MPEG-TS HLS.
        "enable_hls" => enable_hls: bool = "1" via Flag;
        /// 1 = record to MP4.
        "enable_mp4" => enable_mp4: bool = "0" via Flag;
        /// 1 = serve the stream over RTSP.
        "enable_rtsp" => enable_rtsp: bool = "1" via Flag;
        /// 1 = serve the stream over RTMP and HTTP/WS-FLV.
        "enable_rtmp" => enable_rtmp: bool = "1" via Flag;
        /// 1 = serve the stream as HTTP/WS MPEG-TS (`.live.ts`).
        "enable_ts" => enable_ts: bool = "1" via Flag;
        /// 1 = serve the stream as HTTP/WS fragmented MP4 (`.live.mp4`).
        "enable_fmp4" => enable_fmp4: bool = "1" via Flag;
        /// 0 = drop the audio track of published streams.
        "enable_audio" => enable_audio: bool = "1" via Flag;
        /// Root directory of MP4 recordings (files go under `record/{app}/{stream}/{date}/`).
        "mp4_save_path" => mp4_save_path: PathBuf = "./www" via Dir;
        /// A recording is cut at the first keyframe after this many seconds.
        "mp4_max_second" => mp4_max_second: Duration = "3600" via Secs;
        /// Root directory of HLS playlists and segments.
        "hls_save_path" => hls_save_path: PathBuf = "./www" via Dir;
        /// 1 = close a stream as soon as it has no readers (skips on_stream_none_reader).
        "auto_close" => auto_close: bool = "0" via Flag;
        /// A dropped publisher may resume the same stream within this many ms.
        "continue_push_ms" => continue_push: Duration = "15000" via Millis;
        /// Timestamps: 0 = as published, 1 = system clock, 2 = relative, jumps smoothed.
        "modify_stamp" => modify_stamp: StampMode = "2" via Plain;
    }

    /// HTTP Live Streaming output.
    "hls" => hls: Hls {
        /// Target segment duration in seconds (segments are cut at keyframes).
        "segDur" => seg_dur: Duration = "2" via FracSecs;
        /// Segments listed in the playlist; 0 keeps them all (a recording).
        "segNum" => seg_num: u32 = "3" via Plain;
        /// Segments kept on disk after they leave the playlist.
        "segRetain" => seg_retain: u32 = "5" via Plain;
    }

    /// MP4 recording and on-demand playback.
    "record" => record: Record {
        /// App name under which recordings are stored and played back.
        "appName" => app_name: String = "record" via Plain;
    }

    /// RTMP listener.
    "rtmp" => rtmp: Rtmp {
        /// TCP port of the RTMP listener; 0 disables it.
        "port" => port: u16 = "1935" via Plain;
        /// The handshake and connect must complete within this many seconds.
        "handshakeSecond" => handshake_second: Duration = "15" via Secs;
        /// A session silent for this many seconds is closed.
        "keepAliveSecond" => keep_alive_second: Duration = "15" via Secs;
        /// Most connections on this listener (beside general.maxConnections); 0 = no own cap.
        "maxConnections" => max_connections: u32 = "0" via Plain;
        /// 1 = H.265 to RTMP/HTTP-FLV players as Enhanced RTMP `hvc1`; 0 = legacy CodecID 12.
        "enhanced" => enhanced: bool = "1" via Flag;
    }

    /// RTSP listener.
    "rtsp" => rtsp: Rtsp {
        /// TCP port of the RTSP listener (ZLMediaKit uses 554, which needs root); 0 disables it.
        "port" => port: u16 = "8554" via Plain;
        /// 1 = RTSP auth (on_rtsp_realm) uses Basic instead of Digest.
        "authBasic" => auth_basic: bool = "0" via Flag;
        /// Seconds a request may take from its first byte (the first request: from connecting).
        "handshakeSecond" => handshake_second: Duration = "15" via Secs;
        /// A session silent for this many seconds is closed.
        "keepAliveSecond" => keep_alive_second: Duration = "15" via Secs;
        /// Most connections on this listener (beside general.maxConnections); 0 = no own cap.
        "maxConnections" => max_connections: u32 = "0" via Plain;
    }

    /// HTTP listener: FLV, HLS, files, REST API, web console.
    "http" => http: Http {
        /// TCP port of the HTTP listener; 0 disables it.
        "port" => port: u16 = "8080" via Plain;
        /// Directory served as static files.
        "rootPath" => root_path: PathBuf = "./www" via Dir;
        /// Clients allowed to call the API (and to read files when hooks are off).
        "allow_ip_range" => allow_ip_range: Vec<IpRange> = "::1,127.0.0.1,172.16.0.0-172.31.255.255,192.168.0.0-192.168.255.255,10.0.0.0-10.255.255.255" via CommaList;
        /// 1 = list directory contents under rootPath.
        "dirMenu" => dir_menu: bool = "1" via Flag;
        /// A connection with no request in flight is closed after this many quiet seconds.
        "keepAliveSecond" => keep_alive_second: Duration = "15" via Secs;
        /// Most connections on this listener (beside general.maxConnections); 0 = no own cap.
        "maxConnections" => max_connections: u32 = "0" via Plain;
    }

    /// REST API (`/index/api/*`).
    "api" => api: Api {
        /// Required `secret` argument; empty or ZLMediaKit's default = random, logged at start.
        "secret" => secret: Secret = "" via SecretText;
    }

    /// ZLMediaKit-compatible web hooks.
    "hook" => hook: Hook {
        /// 1 = call the hooks below; 0 = every hook takes its default action (allow).
        "enable" => enable: bool = "0" via Flag;
        /// Seconds to wait for a hook reply before it counts as failed.
        "timeoutSec" => timeout_sec: Duration = "10" via FracSecs;
        /// Retries after a failed (not denied) hook call.
        "retry" => retry: u32 = "1" via Plain;
        /// Seconds between retries.
        "retry_delay" => retry_delay: Duration = "3" via FracSecs;
        /// Seconds between on_server_keepalive calls.
        "alive_interval" => alive_interval: Duration = "10" via FracSecs;
        /// Publish/play URLs whose query has every key=value of this skip auth; empty = none.
        "admin_params" => admin_params: Secret = "" via SecretText;
        /// Schemas reported by on_stream_changed, `/`-separated.
        "stream_changed_schemas" => stream_changed_schemas: Vec<String> = "rtsp/rtmp/fmp4/ts/hls/hls.fmp4" via SlashList;
        /// 1 = clients on 127.0.0.1 skip the auth hooks (unsafe behind a reverse proxy).
        "local_bypass" => local_bypass: bool = "0" via Flag;
        /// Non-empty = sign every hook call (`Sign` query, `X-Ferrostream-Signature` header).
        "sign_token" => sign_token: Secret = "" via SecretText;
        /// URL called when a stream is published (auth); empty = allow.
        "on_publish" => on_publish: Option<String> = "" via OptText;
        /// URL called when a player starts (auth); empty = allow.
        "on_play" => on_play: Option<String> = "" via OptText;
        /// URL called when a session ends having moved at least general.flowThreshold KB.
        "on_flow_report" => on_flow_report: Option<String> = "" via OptText;
        /// URL called when a file under http.rootPath is requested (auth); empty = allow.
        "on_http_access" => on_http_access: Option<String> = "" via OptText;
        /// URL called when an MP4 recording segment is closed.
        "on_record_mp4" => on_record_mp4: Option<String> = "" via OptText;
        /// URL asked whether an RTSP play needs a password (returns the realm).
        "on_rtsp_realm" => on_rtsp_realm: Option<String> = "" via OptText;
        /// URL asked for the password of an RTSP user.
        "on_rtsp_auth" => on_rtsp_auth: Option<String> = "" via OptText;
        /// URL called when a stream output is registered or unregistered.
        "on_stream_changed" => on_stream_changed: Option<String> = "" via OptText;
        /// URL called when a stream has had no readers for general.streamNoneReaderDelayMS.
        "on_stream_none_reader" => on_stream_none_reader: Option<String> = "" via OptText;
        /// URL called when a player asks for a stream that does not exist.
        "on_stream_not_found" => on_stream_not_found: Option<String> = "" via OptText;
        /// URL called once at start with the whole config.
        "on_server_started" => on_server_started: Option<String> = "" via OptText;
        /// URL called every alive_interval seconds.
        "on_server_keepalive" => on_server_keepalive: Option<String> = "" via OptText;
        /// URL called on a clean shutdown.
        "on_server_exited" => on_server_exited: Option<String> = "" via OptText;
    }

    /// Embedded STUN/TURN relay (RFC 8489, RFC 8656).
    "turn" => turn: Turn {
        /// UDP and TCP port of the STUN/TURN listener; 0 disables it.
        "port" => port: u16 = "3478" via Plain;
        /// Realm of the long-term credentials.
        "realm" => realm: String = "ferrostream" via Plain;
        /// Public address advertised in relayed candidates; empty = the local address.
        "external_ip" => external_ip: Option<IpAddr> = "" via OptIp;
        /// UDP ports used for relay allocations, `first-last`.
        "relay_port_range" => relay_port_range: RangeInclusive<u16> = "49152-65535" via PortSpan;
        /// Static users, `name:password,name2:password2`.
        "users" => users: Vec<TurnUser> = "" via Users;
        /// Shared secret of time-limited REST credentials (the coturn convention).
        "auth_secret" => auth_secret: Secret = "" via SecretText;
        /// Base URL of the TURN hooks (`{hook_url}/password`, `{hook_url}/events`).
        "hook_url" => hook_url: Option<String> = "" via OptText;
        /// Peers allowed although in a special-purpose range or the server's own, CIDR list.
        "allow_peers" => allow_peers: Vec<IpRange> = "" via CommaList;
        /// Most allocations one user may hold at once.
        "max_allocations_per_user" => max_allocations_per_user: u32 = "10" via Plain;
        /// Most allocations the server holds at once.
        "max_allocations" => max_allocations: u32 = "1000" via Plain;
        /// Longest allocation lifetime a client may request, in seconds.
        "max_lifetime" => max_lifetime: Duration = "3600" via Secs;
        /// Bytes per second one allocation may relay (each way counted); 0 = unlimited.
        "max_bytes_per_second" => max_bytes_per_second: u64 = "0" via Plain;
        /// Most TCP connections on the TURN port (beside general.maxConnections); 0 = no own cap.
        "max_tcp_connections" => max_tcp_connections: u32 = "0" via Plain;
    }

    /// Lifecycle events in the `{uuid, node, ts, event, payload}` envelope.
    "events" => events: Events {
        /// URL every event is POSTed to; empty = off.
        "webhook" => webhook: Option<String> = "" via OptText;
        /// NATS server (`nats://host:4222`) events are published to; empty = off.
        "nats" => nats: Option<String> = "" via OptText;
        /// NATS subject of the events.
        "subject" => subject: String = "ferrostream.events" via Plain;
    }
}

/// `Some(port)` unless `port` is 0, which disables a listener.
fn enabled(port: u16) -> Option<u16> {
    (port != 0).then_some(port)
}

impl Rtmp {
    /// The port to listen on, or `None` when the listener is disabled (`port=0`).
    pub fn listen_port(&self) -> Option<u16> {
        enabled(self.port)
    }
}

impl Rtsp {
    /// The port to listen on, or `None` when the listener is disabled (`port=0`).
    pub fn listen_port(&self) -> Option<u16> {
        enabled(self.port)
    }
}

impl Http {
    /// The port to listen on, or `None` when the listener is disabled (`port=0`).
    pub fn listen_port(&self) -> Option<u16> {
        enabled(self.port)
    }
}

impl Turn {
    /// The port to listen on (UDP and TCP), or `None` when TURN is disabled (`port=0`).
    pub fn listen_port(&self) -> Option<u16> {
        enabled(self.port)
    }
}

impl Api {
    /// Replaces an empty secret, or ZLMediaKit's well-known default, with 32 random
    /// alphanumeric characters. Returns true when it did; the caller logs the new secret once.
    pub fn ensure_secret(&mut self) -> bool {
        let current = self.secret.expose();
        if !current.is_empty() && current != ZLM_DEFAULT_SECRET {
            return false;
        }
        use rand::Rng;
        let random: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        self.secret = Secret::new(random);
        true
    }
}

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
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::parse_ini(&text, &path.display().to_string())?
            }
            None => Loaded {
                config: Config::default(),
                warnings: Vec::new(),
            },
        };
        loaded.apply_env(env)?;
        Ok(loaded)
    }

    /// Parses INI text over the defaults (no environment).
    pub fn from_ini(text: &str) -> Result<Loaded, ConfigError> {
        Self::parse_ini(text, "config")
    }

    fn parse_ini(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
        let mut config = Config::default();
        let mut warnings = Vec::new();
        let mut section: Option<&str> = None;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let syntax = || ConfigError::Syntax {
                origin: origin.to_owned(),
                line: index + 1,
                text: line.to_owned(),
            };
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest.strip_suffix(']').ok_or_else(syntax)?.trim();
                section = Some(name);
                continue;
            }
            let (name, value) = line.split_once('=').ok_or_else(syntax)?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                return Err(syntax());
            }
            let at = || format!("{origin} line {}", index + 1);
            let Some(section) = section else {
                warnings.push(format!(
                    "key {name} outside any section ({}), ignored",
                    at()
                ));
                continue;
            };
            match find_key(section, name) {
                Some(key) => key.apply(&mut config, value, at)?,
                None => warnings.push(format!("unknown key {section}.{name} ({}), ignored", at())),
            }
        }
        Ok(Loaded { config, warnings })
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
        let key = path
            .split_once('.')
            .and_then(|(section, name)| find_key(section, name))
            .ok_or_else(|| ConfigError::UnknownKey {
                key: path.to_owned(),
            })?;
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
    /// its one-line doc as a `#` comment. [`Config::from_ini`] reads it back unchanged.
    pub fn to_ini(&self) -> String {
        let mut out = String::from(
            "# ferrostream configuration. Section and key names follow ZLMediaKit's config.ini.\n\
             # Any key can be overridden from the environment as FERROSTREAM__<SECTION>__<KEY>,\n\
             # e.g. FERROSTREAM__RTMP__PORT=1936. A port of 0 disables that listener.\n",
        );
        for (section, doc) in SECTIONS {
            out.push_str(&format!("\n# {doc}\n[{section}]\n"));
            for key in KEYS.iter().filter(|key| key.section == *section) {
                out.push_str(&format!(
                    "# {}\n{}={}\n",
                    key.doc,
                    key.name,
                    key.value(self)
                ));
            }
        }
        out
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

impl Key {
    fn apply(
        &self,
        config: &mut Config,
        value: &str,
        origin: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        (self.set)(config, value).map_err(|reason| ConfigError::BadValue {
            key: self.path.to_owned(),
            // A credential may be most of the value: never echo it into logs.
            value: if self.secret {
                "<redacted>".to_owned()
            } else {
                value.to_owned()
            },
            reason,
            origin: origin(),
        })
    }
}

fn find_key(section: &str, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| {
        key.section.eq_ignore_ascii_case(section) && key.name.eq_ignore_ascii_case(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_renders_back() {
        let config = Config::default();
        for key in Config::keys() {
            let mut fresh = Config::default();
            (key.set)(&mut fresh, &key.value(&config)).expect(key.path);
            assert_eq!(fresh, config, "{} does not round-trip", key.path);
        }
    }

    #[test]
    fn key_paths_are_unique_case_insensitively() {
        let mut paths: Vec<String> = KEYS.iter().map(|k| k.path.to_ascii_lowercase()).collect();
        paths.sort();
        let before = paths.len();
        paths.dedup();
        assert_eq!(before, paths.len());
    }

    #[test]
    fn ip_ranges() {
        let list: Vec<IpRange> =
            <CommaList as Codec<Vec<IpRange>>>::parse("::1, 10.0.0.0-10.255.255.255,fd00::/8")
                .expect("parses");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(IpRange::any_contains(&list, ip("::1")));
        assert!(IpRange::any_contains(&list, ip("10.1.2.3")));
        assert!(IpRange::any_contains(&list, ip("::ffff:10.1.2.3")));
        assert!(IpRange::any_contains(&list, ip("fd12::1")));
        assert!(!IpRange::any_contains(&list, ip("11.0.0.1")));
        assert!(!IpRange::any_contains(&list, ip("127.0.0.1")));
        let cidrs = |s: &str| -> Vec<String> {
            let r: IpRange = s.parse().expect("range");
            r.to_cidrs().iter().map(ToString::to_string).collect()
        };
        assert_eq!(cidrs("127.0.0.1"), ["127.0.0.1/32"]);
        assert_eq!(cidrs("10.0.0.0/8"), ["10.0.0.0/8"]);
        assert_eq!(
            cidrs("10.0.0.1-10.0.0.6"),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(cidrs("0.0.0.0-255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(cidrs("192.168.0.0-192.168.255.255"), ["192.168.0.0/16"]);
        assert_eq!(
            cidrs("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        assert_eq!(cidrs("fd00::/8"), ["fd00::/8"]);
        assert!("10.0.0.9-10.0.0.1".parse::<IpRange>().is_err());
        assert!("10.0.0.1-::1".parse::<IpRange>().is_err());
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());
        assert!(IpRange::Cidr(ip("0.0.0.0"), 0).contains(ip("1.2.3.4")));
    }

    #[test]
    fn value_codecs() {
        assert_eq!(<Flag as Codec<bool>>::parse("TRUE"), Ok(true));
        assert!(<Flag as Codec<bool>>::parse("2").is_err());
        assert_eq!(
            <FracSecs as Codec<Duration>>::parse("0.5"),
            Ok(Duration::from_millis(500))
        );
        assert!(<FracSecs as Codec<Duration>>::parse("-1").is_err());
        assert_eq!(
            <FracSecs as Codec<Duration>>::render(&Duration::from_secs(3)),
            "3"
        );
        assert_eq!(
            <PortSpan as Codec<RangeInclusive<u16>>>::parse("50000 - 50010"),
            Ok(50000..=50010)
        );
        assert!(<PortSpan as Codec<RangeInclusive<u16>>>::parse("5-4").is_err());
        let users = <Users as Codec<Vec<TurnUser>>>::parse("a:x:y, b:z").expect("users");
        assert_eq!(users[0].name, "a");
        assert_eq!(users[0].password.expose(), "x:y");
        assert_eq!(<Users as Codec<Vec<TurnUser>>>::render(&users), "a:x:y,b:z");
        assert!(<Users as Codec<Vec<TurnUser>>>::parse("nopassword").is_err());
        assert_eq!(format!("{:?}", users[1].password), "Secret(<redacted>)");
    }

    #[test]
    fn api_secret_is_generated_once() {
        let mut api = Api::default();
        assert!(api.ensure_secret());
        assert_eq!(api.secret.expose().len(), 32);
        let first = api.secret.clone();
        assert!(!api.ensure_secret());
        assert_eq!(api.secret, first);
        api.secret = Secret::new(ZLM_DEFAULT_SECRET);
        assert!(api.ensure_secret());
        assert_ne!(api.secret.expose(), ZLM_DEFAULT_SECRET);
    }
}
