#!/usr/bin/python3
"""A live RTSP camera for the tests: GStreamer's RTSP server (gst-rtsp-server 1.22, Debian's
gir1.2-gst-rtsp-server-1.0 with python3-gi) serving a test pattern.

    rtsp_camera.py PORT MOUNT [--user U --pass P] [--h265] [--audio aac|pcma|opus|none]

Serves rtsp://127.0.0.1:PORT/MOUNT over TCP and UDP, 640x360 at 25 fps with a keyframe every
30 frames, from live sources (is-live), so a player gets frames as a camera sends them. With
--user/--pass the server asks for Digest credentials (MD5, what cameras use). It prints
"ready rtsp://127.0.0.1:PORT/MOUNT" on stdout once it listens, and runs until killed.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def launch(h265: bool, audio: str) -> str:
    video = (
        "videotestsrc is-live=true pattern=ball "
        "! video/x-raw,width=640,height=360,framerate=25/1 ! videoconvert "
    )
    if h265:
        video += (
            "! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
            "! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    else:
        video += (
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
            "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    sound = "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample "
    if audio == "aac":
        sound += "! audio/x-raw,rate=44100,channels=2 ! avenc_aac ! aacparse ! rtpmp4gpay name=pay1 pt=97"
    elif audio == "pcma":
        sound += "! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
    elif audio == "opus":
        sound += "! audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay name=pay1 pt=98"
    else:
        return f"( {video} )"
    return f"( {video} {sound} )"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("mount")
    parser.add_argument("--user")
    parser.add_argument("--pass", dest="password")
    parser.add_argument("--h265", action="store_true")
    parser.add_argument("--audio", default="aac", choices=["aac", "pcma", "opus", "none"])
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch(args.h265, args.audio))
    factory.set_shared(True)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_digest(args.user, args.password or "", token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role("user")
        permissions.add_permission_for_role("user", "media.factory.access", True)
        permissions.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(permissions)
    mount = "/" + args.mount.strip("/")
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    print(f"ready rtsp://127.0.0.1:{args.port}{mount}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
