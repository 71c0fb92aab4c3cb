#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile HTTPS clients for test_api_abuse.sh, loopback only.

  slow HOST PORT --clients N --seconds S [--tls-share F] [--interval I] [--report FILE]
       [--source IP]
      (SIGTERM ends it early.)
      Holds N connections that each trickle a request one byte per I seconds and never
      finish it; a connection the server closes is opened again after a short pause (a
      slowloris). A share F of them completes the TLS handshake first and trickles HTTP
      headers; the rest trickle a TLS ClientHello. Every socket is closed at the end. The
      report (JSON) counts connections and how long the server let them live. They connect
      from 100 addresses of HOST's /24 (.100 to .199), or all from --source (one client
      address flooding the server).

  raw HOST PORT FILE
      Sends the bytes of FILE over one TLS connection (no certificate check: the test's
      own server) and prints everything the server answers until it closes or 5 s pass.
"""
import argparse
import errno
import json
import os
import random
import resource
import selectors
import signal
import socket
import ssl
import sys
import time


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_hello(ctx):
    """The bytes of one ClientHello, to trickle without doing TLS."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sslobj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        sslobj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class Conn:
    def __init__(self, slow, slot):
        self.slow = slow
        self.slot = slot
        self.sock = None
        self.tls = random.random() < slow.tls_share
        self.reset()

    def reset(self):
        self.state = "idle"
        self.next_at = time.monotonic()
        self.sent = 0
        self.opened_at = 0.0

    def open(self, now):
        s = self.slow
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        # Many source addresses of the test's own /24, so 4-tuples do not run out.
        sock.bind((s.sources[self.slot % len(s.sources)], 0))
        rc = sock.connect_ex((s.host, s.port))
        if rc not in (0, errno.EINPROGRESS):
            sock.close()
            s.stats["connect_errors"] += 1
            self.next_at = now + 1.0
            return
        self.sock = sock
        self.state = "connecting"
        self.opened_at = now
        s.stats["connects"] += 1
        if self.tls:
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.sslobj = s.ctx.wrap_bio(self.incoming, self.outgoing, server_side=False)
        s.sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)

    def close(self, now, by_server):
        s = self.slow
        if self.sock is None:
            return
        s.sel.unregister(self.sock)
        self.sock.close()
        self.sock = None
        if by_server:
            s.stats["closed_by_server"] += 1
            life = now - self.opened_at
            s.stats["max_life"] = max(s.stats["max_life"], life)
            if self.state == "trickling":
                s.stats["max_trickle_life"] = max(s.stats["max_trickle_life"], life)
            if self.tls and self.state == "trickling":
                # From the end of the handshake: the server had accepted it by then,
                # however long it waited in the kernel's accept queue before.
                s.stats["max_life_after_handshake"] = max(
                    s.stats["max_life_after_handshake"], now - self.handshake_at)
        self.reset()
        self.next_at = now + random.uniform(2.0, 4.0)

    def send(self, data):
        try:
            self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            # Reset or shut down by the server: the next read sees it.
            pass

    def flush_tls(self):
        data = self.outgoing.read()
        if data:
            self.send(data)

    def on_event(self, mask, now):
        s = self.slow
        if self.state == "connecting" and mask & selectors.EVENT_WRITE:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.close(now, True)
                return
            s.sel.modify(self.sock, selectors.EVENT_READ, self)
            if self.tls:
                self.state = "handshake"
                self.step_handshake(now)
            else:
                self.state = "trickling"
                self.next_at = now
        if mask & selectors.EVENT_READ and self.sock is not None:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.close(now, True)
                return
            if self.tls:
                self.incoming.write(data)
                if self.state == "handshake":
                    self.step_handshake(now)
                else:
                    try:
                        self.sslobj.read(65536)
                    except (ssl.SSLWantReadError, ssl.SSLError):
                        pass

    def step_handshake(self, now):
        try:
            self.sslobj.do_handshake()
        except ssl.SSLWantReadError:
            self.flush_tls()
            return
        except ssl.SSLError:
            self.close(now, True)
            return
        self.flush_tls()
        self.state = "trickling"
        self.handshake_at = now
        self.slow.stats["handshakes"] += 1
        self.next_at = now

    def trickle(self, now):
        s = self.slow
        if self.tls:
            # Headers that never end: no blank line ever comes.
            if self.sent < len(s.request):
                chunk = s.request[self.sent:self.sent + 1]
            else:
                chunk = b"a"
            self.sslobj.write(chunk)
            self.flush_tls()
        else:
            # The ClientHello, one byte at a time; never its last byte.
            if self.sent >= len(s.hello) - 1:
                self.next_at = now + s.interval
                return
            self.send(s.hello[self.sent:self.sent + 1])
        self.sent += 1
        self.next_at = now + s.interval


class Slow:
    def __init__(self, args):
        self.host, self.port = args.host, args.port
        self.interval = args.interval
        self.tls_share = args.tls_share
        net = args.host.rsplit(".", 1)[0]
        if args.source:
            self.sources = [args.source]
        else:
            self.sources = ["%s.%d" % (net, i) for i in range(100, 200)]
        self.ctx = client_context()
        self.hello = client_hello(self.ctx)
        self.request = b"GET /v1/health HTTP/1.1\r\nHost: slow\r\nX-Slow: "
        self.sel = selectors.DefaultSelector()
        self.stats = {"connects": 0, "connect_errors": 0, "closed_by_server": 0,
                      "handshakes": 0, "max_life": 0.0, "max_trickle_life": 0.0,
                      "max_life_after_handshake": 0.0,
                      "max_open": 0}
        self.conns = [Conn(self, i) for i in range(args.clients)]

    def run(self, seconds, report):
        end = time.monotonic() + seconds
        next_report = 0.0
        stop = []
        # SIGTERM ends the run early, sockets closed and the report written.
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            while not stop:
                now = time.monotonic()
                if now >= end:
                    break
                for key, mask in self.sel.select(timeout=0.05):
                    key.data.on_event(mask, time.monotonic())
                now = time.monotonic()
                opened = 0
                for c in self.conns:
                    if c.sock is None:
                        if now >= c.next_at:
                            c.open(now)
                    elif c.state == "trickling" and now >= c.next_at:
                        c.trickle(now)
                    if c.sock is not None:
                        opened += 1
                self.stats["open"] = opened
                self.stats["max_open"] = max(self.stats["max_open"], opened)
                if report and now >= next_report:
                    self.write(report)
                    next_report = now + 0.5
        finally:
            for c in self.conns:
                if c.sock is not None:
                    self.sel.unregister(c.sock)
                    c.sock.close()
                    c.sock = None
            self.stats["open"] = 0
            self.stats["done"] = True
            if report:
                self.write(report)

    def write(self, path):
        with open(path + ".tmp", "w") as f:
            json.dump(self.stats, f)
        # Atomic, so the test never reads half a report.
        os.replace(path + ".tmp", path)


def raw(args):
    ctx = client_context()
    data = open(args.file, "rb").read()
    with socket.create_connection((args.host, args.port), timeout=5) as sock:
        with ctx.wrap_socket(sock) as tls:
            tls.sendall(data)
            got = b""
            try:
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except (socket.timeout, ssl.SSLError, OSError):
                pass
    sys.stdout.buffer.write(got)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slow")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("--clients", type=int, default=2000)
    s.add_argument("--seconds", type=float, default=20)
    s.add_argument("--interval", type=float, default=1.0)
    s.add_argument("--tls-share", type=float, default=0.25)
    s.add_argument("--report")
    s.add_argument("--source")
    r = sub.add_parser("raw")
    r.add_argument("host")
    r.add_argument("port", type=int)
    r.add_argument("file")
    args = p.parse_args()
    if not args.host.startswith("127.") or (getattr(args, "source", None) or "127.").split(".")[0] != "127":
        sys.exit("loopback addresses only")
    if args.cmd == "raw":
        raw(args)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.clients + 64
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit("slow_clients: %d clients need %d descriptors; the hard limit is %d"
                     % (args.clients, need, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    Slow(args).run(args.seconds, args.report)


if __name__ == "__main__":
    main()
