"""`bodyscene stimuli ...`: make, merge and check trial sets."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stimuli", help="make, merge and validate trial sets")
    s = p.add_subparsers(dest="stimuli_command", metavar="SUBCOMMAND", required=True)

    v = s.add_parser("validate", help="check a trials.csv: schema, files and hashes")
    v.add_argument("trials", help="path to trials.csv")
    v.add_argument("--no-hashes", action="store_true", help="skip re-hashing the images")
    v.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    from .manifest import read_manifest

    df = read_manifest(args.trials, check_hashes=not args.no_hashes)
    counts = df.groupby(["split", "condition"]).size().unstack(fill_value=0)
    print(f"{args.trials}: {len(df)} trials, {df.item_id.nunique()} items, "
          f"{df.action.nunique()} actions — valid")
    print(counts.to_string())
    return 0
