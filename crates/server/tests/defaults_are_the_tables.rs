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
