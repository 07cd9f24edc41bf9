//! Pushing a live stream to an `rtmp://` server, as OBS or ffmpeg publish: the stream's FLV
//! output (muxed once for all its RTMP viewers) is sent tag by tag.

use media::StreamKey;
use registry::{Protocol, SessionInfo};
use rtmp::client::{Config, Event};
use rtmp::flv::{TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use url::Url;

use crate::rtmp_client::{Conn, RtmpUrl};
use crate::{AttemptOptions, Context, ProxyError, Started, Status};

/// Publishes `key` to `url` until the stream or the connection ends.
pub(crate) async fn push(
    url: &Url,
    opts: &AttemptOptions,
    ctx: &Context,
    key: &StreamKey,
    started: &mut Started,
    status: &Status,
) -> Result<(), ProxyError> {
    let target = RtmpUrl::parse(url)?;
    let mut conn = Conn::connect(&target, opts, Config::default()).await?;
    conn.session.connect(&target.app, &target.tc_url);
    conn.session.publish(&target.name);
    'handshake: loop {
        conn.flush(opts).await?;
        conn.read(opts, "RTMP handshake and publish").await?;
        while let Some(event) = conn.session.poll_event() {
            match event {
                Event::PublishStarted => break 'handshake,
                Event::Rejected { code, description } => {
                    return Err(ProxyError::Refused(format!("{code}: {description}")));
                }
                _ => {}
            }
        }
    }
    let info = SessionInfo {
        id: ctx.registry.next_session_id(),
        protocol: Protocol::Rtmp,
        peer: conn.peer,
        local: conn.local,
        params: String::new(),
    };
    let mut viewer = ctx.registry.join(key, info).ok_or(ProxyError::Ended)?;
    let output = ctx.outputs.flv(key).await.ok_or(ProxyError::Ended)?;
    let mut tags = output.reader();
    tracing::info!(stream = %key, to = %crate::redacted(url), "pushing");
    started.done();
    status.went_live();
    loop {
        tokio::select! {
            biased;
            () = viewer.kicked() => return Err(ProxyError::Closed),
            tag = tags.recv() => {
                let tag = tag.map_err(|_| ProxyError::Ended)?;
                let body = tag.body();
                match tag.tag_type {
                    TAG_VIDEO => conn.session.send_video(tag.timestamp, &body),
                    TAG_AUDIO => conn.session.send_audio(tag.timestamp, &body),
                    TAG_SCRIPT => conn.session.send_metadata(&body),
                    _ => continue,
                }
                viewer.add_bytes(body.len() as u64);
                status.add_bytes(body.len() as u64);
                conn.flush(opts).await?;
            }
            read = conn.read_any() => {
                read?;
                while let Some(event) = conn.session.poll_event() {
                    if let Event::Rejected { code, description } = event {
                        return Err(ProxyError::Refused(format!("{code}: {description}")));
                    }
                }
                conn.flush(opts).await?;
            }
        }
    }
}
