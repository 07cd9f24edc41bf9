//! Writing a change back into the user's own config file ([`Document`]): everything the user
//! wrote stays (comments, blank lines, key order, unknown sections and keys, spacing, line
//! endings); one key's line changes, or one key is added to its section, or one section is
//! added at the end.

use config::{Config, ConfigError, Document};

/// A user's file: comments of both kinds, odd spacing and case, unknown keys and sections,
/// a duplicate key (the last wins) and no final line ending.
const USER_FILE: &str = "\
; my server
[general]
mediaServerId = edge-1   
# keep this comment
unknownGeneral=1

[RTMP]
  Port = 1935
port=1936
sslport=0

[ffmpeg]
bin=/usr/bin/ffmpeg";

fn doc(text: &str) -> Document {
    Document::parse(text, "user.ini").expect("parses")
}

#[test]
fn an_unchanged_document_renders_byte_for_byte() {
    assert_eq!(doc(USER_FILE).render(), USER_FILE);
    let crlf = "\u{feff}# c\r\n[rtmp]\r\nport=1\r\n\r\n";
    assert_eq!(doc(crlf).render(), crlf);
    assert_eq!(doc("").render(), "");
}

#[test]
fn setting_a_key_rewrites_only_its_winning_line() {
    let mut d = doc(USER_FILE);
    d.set("rtmp.port", "1940").expect("set");
    d.set("General.MediaServerId", "  edge-2 ").expect("set");
    assert_eq!(
        d.render(),
        "\
; my server
[general]
mediaServerId = edge-2
# keep this comment
unknownGeneral=1

[RTMP]
  Port = 1935
port=1940
sslport=0

[ffmpeg]
bin=/usr/bin/ffmpeg"
    );
    let loaded = Config::from_document(&d).expect("loads");
    assert_eq!(loaded.config.rtmp.port, 1940);
    assert_eq!(loaded.config.general.media_server_id, "edge-2");
}

#[test]
fn a_key_not_in_the_file_goes_after_the_last_key_of_its_section() {
    let mut d = doc(USER_FILE);
    d.set("rtmp.keepAliveSecond", "30").expect("set");
    d.set("general.enableVhost", "1").expect("set");
    assert_eq!(
        d.render(),
        "\
; my server
[general]
mediaServerId = edge-1   
# keep this comment
unknownGeneral=1
# 1 = streams are addressed per virtual host (from the Host header or `?vhost=`).
enableVhost=1

[RTMP]
  Port = 1935
port=1936
sslport=0
# A session silent for this many seconds is closed.
keepAliveSecond=30

[ffmpeg]
bin=/usr/bin/ffmpeg"
    );
}

#[test]
fn a_section_not_in_the_file_is_appended_at_the_end() {
    let mut d = doc(USER_FILE);
    d.set("turn.realm", "example.org").expect("set");
    d.set("turn.max_allocations", "50").expect("set");
    assert_eq!(
        d.render(),
        format!(
            "{USER_FILE}\n\
             \n\
             # Embedded STUN/TURN relay (RFC 8489, RFC 8656).\n\
             [turn]\n\
             # Realm of the long-term credentials.\n\
             realm=example.org\n\
             # Most allocations the server holds at once.\n\
             max_allocations=50\n"
        )
    );
    let loaded = Config::from_document(&d).expect("loads");
    assert_eq!(loaded.config.turn.realm, "example.org");
    assert_eq!(loaded.config.turn.max_allocations, 50);
    assert_eq!(loaded.config.rtmp.port, 1936);
}

#[test]
fn inserted_lines_use_the_files_line_endings() {
    let mut d = doc("[rtmp]\r\nport=1935\r\n[hls]\r\nsegNum=3\r\n");
    d.set("rtmp.handshakeSecond", "5").expect("set");
    d.set("record.appName", "rec").expect("set");
    assert_eq!(
        d.render(),
        "[rtmp]\r\nport=1935\r\n\
         # The handshake and connect must complete within this many seconds.\r\n\
         handshakeSecond=5\r\n\
         [hls]\r\nsegNum=3\r\n\
         \r\n\
         # MP4 recording and on-demand playback.\r\n[record]\r\n\
         # App name under which recordings are stored and played back.\r\nappName=rec\r\n"
    );
}

#[test]
fn a_section_with_no_keys_gets_the_key_under_its_header() {
    let mut d = doc("[rtmp]\n# nothing yet\n\n[http]\nport=80\n");
    d.set("rtmp.port", "0").expect("set");
    assert_eq!(
        d.render(),
        "[rtmp]\n# TCP port of the RTMP listener; 0 disables it.\nport=0\n# nothing yet\n\n\
         [http]\nport=80\n"
    );
}

#[test]
fn bad_values_and_unknown_keys_leave_the_document_alone() {
    let mut d = doc(USER_FILE);
    let err = d.set("rtmp.port", "99999").expect_err("not a port");
    assert!(matches!(&err, ConfigError::BadValue { key, .. } if key == "rtmp.port"));
    let err = d.set("rtmp.sslport", "1").expect_err("not our key");
    assert!(matches!(&err, ConfigError::UnknownKey { key } if key == "rtmp.sslport"));
    // A line break would add lines (here: a second api.secret) to the file.
    let err = d
        .set("general.mediaServerId", "x\n[api]\nsecret=mine")
        .expect_err("line break");
    assert!(
        matches!(&err, ConfigError::BadValue { key, .. } if key == "general.mediaServerId"),
        "{err}"
    );
    assert_eq!(d.render(), USER_FILE);
}

#[test]
fn to_ini_is_what_setting_every_key_on_a_header_gives() {
    // The generated file and a file grown by write-back share one format: a key added to a
    // config.ini written by to_ini lands where to_ini would have put it.
    let full = Config::default().to_ini();
    let without = full.replace(
        "# 1 = H.265 to RTMP/HTTP-FLV players as Enhanced RTMP `hvc1`; 0 = legacy CodecID 12.\n\
         enhanced=1\n\n# RTSP",
        "\n# RTSP",
    );
    assert_ne!(without, full, "the last [rtmp] key is in to_ini");
    let mut d = doc(&without);
    d.set("rtmp.enhanced", "1").expect("set");
    assert_eq!(d.render(), full);
}
