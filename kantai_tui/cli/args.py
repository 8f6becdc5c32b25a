"""What every command's parser shares: one-line argparse errors, argument types, JSON on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from kantai_tui.core.corpus.formats import DEFAULT_TEXT_FIELD
from kantai_tui.core.corpus.sample import BUNDLED_NAME, corpus_path
from kantai_tui.core.errors import EXIT_OK, CorpusError, one_line


class Parser(argparse.ArgumentParser):
    """argparse, with what the user typed escaped in its error line (subcommands inherit the class)."""

    def error(self, message: str) -> NoReturn:
        super().error(one_line(message))


def text_field(value: str) -> str:
    """argparse type of --text-field: a field name that is not blank."""
    if not value.strip():
        raise argparse.ArgumentTypeError("is empty; name the field or column that holds the text (default text)")
    return value


def add_text_field(parser: argparse.ArgumentParser) -> None:
    """--text-field, as every command that reads a corpus takes it."""
    parser.add_argument(
        "--text-field",
        type=text_field,
        default=DEFAULT_TEXT_FIELD,
        metavar="NAME",
        help="the field of JSON lines / the column of parquet files that holds the text (default text)",
    )


def batch_size(value: str) -> int | str:
    """argparse type for --batch-size: a whole number >= 1, or 'auto' (measure it on this device)."""
    return "auto" if value.strip().lower() == "auto" else positive(value)


def positive(value: str) -> int:
    """argparse type: an integer >= 1, with a message that names the value."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} must be at least 1")
    return number


CORPUS_HELP = (
    "a file or a folder of them (.txt, .md, .jsonl, .json, .parquet, any of them gzip/bz2/xz/zstd-compressed); "
    f"{BUNDLED_NAME} = the bundled Kant books (unless ./{BUNDLED_NAME} exists)"
)


def corpus_arg(value: str) -> str:
    """argparse type of every corpus argument: the path, or the bundled corpus for its reserved name."""
    try:
        path = corpus_path(value)
    except CorpusError as err:  # the bundled corpus is missing from this installation
        raise argparse.ArgumentTypeError(str(err)) from None
    return value if path == Path(value).expanduser() else str(path)


def emit_json(data: object) -> int:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return EXIT_OK
