"""The server goes away under a browser: the page greys out what no longer
works, tries again (waiting longer each time), and once mp1d is back on
the same port logs in again under the same name. Starts and stops its own
mp1d (by PID), on free loopback ports.

usage: reconnect.py MP1D_BINARY OUT_DIR
"""
import os
import socket
import subprocess
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(__file__))
from chat_common import browser, log_lines, join, say, WAIT  # noqa: E402

MP1D, OUT = sys.argv[1:3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


tcp, http = free_port(), free_port()


def start():
    p = subprocess.Popen([MP1D, "--bind", "127.0.0.1", "--port", str(tcp),
                          "--http", f"127.0.0.1:{http}"], stderr=subprocess.DEVNULL)
    deadline = time.time() + WAIT
    while True:
        try:
            socket.create_connection(("127.0.0.1", http), timeout=1).close()
            return p
        except OSError:
            if time.time() > deadline:
                sys.exit("mp1d did not start")
            time.sleep(0.05)


server = start()
zoe = browser()
try:
    zoe.get(f"http://127.0.0.1:{http}/")
    join(zoe, "zoe")
    server.terminate()  # SIGTERM: "Server closing." to everyone
    server.wait(timeout=WAIT)
    status = lambda d: d.find_element(By.ID, "status").text  # noqa: E731
    WebDriverWait(zoe, WAIT).until(lambda d: status(d).startswith("disconnected; trying again"))
    assert not zoe.find_element(By.ID, "text").is_enabled(), "input still live"
    assert "offline" in zoe.find_element(By.TAG_NAME, "body").get_attribute("class")
    assert not zoe.find_element(By.ID, "again").is_displayed(), "no button needed: it retries"
    zoe.save_screenshot(os.path.join(OUT, "offline.png"))
    time.sleep(2)  # a failed try or two: the wait grows
    server = start()
    WebDriverWait(zoe, 20).until(lambda d: status(d) == "logged in as zoe")
    assert zoe.find_element(By.ID, "text").is_enabled()
    say(zoe, "/list")
    WebDriverWait(zoe, WAIT).until(lambda d: "* online (1): zoe" in log_lines(d))
    print("browser reconnect: all steps passed")
finally:
    zoe.quit()
    server.terminate()
    server.wait()
