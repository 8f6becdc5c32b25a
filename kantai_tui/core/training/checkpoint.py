"""The checkpoint commit protocol: a checkpoint is either complete and verified, or not there.

Write every file into ``checkpoints/.staging-step-N``, fsync each, write ``MANIFEST.json``
(name, size, sha256 of every file), fsync, write ``COMPLETE``, rename the folder to
``step-00000N``, fsync the parent. A crash at any moment leaves either a staging folder
(ignored and cleaned up) or a full checkpoint. Readers trust a checkpoint only if its
manifest verifies; resume takes the newest that does and says why it skipped others.
Nothing here unpickles: tensors are safetensors, state is JSON, and the optimizer state is
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kantai_tui.core.errors import DiskFullError, disk_full_cause
from kantai_tui.core.files import fsync_dir, fsync_file
from kantai_tui.core.paths import kantai_command

# how far a stopped-and-resumed run's logged losses may stray from an unbroken run's, relative, by device kind
# (docs/RELIABILITY.md): a CPU is exact; CUDA's embedding and attention backward add in a nondeterministic order
RESUME_TOLERANCE = {"cpu": 1e-6, "cuda": 1e-3}

MANIFEST = "MANIFEST.json"
COMPLETE = "COMPLETE"
PREFIX = "step-"


@dataclass(frozen=True)
class Verified:
    """A checkpoint folder whose manifest matched every file."""

    path: Path
    step: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def commit(root: Path, step: int, write: Callable[[Path], None]) -> Path:
    """Create checkpoint ``step`` under ``root`` by the protocol; ``write`` fills the staging folder."""
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{PREFIX}{step:08d}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        staging.mkdir()
        _fill(staging, step, write)
    except Exception as err:
        shutil.rmtree(staging, ignore_errors=True)  # give back the space a full disk needs
        reason = disk_full_cause(err)
        if reason is None:
            raise
        raise DiskFullError(
            f"disk full: no room to write checkpoint step {step} under {root} ({reason}); {what_is_kept(root)}; "
            f"free space, then resume with '{kantai_command('train', '--resume', root.parent.name, runs_dir=root.parent.parent)}'"
        ) from err
    final = root / f"{PREFIX}{step:08d}"
    if final.exists():
        shutil.rmtree(final)
    os.rename(staging, final)
    fsync_dir(root)
    return final


def _fill(staging: Path, step: int, write: Callable[[Path], None]) -> None:
    """Write, fsync, manifest, COMPLETE: everything before the rename that makes it a checkpoint."""
    write(staging)
    files = sorted(p for p in staging.iterdir() if p.is_file())
    for path in files:
        fsync_file(path)
    manifest = {
        "step": step,
        "files": [{"name": p.name, "size": p.stat().st_size, "sha256": _sha256(p)} for p in files],
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    fsync_file(staging / MANIFEST)
    (staging / COMPLETE).write_text("ok\n")
    fsync_file(staging / COMPLETE)
    fsync_dir(staging)


def what_is_kept(root: Path) -> str:
    """What a resume would start from, said truthfully in a failure message."""
    newest = newest_verified(root)
    return f"checkpoint step {newest.step} is kept" if newest else "no checkpoint exists yet"


def verify(path: Path) -> str | None:
    """None if the checkpoint is complete and every file matches its manifest, else the reason."""
    if not (path / COMPLETE).is_file():
        return "no COMPLETE marker (interrupted while writing)"
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        entries = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable {MANIFEST} ({err})"
    for entry in entries:
        file = path / entry["name"]
        if not file.is_file():
            return f"{entry['name']} is missing"
        if file.stat().st_size != entry["size"]:
            return f"{entry['name']} has {file.stat().st_size} bytes, manifest says {entry['size']}"
        if _sha256(file) != entry["sha256"]:
            return f"{entry['name']} does not match its sha256"
    return None


def _step_of(path: Path) -> int | None:
    try:
        return int(path.name[len(PREFIX) :]) if path.name.startswith(PREFIX) else None
    except ValueError:
        return None


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Checkpoint folders (verified or not), newest first; staging folders are not listed."""
    if not root.is_dir():
        return []
    found = [(step, p) for p in root.iterdir() if p.is_dir() and (step := _step_of(p)) is not None]
    return sorted(found, reverse=True)


def newest_verified(root: Path, on_skip: Callable[[Path, str], None] | None = None) -> Verified | None:
    """The newest checkpoint that verifies; ``on_skip`` hears about each newer one that did not."""
    for step, path in list_checkpoints(root):
        reason = verify(path)
        if reason is None:
            return Verified(path, step)
        if on_skip is not None:
            on_skip(path, reason)
    return None


def apply_retention(root: Path, keep: int) -> list[Path]:
    """Delete old checkpoints, keeping the newest ``keep`` (at least 2) that verify; return what went.

    Unverified checkpoints older than the kept ones go too, and stale staging folders.
    """
    keep = max(2, keep)
    kept, removed = 0, []
    for _, path in list_checkpoints(root):
        if kept < keep and verify(path) is None:
            kept += 1
            continue
        if kept >= keep:
            shutil.rmtree(path)
            removed.append(path)
    for stale in root.glob(f".staging-{PREFIX}*"):
        shutil.rmtree(stale)
        removed.append(stale)
    return removed
