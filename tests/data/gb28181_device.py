#!/usr/bin/env python3
"""A GB28181 device stand-in for the RTP server tests (e2e_rtp_server.rs).

It reads an MPEG-TS file that ffmpeg wrote (H.264 + AAC: ffmpeg's PS muxers take neither AAC
nor G.711, which GB28181 cameras send), repackages its PES packets into an MPEG-2 program
stream the way GB28181 cameras do (ISO/IEC 13818-1 §2.5: a pack header per access unit, a
program stream map before each keyframe, video PES cut at 65 000 bytes), cuts each pack into
RTP packets of at most 1400 bytes of payload (payload type 96, one SSRC, the pack's 90 kHz
time as RTP timestamp, the marker on a pack's last packet; GB28181-2016 Annex C) and sends
them paced in real time:

  udp        datagrams to HOST:PORT (with --garbage, junk datagrams in between; with
             --drop-every N, every Nth packet is lost)
  tcp        connects to HOST:PORT and sends RFC 4571 framing (a 16-bit length per packet)
  tcp-listen listens on HOST:PORT, takes one connection (openRtpServer tcp_mode 2 dials it)
             and sends RFC 4571 framing on it

With --alaw FILE (raw G.711 A-law, 8 kHz mono, as `ffmpeg -f alaw` writes it) the audio is
that instead of the file's AAC: 40 ms per PES, stream type 0x90 as GB28181 numbers G.711A.

The file is sent --loops times, timestamps going on across loops. Exits 0 when done, 1 when
the receiver closed the connection.
"""

import argparse
import socket
import struct
import sys
import time

TS_PACKET = 188
MAX_PAYLOAD = 1400
MAX_PES_PAYLOAD = 65000


def crc32_mpeg2(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def read_ts(path):
    """The PES packets of the file, in order: [(stream_type, pes_bytes)]."""
    data = open(path, "rb").read()
    pmt_pid = None
    types = {}
    assembling = {}
    order = []

    def complete(pid):
        pes = assembling.pop(pid, None)
        if pes and pid in types:
            order.append((types[pid], bytes(pes)))

    for off in range(0, len(data) - TS_PACKET + 1, TS_PACKET):
        pkt = data[off:off + TS_PACKET]
        if pkt[0] != 0x47:
            raise SystemExit("not a transport stream")
        pusi = pkt[1] & 0x40
        pid = ((pkt[1] & 0x1F) << 8) | pkt[2]
        afc = (pkt[3] >> 4) & 3
        pos = 4
        if afc & 2:
            pos += 1 + pkt[4]
        if not afc & 1 or pos >= TS_PACKET:
            continue
        payload = pkt[pos:]
        if pid == 0:
            sec = payload[1 + payload[0]:]
            pmt_pid = ((sec[10] & 0x1F) << 8) | sec[11]
        elif pid == pmt_pid:
            sec = payload[1 + payload[0]:]
            length = ((sec[1] & 0x0F) << 8) | sec[2]
            info = ((sec[10] & 0x0F) << 8) | sec[11]
            i = 12 + info
            while i < 3 + length - 4:
                es_pid = ((sec[i + 1] & 0x1F) << 8) | sec[i + 2]
                types[es_pid] = sec[i]
                i += 5 + (((sec[i + 3] & 0x0F) << 8) | sec[i + 4])
        else:
            if pusi:
                complete(pid)
                assembling[pid] = bytearray()
            if pid in assembling:
                assembling[pid] += payload
    for pid in list(assembling):
        complete(pid)
    return order


def pes_timing(pes):
    """(pts, dts) of a PES header, 90 kHz."""

    def stamp(b):
        return (((b[0] >> 1) & 7) << 30) | (b[1] << 22) | ((b[2] >> 1) << 15) | (b[3] << 7) | (b[4] >> 1)

    flags = pes[7] >> 6
    pts = stamp(pes[9:14]) if flags & 2 else None
    dts = stamp(pes[14:19]) if flags == 3 else pts
    return pts, dts


def set_stamps(pes, shift):
    """The PES with its PTS/DTS moved by `shift` (90 kHz)."""

    def write(prefix, value):
        value &= (1 << 33) - 1
        return bytes([
            (prefix << 4) | (((value >> 30) & 7) << 1) | 1,
            (value >> 22) & 0xFF,
            (((value >> 15) & 0x7F) << 1) | 1,
            (value >> 7) & 0xFF,
            ((value & 0x7F) << 1) | 1,
        ])

    pts, dts = pes_timing(pes)
    out = bytearray(pes)
    flags = pes[7] >> 6
    if flags & 2:
        out[9:14] = write(3 if flags == 3 else 2, pts + shift)
    if flags == 3:
        out[14:19] = write(1, dts + shift)
    return bytes(out)


def split_pes(pes):
    """A TS PES (video may have PES_packet_length 0) as PS PES of bounded length."""
    header_len = 9 + pes[8]
    sid = pes[3]
    header = pes[6:header_len]
    body = pes[header_len:]
    out = []
    first = True
    for i in range(0, max(len(body), 1), MAX_PES_PAYLOAD):
        chunk = body[i:i + MAX_PES_PAYLOAD]
        head = header if first else b"\x80\x00\x00"
        out.append(b"\x00\x00\x01" + bytes([sid]) + struct.pack(">H", len(head) + len(chunk)) + head + chunk)
        first = False
    return out


def pack_header(scr):
    v = (1 << 46) | (((scr >> 30) & 7) << 43) | (1 << 42) | (((scr >> 15) & 0x7FFF) << 27)
    v |= (1 << 26) | ((scr & 0x7FFF) << 11) | (1 << 10) | 1
    return b"\x00\x00\x01\xba" + v.to_bytes(6, "big") + b"\x01\x89\xc3\xf8"


def psm(streams):
    entries = b"".join(bytes([t, sid, 0, 0]) for t, sid in streams)
    body = b"\xe0\xff\x00\x00" + struct.pack(">H", len(entries)) + entries
    head = b"\x00\x00\x01\xbc" + struct.pack(">H", len(body) + 4)
    return head + body + struct.pack(">I", crc32_mpeg2(head + body))


def is_keyframe(es):
    i = es.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(es):
        if es[i + 3] & 0x1F == 5:
            return True
        i = es.find(b"\x00\x00\x01", i + 3)
    return False


def alaw_pes(path, first_pts, duration):
    """G.711 A-law as PES of 40 ms (320 samples), stamped from `first_pts`, for `duration`."""
    data = open(path, "rb").read()
    out = []
    n = 0
    while n * 3600 < duration and (n + 1) * 320 <= len(data):
        pts = first_pts + n * 3600
        stamp = bytes([
            0x21 | (((pts >> 30) & 7) << 1),
            (pts >> 22) & 0xFF,
            (((pts >> 15) & 0x7F) << 1) | 1,
            (pts >> 7) & 0xFF,
            ((pts & 0x7F) << 1) | 1,
        ])
        body = b"\x80\x80\x05" + stamp + data[n * 320:(n + 1) * 320]
        out.append((0x90, b"\x00\x00\x01\xc0" + struct.pack(">H", len(body)) + body))
        n += 1
    return out


def with_alaw(order, path):
    """`order` with its AAC replaced by the A-law of `path`, interleaved by time."""
    video = [(t, p) for t, p in order if t != 0x0F]
    stamps = [pes_timing(p)[1] for _, p in video if pes_timing(p)[1] is not None]
    audio = alaw_pes(path, min(stamps), max(stamps) - min(stamps) + 3600)
    merged = video + audio
    merged.sort(key=lambda e: pes_timing(e[1])[1] if pes_timing(e[1])[1] is not None else 0)
    return merged


def packs(order, loops):
    """(time 90 kHz, pack bytes) of the whole send."""
    sids = {0x1B: 0xE0, 0x24: 0xE0, 0x0F: 0xC0, 0x90: 0xC0}
    streams = sorted({(t, sids[t]) for t, _ in order if t in sids}, key=lambda s: -s[1])
    stamps = [pes_timing(p)[1] for _, p in order if pes_timing(p)[1] is not None]
    first, last = min(stamps), max(stamps)
    span = last - first + 3600
    out = []
    for loop in range(loops):
        shift = loop * span
        for stream_type, pes in order:
            if stream_type not in sids:
                continue
            pts, dts = pes_timing(pes)
            if dts is None:
                continue
            pes = set_stamps(pes, shift)
            t = dts + shift - first
            pack = pack_header(max(dts + shift - 3600, 0))
            if sids[stream_type] == 0xE0 and is_keyframe(pes[9 + pes[8]:]):
                pack += psm(streams)
            pack += b"".join(split_pes(pes))
            out.append((t, pts + shift, pack))
    return out


def rtp_packets(pack, rtp_time, seq, ssrc, pt):
    out = []
    pieces = [pack[i:i + MAX_PAYLOAD] for i in range(0, len(pack), MAX_PAYLOAD)]
    for i, piece in enumerate(pieces):
        marker = 0x80 if i == len(pieces) - 1 else 0
        head = struct.pack(">BBHII", 0x80, marker | pt, seq & 0xFFFF, rtp_time & 0xFFFFFFFF, ssrc)
        out.append(head + piece)
        seq += 1
    return out, seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ts", required=True)
    ap.add_argument("--mode", choices=["udp", "tcp", "tcp-listen"], required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ssrc", type=int, required=True)
    ap.add_argument("--pt", type=int, default=96)
    ap.add_argument("--loops", type=int, default=1)
    ap.add_argument("--garbage", action="store_true")
    ap.add_argument("--alaw")
    ap.add_argument("--drop-every", type=int, default=0, help="lose every Nth RTP packet")
    args = ap.parse_args()

    order = read_ts(args.ts)
    if args.alaw:
        order = with_alaw(order, args.alaw)
    schedule = packs(order, args.loops)
    if args.mode == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        send = lambda p: sock.sendto(p, (args.host, args.port))
    else:
        if args.mode == "tcp":
            sock = socket.create_connection((args.host, args.port), timeout=10)
        else:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((args.host, args.port))
            server.listen(1)
            print("listening", flush=True)
            server.settimeout(30)
            sock, _ = server.accept()
        send = lambda p: sock.sendall(struct.pack(">H", len(p)) + p)

    start = time.monotonic()
    seq = 4000
    sent = 0
    try:
        for t, pts, pack in schedule:
            delay = start + t / 90000.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            packets, seq = rtp_packets(pack, pts, seq, args.ssrc, args.pt)
            for p in packets:
                sent += 1
                if args.drop_every and sent % args.drop_every == 0:
                    continue
                send(p)
                if args.garbage and args.mode == "udp" and sent % 25 == 0:
                    # Not RTP at all, then an RTP header cut short.
                    send(b"\xde\xad\xbe\xef garbage")
                    send(b"\x80\x60\x00")
    except (BrokenPipeError, ConnectionResetError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
