"""``kantai serve`` as a server (issue 14): real ``kantai serve`` processes, real HTTP and websockets.

- Every tab's app ends when the tab goes, even an app that answers neither textual-serve's quit
  message nor SIGTERM. Seen: a tab closed during start-up left ``kantai_tui tui`` busy for minutes
  (its exit waits for the start-up scan thread; SIGTERM only asks it to exit again), and an app whose
  output nobody reads any more blocks on a full pipe. A stopped process (SIGSTOP) stands in for both:
  deaf to the quit message and to SIGTERM, ended only by SIGKILL.
- SIGTERM to serve ends every app it started (before, serve waited aiohttp's 60 s for the open
  websockets, and an app that did not answer stayed).
- The page names no address: loaded through another port (an SSH tunnel) its script and websocket
  come through that port too.
- Without ``--runs-dir`` the app opens the remembered runs folder, as ``kantai tui`` does.
- A taken port is one line naming it, exit 2, and no "serving" banner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin

import aiohttp  # textual-serve's own dependency
import psutil

from kantai_tui.core.prefs import FILE, config_home, load_preferences
from tests.helpers import TINY
from tests.system.test_browser import _free_port, _wait_for_port, start_serve, tunnel

WITHIN_S = 30.0  # only how long to wait before calling it a failure: the tests assert no speed


def _is_app(process: psutil.Process) -> bool:
    """A tab's ``python -m kantai_tui tui`` (not textual-serve's ``sh -c`` wrapper, if there is one)."""
    try:
        return process.cmdline()[1:4] == ["-m", "kantai_tui", "tui"]
    except psutil.Error:
        return False


def _ended(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _eventually(condition: Callable[[], bool], within: float = WITHIN_S) -> bool:
    """Poll ``condition`` until it holds or ``within`` seconds passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


class Served:
    """A ``kantai serve`` process and every app process seen under it (the test ends what is left)."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.seen: dict[int, psutil.Process] = {}

    def apps(self) -> list[psutil.Process]:
        """The app processes serve runs now (looked up by cmdline: what serve spawns is its business)."""
        try:
            found = [p for p in psutil.Process(self.process.pid).children(recursive=True) if _is_app(p)]
        except psutil.NoSuchProcess:
            return []
        self.seen.update((p.pid, p) for p in found)
        return [p for p in found if not _ended(p)]

    async def wait_for_apps(self, count: int) -> list[psutil.Process]:
        assert await _eventually(lambda: len(self.apps()) >= count), f"serve did not start {count} app(s)"
        return self.apps()

    def ws_url(self, width: int = 80, height: int = 24) -> str:
        return f"http://127.0.0.1:{self.port}/ws?width={width}&height={height}"


@contextlib.contextmanager
def _serving(tmp_path: Path, *options: str, cwd: Path | None = None) -> Iterator[Served]:
    port = _free_port()
    log = tmp_path / "serve.log"
    served = Served(start_serve(port, *options, log=log, cwd=cwd or tmp_path), port, log)
    try:
        _wait_for_port(port)
        yield served
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=20)
        for app in served.seen.values():  # whatever the test left behind, also when it failed
            with contextlib.suppress(psutil.Error):
                app.kill()


async def test_an_app_ends_when_its_tab_leaves_during_start_up_even_one_that_answers_nothing(
    tmp_path: Path,
) -> None:
    with _serving(tmp_path, "--runs-dir", str(tmp_path / "runs")) as served:
        async with aiohttp.ClientSession() as session:
            deaf = await session.ws_connect(served.ws_url())
            (stuck,) = await served.wait_for_apps(1)  # starting
            stuck.suspend()  # SIGSTOP: answers neither the quit message nor SIGTERM from now on
            quiet = await session.ws_connect(served.ws_url())
            (starting,) = [app for app in await served.wait_for_apps(2) if app.pid != stuck.pid]
            for _ in range(64):  # typing into the stuck one: more than its stdin pipe holds
                await deaf.send_json(["stdin", "x" * 4096])
            await quiet.close()
            await deaf.close()
        assert await _eventually(lambda: _ended(starting)), "the app of a tab that left is still running"
        assert await _eventually(lambda: _ended(stuck)), "the app that answered nothing is still there"
        assert served.process.poll() is None  # serve itself goes on, for the next tab
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{served.port}/") as page:
            assert page.status == 200


async def test_sigterm_to_serve_ends_every_app_it_started(tmp_path: Path) -> None:
    with _serving(tmp_path, "--runs-dir", str(tmp_path / "runs")) as served:
        async with aiohttp.ClientSession() as session:
            tabs = [await session.ws_connect(served.ws_url()) for _ in range(2)]
            apps = await served.wait_for_apps(2)
            apps[0].suspend()  # one of them answers nothing
            served.process.send_signal(signal.SIGTERM)  # the tabs stay open: serve must close them
            assert await _eventually(lambda: served.process.poll() is not None), "serve did not end on SIGTERM"
            for tab in tabs:
                await tab.close()
        assert await _eventually(lambda: all(_ended(app) for app in apps)), "serve left app processes behind"


def _absolute_urls(html: str) -> list[str]:
    return re.findall(r"""(?:https?|wss?)://[^\s"'<>]+""", html)


async def test_the_page_works_through_a_tunnel_to_another_port(tmp_path: Path) -> None:
    with _serving(tmp_path, "--runs-dir", str(tmp_path / "runs")) as served:
        async with tunnel(served.port) as other_port, aiohttp.ClientSession() as session:
            page_url = f"http://127.0.0.1:{other_port}/"
            async with session.get(page_url) as page:
                assert page.status == 200
                html = await page.text()
            here = [url for url in _absolute_urls(html) if re.search(r"127\.0\.0\.1|localhost|0\.0\.0\.0", url)]
            assert here == [], f"the page names the bind address: {here}"
            # what a browser does with the page's references: resolve them against where the page came from
            script = urljoin(page_url, re.search(r'<script src="([^"]+)"', html)[1])  # type: ignore[index]
            assert script.startswith(page_url)
            async with session.get(script) as reply:
                assert reply.status == 200
            ws_reference = re.search(r'data-session-websocket-url="([^"]*)"', html)[1]  # type: ignore[index]
            ws_url = urljoin(page_url, ws_reference)  # the page's script turns http: into ws:
            assert ws_url.startswith(page_url)
            async with session.ws_connect(f"{ws_url}?width=80&height=24") as ws:
                message = await asyncio.wait_for(ws.receive(), WITHIN_S)
                assert message.type == aiohttp.WSMsgType.BINARY and message.data  # the app's first frame
    assert f"http://127.0.0.1:{served.port}/" in served.log.read_text()  # the banner says where to go


async def test_serve_opens_the_remembered_runs_folder(tmp_path: Path) -> None:
    remembered = tmp_path / "remembered-runs"
    prefs = config_home() / FILE  # the test's own XDG_CONFIG_HOME (conftest), which serve inherits
    prefs.parent.mkdir(parents=True, exist_ok=True)
    written = json.dumps({"runs_dir": str(remembered)})  # compact: the app rewrites it indented on mount
    prefs.write_text(written, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with _serving(tmp_path, cwd=elsewhere) as served:
        async with aiohttp.ClientSession() as session, session.ws_connect(served.ws_url()):
            assert await _eventually(lambda: prefs.read_text(encoding="utf-8") != written), "the app never mounted"
    assert load_preferences().runs_dir == str(remembered)  # before: serve passed ./runs, which the app then kept


def test_a_port_in_use_is_one_line_naming_it_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "kantai_tui", "serve", "--port", str(port), "--corpus", str(TINY)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stdout == ""  # no "Serving ... on http://..." for a server that never served
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kantai: error: "), result.stderr
    assert f"port {port}" in lines[0] and "in use" in lines[0] and "--port" in lines[0]
