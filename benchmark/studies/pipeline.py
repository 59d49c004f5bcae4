"""The pipeline's pieces as the demo and every study run them: build the synthetic world,
train a model, evaluate it, simulate pilot observers, write the report, and score one
predictions file. Each takes a demo-shaped config (benchmark.studies.demo.DemoConfig)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd


class Stopwatch:
    """Per-stage wall times, kept in order, for the timings file and the closing table. Given
    the stages' expected seconds (from `probe_throughput`), each stage's start line says how
    long it should take and when the probed part of the run should end."""

    def __init__(self, expected: dict[str, float] | None = None) -> None:
        self.stages: dict[str, float] = {}
        self.expected = dict(expected or {})

    def run(self, name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        guess = self.expected.get(name)
        if guess is None:
            print(f"[demo] {name} ...", flush=True)
        else:
            left = sum(v for k, v in self.expected.items() if k not in self.stages)
            end = time.strftime("%H:%M:%S", time.localtime(time.time() + left))
            print(f"[demo] {name}: expected ~{guess:.0f} s (probed stages done ~{end}) ...",
                  flush=True)
        result = fn(*args, **kwargs)
        self.stages[name] = round(time.perf_counter() - t0, 2)
        print(f"[demo] {name}: {self.stages[name]:.1f} s", flush=True)
        return result


def world_frames(cfg) -> dict[str, int]:
    """Frames per split of the world `cfg` describes, before it is rendered (the synthetic
    world splits each action's clips by SynthConfig.split)."""
    from bodyscene.stimuli.synth import split_of_clips
    from bodyscene.seeds import derive_rng

    w = cfg.world
    splits = split_of_clips(w.clips_per_action, w.split, derive_rng(cfg.seed, "probe"))
    per_clip = w.samples_per_video * w.trials.clip_frames
    return {s: w.n_actions * per_clip * sum(1 for x in splits if x == s)
            for s in ("train", "val", "test")}


def _rate(step, batch: int, seconds: float) -> float:
    """Samples/s of `step()` over about `seconds` (after one warm-up call)."""
    step()
    n, t0 = 0, time.perf_counter()
    while n < 1 or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def probe_throughput(cfg, seconds: float = 1.0) -> dict:
    """A ~`seconds` probe of this machine on the demo's own models: training steps (augment,
    forward, loss, backward, SGD) and inference for the baseline and DomainNet on random
    pixels, at the configured `cfg.threads`. It only estimates: the thread count it measured
    and torch's state are restored, and a faster count it finds (one thread against torch's
    default, on small batches) is printed as a suggestion, since another count changes the
    results' last digits. Returns rates (samples/s), the expected seconds per stage and the
    suggestion."""
    import torch

    before = torch.get_num_threads()
    rng_state = torch.get_rng_state()
    try:
        return _probe(cfg, seconds, before)
    finally:
        torch.set_num_threads(before)
        torch.set_rng_state(rng_state)


def _probe(cfg, seconds: float, default: int) -> dict:
    import torch
    import torch.nn.functional as F

    from bodyscene.benchmark.harness.data import Augment, to_input
    from bodyscene.models.registry import create_model

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    tc, actions = cfg.train, cfg.world.n_actions
    b, size = tc.batch_size, tc.image_size

    def trainer(name: str, b: int = b):
        model = create_model(name, actions, backbone=tc.backbone)
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=tc.momentum)
        pixels = torch.randint(0, 256, (b, len(model.views), size, size, 3), dtype=torch.uint8,
                               generator=gen)
        labels = torch.randint(0, actions, (b,), generator=gen)

        def step():
            out = model(*to_input(pixels, "cpu", Augment().draw(b, gen)))
            loss = model.loss(out, labels) if hasattr(model, "loss") else \
                F.cross_entropy(out, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def infer():
            with torch.inference_mode():
                model(*to_input(pixels, "cpu"))
        return model, step, infer

    models = {name: trainer(name) for name in ("baseline", "domainnet")}
    candidates = sorted({cfg.threads, 1, max(default, 1)})
    compare = len(candidates) > 1
    tried = {}
    if compare:  # on small batches, so that a badly oversubscribed setting costs little to try
        _, small, _ = trainer("baseline", 4)
        for n in candidates:
            torch.set_num_threads(n)
            tried[n] = _rate(small, 4, seconds * 0.25 / len(candidates))
    torch.set_num_threads(cfg.threads)
    share = seconds * (0.75 if compare else 1.0) / 2
    rates = {}
    for name, (model, step, infer) in models.items():
        model.train()
        rates[f"train {name}"] = _rate(step, b, share * 0.8)
        model.eval()
        rates[f"evaluate {name}"] = _rate(infer, b, share * 0.2)
    frames = world_frames(cfg)
    # evaluation scores every test trial (4 conditions); training validates every epoch
    expected = {}
    for name in ("baseline", "domainnet"):
        expected[f"train {name}"] = tc.epochs * (frames["train"] / rates[f"train {name}"]
                                                  + frames["val"] / rates[f"evaluate {name}"])
        expected[f"evaluate {name}"] = 4 * frames["test"] / rates[f"evaluate {name}"]
    fastest = max(tried, key=tried.get) if tried else cfg.threads
    speedup = tried[fastest] / tried[cfg.threads] if tried else 1.0
    return {"threads": cfg.threads, "rates": {k: round(v, 1) for k, v in rates.items()},
            "frames": frames, "expected_s": {k: round(v, 2) for k, v in expected.items()},
            "suggested_threads": fastest if speedup > 1.2 else cfg.threads,
            "suggested_speedup": round(speedup, 2),
            "tried_threads": {str(k): round(v, 1) for k, v in tried.items()}}


def build_world(cfg, out: Path, mask_noise=None) -> Path:
    from bodyscene.stimuli.synth import make_synthetic_trials

    world = replace(cfg.world, trials=replace(cfg.world.trials, mask_noise=mask_noise))
    return make_synthetic_trials(out, world)


def train_model(cfg, trials: Path, out: Path, model: str, **options) -> Path:
    """`cfg.train` on `trials` into `out`; view dropout only for a model with two views."""
    from bodyscene.benchmark.harness.train import train

    tc = replace(cfg.train, trials=str(trials), out=str(out), model=model,
                 view_dropout=cfg.train.view_dropout if model == "domainnet" else 0.0,
                 **options)
    return Path(train(tc))


def evaluate_model(run_dir: Path, trials: Path, out_csv: Path,
                   progress: bool = True, checkpoint: str = "last") -> list[Path]:
    """Score a run's `last` or `best` weights (DemoConfig.checkpoint says why last)."""
    from bodyscene.benchmark.harness.evaluate import EvalConfig, evaluate

    return [Path(p) for p in evaluate(EvalConfig(checkpoint=str(run_dir / f"{checkpoint}.pt"),
                                                 trials=str(trials), out=str(out_csv),
                                                 progress=progress))]


def simulate_humans(cfg, trials: Path, out: Path) -> Path:
    from bodyscene.human_study.plan import make_plan
    from bodyscene.human_study.simulate import ObserverModel, simulate_participants

    plan_dir = make_plan(trials, out / "plan", cfg.plan)
    responses = out / "responses"
    simulate_participants(plan_dir, ObserverModel(accuracy=dict(cfg.human_accuracy)),
                          responses, seed=cfg.seed)
    return responses


def write_report(cfg, trials: Path, responses: Path, predictions: Path,
                 out: Path) -> dict:
    from bodyscene.benchmark.analysis.report import make_report

    return make_report(trials, responses, predictions, out, cfg.report)


def accuracy_by_condition(predictions_csv: Path, trials: Path, seed: int,
                          n_boot: int) -> pd.DataFrame:
    """One model's restricted-choice accuracy per condition with its 95% interval (items
    resampled), computed by the report's own statistics."""
    from bodyscene.benchmark.analysis.observations import load_observations
    from bodyscene.benchmark.analysis.stats.accuracy import accuracy_table

    obs = load_observations(trials, None, predictions_csv)
    table = accuracy_table(obs, n_boot=n_boot, seed=seed)
    return table[["condition", "accuracy", "ci_low", "ci_high", "chance", "n_trials"]]
