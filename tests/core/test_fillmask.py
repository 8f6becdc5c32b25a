"""Fill-mask and probes on a model trained inside the tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.errors import BadInputError, CorruptCheckpointError
from kantai_tui.core.fillmask import FillMask


@pytest.fixture(scope="module")
def fill(trained_run: Path) -> FillMask:
    return FillMask.open(trained_run)


def test_five_ranked_probabilities(fill: FillMask) -> None:
    result = fill.predict("Human thinking involves human <mask>.")
    (mask,) = result.masks
    scores = [c.score for c in mask.candidates]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    assert all(c.sequence.startswith("Human thinking involves human") for c in mask.candidates)
    assert result.source == "probe-run/final"


def test_scores_match_the_transformers_pipeline(fill: FillMask, trained_run: Path) -> None:
    """Same model, same prompt: the pipeline's probabilities agree (it normalises over all rows, we over real tokens)."""
    from transformers import pipeline

    final = str(trained_run / "final")
    theirs = pipeline("fill-mask", model=final, tokenizer=final)("Human thinking involves human <mask>.")
    ours = fill.predict("Human thinking involves human <mask>.").masks[0].candidates
    assert [t["token"] for t in theirs] == [c.token_id for c in ours]
    assert all(math.isclose(t["score"], c.score, rel_tol=0.02) for t, c in zip(theirs, ours, strict=True))


def test_several_masks_are_independent_lists(fill: FillMask) -> None:
    result = fill.predict("The <mask> of pure <mask>.", top_k=3)
    assert [m.index for m in result.masks] == [0, 1] and all(len(m.candidates) == 3 for m in result.masks)
    assert result.to_dict()["independent"] is True


def test_errors(fill: FillMask, trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no <mask> in the text"):
        fill.predict("Nothing to fill here.")
    with pytest.raises(
        BadInputError, match=r"the text is \d+ tokens \(with <s> and </s>\); this model takes at most 512"
    ):
        fill.predict("reason " * 600 + "<mask>")
    with pytest.raises(BadInputError, match="not a model folder"):
        FillMask.open(tmp_path)
    with pytest.raises(BadInputError, match=r"has no checkpoint at step 7 \(it has: 20, 10\)"):
        FillMask.open(trained_run, step=7)


def test_a_checkpoint_that_fails_verification(trained_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    with (run / "checkpoints" / "step-00000010" / "model.safetensors").open("r+b") as handle:
        handle.seek(64)
        handle.write(b"\xff\xff")
    with pytest.raises(
        CorruptCheckpointError, match=r"fails verification: model\.safetensors does not match its sha256"
    ):
        FillMask.open(run, step=10)
    assert FillMask.open(run, step=20).source.label == "copy/step-00000020"


def test_cli_fill_mask_json(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fill-mask", str(trained_run / "final"), "Human thinking involves human <mask>.", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    candidates = data["masks"][0]["candidates"]
    assert len(candidates) == 5 and all(0 < c["score"] < 1 for c in candidates)
    assert main(["fill-mask", "probe-run", "no mask", "--runs-dir", str(trained_run.parent)]) == 2
    assert "kantai: error: no <mask> in the text" in capsys.readouterr().err


def test_probes_recorded_at_each_checkpoint(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probes", "probe-run", "--runs-dir", str(trained_run.parent), "--json"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    texts = [p["text"] for p in timeline["probes"]]
    assert "Human thinking involves human <mask>." in texts
    assert all([pt["step"] for pt in p["points"]] == [10, 20] for p in timeline["probes"])
    assert main(["probes", "probe-run", "--runs-dir", str(trained_run.parent)]) == 0
    assert "Human thinking involves human <mask>." in capsys.readouterr().out


def test_bad_probe_file(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probes = tmp_path / "probes.txt"
    probes.write_text("A sentence with a <mask>.\nA sentence without one.\n")
    code = main(
        [
            "train",
            str(small_corpus),
            "--tokenizer",
            str(small_tokenizer),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--probes",
            str(probes),
        ]
    )
    assert (
        code == 2
        and "every line of a probe file needs a <mask> (line without: 'A sentence without one.')"
        in capsys.readouterr().err
    )
