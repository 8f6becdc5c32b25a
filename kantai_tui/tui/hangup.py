"""Leave when the terminal does: SSH drops, tmux kill-session, a closed window.

Without this, SIGHUP kills the TUI mid-frame, and under ``nohup`` (SIGHUP ignored) Textual's input
thread finds stdin at end-of-file forever and spins a core. The trainer a TUI started lives in
its own session, so leaving never stops training.

Leaving asks the app to exit, then, if it is still there after a grace period, ends the process:
Textual's shutdown writes to the terminal to restore it, and with the terminal gone that can block
(seen: a hang-up during start-up left the writer queue stuck). Nothing is lost by it: the screen
is gone and runs live in their own processes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from textual.app import App

from kantai_tui.core.errors import EXIT_HANGUP

CHECK_EVERY_S = 0.5
GRACE_S = 3.0
_leaving = threading.Event()  # one app per process: the first hang-up starts leaving, later ones wait


def leave(app: App) -> None:
    """Exit ``app`` with 129 from any thread or a signal handler; end the process if that stalls."""
    if _leaving.is_set():
        return
    _leaving.set()
    threading.Thread(target=_leave, args=(app,), name="kantai-hangup", daemon=True).start()


def _leave(app: App) -> None:
    if app.is_running:
        app.call_from_thread(app.exit, return_code=EXIT_HANGUP)
    time.sleep(GRACE_S)
    os._exit(EXIT_HANGUP)  # still here: the shutdown blocked on the dead terminal


def on_hangup(app: App) -> None:
    """SIGHUP leaves (from before the first frame on); under nohup (SIGHUP ignored) it stays ignored."""
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: leave(app))


def watch_terminal(app: App) -> None:
    """Leave once the terminal is gone even if no SIGHUP came (nohup): a hung-up tty stops being a tty."""
    stream = sys.__stdin__
    if stream is None or not os.isatty(stream.fileno()):
        return
    fd = stream.fileno()

    def check() -> None:
        if not os.isatty(fd):
            leave(app)

    app.set_interval(CHECK_EVERY_S, check)
