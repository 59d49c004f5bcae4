"""The `bodyscene` command. Each part registers its own subcommands; heavy imports (torch,
ultralytics, psychopy) happen inside the handlers so `bodyscene --help` stays instant."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands through a `register(subparsers)` function.
_PARTS = ("stimuli.cli", "human_study.cli", "benchmark.cli_harness", "benchmark.cli_report",
          "benchmark.demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bodyscene",
        description="Human-vs-model psychophysics benchmark: action recognition from bodies "
                    "and backgrounds.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _PARTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a part not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from stimuli.errors import BadInput

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except BadInput as exc:
        print(f"bodyscene: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bodyscene: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # model-side configuration errors carry their own clear message
        if type(exc).__name__ == "ModelError":
            print(f"bodyscene: error: {exc}", file=sys.stderr)
            return 2
        raise
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
