//! Pulling an `rtmp://` source: play it as ffmpeg would and republish its tags.

use rtmp::client::{Config, Event};
use rtmp::flv::{decode_metadata, Demuxer};
use url::Url;

use crate::rtmp_client::{Conn, RtmpUrl};
use crate::{AttemptOptions, Ingest, ProxyError};

/// Plays `url` into `ingest` until the source ends or fails.
pub(crate) async fn pull(
    url: &Url,
    opts: &AttemptOptions,
    ingest: &mut Ingest,
) -> Result<(), ProxyError> {
    let target = RtmpUrl::parse(url)?;
    let config = Config {
        max_message_len: super::MAX_FRAME as u32,
        ..Config::default()
    };
    let mut conn = Conn::connect(&target, opts, config).await?;
    conn.session.connect(&target.app, &target.tc_url);
    conn.session.play(&target.name);
    let mut demuxer = Demuxer::new();
    let mut playing = false;
    loop {
        conn.flush(opts).await?;
        // Before the play starts the handshake timeout applies, after it the source's silence.
        let what = if playing {
            "no media from the source"
        } else {
            "RTMP handshake and play"
        };
        conn.read(opts, what).await?;
        while let Some(event) = conn.session.poll_event() {
            match event {
                Event::PlayStarted => {
                    playing = true;
                    ingest.live(conn.peer, conn.local).await?;
                }
                Event::Rejected { code, description } => {
                    return Err(ProxyError::Refused(format!("{code}: {description}")));
                }
                Event::Metadata { data } => {
                    if let Some(meta) = decode_metadata(&data) {
                        ingest.set_metadata(meta);
                    }
                }
                Event::Video { timestamp, payload } => {
                    super::feed_tag(&mut demuxer, ingest, timestamp, &payload, true)?;
                }
                Event::Audio { timestamp, payload } => {
                    super::feed_tag(&mut demuxer, ingest, timestamp, &payload, false)?;
                }
                Event::StreamEof => return Err(ProxyError::Ended),
                _ => {}
            }
        }
    }
}
