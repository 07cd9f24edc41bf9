//! restartServer on the real binary: it answers, stops cleanly (on_server_exited reaches a real
//! backend), and the same process comes back from its binary (on_server_started again, the API
//! answers on the same port, the pid unchanged).

use e2e::api::json_of;
use e2e::backend::Backend;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_server_stops_cleanly_and_comes_back() {
    let backend = Backend::start().await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let hook = |name: &str| format!("http://{}/index/hook/{name}", backend.addr);
    let mut child = tokio::process::Command::new(e2e::ferrostream_bin())
        .env("FERROSTREAM__HTTP__PORT", port.to_string())
        .env("FERROSTREAM__RTMP__PORT", "0")
        .env("FERROSTREAM__RTSP__PORT", "0")
        .env("FERROSTREAM__TURN__PORT", "0")
        .env("FERROSTREAM__RTC__PORT", "0")
        .env(
            "FERROSTREAM__API__SECRET",
            "restart-test-secret-0123456789ab",
        )
        .env("FERROSTREAM__HOOK__ENABLE", "1")
        .env(
            "FERROSTREAM__HOOK__ON_SERVER_STARTED",
            hook("on_server_started"),
        )
        .env(
            "FERROSTREAM__HOOK__ON_SERVER_EXITED",
            hook("on_server_exited"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ferrostream");
    let pid = child.id().expect("pid");
    backend
        .wait_for("on_server_started", 1, Duration::from_secs(20), |_| true)
        .await;
    let url = format!("http://127.0.0.1:{port}/index/api/restartServer");
    let client = reqwest::Client::new();
    let answer = json_of(
        client
            .get(&url)
            .query(&[("secret", "restart-test-secret-0123456789ab")])
            .send()
            .await
            .expect("restartServer"),
    )
    .await;
    assert_eq!(
        answer,
        json!({"code": 0, "msg": "the server restarts in 1 second"})
    );
    backend
        .wait_for("on_server_exited", 1, Duration::from_secs(20), |_| true)
        .await;
    backend
        .wait_for("on_server_started", 2, Duration::from_secs(20), |_| true)
        .await;
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the process itself goes on"
    );
    assert_eq!(child.id(), Some(pid));
    let version = format!("http://127.0.0.1:{port}/index/api/version");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(resp) = client
            .get(&version)
            .query(&[("secret", "restart-test-secret-0123456789ab")])
            .send()
            .await
        {
            answered = Some(json_of(resp).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered.expect("the restarted server answers")["code"], 0);
    let _ = child.start_kill();
    let _ = child.wait().await;
}
