//! The NATS provider: each envelope is published with JetStream on `{subject}.{event}` and
//! counts as delivered once the server acked it (stored it in the stream). Its `Nats-Msg-Id` is
//! the envelope's uuid, so a retry after a lost ack is not stored twice.
//!
//! The stream is created (or found) at connect: named [`crate::stream_name`]`(subject)`,
//! subjects `{subject}.>`, file storage, kept at most [`MAX_AGE`] and [`MAX_BYTES`] (the
//! oldest messages go first). The client reconnects by itself; while NATS is down the publish
//! fails (or is not acked in time) and the queue retries the same envelope, so after an outage
//! the buffered envelopes arrive in order.

use crate::queue::Sink;
use crate::Envelope;
use async_nats::jetstream;
use std::time::Duration;

/// How long the JetStream stream keeps an envelope.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Most bytes the JetStream stream keeps. JetStream reserves it on the server's disk when the
/// stream is created (a stream larger than the free space is refused), so it is modest.
pub const MAX_BYTES: i64 = 256 << 20;

pub(crate) struct Nats {
    url: String,
    subject: String,
    timeout: Duration,
    /// The connection, once made; the client reconnects it by itself after that.
    js: Option<jetstream::Context>,
    /// Whether the stream is known to exist (checked again after a failed publish: a server
    /// started afresh has none).
    stream_ok: bool,
}

impl Nats {
    pub(crate) fn new(url: &str, subject: &str, timeout: Duration) -> Nats {
        Nats {
            url: url.to_owned(),
            subject: subject.to_owned(),
            timeout,
            js: None,
            stream_ok: false,
        }
    }

    async fn context(&mut self) -> Result<jetstream::Context, String> {
        if self.js.is_none() {
            let client = tokio::time::timeout(self.timeout, connect(&self.url))
                .await
                .map_err(|_| format!("connect to {} timed out", self.url))??;
            self.js = Some(jetstream::new(client));
        }
        let js = self.js.clone().ok_or("no connection")?;
        if !self.stream_ok {
            ensure_stream(&js, &self.subject, self.timeout).await?;
            self.stream_ok = true;
        }
        Ok(js)
    }
}

/// A client that reconnects by itself, forever.
pub(crate) async fn connect(url: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .name("ferrostream")
        .max_reconnects(None)
        .connect(url)
        .await
        .map_err(|e| format!("connect to {url}: {e}"))
}

/// Creates the envelopes' stream, or finds it.
async fn ensure_stream(
    js: &jetstream::Context,
    subject: &str,
    timeout: Duration,
) -> Result<(), String> {
    let config = jetstream::stream::Config {
        name: crate::stream_name(subject),
        subjects: vec![format!("{subject}.>")],
        max_age: MAX_AGE,
        max_bytes: MAX_BYTES,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    tokio::time::timeout(timeout, js.get_or_create_stream(config))
        .await
        .map_err(|_| "creating the JetStream stream timed out".to_owned())?
        .map_err(|e| format!("JetStream stream {}: {e}", crate::stream_name(subject)))?;
    Ok(())
}

impl Sink for Nats {
    async fn send(&mut self, envelope: &Envelope) -> Result<(), String> {
        let js = self.context().await?;
        let subject = format!("{}.{}", self.subject, envelope.kind.name());
        let timeout = self.timeout;
        let publish = async {
            // The uuid as `Nats-Msg-Id`: a retry of an envelope whose ack was lost is stored
            // once (JetStream's duplicate window, 2 min by default).
            let message = jetstream::message::PublishMessage::build()
                .payload(envelope.json.clone())
                .message_id(&envelope.uuid);
            let ack = js
                .send_publish(subject, message)
                .await
                .map_err(|e| format!("publish: {e}"))?;
            ack.await.map_err(|e| format!("publish ack: {e}"))
        };
        let result = tokio::time::timeout(timeout, publish)
            .await
            .map_err(|_| "publish ack timed out".to_owned())
            .and_then(|r| r);
        if result.is_err() {
            self.stream_ok = false;
        }
        result.map(|_| ())
    }
}
