#!/usr/bin/python3
"""A WHEP player on GStreamer's webrtcbin (libnice ICE, its own DTLS-SRTP and RTP stack): posts
a recvonly H.264 offer to the URL given, sets the answer, decodes what arrives and prints one
JSON line: {"status", "location", "frames", "width", "height", "error"}.

Usage: whep_gst.py URL FRAMES TIMEOUT_SECONDS
Exits 0 when FRAMES video frames were decoded, 1 otherwise.
"""

import json
import subprocess
import sys
import urllib.error
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

URL, WANT, TIMEOUT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
result = {"status": None, "location": None, "frames": 0, "width": 0, "height": 0, "error": None}


def ecdsa_pem():
    """A self-signed ECDSA P-256 certificate and its key. GStreamer 1.22's DTLS makes an RSA
    certificate, and the server's DTLS (dimpl 0.9, under str0m 0.25) signs and verifies ECDSA
    only, as browsers use; a client must bring an ECDSA certificate."""
    return subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "-", "-out", "-", "-days", "1", "-subj", "/CN=whep-gst"],
        check=True, capture_output=True, text=True,
    ).stdout


def fingerprint(pem):
    """The certificate's SHA-256 fingerprint as SDP writes it (RFC 8122 §5)."""
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
        input=pem, check=True, capture_output=True, text=True,
    ).stdout
    return out.strip().split("=", 1)[1]


PEM = ecdsa_pem()
FINGERPRINT = fingerprint(PEM)
Gst.init(None)
loop = GLib.MainLoop()
pipe = Gst.Pipeline.new("whep")
webrtc = Gst.ElementFactory.make("webrtcbin", "rtc")
webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
pipe.add(webrtc)


def finish(error=None):
    if error and not result["error"]:
        result["error"] = error
    loop.quit()
    return False


def on_frame(sink, *_):
    result["frames"] += 1
    pad = sink.get_static_pad("sink")
    caps = pad.get_current_caps()
    if caps:
        s = caps.get_structure(0)
        result["width"] = s.get_value("width")
        result["height"] = s.get_value("height")
    if result["frames"] >= WANT:
        GLib.idle_add(finish)


def on_decoded_pad(_decodebin, pad):
    if not pad.get_current_caps().to_string().startswith("video/"):
        return
    convert = Gst.ElementFactory.make("videoconvert")
    sink = Gst.ElementFactory.make("fakesink")
    sink.set_property("signal-handoffs", True)
    sink.set_property("sync", False)
    sink.connect("handoff", on_frame)
    for e in (convert, sink):
        pipe.add(e)
        e.sync_state_with_parent()
    convert.link(sink)
    pad.link(convert.get_static_pad("sink"))


def on_incoming(_webrtc, pad):
    if pad.direction != Gst.PadDirection.SRC:
        return
    decodebin = Gst.ElementFactory.make("decodebin")
    decodebin.connect("pad-added", on_decoded_pad)
    pipe.add(decodebin)
    decodebin.sync_state_with_parent()
    pad.link(decodebin.get_static_pad("sink"))


def post_offer():
    offer = webrtc.get_property("local-description").sdp.as_text()
    # The offer names the certificate webrtcbin made; its DTLS presents ours (set below).
    offer = "\r\n".join(
        "a=fingerprint:sha-256 " + FINGERPRINT if line.startswith("a=fingerprint:") else line
        for line in offer.split("\r\n")
    )
    req = urllib.request.Request(
        URL, data=offer.encode(), method="POST", headers={"Content-Type": "application/sdp"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            result["status"] = resp.status
            result["location"] = resp.headers.get("Location")
            answer = resp.read().decode()
    except urllib.error.HTTPError as e:
        result["status"] = e.code
        return finish("refused: " + e.read().decode(errors="replace"))
    except OSError as e:
        return finish("post failed: " + str(e))
    _, sdp = GstSdp.SDPMessage.new_from_text(answer)
    desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
    webrtc.emit("set-remote-description", desc, Gst.Promise.new())
    return False


def on_gathering(_webrtc, _pspec):
    if webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
        GLib.idle_add(post_offer)


def on_offer(promise, _):
    reply = promise.get_reply()
    offer = reply.get_value("offer")
    webrtc.emit("set-local-description", offer, Gst.Promise.new())


def on_negotiation(_webrtc):
    webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))


caps = Gst.Caps.from_string(
    "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string)42e01f"
)
webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
webrtc.connect("on-negotiation-needed", on_negotiation)
webrtc.connect("pad-added", on_incoming)
webrtc.connect(
    "deep-element-added",
    lambda _bin, _sub, element: element.set_property("pem", PEM)
    if element.get_factory() and element.get_factory().get_name() == "dtlssrtpdec"
    else None,
)
webrtc.connect("notify::ice-gathering-state", on_gathering)
for prop in ("ice-connection-state", "connection-state"):
    webrtc.connect(
        "notify::" + prop,
        lambda w, p: print(p.name, w.get_property(p.name).value_nick, file=sys.stderr),
    )
bus = pipe.get_bus()
bus.add_signal_watch()
bus.connect("message::error", lambda _b, m: finish("pipeline: " + m.parse_error()[0].message))
GLib.timeout_add_seconds(TIMEOUT, lambda: finish("timeout"))
pipe.set_state(Gst.State.PLAYING)
loop.run()
pipe.set_state(Gst.State.NULL)
print(json.dumps(result), flush=True)
sys.exit(0 if result["frames"] >= WANT else 1)
