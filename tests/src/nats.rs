//! A real `nats-server -js` (Debian's `nats-server`) for the events and cluster tests: on a
//! free loopback port with its own JetStream store directory, stopped and started again on
//! the same port and store to test an outage.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Whether `nats-server` is installed. Missing, it skips a test locally and fails it in CI,
/// where `scripts/test` installs it.
pub fn have_nats_server() -> bool {
    let ok = std::process::Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "nats-server missing in CI: scripts/test must install it"
        );
        eprintln!("skipped: nats-server not installed");
    }
    ok
}

pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a JetStream server on a free port, waiting until it accepts connections.
    pub async fn start() -> NatsServer {
        let mut server = NatsServer {
            port: crate::free_port(),
            store: tempfile::tempdir().expect("store dir"),
            child: None,
        };
        server.up().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.store.path().to_owned()
    }

    /// Starts the server (again) on its port and store.
    pub async fn up(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let last = match async_nats::connect(self.url()).await {
                // JetStream starts before the server listens for clients.
                Ok(client) if client.server_info().jetstream => return,
                Ok(_) => "JetStream is off".to_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start on {}: {last}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server cleanly (SIGTERM), waiting for it to exit.
    pub async fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to nats")
    }
}

/// Every message of JetStream stream `stream` so far, as JSON, with its subject, read with an
/// ordered consumer from the first message, stopping when none came for `quiet`.
pub async fn stream_messages(
    client: &async_nats::Client,
    stream: &str,
    quiet: Duration,
) -> Vec<(String, serde_json::Value)> {
    use futures_util::StreamExt;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js
        .get_stream(stream)
        .await
        .expect("the events stream exists");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, messages.next()).await {
        let json = serde_json::from_slice(&message.payload).expect("an envelope is JSON");
        out.push((message.subject.to_string(), json));
    }
    out
}
