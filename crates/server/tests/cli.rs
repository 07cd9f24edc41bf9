//! The `ferrostream` binary as a user runs it: config file, environment overrides, warnings,
//! errors naming the key, listening addresses logged, clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrostream"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn bad_value_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.ini");
    std::fs::write(&path, "[rtmp]\nport=abc\n").expect("write");
    let out = bin().arg("-c").arg(&path).output().expect("run");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rtmp.port"), "{text}");
    assert!(text.contains("abc"), "{text}");
}

#[test]
fn help_and_unknown_arguments() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FERROSTREAM__"));
    let out = bin().arg("--bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn runs_from_a_zlmediakit_style_file_with_env_overrides_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.ini");
    let mut file = std::fs::File::create(&path).expect("create");
    // Keys ZLMediaKit has and we do not use yet must only warn.
    writeln!(
        file,
        "[rtmp]\nport=1\ndirectProxy=1\n[rtc]\nrembBitRate=0\n[http]\nport=0"
    )
    .expect("write");
    drop(file);
    let rtmp_port = free_port();
    let mut child = bin()
        .arg("-c")
        .arg(&path)
        .env("FERROSTREAM__RTMP__PORT", rtmp_port.to_string())
        .env("FERROSTREAM__RTSP__PORT", "0")
        .env("FERROSTREAM__TURN__PORT", "0")
        .env("FERROSTREAM__RTC__PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.contains("RTMP listening")) {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => seen.push(line),
            Err(_) => assert!(Instant::now() < deadline, "no listening line: {seen:#?}"),
        }
    }
    let all = seen.join("\n");
    assert!(all.contains("rtmp.directProxy"), "unknown key named: {all}");
    assert!(all.contains("rtc.rembBitRate"), "unknown key named: {all}");
    assert!(
        all.contains(&format!("127.0.0.1:{rtmp_port}"))
            || all.contains(&format!("0.0.0.0:{rtmp_port}")),
        "env override wins: {all}"
    );
    assert!(
        !all.contains("HTTP listening"),
        "port 0 disables HTTP: {all}"
    );
    std::net::TcpStream::connect(("127.0.0.1", rtmp_port)).expect("RTMP port open");

    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
