"""The bundled corpus travels inside the wheel and is found from any working directory."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import ROOT


def test_wheel_carries_the_corpus_and_finds_it(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("kantai_tui-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        "kantai_tui/sample_data/critique_of_pure_reason.txt",
        "kantai_tui/sample_data/README.md",
        "kantai_tui/tui/kantai.tcss",
    } <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what pip puts in site-packages
    code = "import kantai_tui; from kantai_tui.core.corpus.sample import bundled_corpus; print(kantai_tui.__file__); print(bundled_corpus())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd="/", env={"PYTHONPATH": str(site)}, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0].startswith(str(site)), "the installed copy, not the checkout, was imported"
    assert out[1] == str(site / "kantai_tui" / "sample_data")
