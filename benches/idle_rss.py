#!/usr/bin/env python3
"""Resident memory of a running mp1d with N idle logged-in clients.

usage: benches/idle_rss.py PORT PID [N]   (loopback only)

Logs N clients in (100 at a time, every socket kept drained so none is cut
off as slow), waits for the server to settle, and prints the server's
VmRSS before and after and the difference per client.
"""
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS")).split()[1])


def drain(socks):
    for s in socks:
        try:
            while s.recv(1 << 20):
                pass
        except BlockingIOError:
            pass


def main():
    port, pid = int(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    base = rss_kib(pid)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b'{"mtp":"Login","data":{"name":"idle%d"}}\n' % i)
        s.setblocking(False)
        socks.append(s)
        if i % 100 == 99:
            time.sleep(0.05)
            drain(socks)
    for _ in range(30):
        time.sleep(0.1)
        drain(socks)
    time.sleep(3)  # past the server's quiet-time heap trim
    drain(socks)
    rss = rss_kib(pid)
    print(f"mp1d RSS: {base} KiB idle, {rss} KiB with {n} logged-in idle clients: "
          f"{(rss - base) * 1024 / n:.0f} bytes per client")


if __name__ == "__main__":
    main()
