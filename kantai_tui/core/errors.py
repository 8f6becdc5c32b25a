"""Typed errors raised by the core.

Every error a user can cause carries a one-line message that names the file or
argument at fault and an exit code from the table in docs/ARCHITECTURE.md, so
the CLI can print it and exit, and the TUI can show it in the pane, without
either of them knowing the details.
"""

from __future__ import annotations

import errno
import os
import re

EXIT_OK = 0
EXIT_RUN_DID_NOT_FINISH = 1  # 'kantai follow' of a run that failed or crashed; a trainer's internal error
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 3
EXIT_CORRUPT_CHECKPOINT = 4
EXIT_NON_FINITE = 5
EXIT_OOM = 6
EXIT_DISK_FULL = 7
EXIT_HANGUP = 129  # 128 + SIGHUP: the terminal went away
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader went away
EXIT_TERMINATED = 143


class KantaiError(Exception):
    """Base of every error kantai expects; ``str(err)`` is the user-facing message."""

    exit_code: int = EXIT_BAD_INPUT


class BadInputError(KantaiError):
    """Input the user gave cannot be used (exit code 2)."""

    exit_code = EXIT_BAD_INPUT


class StoppedWhilePreparing(Exception):
    """Ctrl-C or ``kantai stop`` reached a trainer before its first step (tokenizer, token cache, packing):
    raised from a progress report, so the phase removes what it had half-made on the way out."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by signal {signum} while preparing")


class CorpusError(BadInputError):
    """A corpus path is missing, empty, binary or not valid text."""


class NotUtf8Error(CorpusError):
    """A corpus file holds bytes that are not UTF-8; names the file and byte offset."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"{path}: not valid UTF-8 at byte offset {offset} ({reason}); "
            "convert the file to UTF-8, or pass --errors replace to replace bad bytes"
        )

    def __reduce__(self) -> tuple:
        """Rebuild from the fields, so the error crosses from a worker process intact."""
        return (type(self), (self.path, self.offset, self.reason))


class TokenizerError(BadInputError):
    """A tokenizer cannot be trained, saved or loaded with the given input."""


class OutputError(BadInputError):
    """An output folder cannot be created or written."""


class RunLockedError(KantaiError):
    """Another trainer holds the run folder (exit code 3)."""

    exit_code = EXIT_LOCKED


class CorruptCheckpointError(KantaiError):
    """A checkpoint fails verification or cannot be loaded, or none of a run's verifies (exit code 4)."""

    exit_code = EXIT_CORRUPT_CHECKPOINT


class NonFiniteLossError(KantaiError):
    """The loss became NaN or infinite (exit code 5); the last good checkpoint is kept."""

    exit_code = EXIT_NON_FINITE


class OutOfMemoryError(KantaiError):
    """The device ran out of memory (exit code 6); the message names the batch size and a smaller one."""

    exit_code = EXIT_OOM


class DiskFullError(KantaiError):
    """No space left (or over a file-size or quota limit) while writing (exit code 7)."""

    exit_code = EXIT_DISK_FULL


_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how safetensors (Rust io::Error) reports errno


def disk_full_cause(err: BaseException) -> str | None:
    """The OS reason if ``err`` (or an error it was raised from) means the disk or a size limit is full.

    torch.save hides the OSError in ``__context__`` of a RuntimeError, safetensors puts the errno in
    its message; both are looked through, so every writer's "disk full" becomes exit 7.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return current.strerror or errno.errorcode[current.errno]
        match = _RUST_OS_ERROR.search(str(current))
        if match and int(match.group(1)) in _FULL_ERRNOS:
            return os.strerror(int(match.group(1)))
        current = current.__cause__ or current.__context__
    return None


def one_line(message: str) -> str:
    """A message made safe for one terminal line: control characters (from a file name or a typed
    text) are shown escaped, so they neither break the line nor reach the terminal as commands."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in message)
