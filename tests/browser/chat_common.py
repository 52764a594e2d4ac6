"""What the browser tests share: headless Chromium through Selenium, the
page's log and online list, and `mp1 connect` scripted through pipes."""
import subprocess
import sys
import threading
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 10


def browser(width=1000, height=700, extra=()):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-proxy-server", *extra):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def log_lines(d):
    return [li.text for li in d.find_elements(By.CSS_SELECTOR, "#log li")]


def wait_line(d, text, who):
    try:
        WebDriverWait(d, WAIT).until(lambda d: text in log_lines(d))
    except Exception:
        sys.exit(f"{who} never showed {text!r}; showed {log_lines(d)!r}")


def join(d, name, expect_ok=True):
    box = d.find_element(By.ID, "name")
    box.clear()
    box.send_keys(name)
    d.find_element(By.CSS_SELECTOR, "#login-form button").click()
    if expect_ok:
        WebDriverWait(d, WAIT).until(
            lambda d: d.find_element(By.ID, "status").text == f"logged in as {name}")


def say(d, text):
    box = d.find_element(By.ID, "text")
    box.send_keys(text)
    d.find_element(By.CSS_SELECTOR, "#say button").click()


def online(d):
    """The online list as shown; None while the page redraws it (an element
    read as it is replaced is stale, which is a moment, not a failure)."""
    try:
        return [b.text for b in d.find_elements(By.CSS_SELECTOR, "#people button.name")]
    except StaleElementReferenceException:
        return None


class Terminal:
    """`mp1 connect`, scripted through pipes."""

    def __init__(self, mp1, tcp, name):
        self.p = subprocess.Popen([mp1, "connect", tcp, "--name", name], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def type(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def wait(self, text):
        deadline = time.time() + WAIT
        while text not in self.lines:
            if time.time() > deadline:
                sys.exit(f"mp1 never printed {text!r}; printed {self.lines!r}")
            time.sleep(0.05)
