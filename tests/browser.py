"""Headless Chromium for end-to-end tests, driven over the Chrome DevTools Protocol (no driver needed)."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.support import services

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without these a root, offline, fresh-profile Chromium stalls or phones home (DESIGN.md, measured facts).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


# Keys `Page.press` types: (DOM code, Windows virtual key code, text the key produces).
KEYS = {
    "Enter": ("Enter", 13, "\r"),
    "Escape": ("Escape", 27, ""),
    "Tab": ("Tab", 9, ""),
    " ": ("Space", 32, " "),
    "ArrowLeft": ("ArrowLeft", 37, ""),
    "ArrowUp": ("ArrowUp", 38, ""),
    "ArrowRight": ("ArrowRight", 39, ""),
    "ArrowDown": ("ArrowDown", 40, ""),
}
CTRL = 2
"""`Page.press` modifier bit of the Control key (CDP Input.dispatchKeyEvent)."""


class Page:
    """One tab: navigate, reload, evaluate JavaScript (awaiting promises), wait for a condition, type."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.console: list[str] = []
        self.credentials: tuple[str, str] | None = None
        self.auth_challenges = 0

    def answer_auth_challenges(self, username: str, password: str) -> None:
        """Answer every HTTP auth challenge (401 + WWW-Authenticate) of the pages with these credentials, as a
        person typing them into the browser's prompt would; Chromium then sends them on by itself."""
        self.credentials = (username, password)
        self.call("Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": "*"}])

    def send(self, method: str, **params: Any) -> int:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = self.send(method, **params)
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            event = message.get("method")
            if event == "Runtime.consoleAPICalled":
                args = message["params"]["args"]
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif event == "Fetch.requestPaused":
                self.send("Fetch.continueRequest", requestId=message["params"]["requestId"])
            elif event == "Fetch.authRequired" and self.credentials:
                self.auth_challenges += 1
                username, password = self.credentials
                answer = {"response": "ProvideCredentials", "username": username, "password": password}
                self.send(
                    "Fetch.continueWithAuth",
                    requestId=message["params"]["requestId"],
                    authChallengeResponse=answer,
                )
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                if value := self.evaluate(expression):
                    return value
            time.sleep(0.05)
        raise TimeoutError(f"{expression!r} still falsy after {timeout_s}s; console: {self.console[-10:]}")

    def press(self, key: str, modifiers: int = 0) -> None:
        """Press and release `key` as a keyboard does: trusted events, with the browser's default actions."""
        code, key_code, text = KEYS[key]
        down = {"key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers}
        self.call("Input.dispatchKeyEvent", type="keyDown", **down, **({"text": text} if text else {}))
        self.call("Input.dispatchKeyEvent", type="keyUp", **down)

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", text=text)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def reload(self) -> None:
        self.call("Page.reload")


@contextlib.contextmanager
def chromium_page(log_dir: Path) -> Iterator[Page]:
    """A fresh headless Chromium (own profile, free debugging port) and its first tab."""
    assert CHROMIUM, "chromium is not installed"
    port = services.free_port()
    with tempfile.TemporaryDirectory(prefix="pravis-chromium-", ignore_cleanup_errors=True) as profile:
        log = (log_dir / "chromium.log").open("ab")
        process = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown stops renderers and helpers too
        )
        log.close()
        try:
            services.wait_for_http(f"http://127.0.0.1:{port}/json/version", process, timeout_s=60)
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
            target = next(t for t in targets if t["type"] == "page")
            with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
                page = Page(ws)
                page.call("Page.enable")
                page.call("Runtime.enable")
                yield page
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
