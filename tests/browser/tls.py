"""A browser chats through nginx over https and wss (the page picks wss
itself on an https page) with a plain TCP user of the same mp1d, who asks
where the browser user is: the browser's own address, forwarded by nginx
and believed because mp1d trusts that proxy (--http-trust-proxy). The certificate is the
test's own, so Chromium is told to take it.

usage: tls.py HTTPS_URL MP1D_TCP_ADDR OUT_DIR
"""
import json
import os
import socket
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(__file__))
from chat_common import WAIT, browser, join, log_lines, say, wait_line  # noqa: E402

URL, TCP, OUT = sys.argv[1:4]


class Plain:
    """An MP1 user over plain TCP, newline framing."""

    def __init__(self, addr, name):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=WAIT)
        self.buf = b""
        self.send("Login", {"name": name})
        assert self.expect("AssignUsername")["status"] == "OK"

    def send(self, mtp, data):
        self.s.sendall(json.dumps({"mtp": mtp, "data": data}).encode() + b"\n")

    def expect(self, mtp):
        deadline = time.time() + WAIT
        while time.time() < deadline:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.strip():
                    m = json.loads(line)
                    if m["mtp"] == mtp:
                        return m
            self.buf += self.s.recv(65536)
        sys.exit(f"plain user never got {mtp}")


web = browser(extra=("--ignore-certificate-errors",))
try:
    web.get(URL)
    join(web, "webby")
    assert web.execute_script("return location.protocol") == "https:"
    plain = Plain(TCP, "plain")
    wait_line(web, "* plain joined the server.", "webby")
    say(web, "hello over wss")
    m = plain.expect("SendChatFromUser")
    assert m["data"] == {"name": "webby", "message": "hello over wss"}, m
    plain.send("SendChat", {"message": "hi, browser"})
    wait_line(web, "plain: hi, browser", "webby")
    say(web, "/msg plain a whisper through the proxy")
    m = plain.expect("WhisperFromUser")
    assert m["data"]["message"] == "a whisper through the proxy", m
    # Where is the browser user? Where nginx saw them (the browser's
    # loopback address), not where nginx talks to mp1d from (127.0.0.3).
    plain.send("RequestUserInfo", {"name": "webby"})
    m = plain.expect("ProvideUserInfo")
    assert m["data"]["ip"] == "127.0.0.1", m
    assert m["data"]["port"] not in (0, None), m
    web.save_screenshot(os.path.join(OUT, "https.png"))
    print("https chat: all steps passed")
finally:
    web.quit()
