//! The key table: every key once, with its section, INI name, one-line doc, default (as the
//! INI text a user would write) and codec. The `sections!` macro turns it into the section
//! structs with their `Default` impls, [`Config`], and the static list of [`Key`]s that the
//! loader, the flat view, the INI writer and [`Document`](crate::Document) read.

use crate::codec::*;
use crate::{ConfigError, IpRange, Secret, StampMode, TurnUser, ZLM_DEFAULT_SECRET};
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

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
        pub(crate) static SECTIONS: &[(&str, &str)] = &[$(($section, $sdoc.trim_ascii())),*];

        /// Every key, in file order.
        pub(crate) static KEYS: &[Key] = &[$($(
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
        /// Merged writes: RTMP and HTTP/WS-FLV viewers get a stream's tags once per this many ms of media (and at each keyframe), in one write, instead of one write per tag: less CPU per viewer, up to this much more latency; at most 1000, taken at start; 0 = off.
        "mergeWriteMS" => merge_write_ms: u32 = "0" via Plain;
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
        /// LL-HLS part target in ms (hls.fmp4.m3u8); players hold back three parts from live.
        "partDurMS" => part_dur: Duration = "200" via Millis;
    }

    /// MP4 recording and on-demand playback.
    "record" => record: Record {
        /// App name under which recordings are stored and played back.
        "appName" => app_name: String = "record" via Plain;
    }

    /// The ffmpeg that getSnap runs to turn a keyframe into a JPEG (never set by the api).
    "ffmpeg" => ffmpeg: Ffmpeg {
        /// Path or name (looked up in PATH) of the ffmpeg binary.
        "bin" => bin: String = "ffmpeg" via Plain;
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
        /// 1 = Opus audio to RTMP/HTTP-FLV players as Enhanced RTMP `Opus`; 0 = video alone there (most FLV players know no E-RTMP audio).
        "enhancedOpus" => enhanced_opus: bool = "0" via Flag;
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
        /// Clients allowed to call the API and /metrics (and to read files when hooks are off); empty = everyone.
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
        /// 1 = `/metrics` needs the secret too (`?secret=` or `Authorization: Bearer`); 0 = only http.allow_ip_range.
        "metricsSecret" => metrics_secret: bool = "0" via Flag;
    }

    /// Admin shell: a line-oriented console over TCP (streams, sessions, kick, close).
    "shell" => shell: Shell {
        /// TCP port of the admin shell (login: hook.on_shell_login, else `admin` + api.secret); 0 disables it.
        "port" => port: u16 = "0" via Plain;
    }

    /// GB28181 RTP server: MPEG-PS, MPEG-TS or raw H.264/H.265 over RTP (openRtpServer).
    "rtp_proxy" => rtp_proxy: RtpProxy {
        /// UDP and TCP port shared by every device, streams told apart by SSRC (`rtp/{SSRC as %08X}`); 0 disables it.
        "port" => port: u16 = "10000" via Plain;
        /// Ports openRtpServer picks from when asked for port 0, `first-last`.
        "port_range" => port_range: RangeInclusive<u16> = "30000-35000" via PortSpan;
        /// A stream (or an opened port) that receives no RTP for this many seconds is closed (on_rtp_server_timeout).
        "timeoutSec" => timeout_sec: Duration = "15" via Secs;
        /// RTP payload type carrying MPEG-PS (GB28181).
        "ps_pt" => ps_pt: u8 = "96" via Plain;
        /// RTP payload type carrying raw H.264 (RFC 6184).
        "h264_pt" => h264_pt: u8 = "98" via Plain;
        /// RTP payload type carrying raw H.265 (RFC 7798).
        "h265_pt" => h265_pt: u8 = "99" via Plain;
    }

    /// WebRTC media (WHEP play, WHIP publish): one UDP port for every peer, ICE-lite, DTLS-SRTP.
    "rtc" => rtc: Rtc {
        /// UDP port carrying every WebRTC peer; 0 disables WebRTC.
        "port" => port: u16 = "8000" via Plain;
        /// TCP port for ICE-TCP passive (RFC 6544) for clients without UDP; 0 disables it.
        "tcpPort" => tcp_port: u16 = "8000" via Plain;
        /// Address advertised in the answer's candidates; empty = the default-route interface.
        "externIP" => extern_ip: Option<IpAddr> = "" via OptIp;
        /// Most WebRTC peers (players and publishers) at once; an offer beyond it gets 503.
        "maxPeers" => max_peers: u32 = "1000" via Plain;
        /// A peer that has not finished ICE and DTLS this many seconds after its answer is dropped.
        "connectTimeoutSec" => connect_timeout: Duration = "10" via Secs;
        /// A connected peer that sends no STUN consent or media for this many seconds is dropped.
        "timeoutSec" => timeout: Duration = "30" via Secs;
        /// Bytes of media one player may have waiting to be sent before it skips to a keyframe.
        "maxQueueBytes" => max_queue_bytes: u32 = "4194304" via Plain;
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
        /// URL asked whether an admin shell login may proceed (auth); empty = user `admin` with api.secret.
        "on_shell_login" => on_shell_login: Option<String> = "" via OptText;
        /// URL called when a port opened by openRtpServer received no RTP for rtp_proxy.timeoutSec.
        "on_rtp_server_timeout" => on_rtp_server_timeout: Option<String> = "" via OptText;
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
        /// NATS subject prefix: events go to `{subject}.{event}`, kept in the JetStream stream `{subject}` (dots as `_`).
        "subject" => subject: String = "ferrostream" via Plain;
        /// Node id sent as `node` in every envelope.
        "node" => node: u32 = "0" via Plain;
        /// Envelopes each provider holds while its sink is down; past it the oldest are dropped (counted).
        "buffer" => buffer: u32 = "10000" via Plain;
    }

    /// Many nodes as one system: live streams shared through a NATS JetStream key-value bucket.
    "cluster" => cluster: Cluster {
        /// NATS server (`nats://host:4222`) of the cluster's directory; empty = one node, no cluster.
        "nats" => nats: Option<String> = "" via OptText;
        /// RTMP base URL other nodes pull this node's streams from (`rtmp://host:port`); empty = this host's address and RTMP port.
        "advertise" => advertise: Option<String> = "" via OptText;
        /// Seconds a directory entry lives unless refreshed (refreshed every third of it while the stream lives).
        "ttl" => ttl: Duration = "15" via Secs;
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

impl Rtc {
    /// The UDP port of WebRTC media, or `None` when WebRTC is off (`port=0`).
    pub fn listen_port(&self) -> Option<u16> {
        enabled(self.port)
    }

    /// The ICE-TCP port, or `None` when it is off (`tcpPort=0`, or WebRTC off).
    pub fn tcp_listen_port(&self) -> Option<u16> {
        enabled(self.port).and(enabled(self.tcp_port))
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

impl Shell {
    /// The port to listen on, or `None` when the admin shell is disabled (`port=0`).
    pub fn listen_port(&self) -> Option<u16> {
        enabled(self.port)
    }
}

impl RtpProxy {
    /// The shared RTP port to listen on (UDP and TCP), or `None` when it is off (`port=0`).
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

/// Longest value a key may have, in bytes. Values arrive from files, the environment and (with
/// setServerConfig) over HTTP; the longest real ones are address and user lists.
pub const MAX_VALUE_LEN: usize = 16 * 1024;

/// Characters of a bad value an error repeats.
const ECHO_LEN: usize = 200;

impl Key {
    /// This key's value in `config`, as INI text.
    pub fn value(&self, config: &Config) -> String {
        (self.get)(config)
    }

    /// Parses `value` (already trimmed) into this key's field of `config`; `origin` says where
    /// the value came from, for the error.
    pub(crate) fn apply(
        &self,
        config: &mut Config,
        value: &str,
        origin: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        check_text(value)
            .and_then(|()| (self.set)(config, value))
            .map_err(|reason| ConfigError::BadValue {
                key: self.path.to_owned(),
                // A credential may be most of the value: never echo it into logs. Nor a huge one.
                value: if self.secret {
                    "<redacted>".to_owned()
                } else if value.chars().nth(ECHO_LEN).is_some() {
                    format!("{}…", value.chars().take(ECHO_LEN).collect::<String>())
                } else {
                    value.to_owned()
                },
                reason,
                origin: origin(),
            })
    }
}

/// Rules every value obeys whatever its type, so that writing it back to the file is one line
/// and cannot add keys or sections: no line breaks or other control characters (tabs are
/// fine), at most [`MAX_VALUE_LEN`] bytes.
fn check_text(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_LEN {
        return Err(format!("longer than {MAX_VALUE_LEN} bytes"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("line breaks and control characters are not allowed".into());
    }
    Ok(())
}

/// The key `section.name`, both matched case-insensitively.
pub(crate) fn find_key(section: &str, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| {
        key.section.eq_ignore_ascii_case(section) && key.name.eq_ignore_ascii_case(name)
    })
}

/// The key `path` (`section.key`, case-insensitive) names, or [`ConfigError::UnknownKey`].
pub(crate) fn key_at(path: &str) -> Result<&'static Key, crate::ConfigError> {
    path.split_once('.')
        .and_then(|(section, name)| find_key(section, name))
        .ok_or_else(|| crate::ConfigError::UnknownKey {
            key: path.to_owned(),
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
