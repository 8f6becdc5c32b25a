"""``kantai serve``: the same TUI in a browser, through textual-serve.

Each browser tab gets its own ``kantai tui`` process (textual-serve's design); runs are shared
through the runs folder as always. It binds 127.0.0.1 unless told otherwise: the app can start
training runs and read any file the user can, so exposing it is a choice the user makes with
``--host`` (and should put behind an SSH tunnel or an authenticating proxy). The page names no
address, so it works through a tunnel to another port; every tab's process ends when its tab goes
(``serve_server``, which holds what textual-serve is made to do here).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shlex
import socket
import sys
from pathlib import Path

from kantai_tui.core.errors import BadInputError

LOOPBACK = "127.0.0.1"


def tui_command(corpus: str | None, runs_dir: str | None, tokenizer: str | None = None) -> str:
    """The command each browser session runs (absolute paths, so they mean what the user typed).

    No ``runs_dir``: no ``--runs-dir``, so each tab's app opens the remembered runs folder, else ./runs
    (serve's working folder, which the apps share), exactly as ``kantai tui`` does."""
    parts = [sys.executable, "-m", "kantai_tui", "tui"]
    if runs_dir:
        parts += ["--runs-dir", str(Path(runs_dir).expanduser().resolve())]
    if corpus:
        parts += ["--corpus", str(Path(corpus).expanduser().resolve())]
    if tokenizer:
        parts += ["--tokenizer", str(Path(tokenizer).expanduser().resolve())]
    return shlex.join(parts)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def browse_url(host: str, port: int) -> str:
    """Where to point a browser at a server bound to ``host``:``port`` (0.0.0.0 is no address to browse)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}/"
    if address.is_unspecified:
        return f"http://{socket.gethostname()}:{port}/ (bound to {host}: every address of this machine)"
    return f"http://[{host}]:{port}/" if address.version == 6 else f"http://{host}:{port}/"


def why_not(err: OSError, host: str, port: int) -> str:
    """The reason a bind failed, in the user's terms (asyncio's message repeats the address as a tuple)."""
    if isinstance(err, socket.gaierror):
        return f"{host} is not a known host name"
    if err.errno == errno.EADDRINUSE:
        return f"port {port} is already in use (another kantai serve?); choose another with --port"
    if err.errno == errno.EACCES:
        return f"port {port} needs privileges (ports below 1024 do); choose another with --port"
    if err.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine; the default --host 127.0.0.1 is"
    return os.strerror(err.errno) if err.errno else str(err)


def serve(host: str, port: int, corpus: str | None, runs_dir: str | None, tokenizer: str | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM (which end every tab's app); the banner, and a warning if the
    address is reachable from other machines, once the port is bound: a taken port is one line, exit 2."""
    try:
        from kantai_tui.tui.serve_server import KantaiServer
    except ImportError as err:
        raise BadInputError("kantai serve needs textual-serve: pip install textual-serve") from err
    if not 1 <= port <= 65535:
        raise BadInputError(f"--port {port} must be between 1 and 65535")

    def announce() -> None:
        if not is_loopback(host):
            print(
                f"kantai: warning: serving on {host}: anyone who can reach port {port} can use kantai as you, "
                "start runs and read your files; prefer the default 127.0.0.1 and an SSH tunnel",
                file=sys.stderr,
                flush=True,
            )
        print(f"kantai: serving the TUI on {browse_url(host, port)} (Ctrl-C to stop)", flush=True)

    server = KantaiServer(tui_command(corpus, runs_dir, tokenizer), host=host, port=port, announce=announce)
    try:
        server.serve()
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise BadInputError(f"cannot serve on {host}:{port}: {why_not(err, host, port)}") from err
    return 0
