#!/usr/bin/env python3
"""Peak kernel TCP memory (/proc/net/sockstat) that clients who never read
cost a server: 200 clients with a 4 KiB receive buffer log in and never
read; one sender chats 2000 lines of 1000 bytes to everyone. The server
runs with --max-output-bytes 65536.

usage: benches/kernel_memory.py path/to/mp1d [more/mp1d ...]
"""
import json
import re
import socket
import subprocess
import sys
import threading
import time


def pages():
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            return int(line.split()[-1])
    raise SystemExit("no TCP line in /proc/net/sockstat")


def login(port, name, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(json.dumps({"mtp": "Login", "data": {"name": name}}).encode() + b"\n")
    return s


def measure(binary):
    srv = subprocess.Popen([binary, "--port", "0", "--bind", "127.0.0.1",
                            "--max-output-bytes", "65536"], stderr=subprocess.PIPE, text=True)
    port = None
    for line in srv.stderr:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    try:
        base = pages()
        sleepers = [login(port, f"s{i}", 4096) for i in range(200)]
        sender = login(port, "sender")
        time.sleep(0.5)
        line = json.dumps({"mtp": "SendChat", "data": {"message": "x" * 1000}}).encode() + b"\n"
        sender.setblocking(False)
        peak = 0
        for i in range(2000):
            sender.sendall(line)
            try:
                while sender.recv(65536):
                    pass
            except BlockingIOError:
                pass
            if i % 50 == 0:
                peak = max(peak, pages())
                time.sleep(0.01)
        for _ in range(20):
            peak = max(peak, pages())
            time.sleep(0.05)
        print(f"{binary}: peak kernel TCP memory {(peak - base) * 4096 / 1e6:.1f} MB "
              f"above the start, 200 never-readers")
        del sleepers
    finally:
        srv.kill()
        srv.wait()


for b in sys.argv[1:]:
    measure(b)
