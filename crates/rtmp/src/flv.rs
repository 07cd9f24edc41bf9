//! FLV, the container whose tag bodies RTMP audio and video messages carry (Adobe Flash Video
//! File Format Specification 10.1, Annex E; Enhanced RTMP v1/v2 for FourCC codecs).
//!
//! - [`file_header`], [`write_tag`], [`write_tag_with`]: write an FLV file or HTTP-FLV stream.
//! - [`FlvReader`]: read the tags of an FLV file.
//! - [`FlvStream`]: read the tags of an HTTP-FLV body as its bytes arrive.
//! - [`parse_video`], [`parse_audio`]: read a tag body's codec header (legacy and enhanced).
//! - [`Demuxer`]: tag bodies to [`media::Frame`]s and [`media::TrackInfo`]s, zero-copy.
//! - [`Muxer`]: frames and tracks back to tag bodies (the FLV output of every stream).
//! - [`decode_metadata`], [`encode_metadata`]: `onMetaData` to and from [`media::Metadata`].

mod demux;
mod meta;
mod mux;
mod tag;

pub use demux::{DemuxEvent, Demuxer};
pub use meta::{decode_metadata, encode_metadata};
pub use mux::Muxer;
pub use tag::{
    parse_audio, parse_video, AudioPacket, AudioTag, VideoPacket, VideoTag, FRAME_COMMAND,
    FRAME_INTER, FRAME_KEY,
};

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

/// Tag type of an audio tag (the RTMP audio message type, 0x08).
pub const TAG_AUDIO: u8 = 0x08;
/// Tag type of a video tag (the RTMP video message type, 0x09).
pub const TAG_VIDEO: u8 = 0x09;
/// Tag type of a script data tag (the RTMP AMF0 data message type, 0x12).
pub const TAG_SCRIPT: u8 = 0x12;

/// Size of a tag header.
const TAG_HEADER_LEN: usize = 11;
/// Largest body a tag's 24-bit DataSize can describe.
const MAX_BODY_LEN: usize = 0xff_ffff;

/// The 9-byte FLV header and PreviousTagSize0, the first 13 bytes of a file or HTTP-FLV stream.
pub fn file_header(has_audio: bool, has_video: bool) -> Bytes {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    Bytes::copy_from_slice(&[b'F', b'L', b'V', 0x01, flags, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// Appends one tag: the 11-byte header (timestamp's upper 8 bits in TimestampExtended), the body
/// and PreviousTagSize. A body over 16 MiB − 1 cannot be described and is dropped with a
/// warning (no RTMP message is that long).
pub fn write_tag(out: &mut BytesMut, tag_type: u8, timestamp: u32, body: &[u8]) {
    if body.len() > MAX_BODY_LEN {
        tracing::warn!(len = body.len(), "FLV tag body too long; dropped");
        return;
    }
    out.reserve(TAG_HEADER_LEN + body.len() + 4);
    write_tag_with(out, tag_type, timestamp, |out| out.put_slice(body));
}

/// Appends one tag whose body `body` writes in place (no copy of the body): the header is
/// filled in once the body's length is known. A body over 16 MiB − 1 is dropped with a warning.
pub fn write_tag_with(
    out: &mut BytesMut,
    tag_type: u8,
    timestamp: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    let start = out.len();
    out.put_slice(&[0; TAG_HEADER_LEN]);
    body(out);
    let len = out.len() - start - TAG_HEADER_LEN;
    if len > MAX_BODY_LEN {
        tracing::warn!(len, "FLV tag body too long; dropped");
        out.truncate(start);
        return;
    }
    let header = &mut out[start..start + TAG_HEADER_LEN];
    header[0] = tag_type;
    header[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
    header[4..7].copy_from_slice(&timestamp.to_be_bytes()[1..]);
    header[7] = (timestamp >> 24) as u8;
    out.put_u32((TAG_HEADER_LEN + len) as u32);
}

/// One tag read by [`FlvReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// [`TAG_AUDIO`], [`TAG_VIDEO`], [`TAG_SCRIPT`] or another value.
    pub tag_type: u8,
    /// Timestamp in milliseconds, TimestampExtended included.
    pub timestamp: u32,
    /// The tag body, a zero-copy slice of the file: what an RTMP message of this type carries.
    pub body: Bytes,
}

/// Reads the tags of an FLV file held in memory. Tag bodies are slices of the file's
/// [`Bytes`], so publishing a file copies nothing.
///
/// Iteration yields `Err` once for a malformed or truncated tag and then ends.
#[derive(Debug, Clone)]
pub struct FlvReader {
    data: Bytes,
    pos: usize,
    done: bool,
    has_audio: bool,
    has_video: bool,
}

impl FlvReader {
    /// Checks the FLV header of `data` and positions the reader at the first tag.
    pub fn new(data: Bytes) -> Result<Self, Error> {
        let header = data.get(..9).ok_or(Error::malformed(0, "FLV header"))?;
        if &header[..3] != b"FLV" {
            return Err(Error::malformed(0, "FLV signature"));
        }
        let flags = header[4];
        let offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
        if offset < 9 {
            return Err(Error::malformed(5, "FLV data offset"));
        }
        Ok(FlvReader {
            data,
            // DataOffset, then PreviousTagSize0.
            pos: offset.saturating_add(4),
            done: false,
            has_audio: flags & 0x04 != 0,
            has_video: flags & 0x01 != 0,
        })
    }

    /// The header's audio flag.
    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// The header's video flag.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// The next tag, `Ok(None)` at the end of the data.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, Error> {
        if self.done || self.pos >= self.data.len() {
            self.done = true;
            return Ok(None);
        }
        let at = self.pos;
        let Some(h) = self.data.get(at..at + TAG_HEADER_LEN) else {
            self.done = true;
            return Err(Error::malformed(at, "FLV tag header"));
        };
        if h[0] & 0x20 != 0 {
            self.done = true;
            return Err(Error::Unsupported(format!(
                "encrypted FLV tag at byte {at}"
            )));
        }
        let tag_type = h[0] & 0x1f;
        let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let body_at = at + TAG_HEADER_LEN;
        if self.data.len() < body_at + len {
            self.done = true;
            return Err(Error::malformed(at, "FLV tag body"));
        }
        let body = self.data.slice(body_at..body_at + len);
        // PreviousTagSize is not checked: writers disagree on it and nothing depends on it.
        self.pos = body_at + len + 4;
        Ok(Some(Tag {
            tag_type,
            timestamp,
            body,
        }))
    }
}

impl Iterator for FlvReader {
    type Item = Result<Tag, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_tag().transpose()
    }
}

/// Reads the tags of an FLV byte stream (an HTTP-FLV body) as it arrives, sans-IO: feed
/// what the socket gave with [`FlvStream::push`], take whole tags with [`FlvStream::next_tag`].
/// A tag longer than the limit, or a stream that does not start with an FLV header, is an
/// error and the stream is dead.
#[derive(Debug)]
pub struct FlvStream {
    buf: BytesMut,
    max_tag: usize,
    /// Bytes to skip before the next tag: the rest of the header, then PreviousTagSize fields.
    skip: usize,
    header_seen: bool,
    dead: bool,
}

impl FlvStream {
    /// A reader that refuses tag bodies over `max_tag` bytes (and so buffers at most about
    /// that much).
    pub fn new(max_tag: usize) -> Self {
        FlvStream {
            buf: BytesMut::new(),
            max_tag: max_tag.min(MAX_BODY_LEN),
            skip: 0,
            header_seen: false,
            dead: false,
        }
    }

    /// Appends bytes read from the peer.
    pub fn push(&mut self, data: &[u8]) {
        if !self.dead {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes held and not yet returned as tags.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole tag, `Ok(None)` until more bytes arrive.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, Error> {
        if self.dead {
            return Err(Error::Closed);
        }
        let result = self.parse();
        if result.is_err() {
            self.dead = true;
            self.buf = BytesMut::new();
        }
        result
    }

    fn parse(&mut self) -> Result<Option<Tag>, Error> {
        if !self.header_seen {
            let Some(header) = self.buf.get(..9) else {
                return Ok(None);
            };
            if &header[..3] != b"FLV" {
                return Err(Error::malformed(0, "FLV signature"));
            }
            let offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
            if !(9..=1024).contains(&offset) {
                return Err(Error::malformed(5, "FLV data offset"));
            }
            self.header_seen = true;
            // DataOffset, then PreviousTagSize0.
            self.skip = offset + 4;
        }
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len());
            let _ = self.buf.split_to(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let Some(h) = self.buf.get(..TAG_HEADER_LEN) else {
            return Ok(None);
        };
        if h[0] & 0x20 != 0 {
            return Err(Error::Unsupported("encrypted FLV tag".to_owned()));
        }
        let tag_type = h[0] & 0x1f;
        let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        if len > self.max_tag {
            return Err(Error::limit(
                "FLV tag body",
                len as u64,
                self.max_tag as u64,
            ));
        }
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        if self.buf.len() < TAG_HEADER_LEN + len {
            return Ok(None);
        }
        let _ = self.buf.split_to(TAG_HEADER_LEN);
        let body = self.buf.split_to(len).freeze();
        // PreviousTagSize is not checked: writers disagree on it and nothing depends on it.
        self.skip = 4;
        Ok(Some(Tag {
            tag_type,
            timestamp,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let mut out = BytesMut::new();
        out.extend_from_slice(&file_header(true, true));
        write_tag(&mut out, TAG_SCRIPT, 0, b"meta");
        write_tag(&mut out, TAG_VIDEO, 0x0123_4567, b"video");
        write_tag(&mut out, TAG_AUDIO, 40, b"");
        let mut r = FlvReader::new(out.clone().freeze()).expect("header");
        assert!(r.has_audio() && r.has_video());
        let tags: Vec<_> = r.by_ref().collect::<Result<_, _>>().expect("tags");
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[1].tag_type, TAG_VIDEO);
        assert_eq!(tags[1].timestamp, 0x0123_4567);
        assert_eq!(&tags[1].body[..], b"video");
        assert!(tags[2].body.is_empty());
        // PreviousTagSize of the last tag: header + body.
        assert_eq!(&out[out.len() - 4..], &11u32.to_be_bytes());
    }

    #[test]
    fn stream_reads_tags_split_anywhere() {
        let data = include_bytes!("../tests/data/ffmpeg5_h264_aac.flv");
        let whole: Vec<_> = FlvReader::new(Bytes::from_static(data))
            .expect("header")
            .collect::<Result<_, _>>()
            .expect("tags");
        for step in [1, 7, 4096] {
            let mut stream = FlvStream::new(1 << 20);
            let mut tags = Vec::new();
            for chunk in data.chunks(step) {
                stream.push(chunk);
                while let Some(tag) = stream.next_tag().expect("tag") {
                    tags.push(tag);
                }
            }
            assert_eq!(tags, whole, "chunks of {step}");
            assert_eq!(stream.buffered(), 0);
        }
    }

    #[test]
    fn stream_refuses_an_oversized_tag_and_a_bad_header() {
        let mut out = BytesMut::new();
        out.extend_from_slice(&file_header(false, true));
        write_tag(&mut out, TAG_VIDEO, 0, &[0; 100]);
        let mut stream = FlvStream::new(99);
        stream.push(&out);
        assert!(matches!(
            stream.next_tag(),
            Err(Error::LimitExceeded { value: 100, .. })
        ));
        assert!(matches!(stream.next_tag(), Err(Error::Closed)));
        let mut stream = FlvStream::new(99);
        stream.push(b"GET / HTTP/1.1");
        assert!(stream.next_tag().is_err());
    }

    #[test]
    fn header_bytes() {
        assert_eq!(
            &file_header(true, false)[..],
            &[b'F', b'L', b'V', 1, 4, 0, 0, 0, 9, 0, 0, 0, 0]
        );
    }

    #[test]
    fn truncated_tag_is_an_error_once() {
        let mut out = BytesMut::new();
        out.extend_from_slice(&file_header(false, true));
        write_tag(&mut out, TAG_VIDEO, 0, b"video");
        let n = out.len();
        let cut = out.freeze().slice(..n - 6);
        let mut r = FlvReader::new(cut).expect("header");
        assert!(matches!(r.next(), Some(Err(Error::Malformed { .. }))));
        assert!(r.next().is_none());
        assert!(FlvReader::new(Bytes::from_static(b"FLX\x01\x05\0\0\0\x09")).is_err());
        assert!(FlvReader::new(Bytes::from_static(b"FLV")).is_err());
    }

    #[test]
    fn reads_an_ffmpeg_file() {
        // Written by ffmpeg 5.1 (`-c copy -f flv`) from the publish in tests/data.
        let data = include_bytes!("../tests/data/ffmpeg5_h264_aac.flv");
        let tags: Vec<_> = FlvReader::new(Bytes::from_static(data))
            .expect("header")
            .collect::<Result<_, _>>()
            .expect("tags");
        assert_eq!(tags[0].tag_type, TAG_SCRIPT);
        assert!(tags.iter().any(|t| t.tag_type == TAG_VIDEO));
        assert!(tags.iter().any(|t| t.tag_type == TAG_AUDIO));
    }
}
