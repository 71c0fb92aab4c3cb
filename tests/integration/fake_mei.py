# SPDX-License-Identifier: Apache-2.0
"""A hostile "firmware" on a simulated-MEI socket (framing of docs/agent.md): it accepts the
connect request, then answers every AMTHI request the way MODE says. Used by
test_agent_errors.sh to show that no answer from a device crashes or stalls amtprov-agent.

usage: fake_mei.py SOCKET MODE
MODE: truncated | wrong_command | lying_length | oversized_frame | garbage | silent
"""
import os
import socket
import struct
import sys

path, mode = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o600)
srv.listen(4)


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


def frame(c, payload):
    c.sendall(struct.pack("<I", len(payload)) + payload)


def answer(req):
    cmd = struct.unpack_from("<I", req, 4)[0] | 0x00800000
    ok = struct.pack("<BBHII", 1, 1, 0, cmd, 8) + struct.pack("<II", 0, 0)
    if mode == "truncated":
        return ok[:14]
    if mode == "wrong_command":
        return struct.pack("<BBHII", 1, 1, 0, 0x0480FFFF, 8) + struct.pack("<II", 0, 0)
    if mode == "lying_length":
        return struct.pack("<BBHII", 1, 1, 0, cmd, 0xFFFFFFF0) + struct.pack("<II", 0, 0)
    if mode == "garbage":
        return os.urandom(300)
    return ok


while True:
    c, _ = srv.accept()
    try:
        n = struct.unpack("<I", recv_exact(c, 4))[0]
        recv_exact(c, n)
        frame(c, struct.pack("<BIB", 0, 4096, 1))
        while True:
            n = struct.unpack("<I", recv_exact(c, 4))[0]
            req = recv_exact(c, n)
            if mode == "silent":
                continue
            if mode == "oversized_frame":
                c.sendall(struct.pack("<I", 1 << 30) + b"\0" * 64)
                continue
            frame(c, answer(req))
    except (EOFError, ConnectionError):
        pass
    finally:
        c.close()
