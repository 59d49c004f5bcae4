"""`bodyscene models`: list the models (and backbones) a run can name."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models and backbones that can be trained")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'dom*'")
    p.add_argument("--backbones", action="store_true", help="list backbone names instead")
    p.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    import fnmatch

    from .registry import ENTRY_POINT_GROUP, list_models

    if args.backbones:
        from .backbones import list_backbones  # imports torch/torchvision

        names = [n for n in list_backbones() if fnmatch.fnmatchcase(n, args.pattern)]
    else:
        names = list_models(args.pattern)
    print("\n".join(names))
    if not args.backbones:
        print(f"(any 'package.module:factory' works too; installed packages add models through "
              f"the entry-point group {ENTRY_POINT_GROUP!r})")
    return 0
