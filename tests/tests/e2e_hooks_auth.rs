//! The auth hooks against a real HTTP backend (an axum app in the test): exact on_publish and
//! on_play bodies, allow and deny on RTMP and HTTP-FLV, retries and fail-closed on every kind
//! of failure, admin_params and local_bypass, and signed requests verified as a receiver would.

use e2e::backend::{Backend, Reply};
use e2e::client::RtmpClient;
use e2e::*;
use hooks::Hook;
use media::StreamKey;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs the README's Python receiver (the code block under "Signed hooks") on a request: prints
/// its verdict for the request's own path and for another hook's path.
fn readme_receiver(
    path: &str,
    query: &serde_json::Map<String, Value>,
    header: &str,
    body: &str,
) -> String {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("### Signed hooks").expect("README section")..];
    let code = section
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("python block");
    let script = format!(
        "{code}\nimport json, sys\na = json.loads(sys.stdin.read())\n\
         ok = verify('hook-token', a['path'], a['query'], a['header'], a['body'].encode())\n\
         other = verify('hook-token', '/index/hook/other', a['query'], a['header'], \
         a['body'].encode())\nprint(ok, other)\n"
    );
    let input = json!({"path": path, "query": query, "header": header, "body": body});
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(out.status.success(), "python3 failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn http_get(url: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("GET");
    let status = resp.status().as_u16();
    // A 200 is an endless FLV body: only its status matters here.
    if status == 200 {
        return (status, String::new());
    }
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_play_are_authorized_with_zlm_bodies() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    // The stream must not go live before the backend answered.
    backend.reply(
        "on_publish",
        Reply::Delay(
            Duration::from_millis(1500),
            Box::new(Reply::Json(json!({"code": 0}))),
        ),
    );
    let server = start_server_with(|o| o.hooks = backend.config()).await;
    let _publisher = ffmpeg_publish(
        &rtmp_url(&server, "live/obs?token=abc"),
        &["-stream_loop", "-1"],
    );
    let key = StreamKey::new("live", "obs").expect("key");
    let publish = backend
        .wait_for("on_publish", 1, Duration::from_secs(15), |_| true)
        .await;
    assert!(
        !server.registry.is_live(&key),
        "live before on_publish answered"
    );
    wait_live(&server, &key, 2).await;

    let call = &publish[0];
    let body = &call.body;
    for (field, value) in [
        ("schema", json!("rtmp")),
        ("protocol", json!("rtmp")),
        ("vhost", json!("__defaultVhost__")),
        ("app", json!("live")),
        ("stream", json!("obs")),
        ("params", json!("token=abc")),
        ("ip", json!("127.0.0.1")),
        ("originType", json!(1)),
        ("originTypeStr", json!("rtmp_push")),
        ("mediaServerId", json!("test-server")),
    ] {
        assert_eq!(body[field], value, "on_publish.{field} in {body}");
    }
    assert!(body["port"].is_u64(), "{body}");
    assert!(body["id"].is_string(), "{body}");
    assert!(body["hook_index"].is_u64(), "{body}");
    assert_eq!(call.headers["x-vhost"], "__defaultVhost__");
    assert_eq!(call.headers["content-type"], "application/json");
    let ua = call.headers["user-agent"].to_str().expect("ua");
    assert!(ua.starts_with("ferrostream/"), "{ua}");

    // Plays over RTMP and HTTP-FLV, each authorized by on_play.
    let probe = ffprobe(&rtmp_url(&server, "live/obs?ticket=1"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"]);
    let probe = ffprobe(&http_url(&server, "live/obs.live.flv?ticket=2"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"]);
    let plays = backend
        .wait_for("on_play", 2, Duration::from_secs(5), |_| true)
        .await;
    let rtmp = plays
        .iter()
        .find(|c| c.body["params"] == "ticket=1")
        .expect("rtmp on_play");
    let flv = plays
        .iter()
        .find(|c| c.body["params"] == "ticket=2")
        .expect("flv on_play");
    assert_eq!(
        (&rtmp.body["schema"], &rtmp.body["protocol"]),
        (&json!("rtmp"), &json!("rtmp"))
    );
    assert_eq!(
        (&flv.body["schema"], &flv.body["protocol"]),
        (&json!("rtmp"), &json!("http"))
    );
    for c in [rtmp, flv] {
        assert_eq!(c.body["stream"], "obs");
        assert!(
            c.body["id"].is_string() && c.body["port"].is_u64(),
            "{}",
            c.body
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_reach_rtmp_and_http_flv_clients() {
    let backend = Backend::start().await;
    backend.reply(
        "on_publish",
        Reply::Json(json!({"code": -1, "msg": "bad token"})),
    );
    backend.reply(
        "on_play",
        Reply::Json(json!({"code": 401, "msg": "no ticket"})),
    );
    let server = start_server_with(|o| o.hooks = backend.config()).await;
    let rtmp = server.rtmp_addr.expect("rtmp");

    let mut client = RtmpClient::connect(rtmp, "live").await;
    let refused = client
        .try_publish("cam")
        .await
        .expect_err("publish refused");
    assert_eq!(
        refused,
        ("NetStream.Publish.BadAuth".into(), "bad token".into())
    );
    assert!(!server
        .registry
        .is_live(&StreamKey::new("live", "cam").expect("key")));

    let mut client = RtmpClient::connect(rtmp, "live").await;
    let refused = client.try_play("cam").await.expect_err("play refused");
    assert_eq!(
        refused,
        ("NetStream.Play.BadAuth".into(), "no ticket".into())
    );

    let (status, text) = http_get(&http_url(&server, "live/cam.live.flv")).await;
    assert_eq!((status, text.as_str()), (401, "no ticket"));

    // A denial is a decision: asked once, never retried.
    assert_eq!(backend.calls("on_publish").len(), 1);
    assert_eq!(backend.calls("on_play").len(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_then_fail_closed() {
    let backend = Backend::start().await;
    let mut config = backend.config();
    config.timeout = Duration::from_millis(500);
    config.retry = 1;
    config.retry_delay = Duration::from_millis(100);
    let server = start_server_with(|o| o.hooks = config).await;
    let cases = [
        ("status 500", Reply::Status(500)),
        ("not JSON", Reply::Raw("<html>ok</html>")),
        ("string code", Reply::Raw(r#"{"code":"0"}"#)),
        ("no code", Reply::Raw(r#"{"msg":"hi"}"#)),
        (
            "slower than timeoutSec",
            Reply::Delay(
                Duration::from_secs(2),
                Box::new(Reply::Json(json!({"code": 0}))),
            ),
        ),
    ];
    for (i, (what, reply)) in cases.into_iter().enumerate() {
        backend.reply("on_play", reply);
        let (status, _) = http_get(&http_url(&server, &format!("live/s{i}.live.flv"))).await;
        assert_eq!(status, 401, "{what}: fail closed");
        let calls: Vec<_> = backend
            .calls("on_play")
            .into_iter()
            .filter(|c| c.body["stream"] == format!("s{i}"))
            .collect();
        assert_eq!(calls.len(), 2, "{what}: one attempt and one retry");
        assert_ne!(
            calls[0].body["hook_index"], calls[1].body["hook_index"],
            "{what}"
        );
    }

    // An RTMP publisher too, when the backend answers 500.
    backend.reply("on_publish", Reply::Status(500));
    let mut client = RtmpClient::connect(server.rtmp_addr.expect("rtmp"), "live").await;
    let (code, _) = client.try_publish("cam").await.expect_err("refused");
    assert_eq!(code, "NetStream.Publish.BadAuth");

    // The backend gone: connection refused, still a refusal.
    backend.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = http_get(&http_url(&server, "live/down.live.flv")).await;
    assert_eq!(status, 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_params_and_local_bypass_skip_auth() {
    let backend = Backend::start().await;
    backend.reply("on_play", Reply::Json(json!({"code": -1, "msg": "denied"})));
    backend.reply(
        "on_publish",
        Reply::Json(json!({"code": -1, "msg": "denied"})),
    );
    let mut config = backend.config();
    config.admin_params = "secret=s3cret".into();
    let server = start_server_with(|o| {
        o.hooks = config;
        o.max_stream_wait = Duration::from_millis(300);
    })
    .await;
    let (status, _) = http_get(&http_url(&server, "live/a.live.flv?x=1&secret=s3cret")).await;
    assert_eq!(
        status, 404,
        "admin params skip on_play (then: no such stream)"
    );
    let (status, _) = http_get(&http_url(&server, "live/a.live.flv?secret=s3cretX")).await;
    assert_eq!(status, 401, "a different value is no bypass");
    let mut client = RtmpClient::connect(server.rtmp_addr.expect("rtmp"), "live").await;
    client
        .try_publish("a?secret=s3cret")
        .await
        .expect("admin params skip on_publish");
    let calls = backend.calls("on_play");
    assert_eq!(
        calls.len(),
        1,
        "only the non-admin request asked the backend"
    );
    assert!(backend.calls("on_publish").is_empty());
    server.shutdown().await;

    // local_bypass: loopback clients are not asked (off by default: the server above asked
    // the backend about a loopback client).
    let backend2 = Backend::start().await;
    let mut config2 = backend2.config();
    config2.local_bypass = true;
    backend2.reply("on_play", Reply::Json(json!({"code": -1, "msg": "denied"})));
    let server = start_server_with(|o| {
        o.hooks = config2;
        o.max_stream_wait = Duration::from_millis(300);
    })
    .await;
    let (status, _) = http_get(&http_url(&server, "live/b.live.flv")).await;
    assert_eq!(status, 404);
    assert!(backend2.calls("on_play").is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_hooks_verify_as_a_receiver_would() {
    let backend = Backend::start().await;
    let mut config = backend.config();
    config.sign_token = Some("hook-token".into());
    let server = start_server_with(|o| {
        o.hooks = config;
        o.max_stream_wait = Duration::from_millis(200);
    })
    .await;
    let _ = http_get(&http_url(&server, "live/signed.live.flv?a=1")).await;
    let mut client = RtmpClient::connect(server.rtmp_addr.expect("rtmp"), "live").await;
    client.try_publish("signed").await.expect("allowed");
    let calls = backend
        .wait_for("on_publish", 1, Duration::from_secs(5), |_| true)
        .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for call in calls.iter().chain(backend.calls("on_play").iter()) {
        let header = call
            .headers
            .get(hooks::sign::SIGNATURE_HEADER)
            .and_then(|h| h.to_str().ok());
        let verify = |path: &str, body: &[u8], now: u64| {
            hooks::sign::verify("hook-token", path, &call.query, header, body, now, 60)
        };
        assert_eq!(
            verify(&call.path, &call.raw, now),
            Ok(()),
            "{} {}",
            call.hook,
            call.query
        );
        // Another body under the same signature is refused.
        let mut forged: Value = call.body.clone();
        forged["stream"] = json!("other");
        let forged = serde_json::to_vec(&forged).expect("json");
        assert_eq!(
            verify(&call.path, &forged, now),
            Err(hooks::sign::VerifyError::Mismatch)
        );
        // So is the same request replayed to another hook of the receiver.
        let other = if call.hook == "on_play" {
            "/index/hook/on_publish"
        } else {
            "/index/hook/on_play"
        };
        assert_eq!(
            verify(other, &call.raw, now),
            Err(hooks::sign::VerifyError::Mismatch)
        );
        // And a replay two minutes later.
        assert_eq!(
            verify(&call.path, &call.raw, now + 120),
            Err(hooks::sign::VerifyError::Expired)
        );
        // The README's Python receiver agrees, on the real request.
        let query: serde_json::Map<String, Value> = call
            .query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        let header = header.unwrap_or_default();
        let body = String::from_utf8(call.raw.to_vec()).expect("utf-8 body");
        assert_eq!(
            readme_receiver(&call.path, &query, header, &body),
            "True False",
            "README receiver on {}",
            call.hook
        );
    }
    assert!(backend.url(Hook::OnPlay).starts_with("http://127.0.0.1:"));
    server.shutdown().await;
}
