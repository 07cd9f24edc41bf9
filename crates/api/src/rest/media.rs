//! The stream calls: getMediaList, isMediaOnline, getMediaInfo, getMediaPlayerList,
//! close_stream, close_streams. A stream is described with the same builder as
//! on_stream_changed ([`hooks::stream_json`]), one entry per output schema it has.

use super::{fields, Answer, ApiError, ApiResult, Call, Code};
use media::StreamKey;
use registry::{Role, StreamInfo};
use serde_json::{Map, Value};

/// The stream `vhost`/`app`/`stream` name (-300 when the name is not a valid stream name).
pub(crate) fn key(vhost: &str, app: &str, stream: &str) -> Result<StreamKey, ApiError> {
    StreamKey::with_vhost(vhost, app, stream).map_err(|e| ApiError::bad_arg("stream", e))
}

/// The MediaSource JSON of `info` for `schema`, with the recorder's word on MP4 recording.
pub(crate) fn describe(call: &Call<'_>, info: &StreamInfo, schema: &str) -> Map<String, Value> {
    let mut body = hooks::stream_json(info, schema);
    if let Some(recorder) = &call.state.recorder {
        body.insert(
            "isRecordingMP4".into(),
            recorder.is_recording(&info.key).into(),
        );
    }
    let outputs = &call.state.outputs;
    let hls = [outputs::HlsKind::Ts, outputs::HlsKind::Fmp4]
        .iter()
        .any(|kind| outputs.is_recording_hls(&info.key, *kind));
    body.insert("isRecordingHLS".into(), hls.into());
    body
}

/// The schemas `info` has, as on_stream_changed reports them.
fn schemas<'a>(call: &Call<'a>, info: &StreamInfo) -> Vec<&'a str> {
    info.options.schemas(&call.state.options.schemas)
}

/// Every (stream, schema) the optional `schema`, `vhost`, `app`, `stream` arguments select.
fn select<'a>(call: &Call<'a>) -> Vec<(StreamInfo, &'a str)> {
    let want = |name: &str, value: &str| call.args.get(name).is_none_or(|w| w == value);
    let mut out = Vec::new();
    let mut streams = call.state.registry.streams();
    streams.sort_by_key(|s| s.key.to_string());
    for info in streams {
        let key = &info.key;
        if !(want("vhost", key.vhost()) && want("app", key.app()) && want("stream", key.stream())) {
            continue;
        }
        for schema in schemas(call, &info) {
            if want("schema", schema) {
                out.push((info.clone(), schema));
            }
        }
    }
    out
}

/// The one (stream, schema) the required `schema`, `vhost`, `app`, `stream` name.
fn find<'a>(call: &Call<'a>) -> Result<Option<(StreamInfo, &'a str)>, ApiError> {
    let [schema, vhost, app, stream] = call.args.require(["schema", "vhost", "app", "stream"])?;
    found(call, schema, vhost, app, stream)
}

fn found<'a>(
    call: &Call<'a>,
    schema: &str,
    vhost: &str,
    app: &str,
    stream: &str,
) -> Result<Option<(StreamInfo, &'a str)>, ApiError> {
    let key = key(vhost, app, stream)?;
    let Some(info) = call.state.registry.stream(&key) else {
        return Ok(None);
    };
    Ok(schemas(call, &info)
        .into_iter()
        .find(|s| *s == schema)
        .map(|s| (info, s)))
}

/// getMediaList: `data` = every selected stream, once per schema (absent when none is). With
/// `cluster=1` also the streams other nodes of the cluster have (from its directory), each as
/// `{vhost, app, stream, schema: "rtmp", originUrl, node}`: what the directory knows of them.
pub(crate) async fn list(call: &Call<'_>) -> ApiResult {
    let mut data: Vec<Value> = select(call)
        .iter()
        .map(|(info, schema)| Value::Object(describe(call, info, schema)))
        .collect();
    if call.args.flag("cluster")?.unwrap_or(false) {
        if let Some(cluster) = &call.state.cluster {
            let want = |name: &str, value: &str| call.args.get(name).is_none_or(|w| w == value);
            let mut remote = cluster.remote_streams().await;
            remote.sort_by_key(|r| r.key.to_string());
            for r in remote {
                let key = &r.key;
                if !(want("vhost", key.vhost())
                    && want("app", key.app())
                    && want("stream", key.stream())
                    && want("schema", "rtmp"))
                {
                    continue;
                }
                data.push(serde_json::json!({
                    "vhost": key.vhost(),
                    "app": key.app(),
                    "stream": key.stream(),
                    "schema": "rtmp",
                    "originUrl": r.entry.url,
                    "node": r.entry.node,
                }));
            }
        }
    }
    Ok(super::data_or_nothing(data))
}

/// isMediaOnline: `online`.
pub(crate) fn is_online(call: &Call<'_>) -> ApiResult {
    Ok(fields([("online", find(call)?.is_some().into())]))
}

/// getMediaInfo: the MediaSource JSON at the top level, or -500.
pub(crate) fn info(call: &Call<'_>) -> ApiResult {
    let (info, schema) = find(call)?.ok_or_else(ApiError::stream_not_found)?;
    Ok(Answer::Fields(describe(call, &info, schema)))
}

/// getMediaPlayerList: `data` = the viewers of the stream over that schema (always an array).
pub(crate) fn players(call: &Call<'_>) -> ApiResult {
    let [schema, vhost, app, stream] = call
        .args
        .require_spaced(["schema", "vhost", "app", "stream"])?;
    let (info, schema) =
        found(call, schema, vhost, app, stream)?.ok_or_else(ApiError::stream_not_found)?;
    let mut viewers: Vec<_> = call
        .state
        .registry
        .sessions()
        .into_iter()
        .filter(|s| {
            // WebRTC players read the RTSP source in ZLMediaKit, and are listed with it.
            let reads = s.info.protocol.schema() == schema
                || (schema == "rtsp" && s.info.protocol == registry::Protocol::Rtc);
            s.role == Role::Viewer && s.key == info.key && reads
        })
        .collect();
    viewers.sort_by_key(|s| s.info.id);
    let data: Vec<Value> = viewers
        .iter()
        .map(|s| Value::Object(super::sessions::player_json(s)))
        .collect();
    Ok(Answer::Data(data.into()))
}

/// Closes `info`'s stream unless it has viewers and `force` is off (ZLMediaKit's
/// `MediaSource::close(force)`).
fn close(call: &Call<'_>, info: &StreamInfo, force: bool) -> bool {
    if !force && info.readers > 0 {
        return false;
    }
    tracing::info!(stream = %info.key, force, "stream closed by the api");
    call.state.registry.close(&info.key)
}

/// close_stream: `result` 0 (closed) or -1 (it has viewers and `force` is off).
pub(crate) fn close_one(call: &Call<'_>) -> ApiResult {
    let (info, _) = find(call)?.ok_or_else(ApiError::stream_not_found)?;
    let force = call.args.flag("force")?.unwrap_or(false);
    if close(call, &info, force) {
        Ok(fields([("result", 0.into()), ("msg", "success".into())]))
    } else {
        Err(ApiError::new(Code::Failed, "close failed").with("result", -1))
    }
}

/// close_streams: `count_hit` (selected stream schemas) and `count_closed` (of those, closed).
pub(crate) fn close_many(call: &Call<'_>) -> ApiResult {
    let force = call.args.flag("force")?.unwrap_or(false);
    let selected = select(call);
    let mut closed_keys: Vec<StreamKey> = Vec::new();
    let mut closed = 0usize;
    for (info, _) in &selected {
        if closed_keys.contains(&info.key) || close(call, info, force) {
            if !closed_keys.contains(&info.key) {
                closed_keys.push(info.key.clone());
            }
            closed += 1;
        }
    }
    Ok(fields([
        ("count_hit", selected.len().into()),
        ("count_closed", closed.into()),
    ]))
}
