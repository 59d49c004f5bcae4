"""`bodyscene report` and `bodyscene power`: the statistics half of the benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from stimuli.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--include-readouts", action="store_true",
                   help="also analyse predictions/readouts/*.csv (alternative readouts)")
    p.add_argument("--no-regression", action="store_true",
                   help="skip the mixed-effects regression and GEE")
    p.set_defaults(func=_report)

    q = sub.add_parser("power", help="participants needed for a body - background effect, by "
                                     "simulation through the simulated observers")
    q.add_argument("--accuracy", default="body=0.85,background=0.80",
                   help="planned accuracies, e.g. body=0.85,background=0.80")
    q.add_argument("--participants", default="4:64:4",
                   help="study sizes to simulate: start:stop:step or a comma list")
    q.add_argument("--items", type=int, default=40, help="items per condition per participant")
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
    from benchmark.report import ReportConfig, make_report

    if not args.responses and not args.predictions:
        raise BadInput("give --responses and/or --predictions: there is nothing to report")
    if args.bootstrap < 1:
        raise BadInput(f"--bootstrap must be at least 1, got {args.bootstrap}")
    cfg = ReportConfig(bootstrap=args.bootstrap, seed=args.seed, split_halves=args.split_halves,
                       include_readouts=args.include_readouts,
                       regression=not args.no_regression)
    summary = make_report(args.trials, args.responses, args.predictions, args.out, cfg)
    for group, by_condition in summary["groups"].items():
        cells = ", ".join(f"{c} {v['accuracy']:.2f}" for c, v in by_condition.items())
        print(f"{group}: {cells}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0


def parse_accuracy(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise BadInput(f"--accuracy: expected condition=number, got {part!r}") from None
        if not sep or not 0.0 < out[name.strip()] < 1.0:
            raise BadInput(f"--accuracy: expected condition=number in (0, 1), got {part!r}")
    return out


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        if ":" in text:
            start, stop, step = (int(x) for x in text.split(":"))
            sizes = tuple(range(start, stop + 1, step))
        else:
            sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise BadInput(f"--participants: expected start:stop:step or a comma list of "
                       f"integers, got {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise BadInput(f"--participants: need study sizes of at least 2, got {text!r}")
    return sizes


def _power(args: argparse.Namespace) -> int:
    from benchmark.stats.power import PowerConfig, participants_needed, power_curve

    accuracy = parse_accuracy(args.accuracy)
    for need in ("body", "background"):
        if need not in accuracy:
            raise BadInput(f"--accuracy: needs a {need}= value, got {args.accuracy!r}")
    cfg = PowerConfig(accuracy=accuracy, participants=parse_sizes(args.participants),
                      items_per_condition=args.items, participant_sd=args.participant_sd,
                      item_sd=args.item_sd, n_sims=args.sims, alpha=args.alpha,
                      target=args.target, seed=args.seed)
    out = None
    if args.out:
        out = Path(args.out)
        if out.exists() and any(out.iterdir()):
            raise BadInput(f"{out}: output folder is not empty (nothing is overwritten)")
    curve = power_curve(cfg)
    needed = participants_needed(curve, cfg.target)
    print(curve.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    effect = accuracy["body"] - accuracy["background"]
    print(f"body - background = {100 * effect:.1f} points, {cfg.items_per_condition} items per "
          f"condition: " + (f"{needed} participants reach {100 * cfg.target:.0f}% power"
                            if needed else f"no simulated size reached "
                                           f"{100 * cfg.target:.0f}% power"))
    if out is not None:
        _write_power(out, cfg, curve, needed)
    return 0


def _write_power(out: Path, cfg, curve, needed: int | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stimuli.provenance import write_run_record
    from stimuli.tables import write_frame_atomic

    out.mkdir(parents=True, exist_ok=True)
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
    for ext in ("png", "svg"):
        fig.savefig(out / f"power.{ext}", dpi=150)
    plt.close(fig)
    write_run_record(out, cfg, cfg.seed, name="power_run.json", participants_needed=needed)
