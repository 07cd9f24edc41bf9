//! Fuzz target bodies, shared by `fuzz/fuzz_targets/server_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.

use crate::shell::console::{
    is_unsafe, Answer, Command, Console, ConsoleConfig, Event, SessionRow, StreamRow,
};
use bytes::BytesMut;
use media::StreamKey;
use registry::{Protocol, Role};
use std::time::{Duration, Instant};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 2] = ["server_shell", "server_http_flv_head"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "server_shell" => shell(data),
        "server_http_flv_head" => http_flv_head(data),
        _ => {}
    }
}

/// The HTTP listener's look at a connection's first bytes (which HTTP-FLV plays it serves
/// itself): never a panic, and what it takes is a complete head of at most the bytes given,
/// a live FLV path, bounded headers.
pub fn http_flv_head(data: &[u8]) {
    crate::http::live_flv::fuzz_head(data);
}

/// Splits the input into pieces (the next piece is fed as a separate read).
const CUT: u8 = 0x01;
/// Moves the clock 100 s on and fires the timer.
const TICK: u8 = 0x02;

/// The admin shell's console fed `data` as client input, cut into reads at every `0x01` and
/// with the clock moved 100 s on at every `0x02`, answered by a scripted server: a user name
/// starting with `admin` logs in, any other is refused with its password as the message
/// (hostile text reaching the output); `streams` and `sessions` list a row named after the
/// user name. Checks that the output is UTF-8 with no unescaped control or format character
/// but the line endings, that nothing is written or asked once closed, and that the console
/// never holds more input than its limits allow.
pub fn shell(data: &[u8]) {
    let mut now = Instant::now();
    let mut console = Console::new(
        now,
        ConsoleConfig {
            banner: "fuzz".into(),
            login_timeout: Duration::from_secs(150),
            idle_timeout: Duration::from_secs(250),
        },
    );
    let mut out = BytesMut::new();
    let mut name = String::from("obs");
    let mut closed = false;
    for piece in data.split(|&b| b == CUT) {
        for (i, part) in piece.split(|&b| b == TICK).enumerate() {
            if i > 0 {
                now += Duration::from_secs(100);
                console.handle_timeout(now);
                check(&mut console, &mut out, &mut closed);
            }
            let _ = console.handle_input(now, part);
            answer(&mut console, now, &mut name);
            check(&mut console, &mut out, &mut closed);
        }
    }
}

fn answer(console: &mut Console, now: Instant, name: &mut String) {
    while let Some(event) = console.poll_event() {
        let _ = match event {
            Event::Login { user_name, passwd } => {
                *name = user_name.clone();
                if user_name.starts_with("admin") {
                    console.accept_login(now)
                } else {
                    console.reject_login(&passwd);
                    Ok(())
                }
            }
            Event::Command(command) => {
                let Ok(key) =
                    StreamKey::new("live", name.as_str()).or_else(|_| StreamKey::new("live", "x"))
                else {
                    return;
                };
                let answer = match command {
                    Command::Streams => Answer::Streams(vec![StreamRow {
                        key,
                        origin: "rtmp_push",
                        tracks: Vec::new(),
                        readers: name.len(),
                        bytes: 0,
                    }]),
                    Command::Sessions => Answer::Sessions(vec![SessionRow {
                        id: 1,
                        role: Role::Viewer,
                        protocol: Protocol::WsFmp4,
                        peer: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
                        key,
                        bytes: 0,
                    }]),
                    Command::Kick(id) => Answer::Kicked(id, id % 2 == 0),
                    Command::Close(key) => Answer::Closed(key, true),
                };
                console.answer(now, answer)
            }
        };
    }
}

/// Takes the output and checks it; `closed` is whether the console had closed at the last
/// check (nothing may be written after that).
fn check(console: &mut Console, out: &mut BytesMut, closed: &mut bool) {
    out.clear();
    if console.poll_transmit(out) {
        assert!(!*closed, "written after closing: {out:?}");
        let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("not UTF-8: {e}"));
        let unsafe_char = text.replace("\r\n", "").chars().find(|&c| is_unsafe(c));
        assert_eq!(unsafe_char, None, "unescaped in the output {text:?}");
    }
    if console.is_closed() {
        assert!(console.poll_event().is_none(), "an event after closing");
        *closed = true;
    }
}
