//! Pulling an HTTP-FLV source (`http://…​.flv`): one long GET whose body is an FLV stream.

use std::net::SocketAddr;

use rtmp::flv::{decode_metadata, Demuxer, FlvStream, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use tokio::time::timeout;
use url::Url;

use crate::{AttemptOptions, Ingest, ProxyError};

/// Plays `url` into `ingest` until the body ends or fails.
pub(crate) async fn pull(
    url: &Url,
    opts: &AttemptOptions,
    ingest: &mut Ingest,
) -> Result<(), ProxyError> {
    let client = reqwest::Client::builder()
        .connect_timeout(opts.timeout)
        .user_agent(concat!("ferrostream/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProxyError::Protocol(e.to_string()))?;
    let mut response = timeout(opts.timeout, client.get(url.clone()).send())
        .await
        .map_err(|_| ProxyError::Timeout("HTTP response"))?
        .map_err(|e| ProxyError::Refused(format!("GET: {e}")))?;
    if !response.status().is_success() {
        return Err(ProxyError::Refused(format!("HTTP {}", response.status())));
    }
    let peer = response
        .remote_addr()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let local = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut stream = FlvStream::new(super::MAX_FRAME);
    let mut demuxer = Demuxer::new();
    let mut announced = false;
    loop {
        let chunk = timeout(opts.timeout, response.chunk())
            .await
            .map_err(|_| ProxyError::Timeout("no media from the source"))?
            .map_err(|e| ProxyError::Io {
                context: "read",
                source: std::io::Error::other(e),
            })?;
        let Some(chunk) = chunk else {
            return Err(ProxyError::Ended);
        };
        stream.push(&chunk);
        while let Some(tag) = stream
            .next_tag()
            .map_err(|e| ProxyError::Protocol(e.to_string()))?
        {
            if !announced {
                ingest.live(peer, local).await?;
                announced = true;
            }
            match tag.tag_type {
                TAG_VIDEO => {
                    super::feed_tag(&mut demuxer, ingest, tag.timestamp, &tag.body, true)?;
                }
                TAG_AUDIO => {
                    super::feed_tag(&mut demuxer, ingest, tag.timestamp, &tag.body, false)?;
                }
                TAG_SCRIPT => {
                    if let Some(meta) = decode_metadata(&tag.body) {
                        ingest.set_metadata(meta);
                    }
                }
                _ => {}
            }
        }
    }
}
