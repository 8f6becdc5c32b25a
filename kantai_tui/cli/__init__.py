"""Headless front end: ``main(argv) -> int``.

Results go to stdout (JSON with ``--json``, rich tables otherwise), diagnostics
to stderr. Every error the core expects is a KantaiError: it becomes one line,
``kantai: error: ...``, and its documented exit code; never a traceback.
Only argparse and the light core modules are imported at start-up, so
``kantai --help`` stays fast; torch, transformers and textual load on demand.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from kantai_tui import __version__

from kantai_tui.cli import infer as cli_infer

from kantai_tui.cli import train as cli_train
from kantai_tui.core.tokenizer.bpe import DEFAULT_MIN_FREQUENCY, DEFAULT_VOCAB_SIZE
from kantai_tui.core.errors import EXIT_BROKEN_PIPE, EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_OK, KantaiError, one_line
from kantai_tui.core.corpus.files import ERROR_MODES
from kantai_tui.core.tokenizer.vocab import SEARCH_MODES, SORT_KEYS


class _Parser(argparse.ArgumentParser):
    """argparse, with what the user typed escaped in its error line (subcommands inherit the class)."""

    def error(self, message: str) -> NoReturn:
        super().error(one_line(message))


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; ``kantai`` with no command opens the TUI on the bundled corpus."""
    parser = _Parser(
        prog="kantai",
        description="Pretrain a RoBERTa masked language model from a plain-text corpus: "
        "corpus statistics, byte-level BPE tokenizer, training, fill-mask. "
        "Run without a command to open the TUI on the bundled Kant corpus.",
    )
    parser.add_argument("--version", action="version", version=f"kantai {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_tui(commands)
    _add_stats(commands)
    _add_tokenizer(commands)
    cli_train.add_commands(commands, _positive)
    cli_infer.add_commands(commands, _positive)
    return parser


def _add_tui(commands: argparse._SubParsersAction) -> None:
    tui = commands.add_parser("tui", help="open the terminal UI (the default command)")
    tui.add_argument("--corpus", metavar="PATH", help="corpus file or folder (default: the bundled Kant books)")
    tui.add_argument("--tokenizer", metavar="DIR", help="tokenizer folder (default: one per corpus in kantai's data folder)")
    tui.add_argument("--errors", choices=ERROR_MODES, default="strict", help="replace: turn bad UTF-8 bytes into U+FFFD")
    tui.add_argument("--runs-dir", metavar="DIR", help="where runs are kept (default: as last time, else ./runs)")
    serve = commands.add_parser("serve", help="serve the TUI to a browser (textual-serve), on 127.0.0.1 by default")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--corpus", metavar="PATH", help="corpus file or folder (default: the bundled Kant books)")
    serve.add_argument("--tokenizer", metavar="DIR", help="tokenizer folder")
    serve.add_argument("--runs-dir", metavar="DIR", default="runs", help="where runs are kept (default ./runs)")


def _add_stats(commands: argparse._SubParsersAction) -> None:
    stats = commands.add_parser("stats", help="corpus statistics for a .txt file or a folder of them")
    stats.add_argument("path", metavar="PATH")
    stats.add_argument("--json", action="store_true", help="print JSON on stdout")
    stats.add_argument("--top", type=_positive, default=20, metavar="N", help="how many top words (default 20)")
    stats.add_argument("--errors", choices=ERROR_MODES, default="strict", help="replace: turn bad UTF-8 bytes into U+FFFD")
    stats.add_argument("--tokenizer", metavar="DIR", help="also report tokens per line with this tokenizer")
    stats.add_argument("--block-size", type=_positive, default=128, metavar="N", help="block size for the truncation share")


def _add_tokenizer(commands: argparse._SubParsersAction) -> None:
    tok = commands.add_parser("tokenizer", help="train, browse and try a byte-level BPE tokenizer")
    sub = tok.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train the tutorial's byte-level BPE on a corpus")
    train.add_argument("path", metavar="PATH")
    train.add_argument("--out", required=True, metavar="DIR", help="folder to write vocab.json, merges.txt, tokenizer.json")
    train.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, metavar="N")
    train.add_argument("--min-frequency", type=int, default=DEFAULT_MIN_FREQUENCY, metavar="N")
    train.add_argument("--errors", choices=ERROR_MODES, default="strict")
    train.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="list or search the vocabulary")
    show.add_argument("dir", metavar="DIR")
    show.add_argument("--search", metavar="Q", default="", help="␣ or a space stands for the leading-space marker")
    show.add_argument("--mode", choices=SEARCH_MODES, default="substring")
    show.add_argument("--sort", choices=SORT_KEYS, default="id")
    show.add_argument("--limit", type=_positive, default=50, metavar="N", help="rows to print (default 50; JSON: all)")
    show.add_argument("--json", action="store_true")
    enc = sub.add_parser("encode", help="split a text into tokens, ids and offsets")
    enc.add_argument("dir", metavar="DIR")
    enc.add_argument("text", metavar="TEXT")
    enc.add_argument("--no-special", action="store_true", help="leave out <s> and </s>")
    enc.add_argument("--json", action="store_true")


def _positive(value: str) -> int:
    """argparse type: an integer >= 1, with a message that names the value."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} must be at least 1")
    return number


class _HangUp(BaseException):
    """SIGHUP: the terminal went away (like KeyboardInterrupt, not an error of the program)."""


def _on_hangup(signum: int, frame: object) -> None:
    """Nothing can be shown any more: point stdout/stderr at /dev/null, then unwind to main()."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    raise _HangUp


def _leave_on_hangup(args: argparse.Namespace) -> object:
    """Observers (follow, gpu --watch...) exit 129 when their terminal goes; trainers and the TUI decide for themselves.

    Returns the handler to put back (main() is also called in-process, by tests and scripts).
    """
    previous = signal.getsignal(signal.SIGHUP)
    if args.command not in (None, "tui", "train") and previous is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _on_hangup)
    return previous


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kantai`` console script."""
    args = build_parser().parse_args(argv)
    previous = _leave_on_hangup(args)
    try:
        return _dispatch(args)
    except _HangUp:
        return EXIT_HANGUP
    except KantaiError as err:
        print(f"kantai: error: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("kantai: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (kantai stats --json | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    finally:
        if previous is not None:  # None: set outside Python, nothing to put back
            signal.signal(signal.SIGHUP, previous)  # type: ignore[arg-type]


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in (None, "tui"):
        return _run_tui(args)
    if args.command == "stats":
        return _cmd_stats(args)
    if args.command == "serve":
        from kantai_tui.tui.serve import serve

        return serve(args.host, args.port, args.corpus, args.runs_dir, args.tokenizer)
    if args.command in cli_train.COMMANDS:
        return cli_train.COMMANDS[args.command](args)
    if args.command in cli_infer.COMMANDS:
        return cli_infer.COMMANDS[args.command](args)
    return {"train": _cmd_train, "show": _cmd_show, "encode": _cmd_encode}[args.tokenizer_command](args)


def _run_tui(args: argparse.Namespace) -> int:
    from kantai_tui.tui.app import run_app

    return run_app(corpus=getattr(args, "corpus", None), tokenizer=getattr(args, "tokenizer", None),
                   errors=getattr(args, "errors", "strict"), runs_dir=getattr(args, "runs_dir", None))  # fmt: skip


def _emit_json(data: object) -> int:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return EXIT_OK


def _cmd_stats(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.tokenizer.bpe import token_stats
    from kantai_tui.core.corpus.stats import corpus_stats

    stats = corpus_stats(args.path, top_n=args.top, errors=args.errors)
    tokens = token_stats(args.tokenizer, args.path, args.block_size, args.errors) if args.tokenizer else None
    if args.json:
        return _emit_json({**stats.to_dict(), "tokens": tokens.to_dict() if tokens else None})
    cli_render.print_stats(stats, tokens)
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.tokenizer.bpe import train_tokenizer

    with cli_render.phase_reporter(quiet=args.json) as report:
        result = train_tokenizer(
            args.path, args.out, vocab_size=args.vocab_size, min_frequency=args.min_frequency,
            errors=args.errors, progress=report,
        )  # fmt: skip
    if args.json:
        return _emit_json(result.__dict__ | {"files": list(result.files)})
    cli_render.print_trained(result)
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.tokenizer.vocab import Vocabulary

    with cli_render.waiting("loading the vocabulary (the first time, token frequencies are counted in the corpus)…", args.json):
        vocab = Vocabulary.load(args.dir)
    rows = vocab.search(args.search, args.mode, args.sort)
    if args.json:
        return _emit_json({"vocab_size": len(vocab), "matches": len(rows), "entries": [e.to_dict() for e in rows]})
    cli_render.print_vocab(vocab, rows, args.limit)
    return EXIT_OK


def _cmd_encode(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.tokenizer.bpe import encode, load_tokenizer

    encoded = encode(load_tokenizer(args.dir), args.text, add_special_tokens=not args.no_special)
    if args.json:
        return _emit_json(encoded.to_dict())
    cli_render.print_encoded(encoded)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
