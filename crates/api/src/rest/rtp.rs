//! The GB28181 RTP server calls (ZLMediaKit's `server/WebApi.cpp`): openRtpServer,
//! closeRtpServer, listRtpServer, connectRtpServer. The servers themselves are
//! [`proxy::RtpServers`]; without one (`AppState::rtp` is `None`) every call answers as a
//! ZLMediaKit built without its RTP proxy: the call does not exist.

use super::{data_or_nothing, fields, ApiError, ApiResult, Call, Code};
use media::{StreamKey, DEFAULT_VHOST};
use proxy::{OnlyTrack, OpenRequest, RtpServerError, RtpServers, TcpMode};
use serde_json::{json, Value};

/// ZLMediaKit's app of RTP streams (`kRtpAppName`).
const RTP_APP: &str = "rtp";

fn servers<'a>(call: &Call<'a>, name: &str) -> Result<&'a RtpServers, ApiError> {
    call.state.rtp.as_ref().ok_or_else(|| {
        ApiError::new(
            Code::NotFound,
            format!("api not found: {}{name}", super::PREFIX),
        )
    })
}

/// The stream `vhost` (default `__defaultVhost__`) / `app` (default `rtp`) / `stream_id`.
fn key(call: &Call<'_>, stream_id: &str) -> Result<StreamKey, ApiError> {
    let vhost = call.args.get("vhost").unwrap_or(DEFAULT_VHOST);
    let app = call.args.get("app").unwrap_or(RTP_APP);
    StreamKey::with_vhost(vhost, app, stream_id).map_err(|e| ApiError::bad_arg("stream_id", e))
}

/// openRtpServer(port, stream_id, tcp_mode, re_use_port, ssrc, only_track, app, vhost):
/// `{"code":0,"port":N}`.
pub(super) fn open(call: &Call<'_>) -> ApiResult {
    let servers = servers(call, "openRtpServer")?;
    let [_, stream_id] = call.args.require_spaced(["port", "stream_id"])?;
    let port: u16 = call.args.int("port")?.unwrap_or(0);
    let mut tcp_mode = TcpMode::from_arg(call.args.int::<u8>("tcp_mode")?.unwrap_or(0))
        .ok_or_else(|| ApiError::bad_arg("tcp_mode", "not 0, 1 or 2"))?;
    // ZLMediaKit's older argument: enable_tcp=1 is tcp_mode 1.
    if tcp_mode == TcpMode::Udp && call.args.int::<i64>("enable_tcp")?.unwrap_or(0) != 0 {
        tcp_mode = TcpMode::Passive;
    }
    let mut only_track = OnlyTrack::from_arg(call.args.int::<u8>("only_track")?.unwrap_or(0))
        .ok_or_else(|| ApiError::bad_arg("only_track", "not 0, 1 or 2"))?;
    // And only_audio=1 is only_track 1.
    if call.args.flag("only_audio")?.unwrap_or(false) {
        only_track = OnlyTrack::Audio;
    }
    let request = OpenRequest {
        port,
        key: key(call, stream_id)?,
        tcp_mode,
        re_use_port: call.args.flag("re_use_port")?.unwrap_or(false),
        ssrc: call.args.int("ssrc")?.unwrap_or(0),
        only_track,
    };
    match servers.open(request) {
        Ok(port) => Ok(fields([("port", port.into())])),
        Err(RtpServerError::Exists) => Err(ApiError::new(
            Code::InvalidArgs,
            "This stream already exists",
        )),
        Err(e) => Err(ApiError::new(Code::Exception, e.to_string())),
    }
}

/// closeRtpServer(stream_id, app, vhost): `{"code":0,"hit":0|1}`.
pub(super) fn close(call: &Call<'_>) -> ApiResult {
    let servers = servers(call, "closeRtpServer")?;
    let [stream_id] = call.args.require(["stream_id"])?;
    let hit = servers.close(&key(call, stream_id)?);
    Ok(fields([("hit", hit.into())]))
}

/// listRtpServer: `data` = one entry per open server (`vhost, app, stream_id, port, ssrc,
/// tcp_mode, only_track`); no `data` when there is none, as ZLMediaKit answers.
pub(super) fn list(call: &Call<'_>) -> ApiResult {
    let servers = servers(call, "listRtpServer")?;
    let list: Vec<Value> = servers
        .list()
        .into_iter()
        .map(|s| {
            json!({
                "vhost": s.key.vhost(),
                "app": s.key.app(),
                "stream_id": s.key.stream(),
                "port": s.port,
                "ssrc": s.ssrc,
                "tcp_mode": s.tcp_mode.as_arg(),
                "only_track": s.only_track.as_arg(),
            })
        })
        .collect();
    Ok(data_or_nothing(list))
}

/// connectRtpServer(stream_id, dst_url, dst_port, app, vhost): dials the device of a tcp_mode
/// 2 server; `{"code":0}`, or -1 with why.
pub(super) async fn connect(call: &Call<'_>) -> ApiResult {
    let servers = servers(call, "connectRtpServer")?;
    let [stream_id, dst_url, _] = call
        .args
        .require_spaced(["stream_id", "dst_url", "dst_port"])?;
    let dst_port: u16 = call.args.int("dst_port")?.unwrap_or(0);
    let key = key(call, stream_id)?;
    match servers.connect(&key, dst_url, dst_port).await {
        Ok(()) => Ok(fields([])),
        Err(e) => Err(ApiError::new(Code::Failed, e.to_string())),
    }
}
