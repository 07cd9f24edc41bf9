//! The web console, used as a person uses it: headless Chromium driven over the DevTools
//! protocol (`e2e::cdp`) signs in with the secret (ZLMediaKit's cookie login), finds the
//! stream ffmpeg publishes listed with its codecs, plays it over HTTP-FLV (mpegts.js) and HLS
//! (hls.js), starts an MP4 recording and finds the file in the recordings view with a working
//! download link, kicks a second client's session (an ffmpeg HTTP-FLV reader, which must end),
//! changes a key in the config editor and closes the stream. Every step reads what the page shows and compares it
//! with what the API and the disk say.
//!
//! With `CONSOLE_SCREENSHOTS=1` it also writes a screenshot of each view to `docs/console/`.

use e2e::cdp::{Chrome, Page};
use e2e::*;
use md5::Digest as _;
use media::StreamKey;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const SECRET: &str = "console-test-secret-4f1c";
const WIDTH: u32 = 1360;
const HEIGHT: u32 = 1000;

/// `docs/console/` when `CONSOLE_SCREENSHOTS=1`.
fn screenshot_dir() -> Option<PathBuf> {
    (std::env::var("CONSOLE_SCREENSHOTS").as_deref() == Ok("1")).then(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
        std::fs::create_dir_all(&dir).expect("docs/console");
        dir
    })
}

async fn shot(page: &mut Page, name: &str) {
    if let Some(dir) = screenshot_dir() {
        // The view as it opens: at the top, without the notes of earlier steps, transitions
        // settled.
        page.eval(
            "window.scrollTo(0, 0); document.querySelectorAll('.toast').forEach((t) => t.remove())",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        page.screenshot(&dir.join(format!("{name}.png"))).await;
    }
}

/// The answer of API call `name` with the secret.
async fn api(server: &server::Server, name: &str, args: &[(&str, &str)]) -> Value {
    let mut url =
        reqwest::Url::parse(&http_url(server, &format!("index/api/{name}"))).expect("url");
    url.query_pairs_mut()
        .append_pair("secret", SECRET)
        .extend_pairs(args);
    let body: Value = reqwest::get(url)
        .await
        .expect("api call")
        .json()
        .await
        .expect("api json");
    assert_eq!(body["code"], 0, "{name}: {body}");
    body
}

/// The ids getAllSession lists.
async fn session_ids(server: &server::Server) -> Vec<String> {
    let body = api(server, "getAllSession", &[]).await;
    body["data"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            s["id"]
                .as_str()
                .map_or_else(|| s["id"].to_string(), str::to_owned)
        })
        .collect()
}

/// `expr`'s value as a list of strings.
async fn strings(page: &mut Page, expr: &str) -> Vec<String> {
    page.eval(expr)
        .await
        .as_array()
        .unwrap_or_else(|| panic!("{expr} is not a list"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Opens the view `name` from the sidebar.
async fn open_view(page: &mut Page, name: &str) {
    page.click(&format!("#nav a[data-view=\"{name}\"]")).await;
    page.wait(
        &format!("the {name} view"),
        &format!("document.querySelector('#view').dataset.view === '{name}'"),
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_signs_in_lists_plays_records_kicks_edits_config_and_closes() {
    if !have_ffmpeg() || !e2e::browser::have_chromium() {
        return;
    }
    let root = tempfile::tempdir().expect("temp dir");
    let root_str = root.path().to_str().expect("utf-8 path").to_owned();
    let mut config = server::config::Config::default();
    for (key, value) in [
        ("api.secret", SECRET),
        ("http.rootPath", root_str.as_str()),
        ("protocol.mp4_save_path", root_str.as_str()),
    ] {
        config.set(key, value).expect(key);
    }
    let server = start_server_from(config, |o| {
        // WebRTC on, on loopback: the panel's WebRTC tab plays over WHEP.
        o.rtc.addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.rtc.extern_ip = Some("127.0.0.1".parse().expect("ip"));
    })
    .await;
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/console"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "console").expect("key"), 2).await;

    let profile = tempfile::tempdir().expect("temp dir");
    let mut chrome = Chrome::launch(profile.path(), WIDTH, HEIGHT).await;
    let page = &mut chrome.page;
    let console = http_url(&server, "");
    page.navigate(&console).await;

    // RFC 1321's test suite (A.5) and a non-ASCII string: the console's MD5 (for the login
    // digest) against the md-5 crate.
    let inputs = [
        "",
        "a",
        "abc",
        "message digest",
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
        "zlmediakit:sécret-ü€𝄞:0123456789abcdef",
    ];
    let quoted = serde_json::to_string(&inputs).expect("json");
    let digests = strings(
        page,
        &format!("import('/assets/md5.js').then((m) => {quoted}.map(m.md5))"),
    )
    .await;
    let expected: Vec<String> = inputs
        .iter()
        .map(|s| format!("{:x}", md5::Md5::digest(s.as_bytes())))
        .collect();
    assert_eq!(digests, expected);

    // Sign in: a wrong secret is refused in words, the right one opens the console.
    page.wait(
        "the sign-in form",
        "!document.querySelector('#signin').hidden",
        10,
    )
    .await;
    page.type_into("#secret", "not-the-secret").await;
    page.click("#signin-submit").await;
    let refused = page
        .wait(
            "the refusal",
            "!document.querySelector('#signin-error').hidden && \
             document.querySelector('#signin-error').textContent",
            10,
        )
        .await;
    assert_eq!(refused, "That secret is not right.");
    page.eval("document.querySelector('#secret').select()")
        .await;
    page.call("Input.insertText", serde_json::json!({ "text": SECRET }))
        .await;
    shot(page, "signin").await;
    page.press("Enter", 13).await;
    page.wait(
        "the console after sign-in",
        "!document.querySelector('#shell').hidden",
        10,
    )
    .await;
    // The login cookie is HttpOnly: the page's scripts cannot read it.
    let cookies = page.eval("document.cookie").await;
    assert!(
        !cookies.as_str().unwrap_or_default().contains("ZLM_LOGINED"),
        "{cookies}"
    );

    // The published stream, listed once with its codecs.
    let keys = page
        .wait(
            "the stream listed",
            "(() => { const rows = [...document.querySelectorAll('#streams-table tbody tr')]; \
             return rows.length ? rows.map((r) => r.dataset.key) : null; })()",
            10,
        )
        .await;
    assert_eq!(keys, serde_json::json!(["__defaultVhost__/live/console"]));
    let row = "#streams-table tr[data-key=\"__defaultVhost__/live/console\"]";
    let codecs = strings(
        page,
        &format!("[...document.querySelectorAll('{row} .codec-name')].map((e) => e.textContent)"),
    )
    .await;
    assert_eq!(codecs, ["H.264", "AAC"]);
    let details = strings(
        page,
        &format!("[...document.querySelectorAll('{row} .codec-detail')].map((e) => e.textContent)"),
    )
    .await;
    assert!(details[0].starts_with("320×240 · "), "{details:?}");
    assert!(details[1].starts_with("44.1 kHz · "), "{details:?}");

    // Play it over HTTP-FLV (the panel's first tab): the video advances at the stream's size.
    page.click(row).await;
    let played = page
        .wait(
            "HTTP-FLV playback",
            "(() => { const v = document.querySelector('#player'); \
             return v && v.currentTime > 1 ? [v.currentTime, v.videoWidth, v.videoHeight] : null; })()",
            20,
        )
        .await;
    assert_eq!(
        (&played[1], &played[2]),
        (&320.into(), &240.into()),
        "{played}"
    );
    // The session table now holds the browser's FLV viewer.
    page.wait(
        "the viewer counted",
        &format!("document.querySelector('{row} .viewers').textContent === '1'"),
        10,
    )
    .await;

    // Start an MP4 recording from the panel; the button follows getMediaList's isRecordingMP4.
    page.click("#record-toggle").await;
    page.wait(
        "the recording to start",
        "document.querySelector('#record-toggle').textContent === 'Stop MP4 recording'",
        10,
    )
    .await;
    if screenshot_dir().is_some() {
        // A few more samples in the graphs.
        tokio::time::sleep(Duration::from_secs(8)).await;
    }
    shot(page, "streams").await;

    // HLS (hls.js) plays too.
    page.click(".tab[data-tab=\"hls\"]").await;
    let hls = page
        .wait(
            "HLS playback",
            "(() => { const v = document.querySelector('#player'); \
             return v.currentTime > 1 && v.videoWidth ? [v.videoWidth, v.videoHeight] : null; })()",
            25,
        )
        .await;
    assert_eq!(hls, serde_json::json!([320, 240]));
    // WebRTC (WHEP) plays too, with the AAC as Opus.
    page.click(".tab[data-tab=\"webrtc\"]").await;
    let webrtc = page
        .wait(
            "WebRTC playback",
            "(() => { const v = document.querySelector('#player'); \
             return v.srcObject && v.currentTime > 1 && v.videoWidth \
               ? [v.videoWidth, v.videoHeight, v.srcObject.getTracks().map((t) => t.kind).sort()] \
               : null; })()",
            25,
        )
        .await;
    assert_eq!(webrtc, serde_json::json!([320, 240, ["audio", "video"]]));
    // Leaving the tab ends the WHEP session (the player DELETEs its Location).
    let rtc_sessions = |server: &server::Server| {
        server
            .registry
            .sessions()
            .iter()
            .filter(|s| s.info.protocol == registry::Protocol::Rtc)
            .count()
    };
    assert_eq!(rtc_sessions(&server), 1);
    page.click(".tab[data-tab=\"hls\"]").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rtc_sessions(&server) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the console's WHEP session outlived its tab"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A second client: ffmpeg reading HTTP-FLV. Its session is the one that appears.
    let before = session_ids(&server).await;
    let mut reader = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(http_url(&server, "live/console.live.flv"))
        .args(["-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg reader");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let reader_id = loop {
        let new: Vec<String> = session_ids(&server)
            .await
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        if let [id] = new.as_slice() {
            break id.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader's session did not appear (new: {new:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    open_view(page, "sessions").await;
    let reader_row = format!("#sessions-table tr[data-id=\"{reader_id}\"]");
    page.wait(
        "the reader's session row",
        &format!("!!document.querySelector('{reader_row}')"),
        10,
    )
    .await;
    let listed = strings(
        page,
        "[...document.querySelectorAll('#sessions-table tbody tr')].map((r) => r.dataset.id)",
    )
    .await;
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    let mut api_ids = session_ids(&server).await;
    api_ids.sort();
    assert_eq!(
        listed_sorted, api_ids,
        "the view lists what getAllSession lists"
    );
    shot(page, "sessions").await;
    page.click(&format!("{reader_row} .kick")).await;
    let status = tokio::time::timeout(Duration::from_secs(5), reader.wait())
        .await
        .expect("the kicked reader ended within 5 s")
        .expect("wait");
    eprintln!("kicked ffmpeg reader exited: {status}");
    page.wait(
        "the kicked row to go",
        &format!("!document.querySelector('{reader_row}')"),
        5,
    )
    .await;
    let toasts = strings(
        page,
        "[...document.querySelectorAll('.toast')].map((t) => t.textContent)",
    )
    .await;
    assert!(
        toasts
            .iter()
            .any(|t| t.starts_with(&format!("Kicked session {reader_id} ("))),
        "{toasts:?}"
    );
    let after = session_ids(&server).await;
    assert!(!after.contains(&reader_id), "{after:?}");
    // Only the kicked session ended: the publisher (and the rest) outlived it.
    let (mut after, mut before) = (after, before);
    after.sort();
    before.sort();
    assert_eq!(after, before);
    assert!(server
        .registry
        .stream(&StreamKey::new("live", "console").expect("key"))
        .is_some());

    // Recordings: the file the recorder is writing, listed for today, downloadable.
    open_view(page, "recordings").await;
    page.wait(
        "the stream filled in",
        "document.querySelector('#rec-app').value === 'live' && \
         document.querySelector('#rec-stream').value === 'console'",
        5,
    )
    .await;
    page.click("#recordings-form button[type=submit]").await;
    let files = page
        .wait(
            "the recording listed",
            "(() => { const rows = [...document.querySelectorAll('#recordings-table tbody tr')]; \
             return rows.length ? rows.map((r) => r.dataset.file) : null; })()",
            10,
        )
        .await;
    let day = page
        .eval("document.querySelector('#recording-days .chip[aria-pressed=true]').dataset.day")
        .await;
    let day = day.as_str().expect("day").to_owned();
    let dir = root.path().join("record/live/console").join(&day);
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mp4"))
        .collect();
    on_disk.sort();
    assert_eq!(files, serde_json::json!(on_disk));
    let href = page
        .eval("document.querySelector('#recordings-table a[download]').getAttribute('href')")
        .await;
    let href = href.as_str().expect("href");
    assert_eq!(href, format!("/record/live/console/{day}/{}", on_disk[0]));
    let download = reqwest::get(http_url(&server, href.trim_start_matches('/')))
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "video/mp4");
    assert!(!download.bytes().await.expect("body").is_empty());
    // And it plays in the page, from the file being written.
    page.click("#recordings-table tbody tr button").await;
    let size = page
        .wait(
            "the recording to play",
            "(() => { const v = document.querySelector('.recording-viewer video'); \
             return v && v.videoWidth ? [v.videoWidth, v.videoHeight] : null; })()",
            10,
        )
        .await;
    assert_eq!(size, serde_json::json!([320, 240]));
    shot(page, "recordings").await;

    // Config: every key getServerConfig reports has a row; one edit goes through
    // setServerConfig and the answer is shown.
    open_view(page, "config").await;
    let config = api(&server, "getServerConfig", &[]).await;
    let keys = config["data"][0].as_object().expect("config object").len();
    page.wait(
        "the config table",
        "document.querySelectorAll('#config-table input[data-key]').length > 0",
        10,
    )
    .await;
    let rows = page
        .eval("document.querySelectorAll('#config-table input[data-key]').length")
        .await;
    assert_eq!(rows, keys);
    // The filter narrows the table to one section.
    page.type_into("#config-filter", "hook.").await;
    let shown = strings(
        page,
        "[...document.querySelectorAll('#config-table input[data-key]')].map((i) => i.dataset.key)",
    )
    .await;
    let hook_keys = config["data"][0]
        .as_object()
        .expect("config object")
        .keys()
        .filter(|k| k.starts_with("hook."))
        .count();
    assert!(shown.iter().all(|k| k.starts_with("hook.")), "{shown:?}");
    assert_eq!(shown.len(), hook_keys);
    let field = "#config-table input[data-key=\"hook.timeoutSec\"]";
    page.click(field).await;
    page.eval(&format!("document.querySelector('{field}').select()"))
        .await;
    page.call("Input.insertText", serde_json::json!({ "text": "7" }))
        .await;
    let pending = page
        .eval("document.querySelector('#config-pending').textContent")
        .await;
    assert_eq!(pending, "1 unsaved change: hook.timeoutSec");
    shot(page, "config").await;
    page.click("#config-apply").await;
    let result = page
        .wait(
            "setServerConfig's answer",
            "!document.querySelector('#config-result').hidden && \
             document.querySelector('#config-result').textContent",
            10,
        )
        .await;
    assert_eq!(result, "setServerConfig: 1 key changed (hook.timeoutSec).");
    let config = api(&server, "getServerConfig", &[]).await;
    assert_eq!(config["data"][0]["hook.timeoutSec"], "7");

    // Proxies: none yet; the form pulls the console's own stream back as proxy/pulled, the
    // table shows it playing, and its Delete button ends it.
    open_view(page, "proxies").await;
    let heading = page
        .wait(
            "the empty proxy list",
            "document.querySelector('#proxies .empty:not([hidden]) h2') && \
             document.querySelector('#proxies .empty:not([hidden]) h2').textContent",
            10,
        )
        .await;
    assert_eq!(heading, "No proxies");
    let source = rtmp_url(&server, "live/console");
    page.eval(&format!(
        "document.querySelector('#proxy-stream').value = 'pulled'; \
         document.querySelector('#proxy-url').value = {}; true",
        serde_json::json!(source)
    ))
    .await;
    page.click("#proxy-add").await;
    let row =
        "document.querySelector('#proxy-pulls tr[data-key=\"__defaultVhost__/proxy/pulled\"]')";
    let cells = page
        .wait(
            "the pulled stream's row",
            &format!(
                "{row} && {row}.cells[2].textContent === 'playing' && \
                 [...{row}.cells].slice(0, 3).map((c) => c.textContent)"
            ),
            20,
        )
        .await;
    assert_eq!(
        cells,
        serde_json::json!(["proxy/pulled", source, "playing"])
    );
    let listed = api(&server, "listStreamProxy", &[]).await;
    assert_eq!(
        listed["data"][0]["key"], "__defaultVhost__/proxy/pulled",
        "{listed}"
    );
    shot(page, "proxies").await;
    page.eval("document.querySelectorAll('.toast').forEach((t) => t.remove())")
        .await;
    page.click("#proxy-pulls tr[data-key=\"__defaultVhost__/proxy/pulled\"] button")
        .await;
    page.wait(
        "the proxy list to empty",
        "!document.querySelector('#proxies .empty').hidden",
        10,
    )
    .await;
    assert_eq!(
        api(&server, "listStreamProxy", &[]).await,
        serde_json::json!({"code": 0})
    );
    assert!(server
        .registry
        .stream(&StreamKey::new("proxy", "pulled").expect("key"))
        .is_none());

    // Close the stream from its panel (the selection is kept across views): two clicks, then
    // the publisher is cut off, the list empties and the panel says so.
    open_view(page, "streams").await;
    // Toasts of the earlier steps sit over the panel's corner: a real click there would hit
    // them, not the button.
    page.eval("document.querySelectorAll('.toast').forEach((t) => t.remove())")
        .await;
    page.click("#close-stream").await;
    let armed = page
        .wait(
            "the close button to ask for a second click",
            "document.querySelector('#close-stream').textContent === 'Click again to close'",
            2,
        )
        .await;
    assert_eq!(armed, true);
    page.eval("document.querySelectorAll('.toast').forEach((t) => t.remove())")
        .await;
    page.click("#close-stream").await;
    let closed = page
        .wait(
            "close_stream's answer",
            "[...document.querySelectorAll('.toast')].map((t) => t.textContent).join(' | ')",
            5,
        )
        .await;
    assert_eq!(closed, "Closed live/console.");
    if tokio::time::timeout(Duration::from_secs(5), publisher.wait())
        .await
        .is_err()
    {
        panic!(
            "close_stream answered but the publisher was not cut off within 5 s; live: {}, \
             sessions: {}",
            server
                .registry
                .stream(&StreamKey::new("live", "console").expect("key"))
                .is_some(),
            api(&server, "getAllSession", &[]).await
        );
    }
    page.wait(
        "the list to empty",
        "!document.querySelector('#streams-empty').hidden && \
         document.querySelector('#stream-panel .empty') && \
         document.querySelector('#stream-panel .empty').textContent === 'This stream is not live any more.'",
        10,
    )
    .await;

    // Nothing went wrong in the page on the way: no uncaught exception, nothing the
    // Content-Security-Policy refused.
    assert!(page.exceptions.is_empty(), "{}", page.log_tail());
    assert!(
        !page
            .log
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "{}",
        page.log_tail()
    );

    chrome.close().await;
    let _ = publisher.kill().await;
    server.shutdown().await;
}
