"""CLI commands for using models: ``fill-mask`` and ``probes`` (and ``gpu``)."""

from __future__ import annotations

import argparse
import json
import sys

from kantai_tui.core.errors import EXIT_OK, one_line


def add_commands(commands: argparse._SubParsersAction, positive: type) -> None:
    fill = commands.add_parser("fill-mask", help="predict the <mask> tokens of a text with a trained model")
    fill.add_argument(
        "target", metavar="RUN_OR_DIR", help="a run name, a run folder, final/, a checkpoint or any model folder"
    )
    fill.add_argument("text", metavar="TEXT", help='e.g. "Human thinking involves human <mask>."')
    fill.add_argument("--top-k", type=positive, default=5, metavar="N")
    fill.add_argument("--checkpoint", type=int, metavar="STEP", help="a run's checkpoint instead of its final model")
    fill.add_argument("--runs-dir", metavar="DIR", default="runs")
    fill.add_argument("--json", action="store_true")
    gpu = commands.add_parser("gpu", help="GPU, CPU and memory status (torch and the NVIDIA driver)")
    gpu.add_argument("--json", action="store_true")
    gpu.add_argument("--watch", action="store_true", help="refresh every second until Ctrl-C")
    gpu.add_argument("--runs-dir", metavar="DIR", default="runs", help="to mark kantai's trainers in process lists")
    probes = commands.add_parser("probes", help="how a run's predictions for the probe sentences changed over training")
    probes.add_argument("run", metavar="RUN")
    probes.add_argument("--runs-dir", metavar="DIR", default="runs")
    probes.add_argument("--json", action="store_true")


def cmd_fill_mask(args: argparse.Namespace) -> int:
    from kantai_tui.core.fillmask import FillMask, check_prompt

    check_prompt(args.text, args.top_k)  # before the model load (seconds), not after it

    def skipped(path: object, why: str) -> None:
        print(one_line(f"kantai: skipped checkpoint {getattr(path, 'name', path)}: {why}"), file=sys.stderr)

    fill = FillMask.open(args.target, args.runs_dir, args.checkpoint, on_skip=skipped)
    result = fill.predict(args.text, args.top_k)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    from kantai_tui.cli import render as cli_render

    cli_render.print_fill(result)
    return EXIT_OK


def cmd_probes(args: argparse.Namespace) -> int:
    from kantai_tui.core.runs.folder import run_path
    from kantai_tui.core.runs.probes import probe_timeline

    run_dir = run_path(args.runs_dir, args.run)
    if not (run_dir / "run.json").is_file():
        from kantai_tui.core.errors import BadInputError

        raise BadInputError(f"no run named {args.run!r} in {run_dir.parent}")
    timeline = probe_timeline(run_dir)
    if args.json:
        json.dump(timeline, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    from kantai_tui.cli import render as cli_render

    cli_render.print_probes(timeline)
    return EXIT_OK


def cmd_gpu(args: argparse.Namespace) -> int:
    from kantai_tui.core.device import probe_devices
    from kantai_tui.core.runs.folder import kantai_trainers

    if args.json and not args.watch:
        json.dump(probe_devices(kantai_trainers(args.runs_dir)).to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    from kantai_tui.cli import render as cli_render

    cli_render.show_devices(lambda: probe_devices(kantai_trainers(args.runs_dir)), args.watch, args.json)
    return EXIT_OK


COMMANDS = {"fill-mask": cmd_fill_mask, "probes": cmd_probes, "gpu": cmd_gpu}
