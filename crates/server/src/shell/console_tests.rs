//! The console on a simulated clock: whole transcripts, input split at every offset, the
//! limits and deadlines, and escaping.

use super::*;
use bytes::Bytes;
use media::TrackInfo;

const LOGIN: Duration = Duration::from_secs(15);
const IDLE: Duration = Duration::from_secs(300);

fn config() -> ConsoleConfig {
    ConsoleConfig {
        banner: "ferrostream test shell".into(),
        login_timeout: LOGIN,
        idle_timeout: IDLE,
    }
}

fn take(console: &mut Console) -> String {
    let mut out = BytesMut::new();
    console.poll_transmit(&mut out);
    String::from_utf8(out.to_vec()).expect("utf-8")
}

fn key(app: &str, stream: &str) -> StreamKey {
    StreamKey::new(app, stream).expect("key")
}

fn track(codec: Codec, width: u32, height: u32, sample_rate: u32) -> TrackInfo {
    TrackInfo {
        codec,
        config: Bytes::new(),
        width,
        height,
        sample_rate,
        channels: 0,
    }
}

/// Answers like a server with one stream (`live/obs`) published by session 1 and watched by
/// session 2, where only `admin`/`pw` may log in.
fn drive(console: &mut Console, now: Instant) -> Result<(), Error> {
    while let Some(event) = console.poll_event() {
        match event {
            Event::Login { user_name, passwd } => {
                if user_name == "admin" && passwd == "pw" {
                    console.accept_login(now)?;
                } else {
                    console.reject_login("wrong user name or password");
                }
            }
            Event::Command(command) => {
                let answer = match command {
                    Command::Streams => Answer::Streams(vec![StreamRow {
                        key: key("live", "obs"),
                        origin: "rtmp_push",
                        tracks: vec![
                            track(Codec::H264, 320, 240, 0),
                            track(Codec::Aac, 0, 0, 44100),
                        ],
                        readers: 1,
                        bytes: 1234,
                    }]),
                    Command::Sessions => Answer::Sessions(vec![
                        SessionRow {
                            id: 1,
                            role: Role::Publisher,
                            protocol: Protocol::Rtmp,
                            peer: "127.0.0.1:5000".parse().expect("addr"),
                            key: key("live", "obs"),
                            bytes: 1234,
                        },
                        SessionRow {
                            id: 2,
                            role: Role::Viewer,
                            protocol: Protocol::HttpFlv,
                            peer: "[::1]:5001".parse().expect("addr"),
                            key: key("live", "obs"),
                            bytes: 99,
                        },
                    ]),
                    Command::Kick(id) => Answer::Kicked(id, id == 2),
                    Command::Close(k) => {
                        let hit = k == key("live", "obs");
                        Answer::Closed(k, hit)
                    }
                };
                console.answer(now, answer)?;
            }
        }
    }
    Ok(())
}

/// Feeds `input` in pieces cut at `cuts`, driving after each; the whole output.
fn transcript(input: &[u8], cuts: &[usize]) -> (String, bool, Option<Error>) {
    let t0 = Instant::now();
    let mut console = Console::new(t0, config());
    let mut out = take(&mut console);
    let mut start = 0;
    let mut error = None;
    for end in cuts.iter().copied().chain([input.len()]) {
        let end = end.clamp(start, input.len());
        let result = console
            .handle_input(t0, &input[start..end])
            .and_then(|()| drive(&mut console, t0));
        out.push_str(&take(&mut console));
        if let Err(e) = result {
            error = Some(e);
            break;
        }
        start = end;
    }
    (out, console.is_closed(), error)
}

const SESSION: &[u8] = b"admin\r\npw\r\nhelp\nstreams\r\nsessions\n\nkick 2\nkick 3\nkick x\n\
close live/obs\nclose live/other\nclose nope\nfrobnicate now\nquit\nstreams\n";

const SESSION_OUT: &str = "ferrostream test shell\r\n\
login: password: logged in; type `help` for the commands\r\n\
ferrostream> commands:\r\n\
\x20 help                  this list\r\n\
\x20 streams               live streams: vhost/app/stream origin tracks readers bytes\r\n\
\x20 sessions              publishers and viewers: id role protocol peer stream bytes\r\n\
\x20 kick <id>             end the session <id>\r\n\
\x20 close <app>/<stream>  end a stream (default vhost)\r\n\
\x20 quit, exit            close the shell\r\n\
ferrostream> __defaultVhost__/live/obs origin=rtmp_push tracks=H264(320x240),AAC(44100Hz) \
readers=1 bytes=1234\r\n\
1 live stream\r\n\
ferrostream> id=1 role=publisher protocol=rtmp peer=127.0.0.1:5000 \
stream=__defaultVhost__/live/obs bytes=1234\r\n\
id=2 role=viewer protocol=http-flv peer=[::1]:5001 stream=__defaultVhost__/live/obs bytes=99\r\n\
2 sessions\r\n\
ferrostream> ferrostream> kicked session 2\r\n\
ferrostream> no session 3\r\n\
ferrostream> not a session id: x\r\n\
ferrostream> closed __defaultVhost__/live/obs\r\n\
ferrostream> no live stream __defaultVhost__/live/other\r\n\
ferrostream> usage: close <app>/<stream>\r\n\
ferrostream> unknown command frobnicate; type `help` for the commands\r\n\
ferrostream> bye\r\n";

#[test]
fn a_whole_session_reads_as_a_user_sees_it() {
    let (out, closed, error) = transcript(SESSION, &[]);
    assert_eq!(out, SESSION_OUT);
    assert!(closed);
    assert_eq!(error, None);
}

/// Input cut at every offset (and byte by byte) gives the same transcript (partial input is
/// kept, not an error).
#[test]
fn input_split_anywhere_gives_the_same_transcript() {
    for cut in 0..=SESSION.len() {
        assert_eq!(transcript(SESSION, &[cut]).0, SESSION_OUT, "cut at {cut}");
    }
    let every: Vec<usize> = (1..SESSION.len()).collect();
    assert_eq!(transcript(SESSION, &every).0, SESSION_OUT);
}

#[test]
fn a_bad_login_gets_one_line_and_is_closed() {
    let (out, closed, _) = transcript(b"admin\nwrong\nstreams\n", &[]);
    assert_eq!(
        out,
        "ferrostream test shell\r\nlogin: password: login refused: wrong user name or password\r\n"
    );
    assert!(closed);
}

#[test]
fn a_refusal_message_is_escaped() {
    let mut console = Console::new(Instant::now(), config());
    console
        .handle_input(Instant::now(), b"root\nx\n")
        .expect("input");
    assert!(matches!(console.poll_event(), Some(Event::Login { .. })));
    console.reject_login("no\x1b[2J\r\nroot# \u{202e}");
    assert!(
        take(&mut console).ends_with("login refused: no\\u{1b}[2J\\u{d}\\u{a}root# \\u{202e}\r\n")
    );
}

#[test]
fn an_empty_user_name_asks_again_within_three_lines() {
    let (out, closed, error) = transcript(b"\n\nadmin\npw\n", &[]);
    assert_eq!(
        out,
        "ferrostream test shell\r\nlogin: login: login: password: \
         error: more than 3 lines before a login, closing\r\n"
    );
    assert!(closed);
    assert_eq!(error, Some(Error::TooManyLines));
    let (out, _, error) = transcript(b"\nadmin\npw\n", &[]);
    assert!(out.ends_with("ferrostream> "), "{out}");
    assert_eq!(error, None);
}

#[test]
fn lines_are_at_most_1024_bytes() {
    let mut input = b"admin\npw\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', MAX_LINE));
    input.extend_from_slice(b"\r\n");
    let (out, closed, error) = transcript(&input, &[]);
    assert!(!closed, "{out}");
    assert_eq!(error, None);
    let expected = format!(
        "unknown command {}; type `help` for the commands\r\nferrostream> ",
        "x".repeat(MAX_LINE)
    );
    assert!(out.ends_with(&expected));

    // One byte more: cut off, with or without a line ending (a client that never sends one
    // cannot grow the buffer).
    let mut long = b"admin\npw\n".to_vec();
    long.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
    for tail in [&b"\n"[..], b"", b"xxxx"] {
        let mut input = long.clone();
        input.extend_from_slice(tail);
        let (out, closed, error) = transcript(&input, &[]);
        assert!(closed);
        assert_eq!(error, Some(Error::LineTooLong));
        assert!(out.ends_with("ferrostream> error: a line longer than 1024 bytes, closing\r\n"));
    }
    // Before a login too.
    let (_, closed, error) = transcript(&[b'a'; 3000], &[]);
    assert!(closed);
    assert_eq!(error, Some(Error::LineTooLong));
}

#[test]
fn input_while_a_login_is_checked_is_kept_but_bounded() {
    let t0 = Instant::now();
    let mut console = Console::new(t0, config());
    console
        .handle_input(t0, b"admin\npw\nstreams\nquit\n")
        .expect("input");
    assert!(matches!(console.poll_event(), Some(Event::Login { .. })));
    console.accept_login(t0).expect("accept");
    assert_eq!(console.poll_event(), Some(Event::Command(Command::Streams)));
    console
        .answer(t0, Answer::Streams(Vec::new()))
        .expect("answer");
    assert!(console.is_closed());
    assert!(take(&mut console).ends_with("ferrostream> no live streams\r\nferrostream> bye\r\n"));

    let mut console = Console::new(t0, config());
    console.handle_input(t0, b"admin\npw\n").expect("input");
    assert_eq!(
        console.handle_input(t0, &[b'\n'; MAX_AHEAD + 1]),
        Err(Error::TooFarAhead)
    );
    assert!(console.is_closed());
}

#[test]
fn a_silent_client_is_closed_at_the_login_deadline() {
    let t0 = Instant::now();
    let mut console = Console::new(t0, config());
    take(&mut console);
    assert_eq!(console.poll_timeout(), Some(t0 + LOGIN));
    // Typing does not move the login deadline.
    console
        .handle_input(t0 + Duration::from_secs(10), b"adm")
        .expect("input");
    assert_eq!(console.poll_timeout(), Some(t0 + LOGIN));
    console.handle_timeout(t0 + Duration::from_secs(14));
    assert!(!console.is_closed());
    console.handle_timeout(t0 + LOGIN);
    assert!(console.is_closed());
    assert_eq!(take(&mut console), "no login within 15s\r\n");
    assert_eq!(console.poll_timeout(), None);
    // A late answer of the hook changes nothing.
    console.accept_login(t0 + LOGIN).expect("ignored");
    assert!(!console.logged_in());
}

#[test]
fn an_idle_shell_is_closed_and_input_keeps_it_open() {
    let t0 = Instant::now();
    let mut console = Console::new(t0, config());
    console.handle_input(t0, b"admin\npw\n").expect("input");
    drive(&mut console, t0).expect("drive");
    assert!(console.logged_in());
    take(&mut console);
    assert_eq!(console.poll_timeout(), Some(t0 + IDLE));
    let t1 = t0 + Duration::from_secs(200);
    console.handle_input(t1, b"hel").expect("input");
    assert_eq!(console.poll_timeout(), Some(t1 + IDLE));
    console.handle_timeout(t0 + IDLE);
    assert!(!console.is_closed());
    console.handle_timeout(t1 + IDLE);
    assert!(console.is_closed());
    assert_eq!(take(&mut console), "idle for 300s, closing\r\n");
}

#[test]
fn names_are_escaped() {
    assert_eq!(escape_name("live/a b"), "live/a\\u{20}b");
    assert_eq!(escape_name("x\\y"), "x\\\\y");
    assert_eq!(escape_text("a b"), "a b");
    assert_eq!(
        escape_text("\u{7f}\u{9b}\u{2028}\u{feff}"),
        "\\u{7f}\\u{9b}\\u{2028}\\u{feff}"
    );
    assert_eq!(escape_name("直播/流"), "直播/流");
    // A stream name with a bidi override (StreamKey allows it: it is not a control character).
    let k = key("live", "evil\u{202e}gpj.exe");
    let mut text = String::new();
    format_answer(&mut text, &Answer::Closed(k, true));
    assert_eq!(
        text,
        "closed __defaultVhost__/live/evil\\u{202e}gpj.exe\r\n"
    );
}

#[test]
fn the_password_stays_out_of_debug_output() {
    let event = Event::Login {
        user_name: "admin".into(),
        passwd: "hunter2".into(),
    };
    let debug = format!("{event:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
