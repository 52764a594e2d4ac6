#!/usr/bin/env python3
"""Smoke test of one mp1d binary (native or under qemu-user), on loopback.

usage: dist/smoke.py [--runner qemu-aarch64-static] path/to/mp1d

Starts the server on 127.0.0.1 (free ports) with its web face, logs in two
clients (one bare, one newline framed), chats, whispers, asks the time,
asks /healthz, chats with a browser-like user over WebSocket, kicks, shuts
the server down with SIGTERM, and checks every reply byte for byte. Exits 0
when all checks pass; prints each check.
"""
import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 20  # seconds for any one reply; emulation is slow


class Client:
    def __init__(self, port, newline):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.newline = newline
        self.buf = b""
        self.raw = b""

    def send(self, mtp, data):
        line = json.dumps({"mtp": mtp, "data": data}).encode()
        self.s.sendall(line + (b"\n" if self.newline else b""))

    def recv(self):
        """The next JSON object, split by brace depth as class clients do."""
        deadline = time.time() + TIMEOUT
        while True:
            obj = self._split()
            if obj is not None:
                return json.loads(obj)
            if time.time() > deadline:
                raise AssertionError("no reply in time")
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError("connection closed")
            self.buf += chunk
            self.raw += chunk

    def _split(self):
        depth, in_str, esc = 0, False, False
        start = None
        for i, b in enumerate(self.buf):
            c = chr(b)
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c == "{":
                if depth == 0:
                    start = i
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    obj = self.buf[start:i + 1]
                    self.buf = self.buf[i + 1:]
                    return obj
        return None

    def closed(self):
        self.s.settimeout(TIMEOUT)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True


class WebSocket:
    """A minimal RFC 6455 client: masked text frames out, server frames in."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise AssertionError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = head.split(b"\r\n")[0].decode()

    def send(self, mtp, data):
        payload = json.dumps({"mtp": mtp, "data": data}).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        while True:
            if len(self.buf) >= 2:
                n, at = self.buf[1] & 0x7F, 2
                if n == 126:
                    n, at = int.from_bytes(self.buf[2:4], "big"), 4
                if len(self.buf) >= at + n:
                    opcode, payload = self.buf[0] & 0x0F, self.buf[at:at + n]
                    self.buf = self.buf[at + n:]
                    if opcode == 1:
                        return json.loads(payload)
                    continue
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError("connection closed")
            self.buf += chunk


def http_get(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return reply.decode()
        reply += chunk


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}:\n  got  {got!r}\n  want {want!r}")
        sys.exit(1)
    print(f"ok   {what}")


def sm(text):
    return {"mtp": "ServerMessage", "data": {"message": text}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", default="")
    ap.add_argument("binary")
    a = ap.parse_args()
    cmd = ([a.runner] if a.runner else []) + [
        a.binary, "--port", "0", "--bind", "127.0.0.1", "--http", "127.0.0.1:0",
        # io_uring where the kernel (or the emulator) allows it, else writev:
        # the log says which path runs.
        "--io-uring", "auto"]
    srv = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    port = web = path = None
    t0 = time.time()
    for line in srv.stderr:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
        m = re.search(r"HTTP on 127\.0\.0\.1:(\d+)", line)
        if m:
            web = int(m.group(1))
        m = re.search(r"fan-out writes: (.*)", line)
        if m:
            path = m.group(1)
        if (port and web and path) or time.time() - t0 > TIMEOUT:
            break
    if port is None or web is None or path is None:
        srv.kill()
        print("FAIL server did not start")
        sys.exit(1)
    log = []
    threading.Thread(target=lambda: log.extend(srv.stderr), daemon=True).start()
    print(f"ok   server started in {time.time() - t0:.2f} s on port {port}")
    print(f"ok   fan-out writes: {path}")
    try:
        alice, bob = Client(port, newline=False), Client(port, newline=True)
        alice.send("Login", {"name": "alice"})
        check("alice logs in", alice.recv(), {"mtp": "AssignUsername", "data": {"name": "alice"}, "status": "OK"})
        check("join announced", alice.recv(), sm("alice joined the server."))
        check("first user is admin", alice.recv(), sm("You are the admin."))
        bob.send("Login", {"name": "bob"})
        check("bob logs in", bob.recv(), {"mtp": "AssignUsername", "data": {"name": "bob"}, "status": "OK"})
        check("bob sees his join", bob.recv(), sm("bob joined the server."))
        check("alice sees bob join", alice.recv(), sm("bob joined the server."))
        bob.send("SendChat", {"message": "hola se\u00f1or \U0001F600"})
        check("chat delivered", alice.recv(),
              {"mtp": "SendChatFromUser", "data": {"name": "bob", "message": "hola se\u00f1or \U0001F600"}})
        check("reply is pure ASCII with \\u escapes", b"se\\u00f1or \\ud83d\\ude00" in alice.raw, True)
        check("bare client got no newline", b"\n" in alice.raw, False)
        alice.send("WhisperToUser", {"to": ["bob"], "message": "psst"})
        check("whisper delivered", bob.recv(), {"mtp": "WhisperFromUser", "data": {"from": "alice", "message": "psst"}})
        check("newline client got lines", bob.raw.endswith(b"}\n"), True)
        alice.send("RequestLocalTime", {})
        t = alice.recv()
        check("local time is HH:MM:SS", bool(re.fullmatch(r"\d\d:\d\d:\d\d", t["data"]["time"])), True)
        check("/healthz answers", http_get(web, "/healthz").split("\r\n")[0], "HTTP/1.1 200 OK")
        carol = WebSocket(web)
        check("a browser upgrades", carol.status, "HTTP/1.1 101 Switching Protocols")
        carol.send("Login", {"name": "carol"})
        check("carol logs in over WebSocket", carol.recv(),
              {"mtp": "AssignUsername", "data": {"name": "carol"}, "status": "OK"})
        check("carol sees her join", carol.recv(), sm("carol joined the server."))
        check("alice sees carol join", alice.recv(), sm("carol joined the server."))
        check("bob sees carol join", bob.recv(), sm("carol joined the server."))
        carol.send("SendChat", {"message": "from the web"})
        check("TCP user gets the browser's chat", alice.recv(),
              {"mtp": "SendChatFromUser", "data": {"name": "carol", "message": "from the web"}})
        check("and the other", bob.recv(),
              {"mtp": "SendChatFromUser", "data": {"name": "carol", "message": "from the web"}})
        alice.send("SendChat", {"message": "from TCP"})
        check("the browser gets a TCP user's chat", carol.recv(),
              {"mtp": "SendChatFromUser", "data": {"name": "alice", "message": "from TCP"}})
        check("bob too", bob.recv(),
              {"mtp": "SendChatFromUser", "data": {"name": "alice", "message": "from TCP"}})
        alice.send("KickUser", {"name": "bob"})
        check("kick answered", alice.recv(), {"mtp": "KickUser", "data": {"name": "bob"}, "status": "OK"})
        check("kicked user told", bob.recv(), {"mtp": "Disconnect", "data": {"message": "Kicked from the server."}})
        check("kicked user closed", bob.closed(), True)
        check("kick announced", alice.recv(), sm("bob has been kicked from the server."))
        check("kick announced to the browser", carol.recv(), sm("bob has been kicked from the server."))
        srv.send_signal(signal.SIGTERM)
        check("SIGTERM says goodbye", alice.recv(), {"mtp": "Disconnect", "data": {"message": "Server closing."}})
        check("server exits 0", srv.wait(timeout=TIMEOUT), 0)
    finally:
        if srv.poll() is None:
            srv.kill()
    print("all checks passed")


if __name__ == "__main__":
    main()
