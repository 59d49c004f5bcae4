"""Evaluation: a trained model answers the test trials people answered, in the predictions format.

Every trial of the split, in every condition, is shown as the views the model consumes
(bodyscene.benchmark.harness.data's protocol). `response` is the most probable action among the trial's offered
`choices` (the question people answered), `response_open` the most probable of all actions. A clip
is scored frame by frame and its frames' probabilities aggregated. A two-stream model is read out
every way it offers: the default (or chosen) readout goes to `out`, each other one to
`out.parent / "readouts" / "<stem>.<readout>.csv"`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bodyscene.errors import BadInput

AGGREGATIONS = ("mean", "log-mean")


@dataclass
class EvalConfig:
    checkpoint: str
    trials: str
    out: str                       # predictions/NAME.csv; NAME becomes the agent
    readout: str | None = None     # default: the model's own default readout
    aggregation: str = "mean"      # clip frames: mean of probabilities | log-mean (geometric)
    split: str = "test"            # train | val | test | all
    batch_size: int = 64
    device: str = "auto"
    cache: str = "memory"
    progress: bool = True


def readout_path(out: Path, readout: str) -> Path:
    return out.parent / "readouts" / f"{out.stem}.{readout}.csv"


def aggregate(probs: np.ndarray, trial: np.ndarray, n_trials: int, how: str) -> np.ndarray:
    """Per-trial probabilities (T, C) from per-frame ones (S, C); `trial` maps frame -> trial."""
    if how not in AGGREGATIONS:
        raise BadInput(f"aggregation {how!r}: expected one of {', '.join(AGGREGATIONS)}")
    counts = np.bincount(trial, minlength=n_trials)[:, None].astype(np.float64)
    values = probs.astype(np.float64)
    if how == "log-mean":
        values = np.log(np.clip(values, 1e-12, 1.0))
    total = np.zeros((n_trials, probs.shape[1]))
    np.add.at(total, trial, values)
    mean = total / np.maximum(counts, 1)
    if how == "log-mean":
        mean = np.exp(mean - mean.max(axis=1, keepdims=True))
        mean /= mean.sum(axis=1, keepdims=True)
    return mean


def evaluate(cfg: EvalConfig) -> list[Path]:
    """Write the predictions file(s); returns their paths, the chosen readout's first."""
    from bodyscene.stimuli.manifest import actions_of, manifest_sha256, read_manifest

    from bodyscene.provenance import write_run_record
    from bodyscene.tables import write_csv_atomic

    from .checkpoint import load_model
    from .data import TrialFrames
    from .predict import default_readout, predict, stream_readouts
    from .predictions import COLUMNS, prob_column
    from .runtime import select_device

    out = Path(cfg.out)
    if out.suffix != ".csv":
        raise BadInput(f"{out}: a predictions file is a .csv")
    if cfg.split not in ("train", "val", "test", "all"):
        raise BadInput(f"split {cfg.split!r}: expected train, val, test or all")
    if cfg.aggregation not in AGGREGATIONS:
        raise BadInput(f"aggregation {cfg.aggregation!r}: expected one of "
                       f"{', '.join(AGGREGATIONS)}")
    model, ckpt = load_model(cfg.checkpoint)
    readouts = list(stream_readouts(model))
    chosen = cfg.readout or default_readout(model)
    if chosen not in readouts:
        raise BadInput(f"readout {chosen!r}: model {ckpt['model']!r} offers "
                       f"{', '.join(readouts)}")
    targets = {chosen: out, **{r: readout_path(out, r) for r in readouts if r != chosen}}
    existing = [p for p in targets.values() if p.exists()]
    if existing:
        raise BadInput(f"{existing[0]}: a predictions file already exists (nothing is "
                       f"overwritten); choose another --out")

    manifest = read_manifest(cfg.trials)
    actions = actions_of(manifest)
    if list(ckpt["actions"]) != actions:
        raise BadInput(f"{cfg.checkpoint}: the model was trained for actions "
                       f"{', '.join(ckpt['actions'])} but {cfg.trials} has "
                       f"{', '.join(actions)}; evaluate it on a trial set of the same actions")
    device = select_device(cfg.device)
    model = model.to(device)
    frames = TrialFrames(manifest, model.views, int(ckpt["image_size"]), actions,
                         split=None if cfg.split == "all" else cfg.split,
                         cache=cfg.cache, manifest_path=cfg.trials, progress=cfg.progress)
    if len(frames.trials) == 0:
        raise BadInput(f"{cfg.trials}: no trials in split {cfg.split!r} to evaluate")
    probs = predict(model, frames, cfg.batch_size, device, readouts, progress=cfg.progress)
    frames.cache.close()

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    mhash = manifest_sha256(cfg.trials)
    columns = list(COLUMNS) + [prob_column(a) for a in actions]
    index = {a: i for i, a in enumerate(actions)}
    written = []
    for readout, path in targets.items():
        per_trial = aggregate(probs[readout], frames.trial, len(frames.trials), cfg.aggregation)
        rows = []
        for order, (t, p) in enumerate(zip(frames.trials.itertuples(index=False), per_trial)):
            offered = list(t.choice_list)
            response = max(offered, key=lambda a: p[index[a]])  # first listed wins a tie
            rows.append({
                "agent": path.stem, "agent_kind": "model", "session": 1,
                "trial_id": t.trial_id, "sha256": t.sha256, "response": response,
                "correct": response == t.action, "rt_s": "", "order": order, "block": 0,
                "choice_order": t.choices, "timestamp": stamp, "simulated": False,
                "phase": "main", "manifest_sha256": mhash,
                "response_open": actions[int(np.argmax(p))], "readout": readout,
                "aggregation": cfg.aggregation, "checkpoint": str(cfg.checkpoint),
                "model": ckpt["model"],
                **{prob_column(a): float(p[index[a]]) for a in actions}})
        write_csv_atomic(path, rows, columns)
        written.append(path)
    # Evaluation draws nothing at random; the seed recorded is the one the model was trained with.
    write_run_record(out.parent, cfg, ckpt["config"]["seed"], name=f"{out.stem}.run.json", manifest_sha256=mhash,
                     actions=actions, readouts=readouts, default_readout=chosen,
                     model=ckpt["model"], model_options=ckpt["model_options"],
                     trained_epochs=ckpt["epoch"], outputs=written)
    return written
