"""`bodyscene models`, `bodyscene train` and `bodyscene evaluate`: the model harness's commands.
torch is imported inside the handlers so `bodyscene --help` stays instant."""

from __future__ import annotations

import argparse
import json
import os


def register(sub: argparse._SubParsersAction) -> None:
    _register_models(sub)
    _register_train(sub)
    _register_evaluate(sub)


def _register_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models and backbones that can be trained")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'dom*'")
    p.add_argument("--backbones", action="store_true", help="list backbone names instead")
    p.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    import fnmatch

    from models.backbones import list_backbones
    from models.registry import ENTRY_POINT_GROUP, list_models

    if args.backbones:
        names = [n for n in list_backbones() if fnmatch.fnmatchcase(n, args.pattern)]
    else:
        names = list_models(args.pattern)
    print("\n".join(names))
    if not args.backbones:
        print(f"(any 'package.module:factory' works too; installed packages add models through "
              f"the entry-point group {ENTRY_POINT_GROUP!r})")
    return 0


def _register_train(sub: argparse._SubParsersAction) -> None:
    from .train import TrainConfig

    d = TrainConfig(trials="")
    p = sub.add_parser("train", help="train a model on a trial manifest's train split",
                       description="Defaults are the paper's: SGD, lr 0.001, momentum 0.9, "
                                   "100 epochs, class-balanced sampling, from scratch. Run "
                                   "under torchrun for several GPUs or nodes.")
    p.add_argument("--trials", required=True, help="trials.csv")
    p.add_argument("--model", default=d.model,
                   help="baseline | domainnet | package.module:factory | an entry-point name")
    p.add_argument("--backbone", default=d.backbone,
                   help="torchvision name (resnet18/34/50, ...) or tiny/small for CPU tests")
    p.add_argument("--out", required=True, help="run folder (new or empty unless --resume)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="global batch, split across torchrun processes")
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--weights", default=None,
                   help="local torchvision or state-dict file for each backbone")
    p.add_argument("--view-dropout", type=float, default=d.view_dropout,
                   help="probability that a view is blanked (its stream's loss term skipped)")
    p.add_argument("--loss-terms", choices=("all", "combined-only"), default=None)
    p.add_argument("--fusion", choices=("sum", "learned-weighted", "concat-mlp"), default=None)
    p.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                   help="extra model option, e.g. --option hidden=128 (repeatable)")
    p.add_argument("--samples-per-epoch", type=int, default=None)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--cache", default=d.cache, help="memory | mmap | folder for the mmap file")
    p.add_argument("--no-amp", action="store_true", help="full precision on CUDA")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--device", default=d.device)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)


def _options(pairs: list[str]) -> dict:
    from stimuli.errors import BadInput

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig(
        trials=args.trials, model=args.model, backbone=args.backbone, out=args.out,
        epochs=args.epochs, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        batch_size=args.batch_size, image_size=args.image_size, seed=args.seed,
        weights=args.weights, view_dropout=args.view_dropout, loss_terms=args.loss_terms,
        fusion=args.fusion, model_options=_options(args.option),
        samples_per_epoch=args.samples_per_epoch, augment=not args.no_augment,
        workers=args.workers, cache=args.cache, amp=not args.no_amp,
        channels_last=not args.no_channels_last, resume=args.resume, device=args.device,
        progress=not args.quiet)
    run = train(cfg)
    if os.environ.get("RANK", "0") == "0":  # one line, not one per torchrun process
        print(f"run: {run} (best.pt, last.pt, metrics.csv, run.json)")
    return 0


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on the trials people answered")
    p.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")
    p.add_argument("--trials", required=True, help="trials.csv")
    p.add_argument("--out", required=True, help="predictions/NAME.csv (NAME is the agent)")
    p.add_argument("--readout", default=None,
                   help="two-stream readout for --out: sum | softmax-sum | stream (every "
                        "other one goes to readouts/)")
    p.add_argument("--aggregation", choices=("mean", "log-mean"), default="mean",
                   help="how a clip's frame probabilities are combined")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvalConfig, evaluate

    paths = evaluate(EvalConfig(
        checkpoint=args.checkpoint, trials=args.trials, out=args.out, readout=args.readout,
        aggregation=args.aggregation, split=args.split, batch_size=args.batch_size,
        device=args.device, progress=not args.quiet))
    for path in paths:
        print(f"wrote {path}")
    return 0
