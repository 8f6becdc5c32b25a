"""``kantai serve`` end to end: the real server (textual-serve) on 127.0.0.1, the real app behind it,
and Debian's Chromium, headless, driven through the DevTools protocol: the page must receive the
app's output and show a rendered screen (xterm.js draws on a canvas, so the screenshot is checked)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kantai_tui.tui.serve import is_loopback, tui_command
from tests.helpers import TINY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port}"
            time.sleep(0.1)


async def _load_in_chromium(url: str, profile: Path) -> tuple[str, bytes]:
    """Open ``url``; once the app's first bytes arrived, give it a moment to draw; (body classes, PNG)."""
    import aiohttp  # textual-serve's own dependency

    browser = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        for line in browser.stderr:  # type: ignore[union-attr]
            if match := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                port = match.group(1)
                break
        assert port, "Chromium did not open its DevTools port"
        async with aiohttp.ClientSession() as session:
            pages = await (await session.get(f"http://127.0.0.1:{port}/json")).json()
            page = next(p for p in pages if p["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                calls = iter(range(1, 10_000))

                async def call(method: str, **params: object) -> dict:
                    ident = next(calls)
                    await ws.send_json({"id": ident, "method": method, "params": params})
                    while True:  # events arrive in between; the reply carries our id
                        reply = await ws.receive_json()
                        if reply.get("id") == ident:
                            return reply["result"]

                await call("Page.navigate", url=url)
                classes, deadline = "", time.monotonic() + 30
                while "-first-byte" not in classes and time.monotonic() < deadline:
                    await asyncio.sleep(0.25)
                    classes = (await call("Runtime.evaluate", expression="document.body.className"))["result"]["value"]
                await asyncio.sleep(2.0)  # the first frames
                shot = await call("Page.captureScreenshot", format="png")
                return classes, base64.b64decode(shot["data"])
    finally:
        browser.kill()
        browser.wait(timeout=10)


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run does)"
)
def test_kantai_serve_renders_the_app_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kantai_tui",
            "serve",
            "--port",
            str(port),
            "--corpus",
            str(TINY),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_for_port(port)
        import psutil

        bound = {c.laddr.ip for c in psutil.Process(server.pid).net_connections() if c.status == psutil.CONN_LISTEN}
        assert bound == {"127.0.0.1"}  # this machine only, by default
        classes, png = asyncio.run(_load_in_chromium(f"http://127.0.0.1:{port}/", tmp_path / "profile"))
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the app process it started for the page
        server.wait(timeout=20)
    assert "-first-byte" in classes  # the app's output reached the page
    image = Image.open(io.BytesIO(png)).convert("RGB")
    (tmp_path / "kantai-serve.png").write_bytes(png)
    colours = sorted(image.getcolors(1 << 20), reverse=True)
    drawn = 1 - colours[0][0] / (image.width * image.height)
    assert colours[0][1] != (12, 24, 31), "still the waiting page's background"
    assert len(colours) > 16 and drawn > 0.05, f"looks blank: {len(colours)} colours, {drawn:.1%} drawn"


def test_serve_binds_loopback_unless_told_and_quotes_its_command(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    odd = tmp_path / "runs; rm -rf ~"
    command = tui_command(str(TINY), str(odd))
    assert f"'{odd}'" in command and command.startswith(sys.executable)


def test_serve_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    from kantai_tui.cli import main

    assert main(["serve", "--port", "70000"]) == 2
    assert "kantai: error: --port 70000 must be between 1 and 65535" in capsys.readouterr().err
