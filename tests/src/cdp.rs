//! Headless Chromium driven over the Chrome DevTools Protocol, for tests that use a page the way
//! a person does (type, click, look) rather than a page that reports on itself.
//!
//! Chromium starts with `--remote-debugging-port=0` and writes the port it chose into
//! `DevToolsActivePort` in its profile; the test reads it, finds the page target through
//! `/json/list` and speaks the protocol to it over a WebSocket: `Runtime.evaluate` to read the
//! DOM, `Input.dispatchMouseEvent` / `Input.insertText` for real input events, and
//! `Page.captureScreenshot`. The page's console messages and uncaught exceptions are kept for
//! failure messages and for asserting that a page raised none.

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one protocol call may take before the test fails.
const CALL_LIMIT: Duration = Duration::from_secs(20);

/// A running Chromium and its one page.
pub struct Chrome {
    child: Child,
    /// The page the browser opened with.
    pub page: Page,
}

/// One page target's protocol connection.
pub struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// The page's console messages and log entries, in order (`console.error: …`).
    pub log: Vec<String>,
    /// The page's uncaught exceptions and unhandled rejections.
    pub exceptions: Vec<String>,
}

impl Chrome {
    /// Headless Chromium with a fresh profile in `dir` (its stderr in `dir/chromium.log`) on
    /// `about:blank`, a `width`×`height` viewport at device scale 1.
    pub async fn launch(dir: &Path, width: u32, height: u32) -> Chrome {
        let log = std::fs::File::create(dir.join("chromium.log")).expect("log file");
        let profile = dir.join("profile");
        let mut child = Command::new("chromium")
            .args(crate::browser::HEADLESS)
            .args([
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chromium");
        let port = devtools_port(&mut child, &profile, dir).await;
        let ws_url = page_target(port).await;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect to the page's DevTools socket");
        let mut page = Page {
            ws,
            next_id: 1,
            log: Vec::new(),
            exceptions: Vec::new(),
        };
        page.call("Runtime.enable", json!({})).await;
        page.call("Log.enable", json!({})).await;
        page.call("Page.enable", json!({})).await;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        Chrome { child, page }
    }

    /// Ends the browser (its renderer and GPU processes go with it).
    pub async fn close(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The port in `profile/DevToolsActivePort` once Chromium has written it.
async fn devtools_port(child: &mut Child, profile: &Path, dir: &Path) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return port;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "chromium exited ({status}) before it listened:\n{}",
                crate::browser::chromium_log(dir)
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromium wrote no DevToolsActivePort in 20 s:\n{}",
            crate::browser::chromium_log(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The WebSocket address of the browser's first page target.
async fn page_target(port: u16) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list: Option<Value> =
            match reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await {
                Ok(resp) => resp.json().await.ok(),
                Err(_) => None,
            };
        let url = list.as_ref().and_then(Value::as_array).and_then(|targets| {
            targets
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        });
        if let Some(url) = url {
            return url.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no page target at /json/list: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Page {
    /// Calls `method` and returns its `result`; panics on a protocol error. Events that arrive
    /// meanwhile are kept in [`Page::log`] and [`Page::exceptions`].
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::Text(request.to_string().into()))
            .await
            .unwrap_or_else(|e| panic!("send {method}: {e}"));
        loop {
            let msg = tokio::time::timeout(CALL_LIMIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer in {CALL_LIMIT:?}"))
                .unwrap_or_else(|| panic!("{method}: the DevTools socket closed"))
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            let Message::Text(text) = msg else { continue };
            let value: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if value["id"] == id {
                assert!(
                    value.get("error").is_none(),
                    "{method} failed: {}",
                    value["error"]
                );
                return value["result"].clone();
            }
            self.event(&value);
        }
    }

    fn event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|arg| match arg.get("value") {
                                Some(Value::String(s)) => s.clone(),
                                Some(v) => v.to_string(),
                                None => arg["description"].as_str().unwrap_or("?").to_owned(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.log.push(format!(
                    "console.{}: {}",
                    params["type"].as_str().unwrap_or("log"),
                    args.join(" ")
                ));
            }
            Some("Log.entryAdded") => {
                let entry = &params["entry"];
                self.log.push(format!(
                    "{} {}: {} {}",
                    entry["source"].as_str().unwrap_or(""),
                    entry["level"].as_str().unwrap_or(""),
                    entry["text"].as_str().unwrap_or(""),
                    entry["url"].as_str().unwrap_or("")
                ));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("?");
                self.exceptions.push(text.to_owned());
            }
            _ => {}
        }
    }

    /// The last lines of the page's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let start = self.log.len().saturating_sub(25);
        let mut out = self.log[start..].join("\n");
        if !self.exceptions.is_empty() {
            out.push_str("\nuncaught: ");
            out.push_str(&self.exceptions.join("\nuncaught: "));
        }
        out
    }

    /// Opens `url` and waits for its `load` event.
    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait("the page to load", "document.readyState === 'complete'", 15)
            .await;
    }

    /// The value of the JavaScript expression `expr` (awaited when it is a promise).
    pub async fn eval(&mut self, expr: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!(
                "{expr} threw: {}\n{}",
                details["exception"]["description"]
                    .as_str()
                    .unwrap_or(&details.to_string()),
                self.log_tail()
            );
        }
        result["result"]["value"].clone()
    }

    /// Polls `expr` every 100 ms until it is truthy and returns that value; panics after
    /// `seconds` naming `what`, with the last value and the page's log.
    pub async fn wait(&mut self, what: &str, expr: &str, seconds: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let value = self.eval(expr).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(_) | Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {seconds} s for {what} ({expr} = {value})\npage log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A left click in the middle of the first element `selector` matches (scrolled into
    /// view first), as mouse events: what the page sees is what a person's click gives.
    pub async fn click(&mut self, selector: &str) {
        let quoted = serde_json::to_string(selector).expect("selector");
        let expr = format!(
            "(() => {{ const el = document.querySelector({quoted}); if (!el) return null; \
             el.scrollIntoView({{ block: 'center', inline: 'center' }}); \
             const r = el.getBoundingClientRect(); \
             return r.width > 0 && r.height > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()"
        );
        let at = self
            .wait(&format!("{selector} to be visible"), &expr, 10)
            .await;
        let (x, y) = (at[0].as_f64().expect("x"), at[1].as_f64().expect("y"));
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Clicks `selector` (an input) and types `text` into it.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// Presses a key that has a DOM `key` name and a Windows virtual key code (Enter = 13).
    pub async fn press(&mut self, key: &str, code: u32) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": key, "windowsVirtualKeyCode": code,
                        "text": if kind == "keyDown" && key == "Enter" { "\r" } else { "" } }),
            )
            .await;
        }
    }

    /// The viewport as a PNG, written to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "fromSurface": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}
