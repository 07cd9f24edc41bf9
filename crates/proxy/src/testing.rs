//! The per-scheme attempt drivers, reachable from the crate's integration tests
//! (`tests/rtsp_*.rs`) without the manager that calls them in the server.

use media::StreamKey;
use url::Url;

use crate::{AttemptOptions, Context, Ingest, ProxyError, Started, Status};

/// One attempt of an `rtsp://` pull (`pull::rtsp`).
pub async fn pull_rtsp(
    url: &Url,
    opts: &AttemptOptions,
    ingest: &mut Ingest,
) -> Result<(), ProxyError> {
    crate::pull::rtsp::pull(url, opts, ingest).await
}

/// One attempt of an `rtsp://` push (`push::rtsp`).
pub async fn push_rtsp(
    url: &Url,
    opts: &AttemptOptions,
    ctx: &Context,
    key: &StreamKey,
    started: &mut Started,
    status: &Status,
) -> Result<(), ProxyError> {
    crate::push::rtsp::push(url, opts, ctx, key, started, status).await
}
