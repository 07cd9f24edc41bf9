//! One source of defaults: each crate's settings type defaults to exactly what the server
//! builds from the config table's defaults, so a test using `XxxConfig::default()` runs with
//! the settings a user running on the defaults gets.

use server::config::Config;
use server::{HttpOptions, LimitsConfig, Options, TurnOptions};

#[test]
fn each_parts_default_is_the_tables() {
    let o = Options::from_config(&Config::default());
    assert_eq!(registry::StreamOptions::default(), o.protocol);
    assert_eq!(LimitsConfig::default(), o.limits);
    let debug = |value: &dyn std::fmt::Debug| format!("{value:?}");
    assert_eq!(debug(&hooks::HookConfig::default()), debug(&o.hooks));
    assert_eq!(debug(&outputs::HlsOptions::default()), debug(&o.hls));
    assert_eq!(debug(&HttpOptions::default()), debug(&o.http));
    assert_eq!(debug(&TurnOptions::default()), debug(&o.turn));
    let api = api::ApiOptions::default();
    assert_eq!(
        (
            api.enable_vhost,
            api.max_stream_wait,
            &api.file_root,
            api.dir_menu
        ),
        (o.enable_vhost, o.max_stream_wait, &o.file_root, o.dir_menu)
    );
    let loopback = "127.0.0.1".parse().expect("ip");
    let public = "203.0.113.9".parse().expect("ip");
    assert_eq!(
        ((api.allow_ip)(loopback), (api.allow_ip)(public)),
        (true, false),
        "http.allow_ip_range"
    );
}

/// The protocol crates cannot depend on the config crate (they are sans-IO and stand alone), so
/// their clocks' defaults are written there a second time; this keeps them equal to the table.
#[test]
fn protocol_crates_clocks_agree_with_the_table() {
    let c = Config::default();
    let rtmp = rtmp::server::Config::default();
    assert_eq!(
        (rtmp.handshake_timeout, rtmp.keep_alive),
        (c.rtmp.handshake_second, c.rtmp.keep_alive_second)
    );
    let rtsp = rtsp::RtspConfig::default();
    assert_eq!(
        (rtsp.handshake_timeout, rtsp.keep_alive),
        (c.rtsp.handshake_second, c.rtsp.keep_alive_second)
    );
}
