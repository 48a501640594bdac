"""`workbench serve-rating` end to end: a real server subprocess on 127.0.0.1 driven by a real
headless Chromium (Debian's `chromium`, through Playwright), and what a bad link gets.

The page is Textual inside xterm.js (drawn on a canvas), so the screen is read from the
terminal bytes the browser receives over its websocket, and keys are typed with the keyboard.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from support import REPO, experiment_with_runs

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
ANSI = re.compile(r"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]"  # CSI: cursor moves, colours
                  r"|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]")  # OSC, charsets
ITEMS = 3


@pytest.fixture
def rating_ws(tmp_path):
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    opened = open_workspace(root, seed=False)
    try:
        exp = experiment_with_runs(opened.store, ITEMS, name="web")
    finally:
        opened.close()
    return root, exp.id


class Served:
    """A `workbench serve-rating` subprocess and the links it printed."""

    def __init__(self, root: Path, exp_id: int, *raters: str):
        args = [sys.executable, "-m", "workbench", "--workspace", str(root), "serve-rating",
                str(exp_id), "--port", "0"]
        for rater in raters:
            args += ["--rater", rater]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.links = self._wait_links(raters)
        self.base = re.match(r"http://[^/]+", next(iter(self.links.values()))).group(0)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _wait_links(self, raters) -> dict[str, str]:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            link = re.compile(r"\s+(\S+)\s+(http://127\.0\.0\.1:\d+/rate/\S+)$")
            links = dict(m.groups() for line in self.lines if (m := link.match(line)))
            if set(links) == set(raters):
                return links
            assert self.process.poll() is None, "\n".join(self.lines)
            time.sleep(0.1)
        raise AssertionError("no links printed:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def served(rating_ws):
    servers = []

    def start(*raters: str) -> Served:
        servers.append(Served(rating_ws[0], rating_ws[1], *raters))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def rate_app_processes(root: Path) -> list[int]:
    """Pids of running rating apps on this workspace (one per browser connection)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "screens.rate_app" in cmdline and str(root) in cmdline:
                found.append(int(entry.name))
    return found


def stored(root: Path) -> list[dict]:
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        return store.rows("""SELECT s.rater, s.source, r.* FROM ratings r
                             JOIN rating_sessions s ON s.id = r.session_id ORDER BY r.id""")


def wait_until(condition, what: str, timeout: float = 60.0, *, pause=time.sleep):
    """``condition()`` once true; ``pause`` waits between tries (Playwright's sync API only
    delivers websocket frames while one of its calls runs: pass a page's wait_for_timeout)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause(0.1)
    return value


class Terminal:
    """One browser page on a rating link; ``text()`` is what the terminal was sent since
    ``mark()`` (escape sequences removed)."""

    def __init__(self, browser, url: str):
        self.frames: list[bytes] = []
        self.sockets: list[str] = []
        self.page = browser.new_page(viewport={"width": 1500, "height": 950})
        self.page.on("websocket", self._socket)
        self.response = self.page.goto(url)
        self.start = 0

    def _socket(self, ws) -> None:
        self.sockets.append(ws.url)
        ws.on("framereceived", lambda payload: self.frames.append(
            payload if isinstance(payload, bytes) else b""))

    def mark(self) -> None:
        self.start = len(self.frames)

    def text(self) -> str:
        raw = b"".join(self.frames[self.start:]).decode("utf-8", "replace")
        return " ".join(ANSI.sub(" ", raw).split())

    def pause(self, seconds: float) -> None:
        self.page.wait_for_timeout(seconds * 1000)

    def wait_for(self, needle: str, timeout: float = 60.0) -> None:
        wait_until(lambda: needle in self.text(), f"{needle!r} on the page", timeout,
                   pause=self.pause)

    def press(self, *keys: str) -> None:
        self.page.focus(".xterm-helper-textarea")
        for key in keys:
            self.page.keyboard.press(key)


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; "
                    ".ci/run installs it when run as root)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


IDENTITY = re.compile(r"web-(prod|cand)|\bfake\b|100\.0|latency|\bModels\b|\bResults\b|"
                      r"Datasets|Fine-tune|Experiments")


def test_two_raters_rate_in_chromium_and_the_rows_land_in_the_db(rating_ws, served, browser):
    root, exp_id = rating_ws
    server = served("ana", "bob")
    ana = Terminal(browser, server.links["ana"])
    assert ana.response.status == 200
    ana.wait_for("0 / 3 rated")
    ana.wait_for("Response 2")
    ana.press("1", "Enter")  # pair 1: prefer response 1
    wait_until(lambda: len(stored(root)) == 1, "ana's first rating", pause=ana.pause)
    ana.wait_for("1 / 3 rated")
    ana.mark()
    ana.press("a", "4", "5", "3", "2", "t", "n")  # pair 2: scores, a tie, a note
    ana.wait_for("Note on this pair")
    ana.page.keyboard.type("web note")
    ana.mark()
    ana.press("Enter")  # keeps the note...
    ana.wait_for("note: web note")
    ana.press("Enter")  # ...and stores the rating
    wait_until(lambda: len(stored(root)) == 2, "ana's second rating", pause=ana.pause)
    ana.wait_for("2 / 3 rated")
    ana.press("u")  # undo: the tie is deleted and pair 2 is shown again
    wait_until(lambda: len(stored(root)) == 1, "the undo", pause=ana.pause)
    ana.wait_for("1 / 3 rated")
    ana.press("b", "Enter")  # pair 2 again: both bad
    wait_until(lambda: len(stored(root)) == 2, "ana's new second rating", pause=ana.pause)

    bob = Terminal(browser, server.links["bob"])  # a second rater at the same time
    bob.wait_for("rater bob")
    bob.wait_for("0 / 3 rated")
    bob.press("2", "Enter")
    wait_until(lambda: len(stored(root)) == 3, "bob's rating", pause=ana.pause)
    bob.wait_for("1 / 3 rated")
    assert len(rate_app_processes(root)) == 2  # one app per browser connection

    ana.page.reload()  # resume: a new connection, a new app, the same session
    ana.mark()
    ana.wait_for("2 / 3 rated")
    for terminal in (ana, bob):  # all the browsers received: nothing names a model or screen
        terminal.start = 0
        text = terminal.text()
        assert "Incident" in text and IDENTITY.search(text) is None, IDENTITY.search(text)

    rows = stored(root)
    by_rater = Counter(r["rater"] for r in rows)
    assert by_rater == {"ana": 2, "bob": 1} and {r["source"] for r in rows} == {"browser"}
    first, second, bobs = rows[0], rows[1], rows[2]
    assert (first["choice"], first["preferred_arm"]) == ("1", first["left_arm"])
    assert (second["choice"], second["preferred_arm"]) == ("both_bad", None)
    assert (bobs["choice"], bobs["preferred_arm"]) == ("2", bobs["right_arm"])
    assert {first["left_arm"], second["left_arm"]} == {"A", "B"}  # counterbalanced sides
    assert first["seconds"] is not None and second["notes"] is None  # the undone note went too
    assert first["session_id"] != bobs["session_id"]
    server.stop()  # Ctrl+C / SIGTERM: the raters' apps end with the server
    wait_until(lambda: rate_app_processes(root) == [], "the rating apps to exit", 30)


def test_the_note_and_scores_typed_in_the_browser_are_stored(rating_ws, served, browser):
    root, _ = rating_ws
    server = served("cy")
    cy = Terminal(browser, server.links["cy"])
    cy.wait_for("0 / 3 rated")
    cy.wait_for("Response 2")
    cy.press("a", "4", "5", "3", "2", "t", "n")
    cy.wait_for("Note on this pair")
    cy.page.keyboard.type("web note")
    cy.mark()
    cy.press("Enter")  # keeps the note...
    cy.wait_for("note: web note")
    cy.press("Enter")  # ...and stores the rating
    row = wait_until(lambda: stored(root), "cy's rating", pause=cy.pause)[0]
    assert (row["accuracy_1"], row["safety_1"], row["accuracy_2"], row["safety_2"]) == (4, 5, 3, 2)
    assert (row["choice"], row["notes"]) == ("tie", "web note")


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def upgrade(base: str, path: str, origin: str | None = None) -> int:
    """The status of a websocket handshake on ``path``."""
    host = base.split("://", 1)[1]
    connection = http.client.HTTPConnection(host, timeout=30)
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    if origin:
        headers["Origin"] = origin
    connection.request("GET", path, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_wrong_or_missing_token_gets_nothing(rating_ws, served, browser):
    root, _ = rating_ws
    server = served("ana")
    good = server.links["ana"].rsplit("/", 1)[1]
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for path in ("/", "/rate/", f"/rate/{wrong}", "/rate/%00", f"/rate/{good}x"):
        status, body = get(server.base + path)
        assert status in (403, 404), (path, status)
        assert "textual.js" not in body and "queue backlog" not in body and "ws/" not in body
    for path in (f"/ws/{wrong}", "/ws/", f"/ws/{good[:10]}"):
        assert upgrade(server.base, path) in (403, 404), path
    assert upgrade(server.base, f"/ws/{good}", origin="http://evil.example") == 403
    assert rate_app_processes(root) == []  # no app was started for any of them

    page = Terminal(browser, f"{server.base}/rate/{wrong}")
    assert page.response.status == 403
    assert "not valid" in page.page.content()
    page.pause(1.0)
    assert page.sockets == [] and page.frames == [] and rate_app_processes(root) == []
    assert stored(root) == []
    status, body = get(server.links["ana"])  # the right link still works
    assert status == 200 and f"/ws/{good}" in body
