"""`bodyscene demo`: the whole suite, end to end, on the built-in synthetic world.

Stimuli (short clips, as people saw videos in the paper) -> baseline and DomainNet trained and
evaluated on the same test trials -> a pilot of *simulated* observers shaped like the paper's
people -> the report. The demo then checks the paper's effect on what it measured and says
plainly which checks hold; nothing in its output is written in by hand."""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from stimuli.errors import BadInput

MODELS = ("baseline", "domainnet")
CONDITIONS = ("original", "body", "background", "conflict")


@dataclass
class DemoConfig:
    """Defaults are tuned so that the paper's effect shows on a 2-core CPU in minutes; every
    value is recorded beside the outputs."""

    # world
    actions: int = 8
    # 40 clips per action: with fewer (12) a ResNet-18 body stream trained from scratch sees
    # too few bodies per class and stays near chance on body-only trials
    clips_per_action: int = 40
    frames_per_video: int = 16
    samples_per_video: int = 3
    clip_frames: int = 4
    size: int = 64
    scene_consistency: float = 0.9
    figure_scale: float = 1.0
    scene_salience: float = 1.0
    # models (the paper: SGD, lr 0.001, momentum 0.9, 100 epochs on GPU; a CPU demo trains
    # fewer epochs at a higher rate)
    backbone: str = "resnet18"
    image_size: int = 64
    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32
    view_dropout: float = 0.0
    # simulated pilot observers (the paper's pattern: all well above chance, body best)
    participants: int = 12
    human_accuracy: dict[str, float] = field(default_factory=lambda: {
        "original": 0.85, "body": 0.88, "background": 0.70, "conflict": 0.80})
    bootstrap: int = 1000
    seed: int = 0
    quick: bool = False

    @classmethod
    def quick_config(cls, **overrides) -> "DemoConfig":
        """A few-minute smoke run for tests and CI: small world, few epochs. The paper's effect
        need not hold at this size."""
        base = cls(actions=4, clips_per_action=6, frames_per_video=8, samples_per_video=1,
                   clip_frames=2, size=32, backbone="tiny", image_size=32, epochs=2,
                   participants=4, bootstrap=200, quick=True)
        return replace(base, **overrides)


# ---------------------------------------------------------------------------------- stages

class Stopwatch:
    """Per-stage wall times, kept in order, for the timings file and the closing table."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    def run(self, name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        print(f"[demo] {name} ...", flush=True)
        result = fn(*args, **kwargs)
        self.stages[name] = round(time.perf_counter() - t0, 2)
        print(f"[demo] {name}: {self.stages[name]:.1f} s", flush=True)
        return result


def build_world(cfg: DemoConfig, out: Path, mask_noise=None) -> Path:
    from stimuli.synth import SynthConfig, make_synthetic_trials
    from stimuli.trialset import TrialSetConfig

    synth = SynthConfig(
        n_actions=cfg.actions, clips_per_action=cfg.clips_per_action,
        frames_per_video=cfg.frames_per_video, samples_per_video=cfg.samples_per_video,
        size=cfg.size, scene_consistency=cfg.scene_consistency, figure_scale=cfg.figure_scale,
        scene_salience=cfg.scene_salience, seed=cfg.seed,
        trials=TrialSetConfig(clip_frames=cfg.clip_frames, seed=cfg.seed, mask_noise=mask_noise))
    return make_synthetic_trials(out, synth)


def train_model(cfg: DemoConfig, trials: Path, out: Path, model: str, **options) -> Path:
    from benchmark.train import TrainConfig, train

    tc = TrainConfig(trials=str(trials), model=model, backbone=cfg.backbone, out=str(out),
                     epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum,
                     batch_size=cfg.batch_size, image_size=cfg.image_size, seed=cfg.seed,
                     **({"view_dropout": cfg.view_dropout} if model == "domainnet" else {}),
                     **options)
    return Path(train(tc))


def evaluate_model(run_dir: Path, trials: Path, out_csv: Path) -> list[Path]:
    from benchmark.evaluate import EvalConfig, evaluate

    return [Path(p) for p in evaluate(EvalConfig(checkpoint=str(run_dir / "best.pt"),
                                                 trials=str(trials), out=str(out_csv)))]


def simulate_humans(cfg: DemoConfig, trials: Path, out: Path) -> Path:
    from human_study.plan import PlanConfig, make_plan
    from human_study.simulate import ObserverModel, simulate_participants

    plan_dir = make_plan(trials, out / "plan", PlanConfig(n_participants=cfg.participants,
                                                          seed=cfg.seed))
    responses = out / "responses"
    simulate_participants(plan_dir, ObserverModel(accuracy=dict(cfg.human_accuracy)),
                          responses, seed=cfg.seed)
    return responses


def write_report(cfg: DemoConfig, trials: Path, responses: Path, predictions: Path,
                 out: Path) -> dict:
    from benchmark.report import ReportConfig, make_report

    return make_report(trials, responses, predictions, out,
                       ReportConfig(bootstrap=cfg.bootstrap, seed=cfg.seed))


# ----------------------------------------------------------------------- the paper's effect

def effect_checks(summary: dict) -> list[dict]:
    """The issue's criteria for "the paper's effect", evaluated on the measured summary."""
    groups = summary["groups"]

    def acc(group: str, condition: str) -> float:
        return float(groups[group][condition]["accuracy"])

    chance = float(groups["baseline"]["body"]["chance"])
    checks = [
        ("baseline on body-only within 15 points of chance",
         abs(acc("baseline", "body") - chance) <= 0.15,
         f"{acc('baseline', 'body'):.3f} vs chance {chance:.3f}"),
        ("DomainNet on body-only at least 30 points above the baseline",
         acc("domainnet", "body") - acc("baseline", "body") >= 0.30,
         f"{acc('domainnet', 'body'):.3f} - {acc('baseline', 'body'):.3f}"),
        ("DomainNet on original at least as accurate as the baseline (within 2 points)",
         acc("domainnet", "original") >= acc("baseline", "original") - 0.02,
         f"{acc('domainnet', 'original'):.3f} vs {acc('baseline', 'original'):.3f}"),
        ("both models well above chance on background-only (>= chance + 20 points)",
         min(acc(m, "background") for m in MODELS) >= chance + 0.20,
         ", ".join(f"{m} {acc(m, 'background'):.3f}" for m in MODELS)),
    ]
    return [{"check": c, "holds": bool(h), "measured": m} for c, h, m in checks]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _fresh(out: Path) -> Path:
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"{out}: output folder is not empty (nothing is overwritten); "
                       f"choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_demo(cfg: DemoConfig, out: str | Path) -> dict:
    """Run every stage into `out`; return {'summary', 'checks', 'timings'}."""
    from stimuli.provenance import write_run_record

    out = _fresh(Path(out))
    write_run_record(out, cfg, cfg.seed, name="demo_run.json")
    clock = Stopwatch()
    t0 = time.perf_counter()
    trials = clock.run("stimuli", build_world, cfg, out / "stimuli")
    predictions = out / "predictions"
    predictions.mkdir()
    for model in MODELS:
        run_dir = clock.run(f"train {model}", train_model, cfg, trials, out / "runs" / model,
                            model)
        clock.run(f"evaluate {model}", evaluate_model, run_dir, trials,
                  predictions / f"{model}.csv")
    responses = clock.run("simulated observers", simulate_humans, cfg, trials, out)
    summary = clock.run("report", write_report, cfg, trials, responses, predictions,
                        out / "report")
    checks = effect_checks(summary) if not cfg.quick else []
    timings = {"stages_s": clock.stages, "total_s": round(time.perf_counter() - t0, 2),
               "peak_rss_mb": round(_peak_rss_mb(), 1)}
    result = {"checks": checks, "timings": timings, "report": str(out / "report"),
              "summary": str(out / "report" / "summary.json")}
    (out / "demo.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print_result(summary, checks, timings)
    return {**result, "summary": summary}  # the summary itself, not its path


def _print_result(summary: dict, checks: list[dict], timings: dict) -> None:
    groups = summary["groups"]
    print("\naccuracy by condition (restricted choice; 95% CI)")
    print(f"{'group':28s}" + "".join(f"{c:>22s}" for c in CONDITIONS))
    for g, by_cond in groups.items():
        cells = []
        for c in CONDITIONS:
            s = by_cond.get(c)
            cells.append(f"{s['accuracy']:.2f} [{s['ci_low']:.2f},{s['ci_high']:.2f}]"
                         if s else "-")
        print(f"{g:28s}" + "".join(f"{x:>22s}" for x in cells))
    if checks:
        print("\nthe paper's effect on this run:")
        for c in checks:
            print(f"  [{'holds' if c['holds'] else 'FAILS'}] {c['check']}: {c['measured']}")
    print(f"\ntimes (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings["stages_s"].items())
          + f"; total {timings['total_s']:.1f}; peak memory {timings['peak_rss_mb']:.0f} MB")


# ----------------------------------------------------------------------------------- CLI

def add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="small world and few epochs (a smoke run for tests and CI)")
    p.add_argument("--epochs", type=int, help="override the demo's training epochs")
    p.add_argument("--backbone", help="override the demo's backbone (e.g. resnet18, tiny)")


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    cfg = DemoConfig.quick_config(seed=args.seed) if args.quick else DemoConfig(seed=args.seed)
    if args.epochs is not None:
        cfg = replace(cfg, epochs=args.epochs)
    if args.backbone:
        cfg = replace(cfg, backbone=args.backbone)
    return cfg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole suite on the built-in synthetic world")
    p.add_argument("--out", default="results/demo", help="output folder (must be new or empty)")
    add_demo_args(p)
    p.set_defaults(func=_demo)
    from . import studies

    studies.register(sub, add_demo_args, config_from_args)


def _demo(args: argparse.Namespace) -> int:
    result = run_demo(config_from_args(args), args.out)
    print(f"\nreport: {result['report']}/report.html")
    return 0
