//! The session calls: getAllSession, kick_session, kick_sessions, over the registry's session
//! table (every publisher and viewer, whatever its protocol).

use super::{fields, Answer, ApiError, ApiResult, Call, Code};
use registry::{Protocol, Role, SessionSnapshot};
use serde_json::{Map, Value};

/// ZLMediaKit's class name of a session of `protocol`, as its `typeid` field shows it.
pub(crate) fn type_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Rtmp => "mediakit::RtmpSession",
        Protocol::Rtsp => "mediakit::RtspSession",
        Protocol::Rtc => "mediakit::WebRtcSession",
        _ => "mediakit::HttpSession",
    }
}

/// `identifier`, `local_ip`, `local_port`, `peer_ip`, `peer_port`, `typeid` of a session
/// (getMediaPlayerList's element, and the start of getAllSession's).
pub(crate) fn player_json(s: &SessionSnapshot) -> Map<String, Value> {
    let info = &s.info;
    let mut m = Map::new();
    m.insert("identifier".into(), info.id.to_string().into());
    m.insert(
        "local_ip".into(),
        info.local.ip().to_canonical().to_string().into(),
    );
    m.insert("local_port".into(), info.local.port().into());
    m.insert(
        "peer_ip".into(),
        info.peer.ip().to_canonical().to_string().into(),
    );
    m.insert("peer_port".into(), info.peer.port().into());
    m.insert("typeid".into(), type_name(info.protocol).into());
    m
}

/// One session as getAllSession lists it: ZLMediaKit's fields (`type` is always `tcp`: UDP
/// media rides on an RTSP session's TCP connection), then ours.
pub(crate) fn session_json(s: &SessionSnapshot) -> Map<String, Value> {
    let info = &s.info;
    let mut m = player_json(s);
    m.insert("id".into(), info.id.to_string().into());
    m.insert("type".into(), "tcp".into());
    // Ours beside ZLMediaKit's: what the session does.
    m.insert("schema".into(), info.protocol.schema().into());
    m.insert("protocol".into(), info.protocol.name().into());
    m.insert(
        "role".into(),
        match s.role {
            Role::Publisher => "publisher",
            Role::Viewer => "player",
        }
        .into(),
    );
    m.insert("vhost".into(), s.key.vhost().into());
    m.insert("app".into(), s.key.app().into());
    m.insert("stream".into(), s.key.stream().into());
    m.insert("totalBytes".into(), s.bytes.into());
    let started = s
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    m.insert("createStamp".into(), started.into());
    m
}

/// The sessions the optional `local_port` and `peer_ip` arguments select, by id.
fn select(call: &Call<'_>) -> Result<Vec<SessionSnapshot>, ApiError> {
    let local_port: Option<u16> = call.args.int("local_port")?;
    let peer_ip = call.args.get("peer_ip");
    let mut sessions: Vec<SessionSnapshot> = call
        .state
        .registry
        .sessions()
        .into_iter()
        .filter(|s| local_port.is_none_or(|p| s.info.local.port() == p))
        .filter(|s| peer_ip.is_none_or(|ip| s.info.peer.ip().to_canonical().to_string() == ip))
        .collect();
    sessions.sort_by_key(|s| s.info.id);
    Ok(sessions)
}

/// getAllSession: `data` = the selected sessions (absent when there is none, as in
/// ZLMediaKit).
pub(crate) fn list(call: &Call<'_>) -> ApiResult {
    let data: Vec<Value> = select(call)?
        .iter()
        .map(|s| Value::Object(session_json(s)))
        .collect();
    Ok(super::data_or_nothing(data))
}

/// kick_session: ends session `id` at once.
pub(crate) fn kick_one(call: &Call<'_>) -> ApiResult {
    let [id] = call.args.require(["id"])?;
    let Ok(id) = id.trim().parse::<u64>() else {
        return Err(ApiError::new(Code::Failed, "can not find the target").closing());
    };
    if call.state.registry.kick(id) {
        tracing::info!(session = id, "session kicked by the api");
        Ok(Answer::Fields(Map::new()))
    } else {
        Err(ApiError::new(Code::Failed, "can not find the target").closing())
    }
}

/// kick_sessions: ends every selected session; `count_hit`.
pub(crate) fn kick_many(call: &Call<'_>) -> ApiResult {
    let sessions = select(call)?;
    let hit = sessions
        .iter()
        .filter(|s| call.state.registry.kick(s.info.id))
        .count();
    tracing::info!(sessions = hit, "sessions kicked by the api");
    Ok(fields([("count_hit", hit.into())]))
}
