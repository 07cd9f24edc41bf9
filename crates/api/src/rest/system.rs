//! The server calls: getApiList, version, getServerConfig, setServerConfig, restartServer,
//! getStatistic, getThreadsLoad / getWorkThreadsLoad.

use super::{fields, Answer, ApiError, ApiResult, Call, Code, CALLS, PREFIX};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// getApiList: `data` = every call's path and the WebRTC signalling paths, sorted
/// case-insensitively as ZLMediaKit lists them.
pub(crate) fn api_list() -> ApiResult {
    let mut calls: Vec<&str> = CALLS.to_vec();
    calls.extend(crate::webrtc::PATHS);
    calls.sort_by_key(|c| c.to_ascii_lowercase());
    let paths: Vec<Value> = calls
        .iter()
        .map(|c| Value::from(format!("{PREFIX}{c}")))
        .collect();
    Ok(Answer::Data(paths.into()))
}

/// version: what this build is: ZLMediaKit's `branchName`, `commitHash` and `buildTime` (the
/// commit's time, from git at build time; `unknown` outside a checkout), and ours.
pub(crate) fn version() -> ApiResult {
    Ok(Answer::Data(json!({
        "branchName": env!("FERROSTREAM_BRANCH"),
        "buildTime": env!("FERROSTREAM_COMMIT_TIME"),
        "commitHash": env!("FERROSTREAM_COMMIT"),
        "server": "ferrostream",
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// getServerConfig: `data` = `[{"section.key": "value", …}]`, every key as a string.
pub(crate) fn get_config(call: &Call<'_>) -> ApiResult {
    let flat: Map<String, Value> = call
        .state
        .config
        .get()
        .to_flat()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    Ok(Answer::Data(Value::Array(vec![Value::Object(flat)])))
}

/// setServerConfig: every argument that names a config key and differs from its value now is
/// set (unknown names, `secret` among them, and `ffmpeg.bin` are skipped as ZLMediaKit does); the file is
/// written back; `changed` counts them. A value its key cannot take is -300 and changes
/// nothing.
pub(crate) async fn set_config(call: &Call<'_>) -> ApiResult {
    let live = call.state.config.clone();
    let now = live.get();
    let mut changes: Vec<(String, String)> = call
        .args
        .iter()
        .filter_map(|(name, value)| {
            // Argument names arrive in lower case; the file gets the key's own spelling.
            let key = config::Config::keys()
                .iter()
                .find(|k| k.path.eq_ignore_ascii_case(name))?;
            if NOT_SETTABLE.contains(&key.path) {
                tracing::warn!(key = key.path, "setServerConfig may not set this key");
                return None;
            }
            let current = now.get(key.path)?;
            (current != value).then(|| (key.path.to_owned(), value.to_owned()))
        })
        .collect();
    changes.sort();
    let changed = changes.len();
    if changed > 0 {
        let names: Vec<String> = changes.iter().map(|(k, _)| k.clone()).collect();
        let set = live.clone();
        let next = tokio::task::spawn_blocking(move || set.set(changes))
            .await
            .map_err(|e| ApiError::new(Code::Exception, e.to_string()))?
            .map_err(|e| match e {
                config::ConfigError::Write { .. } => ApiError::new(Code::Exception, e.to_string()),
                other => ApiError::new(Code::InvalidArgs, other.to_string()),
            })?;
        tracing::info!(keys = ?names, "config changed by the api");
        // The answer comes once the change is in effect: the next request sees it.
        if tokio::time::timeout(APPLY_WAIT, live.wait_applied(&next))
            .await
            .is_err()
        {
            tracing::warn!(keys = ?names, "config change not applied within {APPLY_WAIT:?}");
        }
    }
    Ok(fields([("changed", changed.into())]))
}

/// How long setServerConfig waits for its change to be applied before it answers anyway.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// Keys setServerConfig never sets (ZLMediaKit refuses `ffmpeg.bin` too): the API secret
/// must not be able to choose a program the server runs.
const NOT_SETTABLE: &[&str] = &["ffmpeg.bin"];

/// restartServer: the server stops cleanly and starts again from its binary.
pub(crate) fn restart(call: &Call<'_>) -> ApiResult {
    let Some(restart) = &call.state.restart else {
        return Err(ApiError::new(
            Code::Failed,
            "this server cannot restart itself (embedded, not the ferrostream binary)",
        ));
    };
    tracing::warn!(peer = %call.peer, "restart requested by the api");
    // A second for this answer to reach the client, as ZLMediaKit waits.
    let restart = std::sync::Arc::clone(restart);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        restart.send_replace(true);
    });
    Ok(fields([("msg", "the server restarts in 1 second".into())]))
}

/// getStatistic: the object counts on_server_keepalive sends.
pub(crate) fn statistic(call: &Call<'_>) -> ApiResult {
    let state = call.state;
    Ok(Answer::Data(hooks::statistic_json(
        &state.registry.streams(),
        &state.options.schemas,
        state.hooks.dropped(),
    )))
}

/// How long the worker threads are watched for their load.
const LOAD_SAMPLE: Duration = Duration::from_millis(200);

/// getThreadsLoad / getWorkThreadsLoad: `data` = one entry per runtime worker thread:
/// `load` (percent of the last 200 ms it was busy), `delay` (ms a task just spawned waited
/// to run), `fd_count` (open descriptors of the process: sockets are not pinned to one
/// worker here), `name`.
pub(crate) async fn threads_load(_call: &Call<'_>) -> ApiResult {
    let metrics = tokio::runtime::Handle::current().metrics();
    let workers = metrics.num_workers();
    let busy = |m: &tokio::runtime::RuntimeMetrics| -> Vec<Duration> {
        (0..workers)
            .map(|w| m.worker_total_busy_duration(w))
            .collect()
    };
    let before = busy(&metrics);
    let spawned = Instant::now();
    let delay = tokio::spawn(async move { spawned.elapsed() })
        .await
        .unwrap_or_default();
    let start = Instant::now();
    tokio::time::sleep(LOAD_SAMPLE).await;
    let window = start.elapsed().max(Duration::from_millis(1));
    let after = busy(&metrics);
    let fds = crate::metrics::open_fds();
    let data: Vec<Value> = (0..workers)
        .map(|w| {
            let used = after[w].saturating_sub(before[w]);
            let load = (used.as_secs_f64() / window.as_secs_f64() * 100.0).clamp(0.0, 100.0);
            json!({
                "name": format!("worker {w}"),
                "load": load.round() as u64,
                "delay": delay.as_millis() as u64,
                "fd_count": fds,
            })
        })
        .collect();
    Ok(Answer::Data(data.into()))
}
