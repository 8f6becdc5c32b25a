"""Real training on CPU with the tiny preset: the loss falls, resume is exact, final/ works, faults are clear."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.errors import BadInputError
from kantai_tui.core.training import checkpoint
from kantai_tui.core.training.config import TrainConfig
from kantai_tui.core.training.events import EvalLogged, RunFinished, StepLogged
from kantai_tui.core.training.trainer import Trainer


@pytest.fixture
def cfg(small_corpus: Path, small_tokenizer: Path) -> TrainConfig:
    return TrainConfig(
        corpus=str(small_corpus),
        tokenizer_dir=str(small_tokenizer),
        preset="tiny",
        block_size=32,
        batch_size=8,
        max_steps=12,
        log_every=1,
        eval_every=6,
        checkpoint_every=100,
        seed=3,
    ).resolved()


def losses(trainer: Trainer, stop_after: int | None = None) -> list[tuple[int, float]]:
    stop = (lambda: trainer.state.step >= stop_after) if stop_after else (lambda: False)
    return [(e.step, e.loss) for e in trainer.events(stop) if isinstance(e, StepLogged)]


def test_loss_falls_and_final_loads_in_the_fill_mask_pipeline(cfg: TrainConfig, tmp_path: Path) -> None:
    from transformers import pipeline

    trainer = Trainer(replace(cfg, max_steps=40, log_every=5, eval_every=20), tmp_path / "run")
    events = list(trainer.events())
    steps = [e.loss for e in events if isinstance(e, StepLogged)]
    evals = [e.eval_loss for e in events if isinstance(e, EvalLogged)]
    assert steps[-1] < steps[0] - 1.0, steps
    assert evals[-1] < evals[0], evals
    finished = events[-1]
    assert isinstance(finished, RunFinished) and not finished.stopped
    fill = pipeline("fill-mask", model=finished.final_dir, tokenizer=finished.final_dir)
    assert len(fill("Human thinking involves human <mask>.")) == 5


@pytest.mark.parametrize("recipe", ["packed", "seed"])
def test_resume_is_exact(cfg: TrainConfig, tmp_path: Path, recipe: str) -> None:
    """Stopped after step 5 and resumed, a run logs the same losses for steps 6-12 as one never stopped."""
    cfg = replace(cfg, recipe=recipe, lr=1e-3)
    straight = losses(Trainer(cfg, tmp_path / "straight"))
    first = losses(Trainer(cfg, tmp_path / "stopped"), stop_after=5)
    assert [s for s, _ in first] == [1, 2, 3, 4, 5]
    assert checkpoint.newest_verified(tmp_path / "stopped" / "checkpoints").step == 5
    resumed = Trainer(cfg, tmp_path / "stopped")
    assert resumed.state.step == 5
    assert first + losses(resumed) == straight


def test_corpus_too_small_for_one_batch(cfg: TrainConfig, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("just one short line of text\n" * 3)
    with pytest.raises(
        BadInputError, match=r"the corpus is too small for one batch: \d+ blocks of 32 tokens for --batch-size 8"
    ):
        Trainer(replace(cfg, corpus=str(tiny)), tmp_path / "run")


def _cli(*argv: str) -> int:
    return main([str(a) for a in argv])


def test_cli_train_then_non_finite_loss_exits_5_and_keeps_the_checkpoint(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Weights that went bad (inf) are caught at the next log step: exit 5, status failed, checkpoint kept."""
    import torch
    from safetensors.torch import load_file, save_file

    runs = tmp_path / "runs"
    common = ["--runs-dir", runs, "--batch-size", 8, "--block-size", 32, "--log-every", 2, "--checkpoint-every", 4]
    assert _cli("train", small_corpus, "--tokenizer", small_tokenizer, "--run", "r", "--max-steps", 8, *common) == 0
    good = checkpoint.newest_verified(runs / "r" / "checkpoints")
    assert good is not None and good.step == 8
    weights = load_file(str(good.path / "model.safetensors"))
    weights = {k: (v * float("inf") if "embeddings" in k else v) for k, v in weights.items()}
    files = {p.name: p.read_bytes() for p in good.path.iterdir() if p.name not in ("MANIFEST.json", "COMPLETE")}

    def poisoned(folder: Path) -> None:
        for name, data in files.items():
            (folder / name).write_bytes(data)
        save_file(weights, str(folder / "model.safetensors"))

    checkpoint.commit(runs / "r" / "checkpoints", 8, poisoned)
    state = json.loads((good.path / "state.json").read_text())
    config = json.loads((runs / "r" / "run.json").read_text())
    config["config"]["max_steps"] = 12
    (runs / "r" / "run.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert state["step"] == 8 and torch.isinf(weights[next(k for k in weights if "embeddings" in k)]).any()
    assert _cli("train", "--resume", "r", "--runs-dir", runs) == 5
    err = capsys.readouterr().err
    assert "kantai: error: the loss became nan at step 10" in err
    status = json.loads((runs / "r" / "status.json").read_text())
    assert status["state"] == "failed" and status["exit_code"] == 5
    assert checkpoint.newest_verified(runs / "r" / "checkpoints").step == 8


def test_cli_refuses_a_folder_that_is_not_a_tokenizer(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("train", small_corpus, "--tokenizer", tmp_path, "--runs-dir", tmp_path / "runs") == 2
    assert "not a tokenizer folder (no tokenizer.json)" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_out_of_memory_names_the_batch_size(
    cfg: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """FAKE at the hardware boundary: this machine has no GPU to exhaust, so the step raises what torch raises."""
    import torch

    def exhausted(self: Trainer) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "_step", exhausted)
    runs = tmp_path / "runs"
    code = _cli(
        "train",
        cfg.corpus,
        "--tokenizer",
        cfg.tokenizer_dir,
        "--runs-dir",
        runs,
        "--run",
        "oom",
        "--batch-size",
        16,
        "--block-size",
        32,
    )
    err = capsys.readouterr().err
    assert code == 6
    assert "out of memory on cpu at --batch-size 16 (block size 32); try --batch-size 8 with --grad-accum 2" in err
    assert json.loads((runs / "oom" / "status.json").read_text())["exit_code"] == 6


def test_presets_command(capsys: pytest.CaptureFixture[str], small_tokenizer: Path) -> None:
    assert _cli("presets", "--json") == 0
    kantai = next(p for p in json.loads(capsys.readouterr().out)["presets"] if p["preset"] == "kantai")
    assert kantai["total"] == 83_504_416 and kantai["unused_rows"] == 0
    assert _cli("presets", "--tokenizer", small_tokenizer) == 0
    out = capsys.readouterr().out
    assert "83,504,416" in out and "84,095,008" in out and "590,592-parameter pooler" in out


def test_resume_refuses_when_no_checkpoint_verifies(
    cfg: TrainConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert (
        _cli(
            "train",
            cfg.corpus,
            "--tokenizer",
            cfg.tokenizer_dir,
            "--runs-dir",
            runs,
            "--run",
            "c",
            "--max-steps",
            4,
            "--batch-size",
            8,
            "--block-size",
            32,
            "--checkpoint-every",
            2,
        )
        == 0
    )
    shutil.rmtree(runs / "c" / "final")  # as if it stopped before the end: resume needs a checkpoint
    for _, path in checkpoint.list_checkpoints(runs / "c" / "checkpoints"):
        with (path / "model.safetensors").open("r+b") as handle:
            handle.seek(100)
            handle.write(b"\x00\x01\x02\x03")
    capsys.readouterr()
    assert _cli("train", "--resume", "c", "--runs-dir", runs) == 4
    err = capsys.readouterr().err
    assert "skipped checkpoint step-00000004: model.safetensors does not match its sha256" in err
    assert "none of its checkpoints verifies" in err


def test_device_and_run_errors_come_before_any_run_folder(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    runs = tmp_path / "runs"
    if not torch.cuda.is_available():  # on a GPU box cuda is a valid answer
        assert _cli("train", small_corpus, "--device", "cuda", "--runs-dir", runs) == 2
        assert "--device cuda: torch sees no CUDA device" in capsys.readouterr().err
    assert _cli("train", small_corpus, "--device", "tpu", "--runs-dir", runs) == 2
    assert "--device 'tpu': use auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert not runs.exists() or not list(runs.iterdir())
    assert _cli("probes", "nope", "--runs-dir", runs) == 2
    assert "no run named 'nope'" in capsys.readouterr().err


def test_a_planted_pickle_is_refused_not_executed(
    cfg: TrainConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """optimizer.pt replaced by a pickle that would create a file when unpickled, re-committed so the
    manifest verifies: resume reports a corrupt checkpoint (exit 4) and the payload never runs."""
    import pickle

    runs = tmp_path / "runs"
    assert (
        _cli(
            "train",
            cfg.corpus,
            "--tokenizer",
            cfg.tokenizer_dir,
            "--runs-dir",
            runs,
            "--run",
            "p",
            "--max-steps",
            2,
            "--batch-size",
            8,
            "--block-size",
            32,
            "--checkpoint-every",
            2,
        )
        == 0
    )
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    good = checkpoint.newest_verified(runs / "p" / "checkpoints")
    files = {p.name: p.read_bytes() for p in good.path.iterdir() if p.name not in ("MANIFEST.json", "COMPLETE")}
    files["optimizer.pt"] = pickle.dumps(Payload())

    def planted(folder: Path) -> None:
        for name, data in files.items():
            (folder / name).write_bytes(data)

    checkpoint.commit(runs / "p" / "checkpoints", good.step, planted)
    shutil.rmtree(runs / "p" / "final")  # as if it stopped before the end: resume loads the checkpoint
    capsys.readouterr()
    assert _cli("train", "--resume", "p", "--runs-dir", runs) == 4
    assert "cannot be loaded" in capsys.readouterr().err
    assert not marker.exists()


def test_an_unexpected_error_is_recorded_for_observers(
    cfg: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kantai_tui.core.runs import process

    def broken(self: Trainer) -> None:
        raise RuntimeError("boom in the step")

    monkeypatch.setattr(Trainer, "_step", broken)
    run = process.create_run(tmp_path / "runs", "bug", replace(cfg, tokenizer_dir=""), cfg.tokenizer_dir)
    with pytest.raises(RuntimeError, match="boom"):
        process.execute(run, lambda e: None, lambda n: None)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == "internal error: RuntimeError: boom in the step"


def test_the_trainer_yields_probe_rows_and_writes_no_probe_file(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    """The runner is the one writer of the run folder: the trainer hands probe rows over as an event."""
    from kantai_tui.core.runs.probes import Prober
    from kantai_tui.core.training.events import CheckpointSaved, ProbesEvaluated
    from kantai_tui.core.training.trainer import Trainer

    cfg = TrainConfig(
        corpus=str(small_corpus),
        tokenizer_dir=str(small_tokenizer),
        max_steps=4,
        batch_size=4,
        block_size=32,
        log_every=2,
        eval_every=4,
        checkpoint_every=2,
    ).resolved()
    trainer = Trainer(cfg, tmp_path / "run", probe=Prober(("Reason is the faculty of <mask>.",), small_tokenizer))
    events = list(trainer.events())
    kinds = [type(e) for e in events if isinstance(e, (CheckpointSaved, ProbesEvaluated))]
    assert kinds == [CheckpointSaved, ProbesEvaluated] * 2
    probes = [e for e in events if isinstance(e, ProbesEvaluated)]
    assert [p.step for p in probes] == [2, 4]
    assert probes[0].rows[0]["probe"] == "Reason is the faculty of <mask>." and len(probes[0].rows[0]["top"]) == 5
    assert not (tmp_path / "run" / "probes.jsonl").exists()
