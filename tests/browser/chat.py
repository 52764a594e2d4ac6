"""Two people chat in real browsers (headless Chromium, through Selenium)
with a third in the terminal program, against one mp1d: names, a taken
name asked again, chat both ways, a whisper by clicking a name, the online
list, the terminal program's commands typed in the page (/msg, /list,
/nick, /help, an unknown one), text that looks like HTML staying text, and
the admin kicking someone, who gets back in by the Reconnect button.
Screenshots of the page go to OUT_DIR.

usage: chat.py URL MP1_BINARY MP1D_TCP_ADDR OUT_DIR
"""
import os
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(__file__))
import chat_common  # noqa: E402
from chat_common import WAIT, browser, join, log_lines, online, say, wait_line  # noqa: E402

URL, MP1, TCP, OUT = sys.argv[1:5]


def Terminal(name):
    return chat_common.Terminal(MP1, TCP, name)


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
    # One whisper: then back to everyone.
    assert not bob.find_element(By.ID, "to").is_displayed(), "whisper mode stayed on"

    # The terminal program's commands work in the page too.
    say(ana, "/msg bob typed psst")
    wait_line(bob, "[ana → me] typed psst", "bob")
    wait_line(ana, "[me → bob] typed psst", "ana")
    say(ana, "/list")
    wait_line(ana, "* online (3): ana, bob, cli", "ana")
    say(ana, "/dance")
    wait_line(ana, "unknown command /dance; /help lists them", "ana")
    say(ana, "/help")
    WebDriverWait(ana, WAIT).until(
        lambda d: any(l.startswith("commands:") and "/msg NAME" in l for l in log_lines(d)))
    say(ana, "/time")
    WebDriverWait(ana, WAIT).until(
        lambda d: any(l.startswith("* server time: ") for l in log_lines(d)))
    say(ana, "/nick anna")
    wait_line(ana, "* ana has changed username to anna.", "ana")
    WebDriverWait(ana, WAIT).until(lambda d: d.find_element(By.ID, "status").text == "logged in as anna")
    say(ana, "/nick ana")
    wait_line(ana, "* anna has changed username to ana.", "ana")
    say(ana, "//slash")
    wait_line(bob, "ana: /slash", "bob")
    assert "ana: /msg bob typed psst" not in cli.lines, cli.lines

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

    # Kicked: what needs the server is greyed out, and a button brings
    # bob back under the same name (no automatic return after a kick).
    again = bob.find_element(By.ID, "again")
    WebDriverWait(bob, WAIT).until(lambda d: again.is_displayed())
    assert not bob.find_element(By.ID, "text").is_enabled(), "input still live after a kick"
    assert all(not b.is_enabled() for b in bob.find_elements(By.CSS_SELECTOR, "#people button"))
    assert "offline" in bob.find_element(By.TAG_NAME, "body").get_attribute("class")
    bob.save_screenshot(os.path.join(OUT, "kicked.png"))
    time.sleep(1.5)
    assert "bob" not in (online(ana) or []), "bob came back by himself"
    again.click()
    WebDriverWait(bob, WAIT).until(
        lambda d: d.find_element(By.ID, "status").text == "logged in as bob")
    assert bob.find_element(By.ID, "text").is_enabled()
    WebDriverWait(ana, WAIT).until(lambda d: online(d) == ["ana (you)", "cli", "bob"])
    say(bob, "back again")
    wait_line(ana, "bob: back again", "ana")
    cli.type("/quit")
    cli.p.wait(timeout=WAIT)
    print("browser chat: all steps passed")
finally:
    ana.quit()
    bob.quit()
