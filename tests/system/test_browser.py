"""``kantai serve`` end to end: the real server (textual-serve) on 127.0.0.1, the real app behind it,
and Debian's Chromium, headless, driven through the DevTools protocol: the page must receive the
app's output and show a rendered screen (xterm.js draws on a canvas, so the screenshot is checked)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
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


def start_serve(port: int, *options: str, log: Path | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """``kantai serve`` on 127.0.0.1:``port`` with the tiny corpus, in its own session (tests signal it)."""
    out = log.open("w") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "kantai_tui", "serve", "--port", str(port), "--corpus", str(TINY), *options],
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port}"
            time.sleep(0.1)


@contextlib.asynccontextmanager
async def tunnel(target_port: int) -> AsyncIterator[int]:
    """What ``ssh -L OTHER:127.0.0.1:PORT`` does: a local port whose connections go to ``target_port``.

    The page is then loaded from an address the server was never told about, so anything in it that
    names the bind address (host or port) breaks, as it did through a real tunnel."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except ConnectionError:  # the other side went: so does this one (finally)
            return
        finally:
            writer.close()

    writers: set[asyncio.StreamWriter] = set()
    forwarding: set[asyncio.Task] = set()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        forwarding.add(asyncio.current_task())  # type: ignore[arg-type]
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        writers.update((writer, upstream_writer))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    listener = await asyncio.start_server(forward, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        for writer in writers:  # the tunnel goes, with its connections (as when ssh ends)
            writer.close()
        if forwarding:  # each ends with its connections, before the loop goes
            await asyncio.wait(forwarding)


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
                    # no body yet while the new document loads (seen through the tunnel's extra hop)
                    body = "document.body ? document.body.className : ''"
                    classes = (await call("Runtime.evaluate", expression=body))["result"]["value"]
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
    server = start_serve(port, "--runs-dir", str(tmp_path / "runs"))
    try:
        _wait_for_port(port)
        import psutil

        bound = {c.laddr.ip for c in psutil.Process(server.pid).net_connections() if c.status == psutil.CONN_LISTEN}
        assert bound == {"127.0.0.1"}  # this machine only, by default
        classes, png = asyncio.run(_load_in_chromium(f"http://127.0.0.1:{port}/", tmp_path / "profile"))
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # serve ends the app process it started for the page
        server.wait(timeout=20)
    assert "-first-byte" in classes  # the app's output reached the page
    image = Image.open(io.BytesIO(png)).convert("RGB")
    (tmp_path / "kantai-serve.png").write_bytes(png)
    colours = sorted(image.getcolors(1 << 20), reverse=True)
    drawn = 1 - colours[0][0] / (image.width * image.height)
    assert colours[0][1] != (12, 24, 31), "still the waiting page's background"
    assert len(colours) > 16 and drawn > 0.05, f"looks blank: {len(colours)} colours, {drawn:.1%} drawn"


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run does)"
)
def test_the_page_works_in_chromium_through_a_tunnel_to_another_port(tmp_path: Path) -> None:
    """``ssh -L 9000:127.0.0.1:8000``: the page, its script and its websocket all come through port 9000
    (before, the page named http://127.0.0.1:8000/static/... and ws://127.0.0.1:8000/ws)."""
    port = _free_port()
    server = start_serve(port, "--runs-dir", str(tmp_path / "runs"))

    async def through_a_tunnel() -> str:
        async with tunnel(port) as other_port:
            classes, _ = await _load_in_chromium(f"http://127.0.0.1:{other_port}/", tmp_path / "profile")
            return classes

    try:
        _wait_for_port(port)
        classes = asyncio.run(through_a_tunnel())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    assert "-first-byte" in classes  # the app's output reached the page, through the other port


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
