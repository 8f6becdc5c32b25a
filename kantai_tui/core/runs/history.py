"""A run's whole history as data, and runs compared: what ``kantai runs``, ``compare``, ``export`` and the
TUI's overlay read.

One reader (``load_history``) turns a run folder into its trajectory (the step and eval rows as training
actually went, rewound at every resume, typed by ``metrics_row``), its resolved config and its lineage.
Held-out evaluations are placed on all three x-axes (steps, tokens, seconds) by the step rows around
them, so "the loss at equal tokens" and "the loss at equal time" are the same interpolation of the same
points for every reader. Plain data: no rich, no textual.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kantai_tui.core.files import read_json, read_json_lines
from kantai_tui.core.runs.folder import NAME_RE, effective_state, metrics_row, read_status, trajectory
from kantai_tui.core.runs.smoothing import smoothed_last

X_AXES = ("step", "tokens", "elapsed_s")  # the x-axes every chart and comparison can use
# keys that differ between any two runs without saying anything about how they train (the run's own
# tokenizer path), and the schedule segment of an extension or fork, which lineage shows instead
LOCAL_KEYS = frozenset({"tokenizer_dir", "segment_step", "segment_s", "segment_lr", "fresh_optimizer_at"})
# the settings people compare first, in this order; the other differing keys follow alphabetically
LEADING_KEYS = (
    "preset",
    "recipe",
    "lr",
    "batch_size",
    "grad_accum",
    "block_size",
    "epochs",
    "max_steps",
    "time_s",
    "schedule",
    "warmup_ratio",
    "mlm_probability",
    "attention_span",
    "dropout",
    "weight_decay",
    "seed",
    "corpus",
)


@dataclass
class RunHistory:
    """Everything a comparison needs of one run, read once."""

    name: str
    path: Path
    state: str
    config: dict
    status: dict
    steps: list[dict] = field(default_factory=list)  # step rows, in step order, each step once
    evals: list[dict] = field(default_factory=list)  # eval rows, each with tokens and elapsed_s placed
    parent: dict | None = None  # {"run", "step"} for a fork (run.json's "parent")
    extensions: list[dict] = field(default_factory=list)  # run.json's "extensions": where its length grew

    @property
    def last_step(self) -> dict:
        return self.steps[-1] if self.steps else {}

    @property
    def last_eval(self) -> dict:
        return self.evals[-1] if self.evals else {}

    def series(self, y: str, x: str = "step", evals: bool = False) -> list[tuple[float, float]]:
        """(x, y) points of one field, skipping rows without either (a null, a row from an older kantai)."""
        rows = self.evals if evals else self.steps
        return [(row[x], row[y]) for row in rows if _number(row.get(x)) and _number(row.get(y))]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_history(run_dir: Path, with_parent: bool = False) -> RunHistory:
    """Read a run folder: run.json, status.json and metrics.jsonl (a torn last line is left for later).

    ``with_parent``: a fork's history begins with its parent's up to the step it started from (marked
    ``"inherited": True``), as its weights do, so it is compared with other runs over its whole training."""
    return _load(run_dir, with_parent, frozenset())


def _load(run_dir: Path, with_parent: bool, seen: frozenset[str]) -> RunHistory:
    record = read_json(run_dir / "run.json") or {}
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    rows, _ = read_json_lines(run_dir / "metrics.jsonl")
    typed = [r for r in map(metrics_row, rows) if r is not None]
    kept = trajectory(typed)
    steps = _once_per_step([r for r in kept if r.get("kind") == "step"])
    axes = {key: [(s["step"], s[key]) for s in steps if _number(s.get(key))] for key in ("tokens", "elapsed_s")}
    evals = [_placed(e, axes) for e in _once_per_step([r for r in kept if r.get("kind") == "eval"])]
    parent = record.get("parent")
    parent = parent if isinstance(parent, dict) and isinstance(parent.get("run"), str) else None
    if with_parent and parent is not None:
        steps, evals = _inherit(run_dir, parent, steps, evals, seen | {run_dir.name})
    extensions = record.get("extensions")
    return RunHistory(
        name=run_dir.name,
        path=run_dir,
        state=effective_state(run_dir),
        config=config or {},
        status=read_status(run_dir),
        steps=steps,
        evals=evals,
        parent=parent,
        extensions=[e for e in extensions if isinstance(e, dict)] if isinstance(extensions, list) else [],
    )


def _inherit(
    run_dir: Path, parent: dict, steps: list[dict], evals: list[dict], seen: frozenset[str]
) -> tuple[list[dict], list[dict]]:
    """The parent's rows up to the fork step (its own parent's before those), then the run's own."""
    step, name = parent.get("step"), str(parent["run"])
    if not isinstance(step, int) or NAME_RE.match(name) is None or name in seen:  # seen: a run.json edited into a loop
        return steps, evals  # a hand-edited parent that is no run's name is not followed out of the runs folder
    folder = run_dir.parent / name
    if not (folder / "run.json").is_file() or folder.is_symlink():
        return steps, evals
    before = _load(folder, True, seen)
    mark = lambda rows: [{**r, "inherited": True} for r in rows if r["step"] <= step]  # noqa: E731
    return mark(before.steps) + steps, mark(before.evals) + evals


def _once_per_step(rows: list[dict]) -> list[dict]:
    """Rows by step, the last one written for a step winning (a row written twice around a kill counts once)."""
    by_step = {row["step"]: row for row in rows}
    return [by_step[s] for s in sorted(by_step)]


def _placed(row: dict, axes: dict[str, list[tuple[int, float]]]) -> dict:
    """An eval row with the tokens and training seconds at its step, read from the step rows around it
    (``axes``: each x-axis's (step, value) points, built once per history, not once per evaluation)."""
    placed = dict(row)
    for key, points in axes.items():
        value = interpolate(points, row["step"])
        if value is not None:
            placed[key] = int(value) if key == "tokens" else value
    return placed


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """y at ``x`` on the polyline through ``points`` (sorted by x); None outside them."""
    if not points or x < points[0][0] or x > points[-1][0]:
        return None
    right = bisect.bisect_left(points, x, key=lambda point: point[0])  # the first point at or after x
    x1, y1 = points[right]
    if x1 == x or right == 0:
        return y1
    x0, y0 = points[right - 1]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def crossing(points: Sequence[tuple[float, float]], target: float) -> float | None:
    """The first x where the polyline through ``points`` comes down to ``target``; None if it never does."""
    previous: tuple[float, float] | None = None
    for x, y in points:
        if y <= target:
            if previous is None or previous[1] == y:
                return x
            x0, y0 = previous
            return x0 + (x - x0) * (y0 - target) / (y0 - y)
        previous = (x, y)
    return None


def config_diff(configs: Sequence[dict]) -> dict[str, list[object]]:
    """The keys whose values differ between the configs (run.json's resolved values), each with one value
    per config (None where a config lacks it), the leading settings first; the run's own paths are left out."""
    keys = {k for c in configs for k in c} - LOCAL_KEYS
    differing = [k for k in keys if len({_hashable(c.get(k)) for c in configs}) > 1]
    order = {k: i for i, k in enumerate(LEADING_KEYS)}
    differing.sort(key=lambda k: (order.get(k, len(order)), k))
    return {k: [c.get(k) for c in configs] for k in differing}


def _hashable(value: object) -> object:
    return repr(value) if isinstance(value, (list, dict)) else value


def probe_answers(run_dir: Path) -> dict[str, list[list]]:
    """Each probe sentence's top answers at the run's latest probed checkpoint."""
    from kantai_tui.core.runs.probes import probe_timeline  # here: probes loads numpy, the TUI's first frame must not

    return {p["text"]: p["points"][-1]["top"] for p in probe_timeline(run_dir)["probes"] if p["points"]}


# --- comparing runs ---------------------------------------------------------------------------

QUALITY_KEYS = ("eval_loss", "mask_acc", "content_acc", "cloze_hits1", "cloze_hits5")
POINTS = 4  # where along the shared range the runs are compared: its start, end and two between


def shared_range(histories: Sequence[RunHistory], x: str) -> tuple[float, float] | None:
    """The span of ``x`` (tokens or seconds) where every run has held-out evaluations on both sides: from
    the latest first evaluation to the earliest last one. None when the runs share no such span."""
    series = [h.series("eval_loss", x, evals=True) for h in histories]
    if not all(series):
        return None
    start, end = max(s[0][0] for s in series), min(s[-1][0] for s in series)
    return (start, end) if start <= end else None


def at_equal(histories: Sequence[RunHistory], x: str) -> list[dict]:
    """Held-out loss of every run at the same tokens (or seconds), at POINTS places across the range they
    share, interpolated between each run's evaluations."""
    span = shared_range(histories, x)
    if span is None:
        return []
    start, end = span
    places = [start] if end == start else [start + (end - start) * i / (POINTS - 1) for i in range(POINTS)]
    return [
        {x: at, "eval_loss": [interpolate(h.series("eval_loss", x, evals=True), at) for h in histories]}
        for at in places
    ]


def to_target(history: RunHistory, target: float) -> dict[str, float | None]:
    """Steps, tokens and seconds until the held-out loss first came down to ``target`` (None: it never did)."""
    return {x: crossing(history.series("eval_loss", x, evals=True), target) for x in X_AXES}


def default_target(histories: Sequence[RunHistory]) -> float | None:
    """The worst final held-out loss among the runs: the lowest loss every one of them reached."""
    finals = [h.last_eval.get("eval_loss") for h in histories]
    known = [f for f in finals if _number(f)]
    return max(known) if known else None  # type: ignore[type-var]


def compare(histories: Sequence[RunHistory], target: float | None = None) -> dict:
    """Everything ``kantai compare`` shows, as JSON-ready data (``render.print_compare`` draws it)."""
    target = default_target(histories) if target is None else target
    runs = []
    for h in histories:
        last = h.last_step
        runs.append(
            {
                "run": h.name,
                "state": h.state,
                "parent": h.parent,
                "extensions": len(h.extensions),
                "step": last.get("step"),
                "tokens": last.get("tokens"),
                "elapsed_s": last.get("elapsed_s"),
                "tokens_per_s": last.get("tokens_per_s"),
                "train_loss_smoothed": smoothed_last(h.steps),
                "final": {k: h.last_eval.get(k) for k in QUALITY_KEYS},
                "final_step": h.last_eval.get("step"),
                "to_target": None if target is None else to_target(h, target),
                "probes": probe_answers(h.path),
            }
        )
    return {
        "runs": runs,
        "config_diff": config_diff([h.config for h in histories]),
        "target": target,
        "at_equal_tokens": at_equal(histories, "tokens"),
        "at_equal_time": at_equal(histories, "elapsed_s"),
        "first_to_target": _first(runs, target),
    }


def _first(runs: list[dict], target: float | None) -> dict | None:
    """The run that reached the target in the fewest training seconds (and fewest tokens)."""
    reached = [r for r in runs if r["to_target"] and r["to_target"]["elapsed_s"] is not None]
    if target is None or not reached:
        return None
    best = min(reached, key=lambda r: r["to_target"]["elapsed_s"])
    with_tokens = [r for r in runs if r["to_target"] and r["to_target"]["tokens"] is not None]
    by_tokens = min(with_tokens, key=lambda r: r["to_target"]["tokens"])["run"] if with_tokens else None
    return {"by_time": best["run"], "by_tokens": by_tokens}


# --- the runs table ---------------------------------------------------------------------------

# --sort COLUMN: the row field it sorts by, and whether larger is first (best or newest first)
SORTS: dict[str, tuple[str, bool]] = {
    "updated": ("updated", True),
    "name": ("run", False),
    "state": ("state", False),
    "step": ("step", True),
    "tokens": ("tokens", True),
    "time": ("elapsed_s", True),
    "speed": ("tokens_per_s", True),
    "loss": ("eval_loss", False),
    "masked": ("mask_acc", True),
    "content": ("content_acc", True),
}


def run_row(history: RunHistory, differing: dict[str, list[object]], index: int) -> dict:
    """One run as a row of ``kantai runs``: where it is, how fast, what it knows, how it differs."""
    last, evaluated, status = history.last_step, history.last_eval, history.status
    return {
        "run": history.name,
        "state": history.state,
        "step": last.get("step", status.get("step")),
        "total_steps": status.get("total_steps"),
        "tokens": last.get("tokens"),
        "elapsed_s": last.get("elapsed_s"),
        "tokens_per_s": last.get("tokens_per_s"),
        "eval_loss": evaluated.get("eval_loss"),
        "mask_acc": evaluated.get("mask_acc"),
        "content_acc": evaluated.get("content_acc"),
        "parent": history.parent,
        "extensions": len(history.extensions),
        "settings": {k: values[index] for k, values in differing.items()},
        "updated": status.get("updated"),
        "error": status.get("error"),
        "path": str(history.path),
    }


def runs_table(histories: Sequence[RunHistory], sort: str = "updated") -> list[dict]:
    """``kantai runs``: one row per run, sorted by ``sort`` (best or newest first; runs without the
    figure last), with the settings that differ between the runs listed."""
    differing = config_diff([h.config for h in histories])
    rows = [run_row(h, differing, i) for i, h in enumerate(histories)]
    key, descending = SORTS[sort]
    known = [r for r in rows if r[key] is not None]
    unknown = [r for r in rows if r[key] is None]
    return sorted(known, key=lambda r: r[key], reverse=descending) + unknown
