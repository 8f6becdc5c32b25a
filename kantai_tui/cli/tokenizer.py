"""CLI commands for the tokenizer: ``tokenizer train``, ``tokenizer show``, ``tokenizer encode``."""

from __future__ import annotations

import argparse
import sys

from kantai_tui.cli.args import CORPUS_HELP, add_text_field, corpus_arg, emit_json, positive
from kantai_tui.core.corpus.files import ERROR_MODES
from kantai_tui.core.errors import EXIT_OK
from kantai_tui.core.tokenizer.bpe import DEFAULT_MIN_FREQUENCY, DEFAULT_VOCAB_SIZE
from kantai_tui.core.tokenizer.vocab import SEARCH_MODES, SORT_KEYS


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register tokenizer and its actions."""
    tok = commands.add_parser("tokenizer", help="train, browse and try a byte-level BPE tokenizer")
    sub = tok.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train the tutorial's byte-level BPE on a corpus")
    train.add_argument("path", metavar="PATH", type=corpus_arg, help=CORPUS_HELP)
    train.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write vocab.json, merges.txt, tokenizer.json"
    )
    train.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, metavar="N")
    train.add_argument("--min-frequency", type=int, default=DEFAULT_MIN_FREQUENCY, metavar="N")
    train.add_argument("--errors", choices=ERROR_MODES, default="strict")
    add_text_field(train)
    train.add_argument(
        "--sample",
        default="1GB",
        metavar="SIZE",
        help="train on a seeded sample of about SIZE of the corpus's documents when it is bigger (default 1GB; all: never)",
    )
    train.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="list or search the vocabulary")
    show.add_argument("dir", metavar="DIR")
    show.add_argument("--search", metavar="Q", default="", help="␣ or a space stands for the leading-space marker")
    show.add_argument("--mode", choices=SEARCH_MODES, default="substring")
    show.add_argument("--sort", choices=SORT_KEYS, default="id")
    show.add_argument("--limit", type=positive, default=50, metavar="N", help="rows to print (default 50; JSON: all)")
    show.add_argument("--json", action="store_true")
    enc = sub.add_parser("encode", help="split a text into tokens, ids and offsets")
    enc.add_argument("dir", metavar="DIR")
    enc.add_argument("text", metavar="TEXT")
    enc.add_argument("--no-special", action="store_true", help="leave out <s> and </s>")
    enc.add_argument("--json", action="store_true")


def cmd_train(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.tokenizer.bpe import train_tokenizer
    from kantai_tui.core.tokenizer.sample import parse_size

    with cli_render.progress_bar(quiet=args.json) as report:
        result = train_tokenizer(
            args.path,
            args.out,
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            errors=args.errors,
            progress=report,
            text_field=args.text_field,
            sample=parse_size(args.sample),
            note=lambda message: print(f"kantai: {message}", file=sys.stderr, flush=True),
        )
    if args.json:
        return emit_json(result.__dict__ | {"files": list(result.files)})
    cli_render.print_trained(result)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.tokenizer.vocab import Vocabulary

    with cli_render.waiting(
        "loading the vocabulary (the first time, token frequencies are counted in the corpus)…", args.json
    ):
        vocab = Vocabulary.load(args.dir)
    rows = vocab.search(args.search, args.mode, args.sort)
    if args.json:
        return emit_json({"vocab_size": len(vocab), "matches": len(rows), "entries": [e.to_dict() for e in rows]})
    cli_render.print_vocab(vocab, rows, args.limit)
    return EXIT_OK


def cmd_encode(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.tokenizer.bpe import encode, load_tokenizer

    encoded = encode(load_tokenizer(args.dir), args.text, add_special_tokens=not args.no_special)
    if args.json:
        return emit_json(encoded.to_dict())
    cli_render.print_encoded(encoded)
    return EXIT_OK


def cmd_tokenizer(args: argparse.Namespace) -> int:
    """``kantai tokenizer ACTION``."""
    return {"train": cmd_train, "show": cmd_show, "encode": cmd_encode}[args.tokenizer_command](args)


COMMANDS = {"tokenizer": cmd_tokenizer}
