"""The pipeline's pieces as the demo and every study run them: build the synthetic world,
train a model, evaluate it, simulate pilot observers, write the report, and score one
predictions file. Each takes a demo-shaped config (benchmark.studies.demo.DemoConfig)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd


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


def build_world(cfg, out: Path, mask_noise=None) -> Path:
    from bodyscene.stimuli.synth import SynthConfig, make_synthetic_trials
    from bodyscene.stimuli.trialset import TrialSetConfig

    synth = SynthConfig(
        n_actions=cfg.actions, clips_per_action=cfg.clips_per_action,
        frames_per_video=cfg.frames_per_video, samples_per_video=cfg.samples_per_video,
        size=cfg.size, scene_consistency=cfg.scene_consistency, figure_scale=cfg.figure_scale,
        scene_salience=cfg.scene_salience, seed=cfg.seed, progress=cfg.progress,
        trials=TrialSetConfig(clip_frames=cfg.clip_frames, seed=cfg.seed, mask_noise=mask_noise))
    return make_synthetic_trials(out, synth)


def train_model(cfg, trials: Path, out: Path, model: str, **options) -> Path:
    from bodyscene.benchmark.harness.train import TrainConfig, train

    tc = TrainConfig(trials=str(trials), model=model, backbone=cfg.backbone, out=str(out),
                     epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum,
                     batch_size=cfg.batch_size, image_size=cfg.image_size, seed=cfg.seed,
                     progress=cfg.progress,
                     **({"view_dropout": cfg.view_dropout} if model == "domainnet" else {}),
                     **options)
    return Path(train(tc))


def evaluate_model(run_dir: Path, trials: Path, out_csv: Path) -> list[Path]:
    from bodyscene.benchmark.harness.evaluate import EvalConfig, evaluate

    return [Path(p) for p in evaluate(EvalConfig(checkpoint=str(run_dir / "best.pt"),
                                                 trials=str(trials), out=str(out_csv)))]


def simulate_humans(cfg, trials: Path, out: Path) -> Path:
    from bodyscene.human_study.plan import PlanConfig, make_plan
    from bodyscene.human_study.simulate import ObserverModel, simulate_participants

    plan_dir = make_plan(trials, out / "plan", PlanConfig(n_participants=cfg.participants,
                                                          seed=cfg.seed))
    responses = out / "responses"
    simulate_participants(plan_dir, ObserverModel(accuracy=dict(cfg.human_accuracy)),
                          responses, seed=cfg.seed)
    return responses


def write_report(cfg, trials: Path, responses: Path, predictions: Path,
                 out: Path) -> dict:
    from bodyscene.benchmark.analysis.report import ReportConfig, make_report

    return make_report(trials, responses, predictions, out,
                       ReportConfig(bootstrap=cfg.bootstrap, seed=cfg.seed,
                                    progress=cfg.progress))


def accuracy_by_condition(predictions_csv: Path, trials: Path, seed: int,
                          n_boot: int) -> pd.DataFrame:
    """One model's restricted-choice accuracy per condition with its 95% interval (items
    resampled), computed by the report's own statistics."""
    from bodyscene.benchmark.analysis.observations import load_observations
    from bodyscene.benchmark.analysis.stats.accuracy import accuracy_table

    obs = load_observations(trials, None, predictions_csv)
    table = accuracy_table(obs, n_boot=n_boot, seed=seed)
    return table[["condition", "accuracy", "ci_low", "ci_high", "chance", "n_trials"]]
