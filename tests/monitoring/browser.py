"""Screenshots of a page behind HTTPS and basic auth, by Debian's headless Chromium.

Chromium trusts the given CA through an NSS database of its own (a temporary HOME), never
an ignore-certificate flag. The password goes in an Authorization header set over the
DevTools protocol: a URL with credentials would work for the page but not for the
single-page app's own API calls (fetch refuses URLs with credentials), and would put the
password on a command line.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

STARTUP_DEADLINE = 30.0


class DevTools:
    """One page of a running Chromium, driven over its DevTools websocket."""

    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=60)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})

    def wait_event(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if json.loads(self.socket.recv()).get("method") == method:
                return
        raise AssertionError(f"DevTools: no {method} within {timeout:.0f}s")

    def close(self) -> None:
        self.socket.close()


def screenshots(
    ca_file: Path,
    user: str,
    password: str,
    pages: dict[str, tuple[Path, str]],
    settle_s: float = 5.0,
) -> None:
    """Save a PNG of each URL of `pages` ({url: (png path, text the page must show)}),
    logged in as `user`; fail when the page does not show its text."""
    chromium, certutil = shutil.which("chromium"), shutil.which("certutil")
    assert chromium and certutil, "chromium or certutil missing: run scripts/bootstrap --browser"
    with tempfile.TemporaryDirectory(prefix="chromium-") as home:
        nssdb = Path(home) / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        subprocess.run([certutil, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
        subprocess.run(
            [certutil, "-A", "-d", f"sql:{nssdb}", "-n", "ca", "-t", "C,,", "-i", str(ca_file)],
            check=True,
        )
        profile = Path(home) / "profile"
        browser = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # root, in a test: Chromium's sandbox refuses to run as root
                "--disable-gpu",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
                "about:blank",
            ],
            env={"HOME": home, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = _devtools_port(profile, browser)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            tools = DevTools(page["webSocketDebuggerUrl"])
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            tools.call("Network.enable")
            tools.call("Page.enable")
            tools.call("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {token}"})
            for url, (out, text) in pages.items():
                tools.call("Page.navigate", url=url)
                tools.wait_event("Page.loadEventFired")
                time.sleep(settle_s)  # the app's API calls and rendering
                shot = tools.call("Page.captureScreenshot", format="png")
                out.write_bytes(base64.b64decode(shot["data"]))
                shown = tools.call(
                    "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
                )["result"].get("value", "")
                assert text in shown, (
                    f"{url} does not show {text!r} (screenshot {out}):\n{shown[:500]}"
                )
            tools.close()
        finally:
            browser.terminate()
            browser.wait(timeout=30)


def _devtools_port(profile: Path, browser: subprocess.Popen) -> int:
    deadline = time.monotonic() + STARTUP_DEADLINE
    port_file = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if port_file.is_file() and port_file.read_text().strip():
            return int(port_file.read_text().splitlines()[0])
        if browser.poll() is not None:
            raise AssertionError(f"chromium exited with {browser.returncode}")
        time.sleep(0.2)
    raise AssertionError("chromium did not open its DevTools port within 30 s")
