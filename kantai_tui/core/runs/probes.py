"""Probes ("watch it learn"): fixed fill-mask sentences evaluated at every checkpoint of a run.

After each checkpoint the trainer yields the rows (``Prober`` computes them) and the runner appends
one line per probe to ``probes.jsonl``:
``{"step": 500, "probe": "...", "top": [["␣reason", 0.21], ...], "content": [true, ...]}`` (``content``:
each answer is a content word, quality.py's rule; the timeline marks each probe's first checkpoint
whose top answer is one: the moment the model says something). The default set includes the
tutorial's own test sentence; ``kantai train --probes FILE`` takes one sentence with ``<mask>`` per line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kantai_tui.core.errors import BadInputError
from kantai_tui.core.files import read_json_lines

if TYPE_CHECKING:
    from transformers import RobertaForMaskedLM

    from kantai_tui.core.fillmask import FillMask

DEFAULT_PROBES = (
    "Human thinking involves human <mask>.",
    "The Critique of Pure <mask>.",
    "Space and time are forms of <mask>.",
    "The moral law is a <mask> imperative.",
    "We can know nothing of things in <mask>.",
    "Reason is the faculty of <mask>.",
)
TOP_K = 5


def load_probes(path: str | Path | None) -> tuple[str, ...]:
    """The probe sentences: the defaults, or the lines of a file that contain ``<mask>``."""
    if path is None:
        return DEFAULT_PROBES
    file = Path(path).expanduser()
    try:
        lines = [ln.strip() for ln in file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise BadInputError(f"{file}: cannot read the probe file ({err})") from err
    without = [ln for ln in lines if "<mask>" not in ln]
    if not lines or without:
        raise BadInputError(
            f"{file}: every line of a probe file needs a <mask> (line without: {without[0]!r})"
            if without
            else f"{file}: the probe file is empty"
        )
    return tuple(lines)


class Prober:
    """The trainer's probe: fill-mask on the probe sentences with the model in memory, at a checkpoint.

    The FillMask wrapper is built once (it holds the tokenizer, read from disk) and wraps the
    trainer's own model, so no weights are copied or reloaded.
    """

    def __init__(self, sentences: tuple[str, ...], tokenizer_dir: str | Path) -> None:
        self.sentences = sentences
        self.tokenizer_dir = Path(tokenizer_dir)
        self._fill: FillMask | None = None

    def __call__(self, model: RobertaForMaskedLM, step: int, content: np.ndarray | None = None) -> list[dict]:
        from kantai_tui.core.fillmask import FillMask

        if self._fill is None:
            self._fill = FillMask.from_model(model, self.tokenizer_dir, "trainer")
        return probe_rows(self._fill, step, self.sentences, content)


def probe_rows(fill: FillMask, step: int, probes: tuple[str, ...], content: np.ndarray | None = None) -> list[dict]:
    """One row per probe: the top predictions for its first mask (and, given the run's content table
    [vocab] bool, which of them are content words)."""
    rows = []
    for text in probes:
        mask = fill.predict(text, TOP_K).masks[0]
        row: dict = {"step": step, "probe": text, "top": [[c.text, round(c.score, 5)] for c in mask.candidates]}
        if content is not None:
            row["content"] = [
                bool(content[c.token_id]) if c.token_id < len(content) else False for c in mask.candidates
            ]
        rows.append(row)
    return rows


def _probe_point(row: dict) -> dict | None:
    """The timeline point of a probes.jsonl row, or None for a row kantai did not write.

    Every consumer (``kantai probes``, the Fill-mask pane) formats each answer as a token and a
    probability and shows the first one, so this one reader keeps only ``[str, number]`` answers
    (with their content marks) and skips a row left with none: a hand-edited or foreign line never
    reaches them as a null, a missing key or an empty list.
    """
    step, top, marks = row.get("step"), row.get("top"), row.get("content")
    if not (isinstance(row.get("probe"), str) and _is_int(step) and isinstance(top, list)):
        return None
    kept = [
        i
        for i, answer in enumerate(top)
        if isinstance(answer, list) and len(answer) == 2 and isinstance(answer[0], str) and _is_number(answer[1])
    ]
    if not kept:
        return None
    point: dict = {"step": step, "top": [top[i] for i in kept]}
    if isinstance(marks, list) and len(marks) == len(top) and all(isinstance(m, bool) for m in marks):
        point["content"] = [marks[i] for i in kept]
    return point


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def probe_timeline(run_dir: Path) -> dict:
    """Probe results of a run grouped by sentence, in step order."""
    rows, _ = read_json_lines(run_dir / "probes.jsonl")
    probes: dict[str, dict[int, dict]] = {}
    for row in rows:  # keyed by step: a probe written twice (a kill between lines) counts once
        point = _probe_point(row)
        if point is not None:
            probes.setdefault(row["probe"], {})[point["step"]] = point
    timeline = []
    for text, by_step in probes.items():
        points = [by_step[s] for s in sorted(by_step)]
        first = next((p["step"] for p in points if p.get("content", [False])[:1] == [True]), None)
        timeline.append({"text": text, "points": points, "first_content_step": first})
    return {"run": run_dir.name, "probes": timeline}
