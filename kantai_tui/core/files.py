"""Files that others read while we write them: atomic JSON, append-only JSON lines, fsync, staged renames.

Every writer in kantai that an observer (another process, a resumed trainer) may read goes through
here, so "a reader sees the old file or the new one, never half of one" is one rule in one place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json_atomic(path: Path, data: dict) -> None:
    """Write beside, fsync, rename: readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written temporary behind
        raise
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """A JSON object from a file another process writes, or None if it is missing or (being) broken."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class JsonLinesWriter:
    """Appends one JSON object per line and flushes it, so followers see each line as soon as it is whole."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._handle.write(json.dumps(row, allow_nan=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


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
