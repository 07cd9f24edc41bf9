//! The admin shell (`shell.port`) with a real TCP client, a real hook backend and ffmpeg: the
//! login through on_shell_login (ZLMediaKit's body; a denial is one line and the end), the
//! fallback login (`admin` + `api.secret`) when the hook is off, the commands on a stream
//! ffmpeg publishes and watches (list, kick, close, quit), and the login and idle deadlines.
//! Every assertion is on the exact text a user's terminal shows.

use e2e::backend::{Backend, Reply};
use e2e::*;
use media::StreamKey;
use registry::Role;
use serde_json::json;
use server::Server;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const PROMPT: &str = "ferrostream> ";

fn banner() -> String {
    format!(
        "ferrostream {} admin shell\r\nlogin: ",
        env!("CARGO_PKG_VERSION")
    )
}

/// A terminal: what it types, and everything the server wrote, read up to what it waits for.
struct Shell {
    socket: TcpStream,
    seen: Vec<u8>,
}

impl Shell {
    async fn connect(server: &Server) -> Shell {
        let addr = server.shell_addr.expect("the shell is on");
        Shell {
            socket: TcpStream::connect(addr).await.expect("connect"),
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.socket
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
    }

    /// The text written since the last read, up to and including `end`.
    async fn until(&mut self, end: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(at) = find(&self.seen, end.as_bytes()) {
                let text: Vec<u8> = self.seen.drain(..at + end.len()).collect();
                return String::from_utf8(text).expect("utf-8");
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.socket.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {end:?} within 10 s; got {:?}",
                        String::from_utf8_lossy(&self.seen)
                    )
                })
                .expect("read");
            assert!(
                n > 0,
                "closed before {end:?}; got {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    /// Everything written until the server closes the connection, within `limit`.
    async fn until_closed(&mut self, limit: Duration) -> String {
        let read = async {
            let mut rest = Vec::new();
            self.socket.read_to_end(&mut rest).await.expect("read");
            rest
        };
        let rest = tokio::time::timeout(limit, read)
            .await
            .expect("the server closes the connection");
        let mut text = std::mem::take(&mut self.seen);
        text.extend_from_slice(&rest);
        String::from_utf8(text).expect("utf-8")
    }

    /// Logs in; what the server answered to the password.
    async fn login(&mut self, user: &str, password: &str) {
        assert_eq!(self.until("login: ").await, banner());
        self.send(user).await;
        assert_eq!(self.until("password: ").await, "password: ");
        self.send(password).await;
    }

    /// Runs `command`; its lines, without the prompt that follows them.
    async fn run(&mut self, command: &str) -> Vec<String> {
        self.send(command).await;
        let text = self.until(PROMPT).await;
        let body = text.strip_suffix(PROMPT).expect("prompt");
        assert!(body.is_empty() || body.ends_with("\r\n"), "{body:?}");
        body.lines().map(str::to_owned).collect()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `line` is `prefix` followed by ` bytes=<a number>`.
fn assert_line(line: &str, prefix: &str) {
    let bytes = line
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(" bytes="))
        .unwrap_or_else(|| panic!("{line:?} is not {prefix:?} bytes=…"));
    assert!(
        !bytes.is_empty() && bytes.bytes().all(|b| b.is_ascii_digit()),
        "{line:?}"
    );
}

async fn start_shell_server(tweak: impl FnOnce(&mut server::Options)) -> Server {
    start_server_with(|o| {
        o.shell_addr = Some("127.0.0.1:0".parse().expect("addr"));
        tweak(o);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_login_gets_one_line_and_the_backend_zlms_body() {
    let backend = Backend::start().await;
    backend.reply(
        "on_shell_login",
        Reply::Json(json!({"code": 1, "msg": "not on the rota"})),
    );
    let server = start_shell_server(|o| o.hooks = backend.config()).await;
    let mut shell = Shell::connect(&server).await;
    let client_port = shell.socket.local_addr().expect("addr").port();
    shell.login("ops", "hunter2 ").await;
    assert_eq!(
        shell.until_closed(Duration::from_secs(5)).await,
        "login refused: not on the rota\r\n"
    );

    let calls = backend.calls("on_shell_login");
    assert_eq!(calls.len(), 1, "a denial is not retried");
    let body = &calls[0].body;
    let mut fields: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "hook_index",
            "id",
            "ip",
            "mediaServerId",
            "passwd",
            "port",
            "user_name"
        ]
    );
    for (field, value) in [
        ("ip", json!("127.0.0.1")),
        ("port", json!(client_port)),
        ("user_name", json!("ops")),
        ("passwd", json!("hunter2 ")),
        ("mediaServerId", json!("test-server")),
    ] {
        assert_eq!(body[field], value, "on_shell_login.{field} in {body}");
    }
    let id = body["id"].as_str().expect("id is a string");
    assert!(id.parse::<u64>().is_ok(), "{body}");
    assert!(body["hook_index"].is_u64(), "{body}");

    // A backend that cannot be asked refuses too (fail closed).
    backend.reply("on_shell_login", Reply::Status(500));
    let mut shell = Shell::connect(&server).await;
    shell.login("ops", "hunter2").await;
    assert_eq!(
        shell.until_closed(Duration::from_secs(10)).await,
        "login refused: on_shell_login failed: authorization unavailable\r\n"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_login_lists_kicks_closes_and_quits() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_shell_server(|o| o.hooks = backend.config()).await;
    let key = StreamKey::new("live", "shell").expect("key");
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/shell"), &["-stream_loop", "-1"]);
    wait_live(&server, &key, 2).await;
    let mut viewer = ffmpeg_view(&http_url(&server, "live/shell.live.flv"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.registry.sessions().len() < 2 {
        assert!(Instant::now() < deadline, "the viewer did not join");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut shell = Shell::connect(&server).await;
    shell.login("ops", "pw").await;
    assert_eq!(
        shell.until(PROMPT).await,
        format!("logged in; type `help` for the commands\r\n{PROMPT}")
    );
    assert_eq!(backend.calls("on_shell_login")[0].body["user_name"], "ops");

    let streams = shell.run("streams").await;
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_line(
        &streams[0],
        "__defaultVhost__/live/shell origin=rtmp_push tracks=H264(320x240),AAC(44100Hz) readers=1",
    );
    assert_eq!(streams[1], "1 live stream");

    let sessions = server.registry.sessions();
    let publisher_session = sessions
        .iter()
        .find(|s| s.role == Role::Publisher)
        .expect("publisher");
    let viewer_session = sessions
        .iter()
        .find(|s| s.role == Role::Viewer)
        .expect("viewer");
    let lines = shell.run("sessions").await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let expected = |id: u64, role: &str, protocol: &str, peer: std::net::SocketAddr| {
        format!("id={id} role={role} protocol={protocol} peer={peer} stream=__defaultVhost__/live/shell")
    };
    // Listed by id: the publisher came first.
    assert_line(
        &lines[0],
        &expected(
            publisher_session.info.id,
            "publisher",
            "rtmp",
            publisher_session.info.peer,
        ),
    );
    assert_line(
        &lines[1],
        &expected(
            viewer_session.info.id,
            "viewer",
            "http-flv",
            viewer_session.info.peer,
        ),
    );
    assert_eq!(lines[2], "2 sessions");

    let viewer_id = viewer_session.info.id;
    assert_eq!(
        shell.run(&format!("kick {viewer_id}")).await,
        [format!("kicked session {viewer_id}")]
    );
    assert!(
        exits_within(&mut viewer, Duration::from_secs(10)).await,
        "the kicked viewer still plays"
    );
    assert_eq!(shell.run("kick 999999").await, ["no session 999999"]);
    assert_eq!(shell.run("kick me").await, ["not a session id: me"]);

    assert_eq!(
        shell.run("close live/shell").await,
        ["closed __defaultVhost__/live/shell"]
    );
    assert!(
        exits_within(&mut publisher, Duration::from_secs(10)).await,
        "the publisher of the closed stream still runs"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.registry.is_live(&key) {
        assert!(Instant::now() < deadline, "the stream is still live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shell.run("streams").await, ["no live streams"]);
    assert_eq!(
        shell.run("close live/shell").await,
        ["no live stream __defaultVhost__/live/shell"]
    );
    assert_eq!(
        shell.run("reboot \u{1b}[2J").await,
        ["unknown command reboot; type `help` for the commands"]
    );
    assert_eq!(
        shell.run("close live/\u{202e}kcab").await,
        ["no live stream __defaultVhost__/live/\\u{202e}kcab"]
    );

    shell.send("quit").await;
    assert_eq!(shell.until_closed(Duration::from_secs(5)).await, "bye\r\n");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_hook_admin_logs_in_with_the_api_secret() {
    let server = start_shell_server(|o| {
        o.shell.idle_timeout = Duration::from_millis(1500);
    })
    .await;
    let secret = server.config.get().api.secret.expose().to_owned();
    assert!(!secret.is_empty());

    for (user, password) in [("admin", "wrong"), ("root", secret.as_str())] {
        let mut shell = Shell::connect(&server).await;
        shell.login(user, password).await;
        assert_eq!(
            shell.until_closed(Duration::from_secs(5)).await,
            "login refused: wrong user name or password\r\n"
        );
    }

    let mut shell = Shell::connect(&server).await;
    shell.login("admin", &secret).await;
    assert_eq!(
        shell.until(PROMPT).await,
        format!("logged in; type `help` for the commands\r\n{PROMPT}")
    );
    assert_eq!(shell.run("streams").await, ["no live streams"]);
    assert_eq!(shell.run("sessions").await, ["no sessions"]);
    // Left alone, the shell is closed after its idle time.
    let started = Instant::now();
    assert_eq!(
        shell.until_closed(Duration::from_secs(5)).await,
        "idle for 1.5s, closing\r\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(1400));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed_at_the_login_deadline() {
    let backend = Backend::start().await;
    let server = start_shell_server(|o| {
        o.hooks = backend.config();
        o.shell.login_timeout = Duration::from_secs(1);
    })
    .await;
    let started = Instant::now();
    let mut shell = Shell::connect(&server).await;
    assert_eq!(
        shell.until_closed(Duration::from_secs(5)).await,
        format!("{}no login within 1s\r\n", banner())
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // A line that never ends is no way around it either; nor is a line too long.
    let mut shell = Shell::connect(&server).await;
    shell.socket.write_all(&[b'x'; 2000]).await.expect("write");
    assert_eq!(
        shell.until_closed(Duration::from_secs(5)).await,
        format!(
            "{}error: a line longer than 1024 bytes, closing\r\n",
            banner()
        )
    );
    assert!(backend.calls("on_shell_login").is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shells_count_against_the_connection_cap() {
    let server = start_shell_server(|o| o.limits.max_total = 1).await;
    let secret = server.config.get().api.secret.expose().to_owned();
    let mut first = Shell::connect(&server).await;
    assert_eq!(first.until("login: ").await, banner());
    // At the cap, a shell that has not logged in makes room for a newer connection...
    let mut second = Shell::connect(&server).await;
    assert_eq!(first.until_closed(Duration::from_secs(5)).await, "");
    second.login("admin", &secret).await;
    assert_eq!(
        second.until(PROMPT).await,
        format!("logged in; type `help` for the commands\r\n{PROMPT}")
    );
    // ...one that has logged in does not: the newcomer is turned away.
    let mut third = Shell::connect(&server).await;
    assert_eq!(third.until_closed(Duration::from_secs(5)).await, "");
    assert_eq!(second.run("sessions").await, ["no sessions"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_shell_port_moves_the_listener_and_keeps_its_shells() {
    let server = start_shell_server(|_| {}).await;
    let secret = server.config.get().api.secret.expose().to_owned();
    let old = server.shell_addr.expect("shell");
    let mut logged_in = Shell::connect(&server).await;
    logged_in.login("admin", &secret).await;
    logged_in.until(PROMPT).await;

    let port = free_port();
    server
        .config
        .set([("shell.port", port.to_string())])
        .expect("set");
    let moved: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.shell_addr_now() != Some(moved) {
        assert!(Instant::now() < deadline, "the shell did not move");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        TcpStream::connect(old).await.is_err(),
        "the old port still accepts"
    );
    let mut fresh = Shell {
        socket: TcpStream::connect(moved).await.expect("connect"),
        seen: Vec::new(),
    };
    assert_eq!(fresh.until("login: ").await, banner());
    assert_eq!(logged_in.run("sessions").await, ["no sessions"]);

    // 0 turns it off; the shells it accepted go on.
    server.config.set([("shell.port", "0")]).expect("set");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.shell_addr_now().is_some() {
        assert!(Instant::now() < deadline, "the shell is still on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(TcpStream::connect(moved).await.is_err());
    assert_eq!(logged_in.run("streams").await, ["no live streams"]);
    server.shutdown().await;
}
