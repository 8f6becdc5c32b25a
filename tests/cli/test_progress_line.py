"""The CLI's progress line on stderr: shown once a phase has run a second, erased when it ends, silent off a
terminal."""

from __future__ import annotations

import pytest

from kantai_tui.core.progress import Progress


def test_the_stderr_line_shows_a_phase_after_a_second_and_erases_itself(capsys: pytest.CaptureFixture[str]) -> None:
    from kantai_tui.cli.render import ProgressLine

    line = ProgressLine(visible=True)
    line.show(Progress("encoding the token cache", 10 << 20, 40 << 20, 0.5))  # under a second: not yet
    assert capsys.readouterr().err == ""
    line.show(Progress("encoding the token cache", 20 << 20, 40 << 20, 2.0))
    assert (
        capsys.readouterr().err
        == "\r\x1b[2Kencoding the token cache 50% · 20.0 MiB of 40.0 MiB · 10.0 MiB/s · 0m02s left"
    )
    line.show(Progress("encoding the token cache", 40 << 20, 40 << 20, 4.0))  # done: the line goes
    assert capsys.readouterr().err == "\r\x1b[2K"
    quiet = ProgressLine(visible=False)  # not a terminal, or --json
    quiet.show(Progress("packing blocks", 1, 9, 5.0, "blocks"))
    quiet("packing blocks", 1, 9)
    assert capsys.readouterr().err == ""
