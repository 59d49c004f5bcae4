"""Power analysis by simulation: how many participants does a body - background effect need?

Simulated observers (bodyscene.human_study.simulate) with the planned accuracies answer every item in both
conditions; the planned contrast (paired t-test over participants) is run on each simulated
study, and power is the share of studies that find the effect at alpha in the right direction.
Each simulated study is drawn once with the largest sample and its first n participants give
the study of size n (common random numbers), so the power curve is smooth in n."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bodyscene.errors import BadInput


@dataclass(frozen=True)
class PowerConfig:
    """The planned study: accuracies per condition, observer variability, size, test."""

    accuracy: dict[str, float] = field(default_factory=lambda: {"body": 0.85,
                                                                 "background": 0.80})
    participants: tuple[int, ...] = tuple(range(4, 65, 4))
    items_per_condition: int = 40
    participant_sd: float = 0.3
    item_sd: float = 0.3
    n_sims: int = 500
    alpha: float = 0.05
    target: float = 0.8
    a: str = "body"
    b: str = "background"
    seed: int = 0


def simulate_differences(cfg: PowerConfig) -> np.ndarray:
    """(n_sims x max participants) per-participant accuracy differences a - b."""
    try:
        from bodyscene.human_study.simulate import ObserverModel, draw_correct
    except ImportError as exc:
        from bodyscene.errors import BadInput

        raise BadInput(f"power analysis needs the simulated observers of bodyscene.human_study.simulate "
                       f"({exc})") from None

    model = ObserverModel(accuracy=dict(cfg.accuracy), participant_sd=cfg.participant_sd,
                          item_sd=cfg.item_sd)
    n_max = max(cfg.participants)
    n_items = cfg.items_per_condition
    rng = np.random.default_rng(cfg.seed)
    # Every participant answers every item once in each of the two conditions.
    part = np.repeat(np.arange(n_max), 2 * n_items)
    item = np.tile(np.arange(n_items), 2 * n_max)
    cond = np.tile(np.repeat(np.array([cfg.a, cfg.b], dtype=object), n_items), n_max)
    is_a = cond == cfg.a
    diffs = np.empty((cfg.n_sims, n_max))
    for s in range(cfg.n_sims):
        correct = np.asarray(draw_correct(model, cond, part, item, rng), float)
        acc_a = np.bincount(part[is_a], correct[is_a], n_max) / n_items
        acc_b = np.bincount(part[~is_a], correct[~is_a], n_max) / n_items
        diffs[s] = acc_a - acc_b
    return diffs


def power_from_differences(diffs: np.ndarray, participants: Sequence[int],
                           alpha: float = 0.05) -> pd.DataFrame:
    """Power of the paired t-test (two-sided, effect in the positive direction) per study size,
    with a Wilson 95% interval for the simulation's own uncertainty."""
    rows = []
    n_sims = diffs.shape[0]
    for n in participants:
        d = diffs[:, :n]
        mean = d.mean(axis=1)
        sd = d.std(axis=1, ddof=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = mean / (sd / np.sqrt(n))
        p = 2 * stats.t.sf(np.abs(t), n - 1)
        hits = int(np.sum((p < alpha) & (mean > 0)))
        lo, hi = wilson(hits, n_sims)
        rows.append({"n_participants": int(n), "power": hits / n_sims, "ci_low": lo,
                     "ci_high": hi, "mean_effect": float(mean.mean()), "n_sims": n_sims})
    return pd.DataFrame(rows)


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def power_curve(cfg: PowerConfig) -> pd.DataFrame:
    if cfg.a not in cfg.accuracy or cfg.b not in cfg.accuracy:
        raise BadInput(f"accuracy needs both {cfg.a!r} and {cfg.b!r}")
    return power_from_differences(simulate_differences(cfg), sorted(cfg.participants),
                                  cfg.alpha)


def participants_needed(curve: pd.DataFrame, target: float = 0.8) -> int | None:
    """The smallest simulated study size whose power reaches the target (None: none did)."""
    reached = curve[curve["power"] >= target]
    return int(reached["n_participants"].min()) if len(reached) else None
