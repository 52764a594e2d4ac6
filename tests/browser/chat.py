"""Two people chat in real browsers (headless Chromium, through Selenium)
with a third in the terminal program, against one mp1d: names, a taken
name asked again, chat both ways, a whisper by clicking a name, the online
list, text that looks like HTML staying text, and the admin kicking
someone. Screenshots of the page go to OUT_DIR.

usage: chat.py URL MP1_BINARY MP1D_TCP_ADDR OUT_DIR
"""
import os
import subprocess
import sys
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL, MP1, TCP, OUT = sys.argv[1:5]
WAIT = 10


def browser(width=1000, height=700):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-proxy-server"):
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
    return [b.text for b in d.find_elements(By.CSS_SELECTOR, "#people button.name")]


class Terminal:
    """`mp1 connect`, scripted through pipes."""

    def __init__(self, name):
        self.p = subprocess.Popen([MP1, "connect", TCP, "--name", name], stdin=subprocess.PIPE,
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


ana, bob = browser(), browser()
try:
    ana.get(URL)
    join(ana, "ana")
    wait_line(ana, "* You are the admin.", "ana")
    bob.get(URL)
    join(bob, "ana", expect_ok=False)  # taken: asked again
    WebDriverWait(bob, WAIT).until(
        lambda d: "is taken" in d.find_element(By.ID, "login-msg").text)
    join(bob, "bob")
    wait_line(ana, "* bob joined the server.", "ana")

    cli = Terminal("cli")
    cli.wait("* logged in as cli")
    wait_line(ana, "* cli joined the server.", "ana")
    WebDriverWait(ana, WAIT).until(lambda d: online(d) == ["ana (you)", "bob", "cli"])

    say(ana, "hello from ana")
    wait_line(bob, "ana: hello from ana", "bob")
    cli.wait("ana: hello from ana")
    cli.type("hi browsers")
    wait_line(ana, "cli: hi browsers", "ana")
    wait_line(bob, "cli: hi browsers", "bob")

    # bob clicks ana's name to whisper to her.
    next(b for b in bob.find_elements(By.CSS_SELECTOR, "#people button.name")
         if b.text == "ana").click()
    say(bob, "psst ana")
    wait_line(ana, "[bob → me] psst ana", "ana")
    bob.find_element(By.ID, "to").click()  # back to everyone

    # Text that looks like HTML stays text.
    say(bob, "<img src=x onerror=document.title='owned'>")
    wait_line(ana, "bob: <img src=x onerror=document.title='owned'>", "ana")
    assert not ana.find_elements(By.CSS_SELECTOR, "#log img"), "HTML got into the page"
    assert ana.title == "mp1 chat", ana.title

    ana.save_screenshot(os.path.join(OUT, "chat.png"))
    ana.set_window_size(400, 800)
    time.sleep(0.3)
    ana.save_screenshot(os.path.join(OUT, "chat-phone.png"))
    ana.set_window_size(1000, 700)

    # The admin kicks bob: both pages, and the terminal, show it.
    kick = next(li for li in ana.find_elements(By.CSS_SELECTOR, "#people li")
                if li.find_element(By.CSS_SELECTOR, "button.name").text == "bob")
    kick.find_element(By.XPATH, ".//button[text()='kick']").click()
    wait_line(bob, "* disconnected: Kicked from the server.", "bob")
    wait_line(ana, "* bob has been kicked from the server.", "ana")
    cli.wait("* bob has been kicked from the server.")
    WebDriverWait(ana, WAIT).until(lambda d: online(d) == ["ana (you)", "cli"])
    cli.type("/quit")
    cli.p.wait(timeout=WAIT)
    print("browser chat: all steps passed")
finally:
    ana.quit()
    bob.quit()
