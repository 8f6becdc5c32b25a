"""textual-serve's server, made fit for ``kantai serve`` (issue 14). Imported only by ``serve``.

textual-serve 1.1 leaves to its user what ``kantai serve`` must guarantee:

- A tab's app is only *asked* to quit (a message on its stdin) when the tab goes. An app that does not
  answer stayed for good: seen, a tab closed during start-up left ``kantai_tui tui`` busy for minutes
  (its exit waits for the start-up scan's thread, and it takes SIGTERM as one more request to exit).
  And once the browser was gone nobody read the app's output, so an app still drawing blocked on a
  full pipe, deaf to everything but SIGKILL. Here the output is read until the process ends; one still
  there ``QUIT_GRACE_S`` after the request gets SIGTERM, then SIGKILL, to its process group (the app runs
  in a session of its own, exec'd without textual-serve's ``sh -c``). Should serve itself die, the
  kernel kills the apps (``PR_SET_PDEATHSIG``): an app does not notice its stdin closing.
- On SIGTERM or Ctrl-C serve waited aiohttp's shutdown timeout (60 s) for the open websockets and
  ended no process: here shutdown closes every tab and ends every app first.
- The page named the bind address (``http://HOST:PORT/static/…``, ``ws://HOST:PORT/ws``), so it worked
  only when opened at exactly that address: not through ``ssh -L 9000:127.0.0.1:8000``, nor with
  ``--host 0.0.0.0``. Here its references are relative and the websocket's address is made from the
  page's own location.
- The banner came before the port was bound (a taken port printed "Serving…", then failed): here the
  caller's ``announce`` runs once aiohttp has bound every address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shlex
import signal
import sys
from asyncio.subprocess import PIPE, Process
from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger("kantai.serve")

QUIT_GRACE_S = 2.0  # a textual app leaves well within this once asked; after it, it is not going to
TERM_GRACE_S = 1.0  # then SIGTERM to the group, then SIGKILL: nothing is lost, runs live in their own sessions
CLOSE_TIMEOUT_S = 3.0  # how long a closing websocket waits for the browser's reply (aiohttp: 10 s)
SHUTDOWN_TIMEOUT_S = 5.0  # aiohttp's wait for handlers, after every tab was closed (its default: 60 s)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Runs before textual.js reads the address (on window.onload): "ws", resolved against where this page
# came from (a tunnel's port, a proxy's name), with the page's scheme made a websocket one.
WEBSOCKET_FROM_LOCATION = """<script>
  for (const terminal of document.querySelectorAll("[data-session-websocket-url]")) {
    const url = new URL(terminal.dataset.sessionWebsocketUrl, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    terminal.dataset.sessionWebsocketUrl = url.href;
  }
</script>
"""


def _end_with_server() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the app when serve dies, even by SIGKILL (Linux).

    Elsewhere None: there serve's own shutdown is what ends the apps."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the forked child only calls it
    server = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != server:  # serve died before the line above: nobody would ever kill this one
            os._exit(1)

    return arm


async def end_process(process: Process, quit_grace: float = QUIT_GRACE_S, term_grace: float = TERM_GRACE_S) -> None:
    """Give ``process`` (already asked to quit) ``quit_grace`` seconds, then SIGTERM its group, then SIGKILL."""
    asked = "the request to quit"
    for signum, grace in ((None, quit_grace), (signal.SIGTERM, term_grace), (signal.SIGKILL, None)):
        if process.returncode is not None:
            return
        if signum is not None:
            asked = signum.name
            with contextlib.suppress(ProcessLookupError):  # it left in between
                os.killpg(process.pid, signum)
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except asyncio.TimeoutError:
            log.warning("a tab's app (pid %d) is still running %.0f s after %s", process.pid, grace, asked)


class TabApp(AppService):
    """One browser tab's ``kantai tui`` process, ended for sure once the tab is gone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._browser_gone = False
        self._ending: asyncio.Future[None] | None = None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        """The command itself, not ``sh -c`` (a signal reaches the app), in its own session (its group can
        be signalled as one; Ctrl-C at serve's terminal reaches serve, which ends the apps in order)."""
        self._process = process = await asyncio.create_subprocess_exec(
            *shlex.split(self.command),
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,
            preexec_fn=_end_with_server(),
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    def _to_app(self, packet: bytes) -> bool:
        """Write to the app's stdin without waiting for room (textual-serve drained): an app that reads
        nothing held the tab's handler in that wait, which then never saw the tab leave. What the app
        has not read yet waits in the transport's buffer here: a browser's typing, small."""
        if self.stdin.is_closing():
            return False
        self.stdin.write(packet)
        return True

    async def send_bytes(self, data: bytes) -> bool:
        """Keys and pastes from the browser (see ``_to_app``)."""
        return self._to_app(self.encode_packet(b"D", data))

    async def send_meta(self, data: dict[str, str | int | bool | None]) -> bool:
        """Resize, focus, quit (see ``_to_app``)."""
        return self._to_app(self.encode_packet(b"M", json.dumps(data).encode("utf-8")))

    async def on_data(self, payload: bytes) -> None:
        """To the browser while there is one; after, read and dropped, so the app never blocks on a full pipe
        (textual-serve stopped reading at the first failed send)."""
        if not self._browser_gone:
            try:
                await super().on_data(payload)
            except ConnectionResetError:
                self._browser_gone = True

    async def on_meta(self, data: bytes) -> None:
        """As ``on_data``: nothing for a browser that is gone (no downloads, no URLs to open)."""
        if not self._browser_gone:
            try:
                await super().on_meta(data)
            except ConnectionResetError:
                self._browser_gone = True

    async def stop(self) -> None:
        """End the app and its reader. Called by the tab's handler and by shutdown, maybe both: they share
        one ending, shielded so that a cancelled caller does not leave the app half ended."""
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())
        await asyncio.shield(self._ending)

    async def _end(self) -> None:
        self._browser_gone = True  # the tab is gone or going: nothing more is sent to it
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        process = self._process
        if process is not None:
            if process.returncode is None:
                await self.send_meta({"type": "quit"})
            await end_process(process)
        reader = self._task
        if reader is not None:
            done, _ = await asyncio.wait({reader}, timeout=TERM_GRACE_S)
            if not done:  # something outside the app's group (another session) still holds its stdout
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader  # what the reader raised, if anything, reaches the caller


class KantaiServer(Server):
    """textual-serve's Server with tabs whose apps always end, a page that names no address, and the
    banner (``announce``) once the port is bound."""

    def __init__(self, command: str, host: str, port: int, announce: Callable[[], None]) -> None:
        super().__init__(command, host=host, port=port, title="kantai")
        self._announce = announce
        self._tabs: dict[TabApp, web.WebSocketResponse] = {}

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve printed its banner here, before the port was bound."""

    async def on_shutdown(self, app: web.Application) -> None:
        """Close every tab and end every app before aiohttp waits for the handlers."""
        tabs = list(self._tabs.items())
        closing = [
            websocket.close(code=WSCloseCode.GOING_AWAY, message=b"kantai serve stopped") for _, websocket in tabs
        ]
        results = await asyncio.gather(*closing, *(tab.stop() for tab, _ in tabs), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("while ending a tab's app", exc_info=result)

    async def handle_index(self, request: web.Request) -> web.Response:
        """textual-serve's page with relative references: it works wherever it was loaded from."""
        router = request.app.router
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": router["websocket"].url_for().path.lstrip("/"),  # made absolute by the page
            "config": {"static": {"url": router["static"].url_for(filename="/").path.lstrip("/")}},
            "application": {"name": self.title},
        }
        page = aiohttp_jinja2.render_string("app_index.html", request, context)
        return web.Response(
            text=page.replace("</body>", WEBSOCKET_FROM_LOCATION + "</body>", 1), content_type="text/html"
        )

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's, with a TabApp that is always ended, and known to shutdown while it runs."""
        websocket = web.WebSocketResponse(heartbeat=15, timeout=CLOSE_TIMEOUT_S)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        await websocket.prepare(request)
        tab = TabApp(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self._tabs[tab] = websocket
        try:
            await tab.start(width, height)
            await self._process_messages(websocket, tab)
        except ConnectionResetError:  # the browser went while a reply (a pong) was on its way: it left
            log.debug("a tab went mid-reply")
        finally:
            del self._tabs[tab]
            await tab.stop()
            await websocket.close()
        return websocket

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT/SIGTERM. textual-serve's, with ``announce`` once bound and a short shutdown
        (the tabs were closed and their apps ended by ``on_shutdown``)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=False,
            loop=loop,
            print=lambda *_: self._announce(),  # aiohttp calls it once every address is bound
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
