//! `GET /metrics`: Prometheus text format, made with `prometheus-client`.
//!
//! Figures of the moment (streams, viewers, the process) are read when scraped; running
//! totals (bytes, ring drops, hook calls) are kept where they happen and exported as
//! counters. Access: the client must be in `http.allow_ip_range`, and with
//! `api.metricsSecret=1` also give the secret (`?secret=` or `Authorization: Bearer …`).
//!
//! - `ferrostream_streams{origin}`: live streams by ZLMediaKit's `originTypeStr`.
//! - `ferrostream_viewers{protocol}`: viewers by protocol (`rtmp`, `http_flv`, `hls`, …).
//! - `ferrostream_publishers`: publishing sessions.
//! - `ferrostream_received_bytes_total`, `ferrostream_sent_bytes_total`: media in and out.
//! - `ferrostream_ring_lags_total`, `ferrostream_ring_dropped_readers_total`: readers of the
//!   bounded rings that fell behind (skipped to a keyframe) and that were dropped for it.
//! - `ferrostream_hook_calls_total{hook,outcome}`, `ferrostream_hook_latency_seconds`,
//!   `ferrostream_hook_queue_dropped_total`: web hooks.
//! - `ferrostream_events_sent_total{provider}`, `ferrostream_events_dropped_total{provider}`:
//!   seed 004's event envelopes each provider (`webhook`, `nats`) delivered, and dropped from
//!   its bounded buffer (or missed behind the registry's event channel).
//! - `ferrostream_turn_allocations`, `ferrostream_turn_relayed_bytes_total`,
//!   `…_relayed_packets_total`, `…_auth_failures_total`, `…_dropped_total`: the embedded TURN
//!   relay (when it runs; refreshed every second).
//! - `ferrostream_process_cpu_seconds_total`, `ferrostream_process_resident_memory_bytes`,
//!   `ferrostream_process_open_fds`: the process (Linux `/proc`).

use crate::AppState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use registry::{Protocol, Role};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The path.
pub(crate) const PATH: &str = "/metrics";

type Labels = Vec<(&'static str, &'static str)>;

/// Answers a scrape.
pub(crate) fn serve(
    state: &AppState,
    peer: SocketAddr,
    query: &str,
    headers: &HeaderMap,
) -> Response {
    let config = state.config.get();
    if !crate::ip_allowed(&config.http.allow_ip_range, peer.ip()) {
        return (
            StatusCode::FORBIDDEN,
            "Your ip is not allowed to access the service.\n",
        )
            .into_response();
    }
    if config.api.metrics_secret && !has_secret(config.api.secret.expose(), query, headers) {
        return (StatusCode::UNAUTHORIZED, "the api secret is required\n").into_response();
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &collect(state)) {
        tracing::error!("metrics could not be encoded: {e}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

fn has_secret(secret: &str, query: &str, headers: &HeaderMap) -> bool {
    if secret.is_empty() {
        return false;
    }
    let from_query = form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k.eq_ignore_ascii_case("secret") && v == secret);
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|v| v.trim() == secret);
    from_query || from_header
}

/// The label of a viewer's protocol.
fn protocol_label(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Rtmp => "rtmp",
        Protocol::Rtsp => "rtsp",
        Protocol::HttpFlv => "http_flv",
        Protocol::WsFlv => "ws_flv",
        Protocol::Hls => "hls",
        Protocol::HlsFmp4 => "hls_fmp4",
        Protocol::HttpTs => "http_ts",
        Protocol::WsTs => "ws_ts",
        Protocol::HttpFmp4 => "http_fmp4",
        Protocol::WsFmp4 => "ws_fmp4",
        Protocol::Rtc => "webrtc",
        _ => "other",
    }
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str, values: BTreeMap<Labels, i64>) {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    registry.register(name, help, family);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let counter: Counter = Counter::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge: Gauge = Gauge::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

/// Every figure now.
fn collect(state: &AppState) -> Registry {
    let mut registry = Registry::with_prefix("ferrostream");
    let streams = state.registry.streams();
    let mut by_origin: BTreeMap<Labels, i64> = BTreeMap::new();
    for info in &streams {
        let (_, origin) = hooks::origin_type(info.publisher.protocol);
        *by_origin.entry(vec![("origin", origin)]).or_default() += 1;
    }
    gauge_family(
        &mut registry,
        "streams",
        "Live streams by origin",
        by_origin,
    );
    let mut viewers: BTreeMap<Labels, i64> = BTreeMap::new();
    let mut publishers = 0;
    for session in state.registry.sessions() {
        match session.role {
            Role::Viewer => {
                *viewers
                    .entry(vec![("protocol", protocol_label(session.info.protocol))])
                    .or_default() += 1;
            }
            Role::Publisher => publishers += 1,
        }
    }
    gauge_family(&mut registry, "viewers", "Viewers by protocol", viewers);
    gauge(
        &mut registry,
        "publishers",
        "Publishing sessions",
        publishers,
    );
    let (bytes_in, bytes_out) = state.registry.traffic();
    counter(
        &mut registry,
        "received_bytes",
        "Media bytes received from publishers",
        bytes_in,
    );
    counter(
        &mut registry,
        "sent_bytes",
        "Bytes sent to viewers",
        bytes_out,
    );
    let drops = registry::fanout_drops();
    counter(
        &mut registry,
        "ring_lags",
        "Times a reader fell behind a bounded ring and skipped to the next keyframe",
        drops.lags,
    );
    counter(
        &mut registry,
        "ring_dropped_readers",
        "Readers ended for falling behind a bounded ring too often",
        drops.dropped_readers,
    );
    if let Some(hooks) = state.hooks.metrics() {
        hooks.register(&mut registry);
    }
    counter(
        &mut registry,
        "hook_queue_dropped",
        "Hook calls dropped because their bounded queue was full",
        state.hooks.dropped(),
    );
    if let Some(events) = &state.events {
        let sent = Family::<Labels, Counter>::default();
        let dropped = Family::<Labels, Counter>::default();
        for f in events.figures() {
            sent.get_or_create(&vec![("provider", f.provider)])
                .inc_by(f.sent);
            dropped
                .get_or_create(&vec![("provider", f.provider)])
                .inc_by(f.dropped);
        }
        registry.register("events_sent", "Event envelopes a provider delivered", sent);
        registry.register(
            "events_dropped",
            "Event envelopes a provider dropped from its bounded buffer",
            dropped,
        );
    }
    if let Some(turn) = state.turn.as_ref().and_then(|rx| *rx.borrow()) {
        gauge(
            &mut registry,
            "turn_allocations",
            "TURN allocations now",
            i64::try_from(turn.allocations).unwrap_or(i64::MAX),
        );
        counter(
            &mut registry,
            "turn_relayed_bytes",
            "TURN payload bytes relayed, both directions",
            turn.relayed_bytes,
        );
        counter(
            &mut registry,
            "turn_relayed_packets",
            "TURN packets relayed, both directions",
            turn.relayed_packets,
        );
        counter(
            &mut registry,
            "turn_auth_failures",
            "TURN requests refused for credentials",
            turn.auth_failures,
        );
        counter(
            &mut registry,
            "turn_dropped",
            "TURN inputs that did not decode or were dropped",
            turn.dropped,
        );
    }
    if let Some(process) = Process::now() {
        let cpu: Counter<f64> = Counter::default();
        cpu.inc_by(process.cpu_seconds);
        registry.register(
            "process_cpu_seconds",
            "CPU time used by the process (user and system), seconds",
            cpu,
        );
        gauge(
            &mut registry,
            "process_resident_memory_bytes",
            "Resident memory of the process",
            process.rss_bytes,
        );
        gauge(
            &mut registry,
            "process_open_fds",
            "Open file descriptors",
            process.fds,
        );
    }
    registry
}

/// The process figures `/proc` gives.
struct Process {
    cpu_seconds: f64,
    rss_bytes: i64,
    fds: i64,
}

impl Process {
    fn now() -> Option<Process> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let rss_kb: i64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())?;
        // utime and stime are fields 14 and 15 of /proc/self/stat, in clock ticks (100 a
        // second on Linux), after the command name in parentheses.
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Process {
            cpu_seconds: ticks as f64 / 100.0,
            rss_bytes: rss_kb * 1024,
            fds: open_fds() as i64,
        })
    }
}

/// Open file descriptors of this process (0 where `/proc` is not there).
pub(crate) fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}
