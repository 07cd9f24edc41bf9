//! The proxy calls (ZLMediaKit's): addStreamProxy, delStreamProxy, listStreamProxy,
//! getProxyInfo; addStreamPusherProxy, delStreamPusherProxy, listStreamPusherProxy,
//! getProxyPusherInfo. The proxies themselves are `proxy::Pulls` and `proxy::Pushes`.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::media::key;
use super::{Answer, ApiError, ApiResult, Call, Code};

/// The addStreamProxy and addStreamPusherProxy arguments that are not ProtocolOption.
const PROXY_ARGS: &[&str] = &[
    "secret",
    "vhost",
    "app",
    "stream",
    "url",
    "retry_count",
    "rtp_type",
    "timeout_sec",
    "schema",
    "dst_url",
];

fn pulls<'a>(call: &'a Call<'_>) -> Result<&'a proxy::Pulls, ApiError> {
    call.state
        .pulls
        .as_ref()
        .ok_or_else(|| ApiError::new(Code::Failed, "proxies are not available"))
}

fn pushes<'a>(call: &'a Call<'_>) -> Result<&'a proxy::Pushes, ApiError> {
    call.state
        .pushes
        .as_ref()
        .ok_or_else(|| ApiError::new(Code::Failed, "proxies are not available"))
}

/// `retry_count` (absent: -1, forever), `timeout_sec` (absent or ≤ 0.1: 10 s) and `rtp_type`
/// (0 TCP, 1 UDP).
fn attempt(call: &Call<'_>) -> Result<(i64, proxy::AttemptOptions), ApiError> {
    let retry_count = call.args.int::<i64>("retry_count")?.unwrap_or(-1);
    let mut opts = proxy::AttemptOptions::default();
    if let Some(secs) = call.args.get("timeout_sec") {
        let secs: f64 = secs
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_arg("timeout_sec", "not a number"))?;
        if secs.is_finite() && secs > 0.1 {
            opts.timeout = Duration::from_secs_f64(secs.min(3600.0));
        }
    }
    opts.rtp_transport = match call.args.int::<i64>("rtp_type")? {
        None | Some(0) => proxy::RtpTransport::Tcp,
        Some(1) => proxy::RtpTransport::Udp,
        Some(2) => {
            return Err(ApiError::bad_arg(
                "rtp_type",
                "multicast (2) is not supported",
            ))
        }
        Some(_) => return Err(ApiError::bad_arg("rtp_type", "must be 0 (TCP) or 1 (UDP)")),
    };
    Ok((retry_count, opts))
}

fn src(stream: &media::StreamKey) -> Value {
    json!({
        "vhost": stream.vhost(),
        "app": stream.app(),
        "stream": stream.stream(),
        "params": "",
    })
}

fn pull_json(p: &proxy::PullInfo) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("url".into(), p.url.clone().into());
    item.insert("status".into(), p.status.into());
    item.insert("liveSecs".into(), p.live_secs.into());
    item.insert("rePullCount".into(), p.retries.into());
    item.insert("totalReaderCount".into(), p.total_readers.into());
    item.insert("bytesSpeed".into(), p.bytes_speed.into());
    item.insert("totalBytes".into(), p.total_bytes.into());
    item.insert("src".into(), src(&p.stream));
    item
}

fn push_json(p: &proxy::PushInfo) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("url".into(), p.url.clone().into());
    item.insert("status".into(), p.status.into());
    item.insert("liveSecs".into(), p.live_secs.into());
    item.insert("rePublishCount".into(), p.retries.into());
    item.insert("bytesSpeed".into(), p.bytes_speed.into());
    item.insert("totalBytes".into(), p.total_bytes.into());
    item.insert("src".into(), src(&p.stream));
    item
}

/// addStreamProxy: answers when the source plays (`data.key`) or failed (-1 with why).
pub(crate) async fn add_pull(call: &Call<'_>) -> ApiResult {
    let [vhost, app, stream, url] = call.args.require(["vhost", "app", "stream", "url"])?;
    let stream = key(vhost, app, stream)?;
    let (retry_count, attempt) = attempt(call)?;
    let options: Map<String, Value> = call
        .args
        .iter()
        .filter(|(k, _)| !PROXY_ARGS.contains(k))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    let request = proxy::PullRequest {
        key: stream,
        url: url.to_owned(),
        retry_count,
        attempt,
        options,
    };
    match pulls(call)?.add(request).await {
        Ok(key) => Ok(Answer::Data(json!({ "key": key }))),
        Err(why) => Err(ApiError::new(Code::Failed, why)),
    }
}

/// delStreamProxy: `data.flag` true when there was such a proxy.
pub(crate) async fn del_pull(call: &Call<'_>) -> ApiResult {
    let [key] = call.args.require(["key"])?;
    let flag = pulls(call)?.remove(key).await;
    Ok(Answer::Data(json!({ "flag": flag })))
}

/// listStreamProxy: every pull proxy with its `key`.
pub(crate) fn list_pulls(call: &Call<'_>) -> ApiResult {
    let list: Vec<Value> = pulls(call)?
        .list()
        .iter()
        .map(|p| {
            let mut item = pull_json(p);
            item.insert("key".into(), p.key.clone().into());
            Value::Object(item)
        })
        .collect();
    Ok(super::data_or_nothing(list))
}

/// getProxyInfo: one pull proxy, or -500.
pub(crate) fn pull_info(call: &Call<'_>) -> ApiResult {
    let [key] = call.args.require(["key"])?;
    let info = pulls(call)?
        .get(key)
        .ok_or_else(|| ApiError::new(Code::NotFound, "can not find the proxy"))?;
    Ok(Answer::Data(Value::Object(pull_json(&info))))
}

/// addStreamPusherProxy: answers when the destination accepted the push (`data.key`).
pub(crate) async fn add_push(call: &Call<'_>) -> ApiResult {
    let [schema, vhost, app, stream, dst_url] = call
        .args
        .require(["schema", "vhost", "app", "stream", "dst_url"])?;
    let stream = key(vhost, app, stream)?;
    let (retry_count, attempt) = attempt(call)?;
    let request = proxy::PushRequest {
        schema: schema.to_owned(),
        key: stream,
        dst_url: dst_url.to_owned(),
        retry_count,
        attempt,
    };
    match pushes(call)?.add(request).await {
        Ok(key) => Ok(Answer::Data(json!({ "key": key }))),
        Err(why) => Err(ApiError::new(Code::Failed, why)),
    }
}

/// delStreamPusherProxy: `data.flag`.
pub(crate) async fn del_push(call: &Call<'_>) -> ApiResult {
    let [key] = call.args.require(["key"])?;
    let flag = pushes(call)?.remove(key).await;
    Ok(Answer::Data(json!({ "flag": flag })))
}

/// listStreamPusherProxy: every push with its `key`.
pub(crate) fn list_pushes(call: &Call<'_>) -> ApiResult {
    let list: Vec<Value> = pushes(call)?
        .list()
        .iter()
        .map(|p| {
            let mut item = push_json(p);
            item.insert("key".into(), p.key.clone().into());
            Value::Object(item)
        })
        .collect();
    Ok(super::data_or_nothing(list))
}

/// getProxyPusherInfo: one push, or -500.
pub(crate) fn push_info(call: &Call<'_>) -> ApiResult {
    let [key] = call.args.require(["key"])?;
    let info = pushes(call)?
        .get(key)
        .ok_or_else(|| ApiError::new(Code::NotFound, "can not find pusher"))?;
    Ok(Answer::Data(Value::Object(push_json(&info))))
}
