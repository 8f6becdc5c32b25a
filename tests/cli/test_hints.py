"""Commands kantai prints as hints, and the names users type from them, work as printed from any folder.

Before: ``kantai train sample_data`` (the README's and ``kantai runs``' own hint) failed outside the
checkout; ``kantai --runs-dir X`` was "invalid choice"; hints left out the ``--runs-dir`` a run was
found with, so the printed command looked in ./runs; ``fill-mask`` checked its text only after loading
the model; a whitespace-only corpus was trained on and a name with "ü" was refused as "not letters".
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.errors import BadInputError, DiskFullError, RunLockedError
from tests.helpers import ROOT, recorded_run


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder outside the checkout, as a user's home is."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


# --- the bundled corpus by name ------------------------------------------------------------------


def test_kant_names_the_bundled_corpus_from_any_folder(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "stats", "kant", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["nonempty_lines"] == 27_540 and data["path"] == str(bundled_corpus())


def test_a_real_path_named_kant_wins_over_the_bundled_corpus(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (elsewhere / "kant").mkdir()
    (elsewhere / "kant" / "mine.txt").write_text("my own corpus\n")
    code, out, _ = run(capsys, "stats", "kant", "--json")
    assert code == 0 and json.loads(out)["nonempty_lines"] == 1


def test_train_and_the_tui_take_the_bundled_name(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kantai_tui.core.runs import process

    monkeypatch.setattr(process, "start_detached", lambda runs_dir, name: 4242)  # the run is created, not trained
    code, out, err = run(capsys, "train", "kant", "--detach", "--run", "k", "--max-steps", "1")
    assert code == 0, err
    assert json.loads((elsewhere / "runs" / "k" / "run.json").read_text())["config"]["corpus"] == str(bundled_corpus())
    assert "watch: kantai follow k    stop: kantai stop k" in out  # ./runs: no --runs-dir to add

    opened = {}
    monkeypatch.setattr("kantai_tui.tui.app.run_app", lambda **kwargs: opened.update(kwargs) or 0)
    assert main(["tui", "--corpus", "kant"]) == 0
    assert opened["corpus"] == str(bundled_corpus())


def test_the_help_says_which_name_wins(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["stats", "--help"])
    assert "kant = the bundled Kant books (unless ./kant exists)" in " ".join(capsys.readouterr().out.split())


def test_the_readme_commands_name_the_bundled_corpus_so() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if "kantai " in line and "sample_data" in line]
    assert commands == [], "a README command that only works inside the checkout"


def test_the_readme_says_cpu_torch_before_the_first_install() -> None:
    readme = (ROOT / "README.md").read_text()
    cpu = readme.index("pip install torch --index-url https://download.pytorch.org/whl/cpu")
    assert cpu < readme.index("pip install -e . && kantai") and cpu < readme.index("<!-- ci:test -->")


# --- the default command's options ---------------------------------------------------------------


def test_options_of_the_default_command_work_without_tui(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: dict = {}
    monkeypatch.setattr("kantai_tui.tui.app.run_app", lambda **kwargs: opened.update(kwargs) or 0)
    assert main(["--runs-dir", str(tmp_path)]) == 0
    assert opened["runs_dir"] == str(tmp_path)
    assert main([f"--runs-dir={tmp_path}/b", "--corpus", "kant"]) == 0
    assert opened["runs_dir"] == f"{tmp_path}/b" and opened["corpus"] == str(bundled_corpus())
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("kantai ")


# --- hints carry --runs-dir ----------------------------------------------------------------------


def test_the_hint_builder_adds_runs_dir_only_when_it_is_not_the_default(elsewhere: Path) -> None:
    from kantai_tui.core.paths import kantai_command

    assert kantai_command("follow", "r", runs_dir="runs") == "kantai follow r"
    assert kantai_command("follow", "r", runs_dir=elsewhere / "runs") == "kantai follow r"
    assert kantai_command("follow", "r", runs_dir="/x/my runs") == "kantai follow r --runs-dir '/x/my runs'"
    assert kantai_command("tokenizer", "show", "a b") == "kantai tokenizer show 'a b'"


def test_an_empty_runs_folder_hint_works_as_printed(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "runs", "--runs-dir", str(tmp_path / "none"))
    assert code == 0
    assert f"start one with: kantai train kant --preset tiny --runs-dir {tmp_path}/none" in " ".join(out.split())


def test_lock_and_existing_run_hints_carry_the_runs_folder(tmp_path: Path) -> None:
    from kantai_tui.core.runs.folder import RunLock
    from kantai_tui.core.runs.process import create_run
    from kantai_tui.core.training.config import TrainConfig

    runs = tmp_path / "elsewhere"
    cfg = TrainConfig(corpus=str(ROOT / "tests" / "data" / "tiny_corpus.txt"), tokenizer_dir="", max_steps=1)
    run_dir = create_run(runs, "r", cfg, None)
    with pytest.raises(BadInputError, match=f"'kantai train --resume r --runs-dir {runs}'"):
        create_run(runs, "r", cfg, None)
    with RunLock(run_dir), pytest.raises(RunLockedError) as info:
        RunLock(run_dir).acquire()
    assert f"'kantai follow r --runs-dir {runs}' or stop it with 'kantai stop r --runs-dir {runs}'" in str(info.value)


def test_a_disk_full_hint_carries_the_runs_folder(tmp_path: Path) -> None:
    from kantai_tui.core.training.checkpoint import commit

    root = tmp_path / "elsewhere" / "r" / "checkpoints"
    root.mkdir(parents=True)

    def full(staging: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=f"'kantai train --resume r --runs-dir {tmp_path / 'elsewhere'}'"):
        commit(root, 1, full)


def test_a_stopped_run_followed_from_another_folder_says_how_to_resume_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = recorded_run(tmp_path)
    with (runs / "demo" / "metrics.jsonl").open("a") as rows:
        rows.write(json.dumps({"kind": "started", "run": "demo", "total_steps": 200, "start_step": 200}) + "\n")
        rows.write(json.dumps({"kind": "finished", "step": 200, "final_dir": None, "stopped": True}) + "\n")
    (runs / "demo" / "status.json").write_text(json.dumps({"state": "stopped", "step": 200}))
    code, out, _ = run(capsys, "follow", "demo", "--runs-dir", str(runs))
    assert code == 0
    assert f"resume with 'kantai train --resume demo --runs-dir {runs}'" in out


def test_a_null_in_a_step_row_is_shown_as_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = recorded_run(tmp_path)
    with (runs / "demo" / "metrics.jsonl").open("a") as rows:
        rows.write(json.dumps({"kind": "step", "step": 210, "loss": 5.0, "lr": None, "tokens_per_s": None}) + "\n")
    code, out, _ = run(capsys, "follow", "demo", "--runs-dir", str(runs))
    assert code == 0 and "skipped" not in out
    assert "lr —  — tok/s" in next(line for line in out.splitlines() if line.startswith("step    210"))


# --- checked before anything is loaded or created ------------------------------------------------


def test_fill_mask_checks_its_text_before_loading_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kantai_tui.core.fillmask import FillMask

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the text was checked")

    monkeypatch.setattr(FillMask, "open", no_loading)
    code, out, err = run(capsys, "fill-mask", "some-run", "no mask here", "--runs-dir", str(tmp_path))
    assert code == 2 and out == ""
    assert err == "kantai: error: no <mask> in the text: put <mask> where the model should fill in a word\n"


WHITESPACE = "kantai: error: {path}: holds only whitespace (no line with text); there is nothing to count or train on\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["stats", "{corpus}"],
        ["stats", "{corpus}", "--json"],
        ["tokenizer", "train", "{corpus}", "--out", "{tmp}/tok"],
        ["train", "{corpus}", "--runs-dir", "{tmp}/runs", "--max-steps", "1"],
    ],
    ids=["stats", "stats --json", "tokenizer train", "train"],
)
def test_a_whitespace_only_corpus_is_refused_before_anything_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    corpus = tmp_path / "blank.txt"
    corpus.write_text("  \n\t\n\n \u3000\n")
    code, out, err = run(capsys, *(a.format(corpus=corpus, tmp=tmp_path) for a in argv))
    assert (code, out, err) == (2, "", WHITESPACE.format(path=corpus))
    assert not (tmp_path / "tok").exists() and not (tmp_path / "runs").exists()


def test_a_name_with_a_non_ascii_letter_is_refused_as_not_ascii(tmp_path: Path) -> None:
    from kantai_tui.core.runs.folder import run_path

    with pytest.raises(BadInputError, match="must be 1-64 ASCII letters, digits"):
        run_path(tmp_path, "über")


def test_the_console_script_takes_kant_from_any_folder(tmp_path: Path) -> None:
    """The installed entry point, from a folder that is not the checkout."""
    kantai = shutil.which("kantai") or f"{sys.executable} -m kantai_tui"
    done = subprocess.run(
        [*kantai.split(), "stats", "kant", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["words"] == 302_714
