"""CLI commands for the corpus: ``stats``."""

from __future__ import annotations

import argparse
from functools import partial

from kantai_tui.cli.args import CORPUS_HELP, add_text_field, corpus_arg, emit_json, positive
from kantai_tui.core.corpus.files import ERROR_MODES
from kantai_tui.core.errors import EXIT_OK
from kantai_tui.core.progress import SCANNING


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register stats."""
    stats = commands.add_parser("stats", help="corpus statistics for a file or a folder of them")
    stats.add_argument("path", metavar="PATH", type=corpus_arg, help=CORPUS_HELP)
    stats.add_argument("--json", action="store_true", help="print JSON on stdout")
    stats.add_argument("--top", type=positive, default=20, metavar="N", help="how many top words (default 20)")
    stats.add_argument(
        "--errors", choices=ERROR_MODES, default="strict", help="replace: turn bad UTF-8 bytes into U+FFFD"
    )
    add_text_field(stats)
    stats.add_argument("--tokenizer", metavar="DIR", help="also report tokens per document with this tokenizer")
    stats.add_argument(
        "--block-size", type=positive, default=128, metavar="N", help="block size for the truncation share"
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.corpus.stats import corpus_stats
    from kantai_tui.core.tokenizer.bpe import token_stats

    with cli_render.progress_bar(quiet=args.json) as report:
        scanning = partial(report, SCANNING)
        stats = corpus_stats(
            args.path, top_n=args.top, errors=args.errors, progress=scanning, text_field=args.text_field
        )
    tokens = (
        token_stats(args.tokenizer, args.path, args.block_size, args.errors, args.text_field)
        if args.tokenizer
        else None
    )
    if args.json:
        return emit_json({**stats.to_dict(), "tokens": tokens.to_dict() if tokens else None})
    cli_render.print_stats(stats, tokens)
    return EXIT_OK


COMMANDS = {"stats": cmd_stats}
