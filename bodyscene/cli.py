"""The `bodyscene` command. Each part keeps its argparse code in its own `cli.py`, which
imports nothing heavy; handlers import torch, cv2, pandas or PsychoPy when they run, so
`bodyscene --help` and `bodyscene models` stay instant."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import BodysceneError
from .extras import missing_extra

# Each part's commands, in the order of the pipeline. A part that fails to import is an error,
# never silently left out of the command line.
_PARTS = ("bodyscene.stimuli.cli", "bodyscene.human_study.cli", "bodyscene.models.cli",
          "bodyscene.benchmark.cli")


def build_parser() -> argparse.ArgumentParser:
    from .configs import LazyParser

    parser = LazyParser(
        prog="bodyscene",
        description="Human-vs-model psychophysics benchmark: action recognition from bodies "
                    "and backgrounds.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _PARTS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    command = "command"
    try:
        # a command's options are built from its config when it is used, which imports the
        # module that owns the config: a missing extra can surface here already
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        command = args.command
        result = args.func(args)
    except BodysceneError as exc:
        print(f"bodyscene: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an extra that is not installed: say which, in one line
        missing = missing_extra(exc, purpose=f"bodyscene {command}")
        if missing is None:
            raise
        print(f"bodyscene: error: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bodyscene: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
