//! `/metrics` scraped while ffmpeg publishes and plays through a real hook backend: every
//! family is there, with the figures of that moment, in the Prometheus text format; access
//! follows `http.allow_ip_range` and `api.metricsSecret`.

use e2e::backend::Backend;
use e2e::*;
use media::StreamKey;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::process::Command;

/// The samples of a scrape: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The metric families a scrape declares, with their types.
fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(str::to_owned)
        .collect()
}

async fn scrape(url: &str, bearer: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(secret) = bearer {
        req = req.bearer_auth(secret);
    }
    let resp = req.send().await.expect("scrape");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_describe_streams_viewers_hooks_and_the_process() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_server_with(|o| o.hooks = backend.config()).await;
    let url = http_url(&server, "metrics");
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/m"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "m").expect("key"), 2).await;
    let _viewer = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(http_url(&server, "live/m.live.flv"))
        .args(["-f", "null", "-"])
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg viewer");
    backend
        .wait_for("on_play", 1, Duration::from_secs(15), |_| true)
        .await;
    // Until the viewer has been sent some bytes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let (status, text) = scrape(&url, None).await;
        assert_eq!(status, 200);
        if samples(&text)
            .get("ferrostream_sent_bytes_total")
            .is_some_and(|b| *b > 0.0)
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no bytes sent: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        families(&text),
        [
            "ferrostream_streams gauge",
            "ferrostream_viewers gauge",
            "ferrostream_publishers gauge",
            "ferrostream_received_bytes counter",
            "ferrostream_sent_bytes counter",
            "ferrostream_ring_lags counter",
            "ferrostream_ring_dropped_readers counter",
            "ferrostream_hook_calls counter",
            "ferrostream_hook_latency_seconds histogram",
            "ferrostream_hook_queue_dropped counter",
            "ferrostream_process_cpu_seconds counter",
            "ferrostream_process_resident_memory_bytes gauge",
            "ferrostream_process_open_fds gauge",
        ],
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
    let s = samples(&text);
    let at = |name: &str| {
        *s.get(name)
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    assert_eq!(at(r#"ferrostream_streams{origin="rtmp_push"}"#), 1.0);
    assert_eq!(at(r#"ferrostream_viewers{protocol="http_flv"}"#), 1.0);
    assert_eq!(at("ferrostream_publishers"), 1.0);
    assert!(
        at("ferrostream_received_bytes_total") >= at("ferrostream_sent_bytes_total") / 2.0,
        "{text}"
    );
    assert_eq!(
        at(r#"ferrostream_hook_calls_total{hook="on_publish",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        at(r#"ferrostream_hook_calls_total{hook="on_play",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        at(r#"ferrostream_hook_latency_seconds_count{hook="on_play",outcome="ok"}"#),
        1.0
    );
    assert_eq!(at("ferrostream_hook_queue_dropped_total"), 0.0);
    assert!(at("ferrostream_process_resident_memory_bytes") > 1_000_000.0);
    assert!(at("ferrostream_process_open_fds") > 3.0);
    assert!(at("ferrostream_process_cpu_seconds_total") >= 0.0);

    // With the secret required: 401 without it, 200 with it as a bearer token or argument.
    server
        .config
        .set([("api.metricsSecret", "1")])
        .expect("set");
    let secret = server.config.get().api.secret.expose().to_owned();
    assert_eq!(scrape(&url, None).await.0, 401);
    assert_eq!(scrape(&url, Some("wrong")).await.0, 401);
    assert_eq!(scrape(&url, Some(&secret)).await.0, 200);
    assert_eq!(scrape(&format!("{url}?secret={secret}"), None).await.0, 200);
    // Outside http.allow_ip_range: 403 whatever the secret.
    server
        .config
        .set([("http.allow_ip_range", "10.0.0.0-10.255.255.255")])
        .expect("set");
    assert_eq!(scrape(&url, Some(&secret)).await.0, 403);
    server.shutdown().await;
}
