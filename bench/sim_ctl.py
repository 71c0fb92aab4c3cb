#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# amtsim's control socket for the benchmarks: sends {"cmd":"stats"} and prints the one-line
# JSON answer, or only its member FIELD.
# Usage: sim_ctl.py SOCKET [FIELD]
import json
import socket
import sys

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"stats"}\n')
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(65536)
    if not c:
        break
    buf += c
if len(sys.argv) > 2:
    print(json.loads(buf)[sys.argv[2]])
else:
    sys.stdout.write(buf.decode())
