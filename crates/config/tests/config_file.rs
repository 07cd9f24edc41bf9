//! `conf/config.ini` stays equal to the built-in defaults, and loading behaves as DESIGN §1
//! says: environment wins, unknown keys warn by name, bad values fail by name, a ZLMediaKit
//! config.ini loads.

use config::{Config, ConfigError, IpRange, StampMode};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn conf_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/config.ini")
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn conf_file_equals_defaults_with_no_warnings() {
    let loaded = Config::load(Some(&conf_path()), no_env()).expect("conf/config.ini loads");
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_eq!(loaded.config, Config::default());
}

#[test]
fn conf_file_lists_every_key() {
    let text = std::fs::read_to_string(conf_path()).expect("read conf/config.ini");
    let mut section = "";
    let mut seen = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name;
        } else if let Some((key, _)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            seen.push(format!("{section}.{}", key.trim()));
        }
    }
    for key in Config::keys() {
        assert!(seen.contains(&key.path.to_string()), "{} missing", key.path);
    }
}

/// The file is exactly what [`Config::to_ini`] writes for the defaults, so its comments are the
/// key table's docs. `UPDATE_GOLDEN=1 cargo test -p config --test config_file` rewrites it.
#[test]
fn conf_file_is_generated_from_the_key_table() {
    let expected = Config::default().to_ini();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(conf_path(), &expected).expect("write conf/config.ini");
    }
    let actual = std::fs::read_to_string(conf_path()).expect("read conf/config.ini");
    assert!(
        actual == expected,
        "conf/config.ini differs from Config::default().to_ini(); \
         rerun with UPDATE_GOLDEN=1 if the key table changed on purpose"
    );
}

#[test]
fn defaults_match_the_contract() {
    let c = Config::default();
    assert_eq!(c.general.media_server_id, "your_server_id");
    assert_eq!(c.rtmp.listen_port(), Some(1935));
    assert_eq!(c.rtsp.listen_port(), Some(8554));
    assert_eq!(c.http.listen_port(), Some(8080));
    assert_eq!(c.turn.listen_port(), Some(3478));
    assert_eq!(c.turn.relay_port_range, 49152..=65535);
    assert_eq!(c.general.max_stream_wait, Duration::from_secs(15));
    assert_eq!(c.hook.timeout_sec, Duration::from_secs(10));
    assert_eq!(c.hook.retry_delay, Duration::from_secs(3));
    assert_eq!(c.protocol.modify_stamp, StampMode::Relative);
    assert!(c.api.secret.is_empty());
    assert!(c.hook.on_publish.is_none());
    assert!(IpRange::any_contains(
        &c.http.allow_ip_range,
        "192.168.1.10".parse().expect("ip")
    ));
}

#[test]
fn env_overrides_file() {
    let path = std::env::temp_dir().join(format!("ferrostream-env-{}.ini", std::process::id()));
    std::fs::write(&path, "[rtmp]\nport=1940\n[general]\nmediaServerId=file\n").expect("write");
    let loaded = Config::load(
        Some(&path),
        env(&[
            ("FERROSTREAM__RTMP__PORT", "1936"),
            ("FERROSTREAM__general__MEDIASERVERID", "from-env"),
            (
                "FERROSTREAM__HOOK__ON_PUBLISH",
                "http://127.0.0.1:9/on_publish",
            ),
            ("PATH", "/usr/bin"),
            ("FERROSTREAM_LOG", "ignored: single underscore"),
        ]),
    )
    .expect("loads");
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_eq!(loaded.config.rtmp.port, 1936);
    assert_eq!(loaded.config.general.media_server_id, "from-env");
    assert_eq!(
        loaded.config.hook.on_publish.as_deref(),
        Some("http://127.0.0.1:9/on_publish")
    );
}

#[test]
fn env_without_file_starts_from_defaults() {
    let loaded = Config::load(None, env(&[("FERROSTREAM__HTTP__PORT", "0")])).expect("loads");
    assert_eq!(loaded.config.http.listen_port(), None);
    assert_eq!(loaded.config.rtmp.listen_port(), Some(1935));
}

#[test]
fn unknown_env_key_warns_with_its_name() {
    let loaded = Config::load(
        None,
        env(&[
            ("FERROSTREAM__RTMP__SSLPORT", "1"),
            ("FERROSTREAM__NOPE", "1"),
        ]),
    )
    .expect("loads");
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("rtmp.sslport"),
        "{:?}",
        loaded.warnings
    );
    assert!(
        loaded.warnings[1].contains("FERROSTREAM__NOPE"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn unknown_file_key_warns_with_its_name() {
    let loaded =
        Config::from_ini("[rtmp]\nport=1935\nsslport=19350\n[bogus]\nx=1\n").expect("loads");
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("rtmp.sslport"));
    assert!(loaded.warnings[0].contains("line 3"));
    assert!(loaded.warnings[1].contains("bogus.x"));
}

#[test]
fn bad_value_names_key_and_value() {
    let err = Config::from_ini("[rtmp]\nport=abc\n").expect_err("bad port");
    match &err {
        ConfigError::BadValue { key, value, .. } => {
            assert_eq!(key, "rtmp.port");
            assert_eq!(value, "abc");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("rtmp.port"), "{err}");

    let err = Config::load(None, env(&[("FERROSTREAM__HOOK__ENABLE", "yes please")]))
        .expect_err("bad flag");
    assert!(matches!(&err, ConfigError::BadValue { key, .. } if key == "hook.enable"));
    assert!(
        err.to_string().contains("FERROSTREAM__HOOK__ENABLE"),
        "{err}"
    );

    for (ini, key) in [
        ("[rtmp]\nport=70000", "rtmp.port"),
        (
            "[http]\nallow_ip_range=127.0.0.1,not-an-ip",
            "http.allow_ip_range",
        ),
        (
            "[turn]\nrelay_port_range=60000-50000",
            "turn.relay_port_range",
        ),
        ("[protocol]\nmodify_stamp=7", "protocol.modify_stamp"),
        ("[hook]\ntimeoutSec=soon", "hook.timeoutSec"),
    ] {
        let err = Config::from_ini(ini).expect_err(ini);
        assert!(
            matches!(&err, ConfigError::BadValue { key: k, .. } if k == key),
            "{err}"
        );
    }
}

/// Whatever a value's type, it is one line of bounded length: a line break in a value given
/// to `set` (setServerConfig) or the environment would otherwise be written back into the
/// file as extra lines (here a second `[api] secret`).
#[test]
fn values_cannot_break_lines_or_run_long() {
    let mut config = Config::default();
    for (key, value) in [
        ("general.mediaServerId", "a\n[api]\nsecret=mine"),
        ("general.mediaServerId", "a\rb"),
        ("hook.on_play", "http://x/\u{0}"),
    ] {
        let err = config.set(key, value).expect_err(value);
        assert!(
            matches!(&err, ConfigError::BadValue { key: k, .. } if k == key),
            "{err}"
        );
        assert_eq!(config, Config::default());
    }
    let err = Config::load(
        None,
        env(&[("FERROSTREAM__GENERAL__MEDIASERVERID", "x\ny")]),
    )
    .expect_err("line break from the environment");
    assert!(matches!(&err, ConfigError::BadValue { .. }), "{err}");
    assert!(Config::from_ini("[general]\nmediaServerId=a\u{1b}[31m\n").is_err());

    config
        .set("general.mediaServerId", "tab\tis fine")
        .expect("tab");
    let longest = "x".repeat(config::MAX_VALUE_LEN);
    config
        .set("general.mediaServerId", &longest)
        .expect("at the cap");
    let err = config
        .set("general.mediaServerId", &format!("{longest}x"))
        .expect_err("past the cap");
    match &err {
        ConfigError::BadValue { value, .. } => {
            assert_eq!(value, &format!("{}…", "x".repeat(200)), "echo is cut short")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn secret_values_are_not_echoed_in_errors() {
    let err = Config::from_ini("[turn]\nusers=alice:hunter2,bob").expect_err("bad users");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let path = Path::new("/nonexistent/ferrostream.ini");
    let err = Config::load(Some(path), no_env()).expect_err("missing");
    assert!(matches!(&err, ConfigError::Read { path: p, .. } if p == path));
    assert!(
        err.to_string().contains("/nonexistent/ferrostream.ini"),
        "{err}"
    );
}

#[test]
fn syntax_error_names_the_line() {
    let err = Config::from_ini("[rtmp]\nport 1935\n").expect_err("no =");
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
}

#[test]
fn ini_details() {
    let text = "\u{feff}; comment\r\n[rtmp]\r\n  port = 1937  \r\nport=1938\r\n[HOOK]\r\n\
                admin_params=secret=abc\r\non_play=\r\n";
    let loaded = Config::from_ini(text).expect("loads");
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_eq!(loaded.config.rtmp.port, 1938, "last duplicate wins");
    assert_eq!(loaded.config.hook.admin_params.expose(), "secret=abc");
    assert_eq!(loaded.config.hook.on_play, None);
}

/// The sections and keys of a typical ZLMediaKit `config.ini` (values as ZLMediaKit ships
/// them), including the many keys ferrostream does not use.
const ZLM_STYLE: &str = "\
[api]
apiDebug=1
secret=035c73f7-bb6b-4889-a715-d9eb2d1925cc
snapRoot=./www/snap/
defaultSnap=./www/logo.png
downloadRoot=./www

[ffmpeg]
bin=/usr/bin/ffmpeg
cmd=%s -re -i %s -c:a aac -strict -2 -ar 44100 -ab 48k -c:v libx264 -f flv %s
log=./ffmpeg/ffmpeg.log
restart_sec=0

[protocol]
modify_stamp=2
enable_audio=1
add_mute_audio=1
auto_close=0
continue_push_ms=15000
paced_sender_ms=0
enable_hls=1
enable_hls_fmp4=0
enable_mp4=0
enable_rtsp=1
enable_rtmp=1
enable_ts=1
enable_fmp4=1
mp4_as_player=0
mp4_max_second=3600
mp4_save_path=./www
hls_save_path=./www
hls_demand=0
rtsp_demand=0
rtmp_demand=0
ts_demand=0
fmp4_demand=0

[general]
enableVhost=0
flowThreshold=1024
maxStreamWaitMS=15000
streamNoneReaderDelayMS=20000
resetWhenRePlay=1
mergeWriteMS=0
mediaServerId=your_server_id
wait_track_ready_ms=10000
wait_add_track_ms=3000
unready_frame_cache=100

[hls]
fileBufSize=65536
segDur=2
segNum=3
segDelay=0
segRetain=5
broadcastRecordTs=0
deleteDelaySec=10
segKeep=0

[hook]
alive_interval=10.0
enable=0
on_flow_report=
on_http_access=
on_play=
on_publish=
on_record_mp4=
on_record_ts=
on_rtsp_auth=
on_rtsp_realm=
on_shell_login=
on_stream_changed=
stream_changed_schemas=rtsp/rtmp/fmp4/ts/hls/hls.fmp4
on_stream_none_reader=
on_stream_not_found=
on_server_started=
on_server_exited=
on_server_keepalive=
on_send_rtp_stopped=
on_rtp_server_timeout=
timeoutSec=10
retry=1
retry_delay=3.0

[cluster]
origin_url=
timeout_sec=15
retry_count=3

[http]
charSet=utf-8
keepAliveSecond=30
maxReqSize=40960
port=80
rootPath=./www
sendBufSize=65536
sslport=443
dirMenu=1
virtualPath=
forbidCacheSuffix=
forwarded_ip_header=
allow_cross_domains=1
allow_ip_range=::1,127.0.0.1,172.16.0.0-172.31.255.255,192.168.0.0-192.168.255.255,10.0.0.0-10.255.255.255

[multicast]
addrMax=239.255.255.255
addrMin=239.0.0.0
udpTTL=64

[record]
appName=record
fileBufSize=65536
sampleMS=500
fastStart=0
fileRepeat=0
enableFmp4=0

[rtmp]
handshakeSecond=15
keepAliveSecond=15
port=1935
sslport=0
directProxy=1
enhanced=1

[rtp]
audioMtuSize=600
videoMtuSize=1400
rtpMaxSize=10
lowLatency=0
h264_stap_a=1

[rtp_proxy]
dumpDir=
port=10000
timeoutSec=15
port_range=30000-35000
h264_pt=98
h265_pt=99
ps_pt=96
opus_pt=100
gop_cache=1

[rtc]
timeoutSec=15
externIP=
port=8000
tcpPort=8000
rembBitRate=0
preferredCodecA=PCMA,PCMU,opus,mpeg4-generic
preferredCodecV=H264,H265,AV1,VP9,VP8

[srt]
timeoutSec=5
port=9000
latencyMul=4
pktBufSize=8192

[rtsp]
authBasic=0
directProxy=1
handshakeSecond=15
keepAliveSecond=15
port=554
sslport=0
lowLatency=0
rtpTransportType=-1

[shell]
maxReqSize=1024
port=0
";

#[test]
fn zlmediakit_config_loads_with_warnings() {
    let loaded = Config::from_ini(ZLM_STYLE).expect("a ZLMediaKit config.ini loads");
    let c = &loaded.config;
    assert_eq!(c.rtsp.port, 554);
    assert_eq!(c.http.port, 80);
    assert_eq!(c.api.secret.expose(), config::ZLM_DEFAULT_SECRET);
    assert_eq!(c.hook.alive_interval, Duration::from_secs(10));
    let warned = |key: &str| loaded.warnings.iter().any(|w| w.contains(key));
    for key in [
        "api.apiDebug",
        "ffmpeg.cmd",
        "general.resetWhenRePlay",
        "hook.on_record_ts",
        "http.charSet",
        "rtp_proxy.gop_cache",
        "rtc.preferredCodecV",
        "shell.maxReqSize",
    ] {
        assert!(warned(key), "no warning for {key}: {:?}", loaded.warnings);
    }
    assert!(c.rtmp.enhanced, "ZLMediaKit's rtmp.enhanced is read");
    for key in [
        "rtmp.port",
        "rtmp.enhanced",
        "hook.on_play",
        "hook.on_shell_login",
        "hook.on_rtp_server_timeout",
        "rtp_proxy.port_range",
        "shell.port",
        "general.mediaServerId",
    ] {
        assert!(
            !warned(key),
            "known key {key} warned: {:?}",
            loaded.warnings
        );
    }
}

#[test]
fn to_ini_round_trips() {
    let mut config = Config::default();
    config.rtmp.port = 0;
    config.general.media_server_id = "node-7".into();
    config.hook.on_publish = Some("http://hooks.local/on_publish?x=1".into());
    config.hook.retry_delay = Duration::from_millis(1500);
    config.turn.external_ip = Some("203.0.113.5".parse().expect("ip"));
    config.turn.relay_port_range = 50000..=50100;
    config.protocol.modify_stamp = StampMode::Absolute;
    config
        .set("turn.users", "alice:pw1, bob:pw:2")
        .expect("users");
    config
        .set("TURN.ALLOW_PEERS", "10.0.0.0/8,192.168.1.1-192.168.1.9,::1")
        .expect("peers");
    config.api.ensure_secret();

    let loaded = Config::from_ini(&config.to_ini()).expect("to_ini output loads");
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_eq!(loaded.config, config);
    assert_eq!(loaded.config.rtmp.listen_port(), None);
}

#[test]
fn flat_view_and_redaction() {
    let mut config = Config::default();
    config.set("api.secret", "s3cret").expect("set");
    config.set("turn.users", "alice:pw").expect("set");
    config
        .set("hook.admin_params", "secret=bypass")
        .expect("set");
    let flat = config.to_flat();
    assert_eq!(flat.len(), Config::keys().len());
    let get = |flat: &[(String, String)], key: &str| {
        flat.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(get(&flat, "rtmp.port"), "1935");
    assert_eq!(get(&flat, "api.secret"), "s3cret");
    assert_eq!(
        get(&flat, "hook.stream_changed_schemas"),
        "rtsp/rtmp/fmp4/ts/hls/hls.fmp4"
    );
    let redacted = config.to_flat_redacted();
    for key in [
        "api.secret",
        "hook.admin_params",
        "hook.sign_token",
        "turn.auth_secret",
        "turn.users",
    ] {
        assert_eq!(get(&redacted, key), "", "{key} not blanked");
    }
    assert_eq!(get(&redacted, "rtmp.port"), "1935");
    assert_eq!(
        config.get("General.MediaServerId").as_deref(),
        Some("your_server_id")
    );
    assert!(!format!("{config:?}").contains("s3cret"));
    assert!(matches!(
        config.set("rtmp.nope", "1"),
        Err(ConfigError::UnknownKey { .. })
    ));
}
