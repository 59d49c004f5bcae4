"""The benchmark's commands: `train`, `evaluate`, `report`, `power`, `demo` and `study`.

Only argparse is imported here; each handler imports what it needs (torch, pandas, matplotlib)
so `bodyscene --help` stays instant."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from bodyscene.configs import flag_errors
from bodyscene.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:
    _register_train(sub)
    _register_evaluate(sub)
    _register_report(sub)
    _register_demo(sub)
    _register_study(sub)


# ----------------------------------------------------------------------------- harness

def _register_train(sub: argparse._SubParsersAction) -> None:
    from bodyscene.configs import add_options, deferred

    def fill() -> None:
        from .harness.train import TrainConfig

        add_options(p, TrainConfig)

    p = sub.add_parser("train", help="train a model on a trial manifest's train split",
                       description="Defaults are the paper's: SGD, lr 0.001, momentum 0.9, "
                                   "100 epochs, class-balanced sampling, from scratch. Run "
                                   "under torchrun for several GPUs or nodes.")
    deferred(p, fill)
    p.set_defaults(func=_train)


def _options(pairs: list[str]) -> dict:
    from .harness.train import _key_values

    with flag_errors({"model_options": "--option"}):
        return _key_values(pairs)


def _train(args: argparse.Namespace) -> int:
    from bodyscene.configs import flags, from_args

    from .harness.train import TrainConfig, train

    with flag_errors(flags(TrainConfig)):
        run = train(from_args(TrainConfig, args))
    if os.environ.get("RANK", "0") == "0":  # one line, not one per torchrun process
        print(f"run: {run} (best.pt, last.pt, metrics.csv, run.json)")
    return 0


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model on the trials people answered",
                       description="Score a run of `bodyscene train` (--checkpoint) or any "
                                   "model with no training run (--model with local --weights; "
                                   "nothing is downloaded). See docs/evaluate_your_model.md.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="best.pt or last.pt of a run")
    which.add_argument("--model", help="built-in name (see `bodyscene models`), "
                                       "package.module:factory or an entry-point name")
    p.add_argument("--weights", metavar="FILE",
                   help="with --model: local state dict or torchvision/timm-style checkpoint "
                        "(required for a pretrained architecture such as torchvision or r3d_18)")
    p.add_argument("--random-init", action="store_true",
                   help="with --model: score a pretrained architecture with random weights on "
                        "purpose (a control); the agent, run record and report say 'random init'")
    p.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                   help="with --model: factory option, e.g. --option frames=8 (repeatable)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="with --model: the model's class count (default: the actions, or with "
                        "--label-map the factory's own default)")
    p.add_argument("--label-map", help="CSV model_class,action for a model whose classes are "
                                       "not the manifest's actions")
    p.add_argument("--label-combine", choices=("sum", "mean"), default="sum",
                   help="probabilities of the classes mapped to one action are summed or "
                        "averaged (then renormalised)")
    p.add_argument("--image-size", type=int, default=None,
                   help="with --model: input size (default: the model's declared size, 224)")
    p.add_argument("--clips", type=int, default=None,
                   help="clip models: temporal crops per trial, averaged")
    p.add_argument("--trials", required=True, help="trials.csv")
    p.add_argument("--out", required=True, help="predictions/NAME.csv (NAME is the agent)")
    p.add_argument("--readout", default=None,
                   help="two-stream readout for --out: sum | softmax-sum | stream (every "
                        "other one goes to readouts/)")
    p.add_argument("--aggregation", choices=("mean", "log-mean"), default="mean",
                   help="how a clip's frame (or crop) probabilities are combined")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cache", default="stream",
                   help="stream (decode each batch) | memory | mmap | folder for the mmap file")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU; recorded) | cpu | cuda | cuda:N | mps")
    p.add_argument("--amp", action="store_true", help="float16 autocast (CUDA only)")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads (default 2): on a CPU part of the result, as in training "
                        "(the count sets the order floats are summed in); recorded in the run "
                        "record")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_evaluate)

    q = sub.add_parser("predictions", help="check a predictions file written by any pipeline")
    s = q.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = s.add_parser("validate", help="strict check against the trial manifest: coverage, "
                                      "probabilities, responses, choices, agent names")
    v.add_argument("file", help="predictions/NAME.csv")
    v.add_argument("--trials", required=True, help="trials.csv")
    v.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                   help="the trials the file must cover")
    v.add_argument("--allow-missing", action="store_true",
                   help="accept a file that leaves some of the split's trials out")
    v.add_argument("--responses", help="folder of human responses: a model may not take a "
                                       "participant's name")
    v.set_defaults(func=_validate_predictions)


def _evaluate(args: argparse.Namespace) -> int:
    from .api import evaluate

    if args.checkpoint and (args.weights or args.option or args.num_classes or args.label_map
                            or args.image_size or args.random_init):
        raise BadInput("--weights, --random-init, --option, --num-classes, --label-map and "
                       "--image-size go with --model; a checkpoint carries its own")
    if args.threads < 1:
        raise BadInput(f"--threads: at least 1, got {args.threads}")
    preds = evaluate(
        Path(args.checkpoint) if args.checkpoint else args.model, args.trials, out=args.out,
        weights=args.weights, random_init=args.random_init, options=_options(args.option),
        label_map=args.label_map, device=args.device, amp=args.amp,
        batch_size=args.batch_size, split=args.split, progress=not args.quiet,
        num_classes=args.num_classes, label_combine=args.label_combine,
        image_size=args.image_size, clips=args.clips, readout=args.readout,
        aggregation=args.aggregation, cache=args.cache, threads=args.threads)
    run = preds.attrs["run"]
    for path in run["outputs"]:
        print(f"wrote {path}")
    if run.get("random_init"):
        print(f"note: {run['agent']!r} was scored with random weights (--random-init)")
    return 0


def _validate_predictions(args: argparse.Namespace) -> int:
    import sys

    from .harness.predictions import validate_predictions

    problems = validate_predictions(args.file, args.trials, args.split, args.allow_missing,
                                    args.responses)
    for line in problems:
        print(f"bodyscene: error: {line}", file=sys.stderr)
    if not problems:
        print(f"{args.file}: valid predictions for {args.trials}")
    return 2 if problems else 0


# ----------------------------------------------------------------------------- analysis

def _register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="compare humans and models: tables, figures, HTML, "
                                      "summary.json")
    p.add_argument("--trials", required=True, help="the trial manifest (trials.csv)")
    p.add_argument("--responses", help="folder (or one CSV) of human responses")
    p.add_argument("--predictions", help="folder (or one CSV) of model predictions")
    p.add_argument("--out", required=True, help="report folder (must be new or empty)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-halves", type=int, default=200,
                   help="random participant splits for the noise ceiling")
    p.add_argument("--exclude-anticipations", action="store_true",
                   help="leave out human answers the lab runner flagged as anticipations "
                        "(RT under the lab config's min_rt_s)")
    p.add_argument("--include-readouts", action="store_true",
                   help="also analyse predictions/readouts/*.csv (alternative readouts)")
    p.add_argument("--no-regression", action="store_true",
                   help="skip the mixed-effects regression and GEE")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_report)

    q = sub.add_parser("power", help="participants needed for a body - background effect, by "
                                     "simulation through the simulated observers")
    q.add_argument("--accuracy", default="body=0.85,background=0.80",
                   help="planned accuracies, e.g. body=0.85,background=0.80")
    sizes = q.add_mutually_exclusive_group()
    sizes.add_argument("--participants", type=int, default=None,
                       help="one study size to simulate (a count)")
    sizes.add_argument("--participant-range", default="4:64:4",
                       help="study sizes to simulate: start:stop:step or a comma list")
    q.add_argument("--items", type=int, default=40,
                   help="items per condition per participant (the square then has k times as "
                        "many test items); ignored with --trials")
    q.add_argument("--trials", help="simulate the plan of this trial set (trials.csv): its test "
                                    "items, dealt to the Latin square as `experiment plan` does")
    q.add_argument("--conditions", help="the Latin square's conditions, comma-separated "
                                        "(default: those of --trials, else those of --accuracy)")
    q.add_argument("--plan-seed", type=int, default=0,
                   help="the plan's seed (deals items to square groups) with --trials")
    q.add_argument("--participant-sd", type=float, default=0.3,
                   help="SD of participants' ability (logit scale)")
    q.add_argument("--item-sd", type=float, default=0.3, help="SD of item difficulty (logit)")
    q.add_argument("--sims", type=int, default=500, help="simulated studies per size")
    q.add_argument("--alpha", type=float, default=0.05)
    q.add_argument("--target", type=float, default=0.8, help="power wanted")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", help="folder for power.csv, the figure and the run record "
                                 "(new or empty)")
    q.set_defaults(func=_power)


def _report(args: argparse.Namespace) -> int:
    from .analysis.report import ReportConfig, make_report

    if not args.responses and not args.predictions:
        raise BadInput("give --responses and/or --predictions: there is nothing to report")
    if args.bootstrap < 1:
        raise BadInput(f"--bootstrap must be at least 1, got {args.bootstrap}")
    cfg = ReportConfig(bootstrap=args.bootstrap, seed=args.seed, split_halves=args.split_halves,
                       include_readouts=args.include_readouts,
                       exclude_anticipations=args.exclude_anticipations,
                       regression=not args.no_regression, progress=not args.quiet)
    summary = make_report(args.trials, args.responses, args.predictions, args.out, cfg)
    for group, by_condition in summary["groups"].items():
        cells = ", ".join(f"{c} {v['accuracy']:.2f}" for c, v in by_condition.items())
        print(f"{group}: {cells}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        if ":" in text:
            start, stop, step = (int(x) for x in text.split(":"))
            sizes = tuple(range(start, stop + 1, step))
        else:
            sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise BadInput(f"--participant-range: expected start:stop:step or a comma list of "
                       f"integers, got {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise BadInput(f"--participant-range: need study sizes of at least 2, got {text!r}")
    return sizes


def _power(args: argparse.Namespace) -> int:
    from bodyscene.human_study.simulate import parse_accuracy

    from bodyscene.tables import fresh_output_dir

    from .analysis.stats.power import (
        PowerConfig,
        participants_needed,
        power_curve,
        trials_per_condition,
    )

    accuracy = parse_accuracy(args.accuracy)
    for need in ("body", "background"):
        if need not in accuracy:
            raise BadInput(f"--accuracy: needs a {need}= value, got {args.accuracy!r}")
    sizes = ((args.participants,) if args.participants is not None
             else parse_sizes(args.participant_range))
    if min(sizes) < 2:
        raise BadInput(f"--participants: a study needs at least 2, got {args.participants}")
    conditions = (tuple(c.strip() for c in args.conditions.split(",") if c.strip())
                  if args.conditions else None)
    groups = None
    if args.trials:
        from bodyscene.stimuli.manifest import read_manifest

        from .analysis.stats.power import square_design
        conditions, groups = square_design(read_manifest(args.trials, check_files=False),
                                           conditions, args.plan_seed, source=args.trials)
    cfg = PowerConfig(accuracy=accuracy, participants=sizes,
                      items_per_condition=args.items, conditions=conditions,
                      item_groups=groups, participant_sd=args.participant_sd,
                      item_sd=args.item_sd, n_sims=args.sims, alpha=args.alpha,
                      target=args.target, seed=args.seed)
    out = fresh_output_dir(args.out) if args.out else None
    curve = power_curve(cfg)
    needed = participants_needed(curve, cfg.target)
    print(curve.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    effect = accuracy["body"] - accuracy["background"]
    square = cfg.square()
    print(f"body - background = {100 * effect:.1f} points; Latin square over "
          f"{', '.join(square)} with {len(cfg.groups())} test items, about "
          f"{trials_per_condition(cfg):.0f} per condition per participant: " +
          (f"{needed} participants reach {100 * cfg.target:.0f}% power"
           if needed else f"no simulated size reached {100 * cfg.target:.0f}% power"))
    if any(n % len(square) for n in sizes):
        print(f"note: sizes that are not a multiple of {len(square)} leave the square "
              f"incomplete (some rows have one participant more)")
    if out is not None:
        _write_power(out, cfg, curve, needed)
    return 0


def _write_power(out: Path, cfg, curve, needed: int | None) -> None:
    import matplotlib.pyplot as plt

    from bodyscene.provenance import write_run_record
    from bodyscene.tables import write_frame_atomic

    from .analysis.report.figures import save_figure

    curve = curve.assign(simulated=True)
    write_frame_atomic(out / "power.csv", curve)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(curve["n_participants"], curve["power"], "o-", color="k")
    ax.fill_between(curve["n_participants"], curve["ci_low"], curve["ci_high"], alpha=0.2,
                    color="k")
    ax.axhline(cfg.target, ls="--", color="tab:red", lw=1)
    ax.set_xlabel("participants")
    ax.set_ylabel("power (paired t-test)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Power by simulation (simulated observers), body - background = "
                 f"{cfg.accuracy['body'] - cfg.accuracy['background']:.2f}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "power")
    write_run_record(out, cfg, cfg.seed, name="power_run.json", participants_needed=needed)


# ----------------------------------------------------------------------------- studies

def add_demo_args(p: argparse.ArgumentParser, threads_list: bool = False) -> None:
    """The demo's few command-line knobs; everything else is DemoConfig's (recorded in
    demo_run.json). `threads_list`: --threads takes a comma list (study seeds)."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="small world and few epochs (a smoke run for tests and CI)")
    p.add_argument("--epochs", type=int, help="override the demo's training epochs")
    p.add_argument("--backbone", help="override the demo's backbone (e.g. resnet18, tiny)")
    p.add_argument("--scene-consistency", type=float,
                   help="override the world's P(a clip shows its action's home scene) (0.9)")
    if threads_list:
        p.add_argument("--threads", default="2",
                       help="comma list of torch thread counts; each seed runs with each")
    else:
        p.add_argument("--threads", type=int, default=None,
                       help="torch threads (default 2): part of the result, recorded in "
                            "run.json; the same seed and --threads give the same numbers")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# flags of the DemoConfig fields that add_demo_args exposes, for library errors
DEMO_FLAGS = {"epochs": "--epochs", "backbone": "--backbone", "threads": "--threads",
              "scene_consistency": "--scene-consistency"}


def config_from_args(args: argparse.Namespace, threads: int | None = None):
    from .studies.demo import DemoConfig

    cfg = DemoConfig.quick_config(seed=args.seed) if args.quick else DemoConfig(seed=args.seed)
    train = {k: v for k, v in (("epochs", args.epochs), ("backbone", args.backbone),
                               ("threads", threads if threads is not None else args.threads))
             if v is not None}
    if train.get("threads", 1) < 1:  # refused before any output folder is made
        raise BadInput(f"--threads: at least 1, got {train['threads']}")
    world = {} if args.scene_consistency is None else {
        "scene_consistency": args.scene_consistency}
    return replace(cfg, train=replace(cfg.train, **train),
                   world=replace(cfg.world, **world), progress=not args.quiet)


def _register_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole suite on the built-in synthetic world")
    p.add_argument("--out", default="results/demo", help="output folder (must be new or empty)")
    add_demo_args(p)
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .studies.demo import run_demo

    with flag_errors(DEMO_FLAGS):
        result = run_demo(config_from_args(args), args.out)
    print(f"\nreport: {result['report']}/report.html")
    return 0


def _numbers(text: str, flag: str, kind: type = float) -> list:
    try:
        values = [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise BadInput(f"{flag}: expected comma-separated {what}, got {text!r}") from None
    if not values:
        raise BadInput(f"{flag}: expected at least one value, got {text!r}")
    return values


def _register_study(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="the paper's open checks on the demo world")
    s = p.add_subparsers(dest="study", metavar="STUDY", required=True)
    specs = {
        "loss-ablation": "DomainNet: three-term loss vs combined term only",
        "fusion": "DomainNet: sum vs learned-weighted vs concat-MLP fusion",
        "mask-noise": "accuracy as segmentation noise grows from 0 to 20%%",
        "seeds": "the demo over several seeds: mean and spread",
    }
    for name, help_text in specs.items():
        q = s.add_parser(name, help=help_text)
        q.add_argument("--out", default=f"results/study-{name}")
        add_demo_args(q, threads_list=name == "seeds")
        if name == "mask-noise":
            q.add_argument("--levels", default="0,0.05,0.1,0.2",
                           help="noise as fractions of the mask area")
            q.add_argument("--kinds", default="erode,dilate",
                           help="comma-separated: erode, dilate, flip")
            q.add_argument("--retrain", action="store_true",
                           help="train on each noise level instead of on clean masks")
        if name == "seeds":
            q.add_argument("--seeds", default="0,1,2")
        q.set_defaults(func=_study, study_name=name)


def _study(args: argparse.Namespace) -> int:
    with flag_errors(DEMO_FLAGS):
        return _run_study(args)


def _run_study(args: argparse.Namespace) -> int:
    from .studies import ablations

    threads = _numbers(args.threads, "--threads", int) if args.study_name == "seeds" else None
    if threads is not None and min(threads) < 1:
        raise BadInput(f"--threads: thread counts of at least 1, got {args.threads!r}")
    cfg = config_from_args(args, threads[0] if threads else None)
    out = Path(args.out)
    if args.study_name == "loss-ablation":
        ablations.study_loss_ablation(cfg, out)
    elif args.study_name == "fusion":
        ablations.study_fusion(cfg, out)
    elif args.study_name == "mask-noise":
        levels = _numbers(args.levels, "--levels")
        if any(not 0 <= v <= 1 for v in levels):
            raise BadInput(f"--levels: fractions in [0, 1], got {args.levels!r}")
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        bad = [k for k in kinds if k not in ("erode", "dilate", "flip")]
        if bad:
            raise BadInput(f"--kinds: expected erode, dilate or flip, got {bad[0]!r}")
        ablations.study_mask_noise(cfg, out, levels, kinds, args.retrain)
    else:
        ablations.study_seeds(cfg, out, _numbers(args.seeds, "--seeds", int), threads)
    return 0
