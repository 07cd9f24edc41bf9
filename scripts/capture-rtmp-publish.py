#!/usr/bin/env python3
"""Capture the client->server bytes of a real RTMP publish, for crates/rtmp/tests/data.

ffmpeg plays both ends, so no ferrostream code is involved in the capture:

    ffmpeg -listen 1 (RTMP server)  <--  this proxy (records C->S)  <--  ffmpeg publisher

Usage:
    scripts/capture-rtmp-publish.py OUT.bin [-- extra publisher input/codec args]

The default publisher sends 1.5 s of testsrc 320x240@25 (libx264, -g 25) and a 440 Hz sine (AAC)
to rtmp://127.0.0.1:<proxy>/live/cap?token=abc. Only the client->server direction is written;
the server->client bytes are relayed but not kept.
"""
import socket
import subprocess
import sys
import threading
import time

SERVER_PORT = 19351
PROXY_PORT = 19352


def pipe(src, dst, sink):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if sink is not None:
                sink.extend(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_path = sys.argv[1]
    extra = sys.argv[3:] if len(sys.argv) > 2 and sys.argv[2] == "--" else []

    server = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-listen", "1",
         "-i", f"rtmp://127.0.0.1:{SERVER_PORT}/live/cap", "-c", "copy", "-f", "flv",
         "/tmp/capture-rtmp-publish-out.flv"])

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", PROXY_PORT))
    listener.listen(1)

    publisher_args = extra or [
        "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "1.5",
    ]
    publisher = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", *publisher_args, "-f", "flv",
         f"rtmp://127.0.0.1:{PROXY_PORT}/live/cap?token=abc"])

    client, _ = listener.accept()
    upstream = None
    for _ in range(50):  # the ffmpeg server may take a moment to bind
        try:
            upstream = socket.create_connection(("127.0.0.1", SERVER_PORT))
            break
        except OSError:
            time.sleep(0.1)
    if upstream is None:
        sys.exit("could not reach the ffmpeg RTMP server")

    captured = bytearray()
    c2s = threading.Thread(target=pipe, args=(client, upstream, captured))
    s2c = threading.Thread(target=pipe, args=(upstream, client, None))
    c2s.start()
    s2c.start()
    publisher.wait(timeout=60)
    c2s.join(timeout=10)
    s2c.join(timeout=10)
    server.wait(timeout=30)

    with open(out_path, "wb") as f:
        f.write(captured)
    print(f"wrote {len(captured)} client->server bytes to {out_path}")


if __name__ == "__main__":
    main()
