//! ZLMediaKit's REST API, `/index/api/{name}` (DESIGN.md §1 REST API).
//!
//! Every call answers HTTP 200 with `application/json` and ZLMediaKit's envelope: `code` (0
//! success, -1 failed, -100 auth, -300 bad arguments, -400 exception, -500 not found), `msg`,
//! and the payload in `data` or at the top level, as ZLMediaKit has it for that call.
//! Arguments come from the query, a form body or a JSON body (top-level values as strings);
//! the query wins. Names are matched case-insensitively (`getMp4RecordFile` works too).
//!
//! Access (ZLMediaKit's `check_secret`): the client's address must be in
//! `http.allow_ip_range`, then either a `ZLM_LOGINED` cookie from `/index/api/login` or the
//! `secret` argument equal to `api.secret` lets it in; anything else is -100 and carries no
//! data. After a -100, -300 or -500 answer the connection is closed, as ZLMediaKit does.
//!
//! Layout: `mod.rs` (envelope, arguments, access, dispatch), `auth.rs` (cookie login),
//! `media.rs` (streams), `sessions.rs`, `record.rs` (recording and its files), `snap.rs`
//! (getSnap), `system.rs` (version, config, statistics, load), `proxy.rs` (pull and push
//! proxies), `rtp.rs` (the GB28181 RTP server).

mod auth;
mod media;
mod proxy;
mod record;
mod rtp;
mod sessions;
mod snap;
mod system;

pub(crate) use auth::Logins;
pub(crate) use snap::Snaps;

use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The path every API call is under (matched case-insensitively).
pub(crate) const PREFIX: &str = "/index/api/";
/// A request body larger than this is refused (setServerConfig with every key is ~10 KiB).
const MAX_BODY: usize = 256 * 1024;
/// Arguments read at most; more is -300.
const MAX_ARGS: usize = 1024;

/// ZLMediaKit's result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// -1: the call failed.
    Failed = -1,
    /// -100: no or a wrong secret, or a client outside `http.allow_ip_range`.
    Auth = -100,
    /// -300: an argument is missing or malformed.
    InvalidArgs = -300,
    /// -400: the server could not do it (an IO error).
    Exception = -400,
    /// -500: no such stream (or call).
    NotFound = -500,
}

/// A failed call: its code and message.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    code: Code,
    msg: String,
    /// Extra top-level fields (the `cookie` of a -100).
    extra: Map<String, Value>,
    /// Close the connection after the answer (ZLMediaKit's `ApiRetException`s: -100, -300,
    /// -500 and kick_session's -1).
    close: bool,
}

impl ApiError {
    pub(crate) fn new(code: Code, msg: impl Into<String>) -> Self {
        ApiError {
            code,
            msg: msg.into(),
            extra: Map::new(),
            close: matches!(code, Code::Auth | Code::InvalidArgs | Code::NotFound),
        }
    }

    /// The same error with `value` as the top-level field `name`.
    pub(crate) fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// The same error, closing the connection after the answer.
    pub(crate) fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// -500 "can not find the stream".
    pub(crate) fn stream_not_found() -> Self {
        ApiError::new(Code::NotFound, "can not find the stream")
    }

    /// -300 for an argument that is present but unusable.
    pub(crate) fn bad_arg(name: &str, why: impl std::fmt::Display) -> Self {
        ApiError::new(
            Code::InvalidArgs,
            format!("invalid argument \"{name}\": {why}"),
        )
    }
}

/// A successful answer.
pub(crate) enum Answer {
    /// `{"code": 0, "data": …}`.
    Data(Value),
    /// `{"code": 0, …fields}`.
    Fields(Map<String, Value>),
    /// Not JSON (getSnap's JPEG) or with headers of its own (login's cookie).
    Raw(Response),
}

pub(crate) type ApiResult = Result<Answer, ApiError>;

/// The arguments of a call, by name in lower case (names are case-insensitive, as in
/// ZLMediaKit).
pub(crate) struct Args(HashMap<String, String>);

impl Args {
    /// An optional argument (an empty value counts as absent, as in ZLMediaKit).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every argument named in `names`, or -300 with ZLMediaKit's text, which lists every
    /// required name: `Required parameter missed: "a","b"`.
    pub(crate) fn require<const N: usize>(&self, names: [&str; N]) -> Result<[&str; N], ApiError> {
        self.require_listed(names, ",")
    }

    /// [`Args::require`] for the calls whose ZLMediaKit text has a space after each comma
    /// (`"vhost", "app", "stream"`).
    pub(crate) fn require_spaced<const N: usize>(
        &self,
        names: [&str; N],
    ) -> Result<[&str; N], ApiError> {
        self.require_listed(names, ", ")
    }

    fn require_listed<const N: usize>(
        &self,
        names: [&str; N],
        sep: &str,
    ) -> Result<[&str; N], ApiError> {
        if names.iter().any(|n| self.get(n).is_none()) {
            let listed: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            return Err(ApiError::new(
                Code::InvalidArgs,
                format!("Required parameter missed: {}", listed.join(sep)),
            ));
        }
        Ok(names.map(|n| self.get(n).unwrap_or_default()))
    }

    /// An optional integer argument.
    pub(crate) fn int<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| ApiError::bad_arg(name, "not a number"))
            })
            .transpose()
    }

    /// An optional boolean (`1`/`0`, `true`/`false`).
    pub(crate) fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ApiError::bad_arg(name, "not a boolean")),
            })
            .transpose()
    }

    /// Every argument, as given.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// One call: what the handlers get besides the state and arguments.
pub(crate) struct Call<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) args: Args,
    pub(crate) peer: SocketAddr,
    pub(crate) headers: HeaderMap,
}

/// The OpenAPI 3 description of every call, served at `/index/api/openapi.json`; a test keeps
/// its paths equal to [`CALLS`].
const OPENAPI: &str = include_str!("openapi.json");

/// Every call, by its ZLMediaKit name (getApiList lists these).
pub(crate) const CALLS: &[&str] = &[
    "getApiList",
    "version",
    "login",
    "logout",
    "getServerConfig",
    "setServerConfig",
    "restartServer",
    "getMediaList",
    "isMediaOnline",
    "getMediaInfo",
    "getMediaPlayerList",
    "close_stream",
    "close_streams",
    "getAllSession",
    "kick_session",
    "kick_sessions",
    "startRecord",
    "stopRecord",
    "isRecording",
    "getMP4RecordFile",
    "deleteRecordDirectory",
    "getSnap",
    "getStatistic",
    "getThreadsLoad",
    "getWorkThreadsLoad",
    "addStreamProxy",
    "delStreamProxy",
    "listStreamProxy",
    "getProxyInfo",
    "addStreamPusherProxy",
    "delStreamPusherProxy",
    "listStreamPusherProxy",
    "getProxyPusherInfo",
    // GB28181 RTP server (rest/rtp.rs).
    "openRtpServer",
    "closeRtpServer",
    "listRtpServer",
    "connectRtpServer",
];

/// Whether `path` is an API call.
pub(crate) fn is_api(path: &str) -> bool {
    path.len() >= PREFIX.len() && path[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

/// Answers an API request.
pub(crate) async fn serve(state: &AppState, peer: SocketAddr, req: Request<Body>) -> Response {
    let name = req.uri().path()[PREFIX.len()..].to_ascii_lowercase();
    if name == "openapi.json" && req.method() == Method::GET {
        // A description, not data: served without the secret.
        return (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            OPENAPI,
        )
            .into_response();
    }
    if crate::webrtc::is_signalling(&name) {
        // Called by browsers and encoders: no secret (ZLMediaKit's rule); the hooks decide.
        return crate::webrtc::serve(state, peer, &name, req).await;
    }
    let Some(call) = CALLS.iter().find(|c| c.eq_ignore_ascii_case(&name)) else {
        // ZLMediaKit hands an unknown path to its file server (a 404 page); an API client
        // is better served by the same 404 as JSON.
        let mut resp = envelope(Err(ApiError::new(
            Code::NotFound,
            format!("api not found: {}", req.uri().path()),
        )));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return resp;
    };
    if req.method() != Method::GET && req.method() != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let headers = req.headers().clone();
    let mut args = match read_args(req).await {
        Ok(args) => args,
        Err(e) => return envelope(Err(e)),
    };
    // ZLMediaKit also takes an argument from the request header of its name; for the
    // secret that is what API gateways use.
    if args.get("secret").is_none() {
        if let Some(secret) = headers.get("secret").and_then(|v| v.to_str().ok()) {
            args.0.insert("secret".into(), secret.to_owned());
        }
    }
    let call_ctx = Call {
        state,
        args,
        peer,
        headers,
    };
    if let Err(e) = auth::check(&call_ctx, call) {
        tracing::info!(peer = %peer, api = call, msg = ?e.msg, "api call refused");
        return envelope(Err(e));
    }
    let result = dispatch(call, &call_ctx).await;
    if let Err(e) = &result {
        // Debug-formatted: a message may quote a stream name or ffmpeg's output.
        tracing::debug!(api = call, code = e.code as i32, msg = ?e.msg, "api call failed");
    }
    envelope(result)
}

async fn dispatch(name: &str, call: &Call<'_>) -> ApiResult {
    match name {
        "getApiList" => system::api_list(),
        "version" => system::version(),
        "login" => auth::login(call),
        "logout" => auth::logout(call),
        "getServerConfig" => system::get_config(call),
        "setServerConfig" => system::set_config(call).await,
        "restartServer" => system::restart(call),
        "getMediaList" => media::list(call).await,
        "isMediaOnline" => media::is_online(call),
        "getMediaInfo" => media::info(call),
        "getMediaPlayerList" => media::players(call),
        "close_stream" => media::close_one(call),
        "close_streams" => media::close_many(call),
        "getAllSession" => sessions::list(call),
        "kick_session" => sessions::kick_one(call),
        "kick_sessions" => sessions::kick_many(call),
        "startRecord" => record::start(call).await,
        "stopRecord" => record::stop(call),
        "isRecording" => record::is_recording(call),
        "getMP4RecordFile" => record::files(call).await,
        "deleteRecordDirectory" => record::delete_dir(call).await,
        "getSnap" => snap::snap(call).await,
        "getStatistic" => system::statistic(call),
        "getThreadsLoad" | "getWorkThreadsLoad" => system::threads_load(call).await,
        "addStreamProxy" => proxy::add_pull(call).await,
        "delStreamProxy" => proxy::del_pull(call).await,
        "listStreamProxy" => proxy::list_pulls(call),
        "getProxyInfo" => proxy::pull_info(call),
        "addStreamPusherProxy" => proxy::add_push(call).await,
        "delStreamPusherProxy" => proxy::del_push(call).await,
        "listStreamPusherProxy" => proxy::list_pushes(call),
        "getProxyPusherInfo" => proxy::push_info(call),
        "openRtpServer" => rtp::open(call),
        "closeRtpServer" => rtp::close(call),
        "listRtpServer" => rtp::list(call),
        "connectRtpServer" => rtp::connect(call).await,
        other => Err(ApiError::new(
            Code::NotFound,
            format!("api not found: {other}"),
        )),
    }
}

/// Query arguments, then the body's (form or JSON) for names the query does not have.
async fn read_args(req: Request<Body>) -> Result<Args, ApiError> {
    let mut args = HashMap::new();
    let mut add = |k: String, v: String| -> Result<(), ApiError> {
        if args.len() >= MAX_ARGS {
            return Err(ApiError::new(Code::InvalidArgs, "too many arguments"));
        }
        args.entry(k.to_ascii_lowercase()).or_insert(v);
        Ok(())
    };
    if let Some(query) = req.uri().query() {
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            add(k.into_owned(), v.into_owned())?;
        }
    }
    if req.method() == Method::POST {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| ApiError::new(Code::InvalidArgs, "request body too large"))?;
        let trimmed = body.trim_ascii();
        if is_json || trimmed.starts_with(b"{") {
            if !trimmed.is_empty() {
                let value: Value = serde_json::from_slice(trimmed).map_err(|e| {
                    ApiError::new(Code::InvalidArgs, format!("body is not JSON: {e}"))
                })?;
                let Value::Object(map) = value else {
                    return Err(ApiError::new(
                        Code::InvalidArgs,
                        "body is not a JSON object",
                    ));
                };
                for (k, v) in map {
                    let v = match v {
                        Value::String(s) => s,
                        Value::Null => continue,
                        Value::Array(_) | Value::Object(_) => {
                            return Err(ApiError::bad_arg(&k, "not a string, number or boolean"))
                        }
                        other => other.to_string(),
                    };
                    add(k, v)?;
                }
            }
        } else {
            for (k, v) in form_urlencoded::parse(trimmed) {
                add(k.into_owned(), v.into_owned())?;
            }
        }
    }
    Ok(Args(args))
}

/// The JSON answer of `result`; a refused, malformed or not-found call closes the connection.
fn envelope(result: ApiResult) -> Response {
    let (body, close) = match result {
        Ok(Answer::Raw(resp)) => return resp,
        Ok(Answer::Data(data)) => {
            let mut body = Map::new();
            body.insert("code".into(), 0.into());
            body.insert("data".into(), data);
            (body, false)
        }
        Ok(Answer::Fields(fields)) => {
            let mut body = Map::new();
            body.insert("code".into(), 0.into());
            body.extend(fields);
            (body, false)
        }
        Err(mut e) => {
            let salt = e
                .extra
                .remove(auth::SET_SALT)
                .and_then(|v| v.as_str().map(auth::salt_cookie));
            let mut body = Map::new();
            body.insert("code".into(), (e.code as i32).into());
            if !e.msg.is_empty() {
                body.insert("msg".into(), e.msg.into());
            }
            body.extend(e.extra);
            let close = e.close;
            let mut resp = json_response(&Value::Object(body), close);
            if let Some(v) = salt.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            return resp;
        }
    };
    json_response(&Value::Object(body), close)
}

/// `value` as an `application/json` 200, with `Connection: close` when `close`.
pub(crate) fn json_response(value: &Value, close: bool) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        value.to_string(),
    )
        .into_response();
    if close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Fields of a top-level answer.
pub(crate) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Answer {
    Answer::Fields(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// `{"code":0,"data":[…]}`, or `{"code":0}` when the list is empty (getMediaList and
/// getAllSession leave `data` out then, as ZLMediaKit does).
pub(crate) fn data_or_nothing(list: Vec<Value>) -> Answer {
    if list.is_empty() {
        Answer::Fields(Map::new())
    } else {
        Answer::Data(list.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_describes_every_call_and_nothing_else() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let mut described: Vec<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        described.sort();
        let mut calls: Vec<String> = CALLS
            .iter()
            .chain(&crate::webrtc::PATHS)
            .map(|c| format!("{PREFIX}{c}"))
            .collect();
        calls.sort();
        assert_eq!(described, calls);
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let name = path.trim_start_matches(PREFIX);
            if crate::webrtc::PATHS.contains(&name) {
                // Signalling: one method each, and no secret (the hooks and tokens decide).
                let method = if name == "delete_webrtc" {
                    "delete"
                } else {
                    "post"
                };
                let ops: Vec<&String> = item.as_object().expect("item").keys().collect();
                assert_eq!(ops, [method], "{path}");
                let op = &item[method];
                assert!(op["summary"].is_string(), "{path}: summary");
                let params = op["parameters"].as_array().expect("parameters");
                assert!(params.iter().all(|p| p["name"] != "secret"), "{path}");
                continue;
            }
            for method in ["get", "post"] {
                let op = &item[method];
                assert!(op["summary"].is_string(), "{path} {method}: summary");
                assert!(op["responses"]["200"].is_object(), "{path} {method}: 200");
                let secret = op["parameters"]
                    .as_array()
                    .expect("parameters")
                    .iter()
                    .any(|p| p["name"] == "secret");
                let open = path.ends_with("/login") || path.ends_with("/logout");
                assert_eq!(
                    secret, !open,
                    "{path}: the secret is documented where it is asked"
                );
            }
        }
    }
}
