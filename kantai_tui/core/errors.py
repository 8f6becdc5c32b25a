"""Typed errors raised by the core.

Every error a user can cause carries a one-line message that names the file or
argument at fault and an exit code from the table in docs/ARCHITECTURE.md, so
the CLI can print it and exit, and the TUI can show it in the pane, without
either of them knowing the details.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 3
EXIT_CORRUPT_CHECKPOINT = 4
EXIT_NON_FINITE = 5
EXIT_OOM = 6
EXIT_DISK_FULL = 7
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader went away
EXIT_TERMINATED = 143


class KantaiError(Exception):
    """Base of every error kantai expects; ``str(err)`` is the user-facing message."""

    exit_code: int = EXIT_BAD_INPUT


class BadInputError(KantaiError):
    """Input the user gave cannot be used (exit code 2)."""

    exit_code = EXIT_BAD_INPUT


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
