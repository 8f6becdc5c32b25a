"""``kantai serve``: the same TUI in a browser, through textual-serve.

Each browser tab gets its own ``kantai tui`` process (textual-serve's design); runs are shared
through the runs folder as always. It binds 127.0.0.1 unless told otherwise: the app can start
training runs and read any file the user can, so exposing it is a choice the user makes with
``--host`` (and should put behind an SSH tunnel or an authenticating proxy).
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from pathlib import Path

from kantai_tui.core.errors import BadInputError

LOOPBACK = "127.0.0.1"


def tui_command(corpus: str | None, runs_dir: str, tokenizer: str | None = None) -> str:
    """The shell command each browser session runs (absolute paths: the server's cwd is not the app's)."""
    parts = [sys.executable, "-m", "kantai_tui", "tui", "--runs-dir", str(Path(runs_dir).expanduser().resolve())]
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


def serve(host: str, port: int, corpus: str | None, runs_dir: str, tokenizer: str | None = None) -> int:
    """Serve until Ctrl-C; a warning first if the address is reachable from other machines."""
    try:
        from textual_serve.server import Server
    except ImportError as err:
        raise BadInputError("kantai serve needs textual-serve: pip install textual-serve") from err
    if not 1 <= port <= 65535:
        raise BadInputError(f"--port {port} must be between 1 and 65535")
    if not is_loopback(host):
        print(
            f"kantai: warning: serving on {host}: anyone who can reach port {port} can use kantai as you, "
            "start runs and read your files; prefer the default 127.0.0.1 and an SSH tunnel",
            file=sys.stderr,
        )
    server = Server(tui_command(corpus, runs_dir, tokenizer), host=host, port=port, title="kantai")
    try:
        server.serve()
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise BadInputError(f"cannot serve on {host}:{port}: {err.strerror or err}") from err
    return 0
