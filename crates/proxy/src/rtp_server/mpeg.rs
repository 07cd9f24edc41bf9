//! MPEG payloads over RTP: a program stream (GB28181's PS, payload type `rtp_proxy.ps_pt`) or a
//! transport stream (payload type 33, RFC 2250 §2), read by the `hls` crate's demuxers into
//! PES payloads and by [`hls::es::Elementary`] into tracks and frames.
//!
//! The RTP payloads are pushed in sequence order; a lost packet costs the frame it was part
//! of (the demuxers resynchronise on the next pack header or TS packet).

use hls::es::{Elementary, EsEvent};
use hls::ts::PACKET_SIZE;
use rtsp::demux::DemuxEvent;

/// The static RTP payload type of MPEG-2 transport streams (RFC 3551 §6, `MP2T`).
pub(crate) const TS_PT: u8 = 33;

enum Container {
    Ps(Box<hls::ps::PsDemuxer>),
    Ts(Box<hls::reader::Demuxer>),
}

/// An MPEG container's demuxer and its elementary streams.
pub(crate) struct Mpeg {
    container: Container,
    es: Elementary,
}

impl Mpeg {
    /// For MPEG-PS over RTP (GB28181).
    pub(crate) fn ps() -> Self {
        Mpeg {
            container: Container::Ps(Box::default()),
            es: Elementary::new(),
        }
    }

    /// For MPEG-TS over RTP.
    pub(crate) fn ts() -> Self {
        Mpeg {
            container: Container::Ts(Box::default()),
            es: Elementary::new(),
        }
    }

    /// Bytes were lost before the next payload: the packet and access unit being read are
    /// dropped (the PS map, parameter sets and clock are kept). A transport stream is made of
    /// whole packets, so only the elementary streams drop what they were assembling.
    pub(crate) fn discard(&mut self) {
        if let Container::Ps(demuxer) = &mut self.container {
            demuxer.discard();
        }
        self.es.discard();
    }

    /// One RTP payload; the tracks and frames it completes go to `out`.
    pub(crate) fn push(&mut self, payload: &[u8], out: &mut Vec<DemuxEvent>) {
        match &mut self.container {
            Container::Ps(demuxer) => {
                // A lost packet is a loss of sync the demuxer recovers from at the next pack.
                if let Err(e) = demuxer.push(payload) {
                    tracing::debug!("PS over RTP: {e}");
                }
                while let Some(pes) = demuxer.pull() {
                    if let Err(e) = self.es.push(pes.stream_type, pes.pts, pes.dts, pes.payload) {
                        tracing::debug!("PS over RTP: {e}");
                    }
                }
            }
            Container::Ts(demuxer) => {
                // RFC 2250 §2: a payload is a whole number of TS packets. Anything else would
                // put the demuxer out of step with packet boundaries for good.
                if payload.is_empty()
                    || !payload.len().is_multiple_of(PACKET_SIZE)
                    || payload[0] != hls::ts::SYNC_BYTE
                {
                    tracing::debug!(len = payload.len(), "RTP payload is not whole TS packets");
                    return;
                }
                if let Err(e) = demuxer.push(payload) {
                    tracing::debug!("TS over RTP: {e}");
                }
                while let Some(pes) = demuxer.pull() {
                    let stream_type = demuxer.pmt().and_then(|pmt| {
                        pmt.streams
                            .iter()
                            .find(|(_, pid)| *pid == pes.pid)
                            .map(|(stream_type, _)| *stream_type)
                    });
                    let Some(stream_type) = stream_type else {
                        continue;
                    };
                    let (pts, dts) = (pes.header.pts, pes.header.dts);
                    if let Err(e) = self.es.push(stream_type, pts, dts, pes.data.into()) {
                        tracing::debug!("TS over RTP: {e}");
                    }
                }
            }
        }
        drain(&mut self.es, out);
    }
}

fn drain(es: &mut Elementary, out: &mut Vec<DemuxEvent>) {
    out.extend(std::iter::from_fn(|| es.pull()).map(|e| match e {
        EsEvent::Track(track) => DemuxEvent::Track(track),
        EsEvent::Frame(frame) => DemuxEvent::Frame(frame),
    }));
}
