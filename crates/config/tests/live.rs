//! [`Live`], the running configuration: a change reaches every handle and subscriber and is
//! written back into the file the config came from; a bad change is refused whole and changes
//! nothing (config, subscribers, file).

use config::{Config, ConfigError, Live};
use std::path::Path;
use std::time::Duration;

const FILE: &str = "\
# my config
[rtmp]
port = 1935

[hook]
enable=1
on_publish=http://127.0.0.1:9/old
on_record_ts=http://127.0.0.1:9/zlm-only
";

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("config.ini");
    std::fs::write(&path, text).expect("write");
    path
}

fn load(path: &Path, env: &[(&str, &str)]) -> Live {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let loaded = Config::load(Some(path), env).expect("loads");
    Live::new(loaded.config, loaded.file)
}

#[tokio::test]
async fn subscribers_and_clones_see_a_change() {
    let live = Live::default();
    let other = live.clone();
    let mut rx = live.subscribe();
    let before = live.get();

    let after = live
        .set([("rtmp.port", "1940"), ("HOOK.TIMEOUTSEC", "2.5")])
        .expect("good values");

    assert_eq!(after.rtmp.port, 1940);
    assert_eq!(after.hook.timeout_sec, Duration::from_millis(2500));
    tokio::time::timeout(Duration::from_secs(1), rx.changed())
        .await
        .expect("woken")
        .expect("sender alive");
    assert_eq!(rx.borrow_and_update().rtmp.port, 1940);
    assert_eq!(other.get().rtmp.port, 1940);
    // A snapshot taken before does not move under its reader.
    assert_eq!(before.rtmp.port, 1935);
    assert_eq!(live.path(), None);
}

#[tokio::test]
async fn setting_the_same_value_wakes_nobody() {
    let live = Live::default();
    let mut rx = live.subscribe();
    live.set([("rtmp.port", "1935")]).expect("set");
    assert!(!rx.has_changed().expect("sender alive"));
    live.set([("rtmp.port", "1936")]).expect("set");
    assert!(rx.has_changed().expect("sender alive"));
    rx.borrow_and_update();
    assert!(!rx.has_changed().expect("sender alive"));
}

#[test]
fn a_bad_value_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), FILE);
    let live = load(&path, &[]);
    let rx = live.subscribe();
    let before = live.get();

    let err = live
        .set([("rtmp.port", "1941"), ("hook.enable", "maybe")])
        .expect_err("hook.enable is a flag");
    assert!(
        matches!(&err, ConfigError::BadValue { key, value, .. }
            if key == "hook.enable" && value == "maybe"),
        "{err}"
    );
    let err = live
        .set([("rtmp.port", "1941"), ("rtmp.sslport", "1")])
        .expect_err("no such key");
    assert!(matches!(&err, ConfigError::UnknownKey { key } if key == "rtmp.sslport"));
    let err = live
        .set([("general.mediaServerId", "a\n[api]\nsecret=mine")])
        .expect_err("a line break would add keys to the file");
    assert!(matches!(&err, ConfigError::BadValue { .. }), "{err}");

    assert_eq!(*live.get(), *before);
    assert_eq!(live.get().rtmp.port, 1935);
    assert!(!rx.has_changed().expect("sender alive"));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), FILE);
}

#[test]
fn a_change_is_written_into_the_users_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), FILE);
    // The environment and a generated secret are part of the running config, not the file.
    let env = [("FERROSTREAM__RTMP__PORT".to_owned(), "1999".to_owned())];
    let mut loaded = Config::load(Some(&path), env).expect("loads");
    assert!(loaded.config.api.ensure_secret());
    let secret = loaded.config.api.secret.clone();
    let live = Live::new(loaded.config, loaded.file);
    assert_eq!(live.get().rtmp.port, 1999);
    assert_eq!(live.path().as_deref(), Some(path.as_path()));

    let after = live
        .set([
            ("hook.on_publish", "http://127.0.0.1:9/new"),
            ("hook.on_play", "http://127.0.0.1:9/play"),
            ("turn.realm", "example.org"),
        ])
        .expect("set");
    assert_eq!(
        after.hook.on_publish.as_deref(),
        Some("http://127.0.0.1:9/new")
    );
    assert_eq!(after.api.secret, secret);

    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "\
# my config
[rtmp]
port = 1935

[hook]
enable=1
on_publish=http://127.0.0.1:9/new
on_record_ts=http://127.0.0.1:9/zlm-only
# URL called when a player starts (auth); empty = allow.
on_play=http://127.0.0.1:9/play

# Embedded STUN/TURN relay (RFC 8489, RFC 8656).
[turn]
# Realm of the long-term credentials.
realm=example.org
"
    );
    // A second change edits the file as the first one left it.
    live.set([("rtmp.port", "1936")]).expect("set");
    let reread = Config::load(Some(&path), Vec::new()).expect("reloads");
    assert_eq!(reread.config.rtmp.port, 1936);
    assert_eq!(
        reread.config.hook.on_play.as_deref(),
        Some("http://127.0.0.1:9/play")
    );
    assert_eq!(reread.config.turn.realm, "example.org");
    assert!(
        reread.config.api.secret.is_empty(),
        "the generated secret stays out"
    );
    assert_eq!(reread.warnings.len(), 1, "{:?}", reread.warnings);
    assert!(reread.warnings[0].contains("hook.on_record_ts"));
}

#[cfg(unix)]
#[test]
fn the_rewritten_file_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let live = load(&path, &[]);
    live.set([("api.secret", "s3cret")]).expect("set");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["config.ini"], "no temporary file left behind");
}

#[test]
fn a_failed_write_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), FILE);
    let live = load(&path, &[]);
    let rx = live.subscribe();
    // The file's directory is gone (root ignores permissions, so a read-only file would not do).
    std::fs::remove_dir_all(dir.path()).expect("remove");
    let err = live.set([("rtmp.port", "1950")]).expect_err("cannot write");
    assert!(
        matches!(&err, ConfigError::Write { path: p, .. } if *p == path),
        "{err}"
    );
    assert_eq!(live.get().rtmp.port, 1935);
    assert!(!rx.has_changed().expect("sender alive"));
}
