"""Files that others read while we write them: atomic JSON, append-only JSON lines, fsync, staged renames.

Every writer in kantai that an observer (another process, a resumed trainer) may read goes through
here, so "a reader sees the old file or the new one, never half of one" is one rule in one place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_text_atomic(path: Path, fill: Callable[[IO[str]], None], newline: str | None = None) -> None:
    """Write beside, fsync, rename: readers see the old or the new file, never half of one. ``fill`` writes
    the text into the open temporary (``newline`` as ``open`` takes it: "" for the csv module)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline=newline) as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written temporary behind
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    """A JSON object written by ``write_text_atomic``."""

    def fill(handle: IO[str]) -> None:
        json.dump(data, handle, ensure_ascii=False, indent=1)
        handle.write("\n")

    write_text_atomic(path, fill)


def read_json(path: Path) -> dict | None:
    """A JSON object from a file another process writes, or None if it is missing or (being) broken."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class JsonLinesWriter:
    """Appends one JSON object per line, each in one unbuffered ``write``, so followers see a line as soon
    as it is whole.

    Unbuffered, because a refused append (disk full, a file-size limit) must fail once: a buffered file
    kept the failed line and raised it again from ``close`` in the caller's ``finally``, hiding the
    first error behind a traceback. A writer starts on a fresh line: the last one may have been killed
    mid-line, and a row glued onto that partial line would be lost to every reader.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._pending = b"" if _ends_a_line(path) else b"\n"

    def write(self, row: dict) -> None:
        data = self._pending + (json.dumps(row, allow_nan=False) + "\n").encode()
        self._pending = b""
        while data:
            try:
                written = os.write(self._fd, data)
            except OSError as err:  # name the file: os.write's error does not
                raise OSError(err.errno, err.strerror, str(self.path)) from err
            data = data[written:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _ends_a_line(path: Path) -> bool:
    """Whether ``path`` is empty or ends with a newline (nothing partial to start after)."""
    with path.open("rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_json_lines(path: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Complete lines from ``offset`` on, and the offset after the last complete line.

    A partial last line (the writer is mid-write, or was killed mid-write) is left for the next
    call; a line that is not valid JSON is skipped rather than stopping the reader.
    """
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows, offset + end


def fsync_file(path: Path) -> None:
    """Flush a written file to the disk (before it is named in a manifest or renamed into place)."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries, so a rename into it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_folder(staging: Path, target: Path) -> None:
    """Make a fully written folder appear at ``target`` in one rename, durable like a checkpoint.

    Every file and the folder are fsynced first, so the rename never names data still in the page cache.
    An old ``target`` is moved aside first and deleted after: a kill between the two renames leaves no
    ``target`` (it is made again), never a mix of old and new files.
    """
    fsync_tree(staging)
    aside = None
    if target.exists():
        aside = staging_path(target, "old")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(target, aside)
    os.rename(staging, target)
    fsync_dir(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def make_writable_dir(folder: Path) -> None:
    """Create ``folder`` (and its parents) and prove a file can be written in it, before long work starts;
    the OSError says why not, for the caller to name the option it came from."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder`` and the folders themselves, before a rename names them."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            fsync_file(path)
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(folder)


def staging_path(target: Path, purpose: str = "staging") -> Path:
    """Where a folder for ``target`` is built: beside it, hidden, named by the process building it.

    The pid lets ``sweep_stale`` tell an abandoned folder (its builder is dead) from one being built.
    """
    return target.with_name(f".{target.name}.{purpose}-{os.getpid()}")


def sweep_stale(parent: Path) -> None:
    """Delete the hidden build (and moved-aside) folders in ``parent`` whose process is gone: what a kill
    in the middle of ``commit_folder`` or before it leaves behind."""
    for path in parent.glob(".*-*"):
        found = _STAGED.match(path.name)
        if found and path.is_dir() and not _alive(int(found.group(1))):
            shutil.rmtree(path, ignore_errors=True)


_STAGED = re.compile(r"^\..+\.(?:staging|old|creating)-(\d+)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


def human_bytes(size: float) -> str:
    """1,820,953 -> '1.7 MiB': a size as every view and every note says it (format re-exports it)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
