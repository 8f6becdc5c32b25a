"""Headless front end: ``main(argv) -> int``.

Results go to stdout (JSON with ``--json``, rich tables otherwise), diagnostics
to stderr. Every error the core expects is a KantaiError: it becomes one line,
``kantai: error: ...``, and its documented exit code; never a traceback.
Only argparse and the light core modules are imported at start-up, so
``kantai --help`` stays fast; torch, transformers and textual load on demand.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from collections.abc import Sequence

from kantai_tui import __version__
from kantai_tui.cli import corpus as cli_corpus
from kantai_tui.cli import export as cli_export
from kantai_tui.cli import infer as cli_infer
from kantai_tui.cli import tokenizer as cli_tokenizer
from kantai_tui.cli import train as cli_train
from kantai_tui.cli.args import CORPUS_HELP, Parser, add_text_field, corpus_arg, positive
from kantai_tui.core.corpus.files import ERROR_MODES
from kantai_tui.core.corpus.formats import DEFAULT_TEXT_FIELD
from kantai_tui.core.corpus.sample import BUNDLED_NAME
from kantai_tui.core.errors import EXIT_BROKEN_PIPE, EXIT_HANGUP, EXIT_INTERRUPTED, KantaiError, one_line

# each: add_commands() and COMMANDS, in --help's order
GROUPS = (cli_corpus, cli_tokenizer, cli_train, cli_export, cli_infer)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; ``kantai`` with no command opens the TUI on the bundled corpus."""
    parser = Parser(
        prog="kantai",
        description="Pretrain a RoBERTa masked language model from a plain-text corpus: "
        "corpus statistics, byte-level BPE tokenizer, training, fill-mask. "
        "Run without a command to open the TUI on the bundled Kant corpus; the options of "
        "'kantai tui' work without the word tui (kantai --runs-dir DIR).",
    )
    parser.add_argument("--version", action="version", version=f"kantai {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_tui(commands)
    cli_corpus.add_commands(commands)
    cli_tokenizer.add_commands(commands)
    cli_train.add_commands(commands, positive)
    cli_export.add_commands(commands, positive)
    cli_infer.add_commands(commands, positive)
    return parser


def _add_tui(commands: argparse._SubParsersAction) -> None:
    tui = commands.add_parser("tui", help="open the terminal UI (the default command)")
    tui.add_argument("--corpus", metavar="PATH", type=corpus_arg, help=f"{CORPUS_HELP} (default: {BUNDLED_NAME})")
    tui.add_argument(
        "--tokenizer", metavar="DIR", help="tokenizer folder (default: one per corpus in kantai's data folder)"
    )
    tui.add_argument(
        "--errors", choices=ERROR_MODES, default="strict", help="replace: turn bad UTF-8 bytes into U+FFFD"
    )
    add_text_field(tui)
    tui.add_argument("--runs-dir", metavar="DIR", help="where runs are kept (default: as last time, else ./runs)")
    serve = commands.add_parser("serve", help="serve the TUI to a browser (textual-serve), on 127.0.0.1 by default")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--corpus", metavar="PATH", type=corpus_arg, help=f"{CORPUS_HELP} (default: {BUNDLED_NAME})")
    serve.add_argument("--tokenizer", metavar="DIR", help="tokenizer folder")
    serve.add_argument("--runs-dir", metavar="DIR", help="where runs are kept (default: as last time, else ./runs)")


class _HangUp(BaseException):
    """SIGHUP: the terminal went away (like KeyboardInterrupt, not an error of the program)."""


def _on_hangup(signum: int, frame: object) -> None:
    """Nothing can be shown any more: point stdout/stderr at /dev/null, then unwind to main()."""
    _on_hangup_quietly()
    raise _HangUp


def _terminal_alive() -> bool:
    """Whether stdout and stderr that were terminals still are (a hung-up tty stops being one)."""
    return all(os.isatty(fd) for fd in (1, 2))


def _on_hangup_quietly() -> None:
    """Output to /dev/null, as after SIGHUP, without unwinding (we are already leaving)."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def _leave_on_hangup(args: argparse.Namespace) -> object:
    """Observers (follow, gpu --watch...) exit 129 when their terminal goes; trainers and the TUI decide for themselves.

    Returns the handler to put back (main() is also called in-process, by tests and scripts).
    """
    previous = signal.getsignal(signal.SIGHUP)
    if args.command not in (None, "tui", "train") and previous is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _on_hangup)
    return previous


TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")


def default_command(argv: Sequence[str]) -> list[str]:
    """``kantai --runs-dir X`` is ``kantai tui --runs-dir X``: a command line that starts with an option
    other than kantai's own (--help, --version) is the default command's. argparse alone would read the
    option's value as a command and answer "invalid choice"."""
    words = list(argv)
    first = words[0].split("=", 1)[0] if words else ""
    return ["tui", *words] if first.startswith("-") and first not in TOP_LEVEL_OPTIONS else words


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kantai`` console script."""
    args = build_parser().parse_args(default_command(sys.argv[1:] if argv is None else argv))
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
    except OSError as err:
        if err.errno != errno.EIO or _terminal_alive():
            raise  # a disk's I/O error, not a terminal's
        # a write to a terminal that just hung up fails with EIO, sometimes before its SIGHUP is handled:
        # the same event, the same exit (follow's test saw exit 1 under load)
        _on_hangup_quietly()
        return EXIT_HANGUP
    finally:
        if previous is not None:  # None: set outside Python, nothing to put back
            signal.signal(signal.SIGHUP, previous)  # type: ignore[arg-type]


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in (None, "tui"):
        return _run_tui(args)
    if args.command == "serve":
        from kantai_tui.tui.serve import serve

        return serve(args.host, args.port, args.corpus, args.runs_dir, args.tokenizer)
    command = next(group.COMMANDS[args.command] for group in GROUPS if args.command in group.COMMANDS)
    return command(args)


def _run_tui(args: argparse.Namespace) -> int:
    from kantai_tui.tui.app import run_app

    return run_app(
        corpus=getattr(args, "corpus", None),
        tokenizer=getattr(args, "tokenizer", None),
        errors=getattr(args, "errors", "strict"),
        runs_dir=getattr(args, "runs_dir", None),
        text_field=getattr(args, "text_field", DEFAULT_TEXT_FIELD),
    )


if __name__ == "__main__":
    sys.exit(main())
