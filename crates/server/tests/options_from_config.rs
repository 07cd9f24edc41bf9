//! The server's options are wiring: every part is built from the one `config::Config` by its
//! own crate, so a key changed in the config reaches the part that uses it, and the built-in
//! defaults of those parts are the key table's. The running server and its HTTP side hold the
//! same `config::Live` handle the options were made from.

use hooks::Hook;
use server::config::{Config, Live};
use server::{Options, Server};
use std::time::Duration;

#[test]
fn every_key_reaches_its_part() {
    let mut c = Config::default();
    for (key, value) in [
        ("general.mediaServerId", "node-9"),
        ("general.enableVhost", "1"),
        ("general.flowThreshold", "2"),
        ("general.maxConnections", "77"),
        ("general.maxConnectionsPerIp", "5"),
        ("general.mergeWriteMS", "120"),
        ("protocol.enable_mp4", "1"),
        ("protocol.continue_push_ms", "2500"),
        ("protocol.modify_stamp", "0"),
        ("hls.segNum", "7"),
        ("hls.segDur", "1.5"),
        ("rtmp.port", "0"),
        ("rtmp.handshakeSecond", "4"),
        ("rtsp.authBasic", "1"),
        ("http.keepAliveSecond", "9"),
        ("http.maxConnections", "11"),
        ("hook.enable", "1"),
        ("hook.on_play", "http://127.0.0.1:9/play"),
        ("hook.sign_token", "tok"),
        ("hook.alive_interval", "0.25"),
        ("turn.realm", "example.org"),
        ("turn.allow_peers", "10.0.0.1-10.0.0.6"),
        ("turn.users", "alice:pw"),
        ("turn.max_tcp_connections", "3"),
        ("shell.port", "9023"),
        ("hook.on_shell_login", "http://127.0.0.1:9/shell"),
    ] {
        c.set(key, value).expect(key);
    }
    let o = Options::from_config(&c);
    assert_eq!(o.rtmp_addr, None, "rtmp.port=0 disables RTMP");
    assert_eq!(o.http_addr.map(|a| a.port()), Some(8080));
    assert!(o.enable_vhost);
    assert_eq!(o.flv_merge_write_ms, 120);
    let mut long = Config::default();
    long.set("general.mergeWriteMS", "60000").expect("set");
    assert_eq!(
        Options::from_config(&long).flv_merge_write_ms,
        server::MERGE_WRITE_MAX_MS,
        "a merge window is at most a second"
    );
    assert_eq!(
        Options::from_config(&Config::default()).flv_merge_write_ms,
        0
    );
    assert_eq!(o.rtmp.handshake_timeout, Duration::from_secs(4));
    assert!(o.rtsp.auth_basic);
    assert_eq!(o.http.keep_alive, Duration::from_secs(9));
    assert!(o.protocol.enable_mp4);
    assert_eq!(o.protocol.continue_push, Duration::from_millis(2500));
    assert_eq!(o.protocol.modify_stamp, 0);
    assert!(
        o.protocol.enable_hls_fmp4,
        "LL-HLS is on unless on_publish turns it off"
    );
    assert_eq!(o.hls.window, 7);
    assert_eq!(o.hls.segment, Duration::from_millis(1500));
    assert_eq!(o.hooks.media_server_id, "node-9");
    assert_eq!(o.hooks.url(Hook::OnPlay), Some("http://127.0.0.1:9/play"));
    assert_eq!(o.hooks.url(Hook::OnPublish), None);
    assert_eq!(o.hooks.sign_token.as_deref(), Some("tok"));
    assert_eq!(o.shell_addr.map(|a| a.port()), Some(9023));
    assert_eq!(
        o.hooks.url(Hook::OnShellLogin),
        Some("http://127.0.0.1:9/shell")
    );
    assert_eq!(
        Options::from_config(&Config::default()).shell_addr,
        None,
        "the admin shell is off by default"
    );
    assert_eq!(o.lifecycle.flow_threshold, 2048);
    assert_eq!(o.lifecycle.alive_interval, Duration::from_millis(250));
    assert_eq!(o.turn.server.realm, "example.org");
    assert_eq!(o.turn.server.users, [("alice".to_owned(), "pw".to_owned())]);
    let peers: Vec<String> = o
        .turn
        .server
        .allow_peers
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        peers,
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    );
    assert_eq!(
        (
            o.limits.max_total,
            o.limits.max_per_ip,
            o.limits.http,
            o.limits.turn_tcp
        ),
        (77, 5, 11, 3)
    );
    assert_eq!(*o.config.get(), c);
    let flat = o.flat_config.iter().find(|(k, _)| k == "hook.sign_token");
    assert_eq!(flat.map(|(_, v)| v.as_str()), Some(""), "secrets blanked");
}

/// The state machine's own defaults (it is a sans-IO crate and cannot read the config table)
/// agree with the table's `[turn]` defaults, so a TURN server built either way is the same.
#[test]
fn turn_defaults_agree_with_the_table() {
    assert_eq!(
        server::TurnOptions::default().server,
        turn::server::Config::default()
    );
}

#[tokio::test]
async fn the_server_holds_the_live_handle_it_was_given() {
    let live = Live::default();
    let mut options = Options::from_live(live.clone());
    for addr in [
        &mut options.rtmp_addr,
        &mut options.http_addr,
        &mut options.rtsp_addr,
    ] {
        *addr = Some("127.0.0.1:0".parse().expect("addr"));
    }
    options.turn_addr = None;
    let server = Server::start(options).await.expect("starts");
    let changes = live.subscribe();
    server.config.set([("hook.retry", "4")]).expect("set");
    assert_eq!(live.get().hook.retry, 4);
    assert!(changes.has_changed().expect("alive"));
    server.shutdown().await;
}
