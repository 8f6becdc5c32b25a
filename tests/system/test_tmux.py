"""The whole journey in a real terminal: ``kantai`` inside tmux at 80×24, driven by ``send-keys``, read
with ``capture-pane``, asserting what a person would see. A real tokenizer, a real (tiny) run that is
stopped and resumed, fill-mask on its checkpoint, the device pane, quit."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kantai_tui.core.runs.folder import list_runs
from tests.helpers import TINY

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (Debian: apt-get install tmux; .ci/run does)"
)


class Tmux:
    """One detached tmux session on its own server socket, so nothing else is disturbed."""

    def __init__(self, socket: Path, command: str, size: tuple[int, int]) -> None:
        self.base = ["tmux", "-S", str(socket)]
        # tmux sizes a new detached pane just after starting its command: wait for that, as a person's
        # terminal has its size before they type a command
        subprocess.run(
            [
                *self.base,
                "new-session",
                "-d",
                "-s",
                "kantai",
                "-x",
                str(size[0]),
                "-y",
                str(size[1]),
                f"sleep 0.5; exec {command}",
            ],
            check=True,
        )

    def screen(self) -> str:
        done = subprocess.run([*self.base, "capture-pane", "-p", "-t", "kantai"], capture_output=True, text=True)
        return done.stdout

    def keys(self, *keys: str) -> None:
        """Key names (``Escape``, ``BTab``, ``3``), each sent on its own like a person typing them."""
        for key in keys:
            subprocess.run([*self.base, "send-keys", "-t", "kantai", key], check=True)
            # an Escape read together with the next key is Alt+key: leave the app time to read it alone
            time.sleep(1.0 if key == "Escape" else 0.25)

    def type(self, text: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "kantai", "-l", text], check=True)

    def wait_for(self, *texts: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            assert time.monotonic() < deadline, f"never saw {texts} on screen:\n{screen}"
            time.sleep(0.2)

    def alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", "kantai"], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture(params=[(80, 24), (120, 40)], ids=["80x24", "120x40"])
def tmux_session(request: pytest.FixtureRequest, tmp_path: Path, long_run: bool):
    if request.param == (80, 24) and not long_run:  # keeps the default suite under 5 minutes
        pytest.skip("the 80x24 journey runs with --long; every pane's 80x24 layout is in the snapshot tests")
    runs = tmp_path / "runs"
    env = f"env XDG_DATA_HOME={shlex.quote(str(tmp_path / 'data'))} XDG_CONFIG_HOME={shlex.quote(str(tmp_path / 'config'))}"
    command = (
        f"{env} {shlex.quote(sys.executable)} -m kantai_tui tui --corpus {shlex.quote(str(TINY))} "
        f"--runs-dir {shlex.quote(str(runs))}"
    )
    session = Tmux(tmp_path / "tmux.sock", command, request.param)
    yield session, runs
    session.kill()
    for run in list_runs(runs):  # a failed test leaves no trainer behind
        if run.state in ("preparing", "running", "stopping"):
            from kantai_tui.core.runs.process import stop_run

            stop_run(runs, run.name, wait_s=30)


def test_the_journey(tmux_session, small_corpus: Path) -> None:
    tmux, runs = tmux_session
    # 1 Corpus: open a corpus (o, type its path, enter) and read its statistics
    tmux.wait_for("1 Corpus", "non-empty lines", "tiny_corpus.txt")
    tmux.keys("o")
    tmux.wait_for("tiny_corpus.txt")
    tmux.keys("C-u")  # clear the prefilled path
    tmux.type(str(small_corpus))
    tmux.keys("Enter")
    tmux.wait_for("non-empty lines", "2,596", "top words")
    # 2 Tokenizer: the empty state says what to do; t trains; / searches
    tmux.keys("2")
    tmux.wait_for("no tokenizer yet — press t to train one")
    tmux.keys("t")
    tmux.wait_for("tokens (of 52,000 requested)", "<s>")
    tmux.keys("/")
    tmux.type("reason")
    tmux.wait_for("␣reason", "Ġreason")
    tmux.keys("Escape", "3")
    # 3 Training: the form takes the corpus and tokenizer; set max-steps, start, watch, stop, resume
    tmux.wait_for("new run", "max-steps", "no run attached — press s to")
    time.sleep(1.0)  # the pane is drawn before its runs list (the focus BTab counts from) is filled and focused
    tmux.keys("BTab", "BTab")
    tmux.type("300")
    tmux.keys("Escape", "s")
    tmux.wait_for("running · step 10/300", timeout=90)
    tmux.keys("x")
    screen = tmux.wait_for("stopped · step", timeout=60)
    assert "loss" in screen
    tmux.keys("R")
    tmux.wait_for("running · step", timeout=60)
    tmux.keys("x")
    tmux.wait_for("stopped · step", timeout=60)
    # 4 Fill-mask: the newest checkpoint of the run answers the tutorial's prompt; probes per checkpoint
    tmux.keys("4")
    tmux.wait_for("Human thinking involves human <mask>.", "%", "probes: top prediction at each checkpoint", timeout=60)
    # 5 Device: what torch sees, CPU and RAM
    tmux.keys("5")
    tmux.wait_for("torch", "CPU", "RAM")
    # ? help lists the pane's keys; q quits and the session ends with the app
    tmux.keys("3", "?")
    tmux.wait_for("Start run", "Stop run", "Resume run")
    tmux.keys("Escape", "q")
    deadline = time.monotonic() + 20
    while tmux.alive():
        assert time.monotonic() < deadline, "the app did not quit"
        time.sleep(0.2)
    [run] = list_runs(runs)
    assert run.state == "stopped" and run.step and run.step > 10  # the run the journey made, resumable


def test_layout_uses_200x60(tmp_path: Path, small_corpus: Path) -> None:
    """The big layout: everything the 80×24 one shows, with room to spare (no cut-off words)."""
    command = (
        f"env XDG_DATA_HOME={shlex.quote(str(tmp_path / 'data'))} {shlex.quote(sys.executable)} -m kantai_tui "
        f"tui --corpus {shlex.quote(str(small_corpus))} --runs-dir {shlex.quote(str(tmp_path / 'runs'))}"
    )
    tmux = Tmux(tmp_path / "tmux.sock", command, (200, 60))
    try:
        screen = tmux.wait_for("non-empty lines", "top words", "line length in characters")
        lines = screen.splitlines()
        size = subprocess.run(
            [*tmux.base, "display", "-p", "-t", "kantai", "#{window_width}x#{window_height}"],
            capture_output=True,
            text=True,
        ).stdout
        assert len(lines) >= 59 and max(len(line.rstrip()) for line in lines) > 150, (size, screen)  # the space is used
    finally:
        tmux.kill()
