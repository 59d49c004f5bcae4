"""Power analysis by simulation: how many participants does a body - background effect need?

The simulated study has the experiment's own design (`bodyscene experiment plan`): the test
items are dealt to k groups (k = conditions in the Latin square) and participant row r sees
group g in condition (g + r) mod k, each item once. So a participant answers about
n_items / k items per condition, on *different* items in body and in background, and item
difficulty does not cancel in the participant's difference (simulating every item in both
conditions, as this module did before, overstated power). Simulated observers
(bodyscene.human_study.simulate) with the planned accuracies answer; the planned contrast
(paired t-test over participants) is run on each simulated study, and power is the share of
studies that find the effect at alpha in the right direction. Each simulated study is drawn
once with the largest sample and its first n participants give the study of size n (common
random numbers), so the power curve is smooth in n."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bodyscene.errors import BadInput


@dataclass(frozen=True)
class PowerConfig:
    """The planned study: accuracies per condition, the Latin square, observer variability,
    size, test. Without `item_groups` the square has `items_per_condition` x k test items dealt
    round-robin; with it (from a real trial set, `square_design`) each item's square group."""

    accuracy: dict[str, float] = field(default_factory=lambda: {"body": 0.85,
                                                                 "background": 0.80})
    participants: tuple[int, ...] = tuple(range(4, 65, 4))
    items_per_condition: int = 40        # per participant and condition
    conditions: tuple[str, ...] | None = None  # the square's; None: those in `accuracy`
    item_groups: tuple[int, ...] | None = None  # square group of each test item
    participant_sd: float = 0.3
    item_sd: float = 0.3
    n_sims: int = 500
    alpha: float = 0.05
    target: float = 0.8
    a: str = "body"
    b: str = "background"
    seed: int = 0

    def square(self) -> tuple[str, ...]:
        from bodyscene import CONDITIONS
        conds = self.conditions or tuple(c for c in CONDITIONS if c in self.accuracy) + \
            tuple(sorted(set(self.accuracy) - set(CONDITIONS)))
        for need in (self.a, self.b):
            if need not in conds:
                raise BadInput(f"the Latin square's conditions {', '.join(conds)} lack {need!r}")
        return tuple(conds)

    def groups(self) -> np.ndarray:
        if self.item_groups is not None:
            return np.asarray(self.item_groups, int)
        k = len(self.square())
        return np.arange(k * self.items_per_condition) % k


def square_design(trials: pd.DataFrame, conditions: Sequence[str] | None = None,
                  seed: int = 0, test_split: str = "test",
                  source: str = "trials.csv") -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The square's conditions and each test item's group exactly as `experiment plan` deals
    them for this trial set and plan seed."""
    from bodyscene.human_study.plan import PlanConfig, assign_groups, square_items
    cfg = PlanConfig(conditions=tuple(conditions) if conditions else None, seed=seed,
                     test_split=test_split)
    conds, items = square_items(source, trials, cfg)
    groups = assign_groups(items, len(conds), seed)
    return tuple(conds), tuple(groups[i] for i in items["item_id"])


def square_trials(n_participants: int, groups: np.ndarray,
                  conditions: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(participant, item, condition) of every trial: participant row r sees item i in
    condition conditions[(group[i] + r) mod k] (the plan's `latin_square_condition`)."""
    k = len(conditions)
    part = np.repeat(np.arange(n_participants), len(groups))
    item = np.tile(np.arange(len(groups)), n_participants)
    cond = np.asarray(conditions, dtype=object)[(groups[item] + part) % k]
    return part, item, cond


def simulate_differences(cfg: PowerConfig) -> np.ndarray:
    """(n_sims x max participants) per-participant accuracy differences a - b."""
    try:
        from bodyscene.human_study.simulate import ObserverModel, draw_correct
    except ImportError as exc:
        raise BadInput(f"power analysis needs the simulated observers of "
                       f"bodyscene.human_study.simulate ({exc})") from None
    model = ObserverModel(accuracy=dict(cfg.accuracy), participant_sd=cfg.participant_sd,
                          item_sd=cfg.item_sd)
    n_max = max(cfg.participants)
    part, item, cond = square_trials(n_max, cfg.groups(), cfg.square())
    # only the two contrasted conditions enter the test; the others need not be drawn
    keep = (cond == cfg.a) | (cond == cfg.b)
    part, item, cond = part[keep], item[keep], cond[keep]
    is_a = cond == cfg.a
    n_a = np.bincount(part[is_a], minlength=n_max)
    n_b = np.bincount(part[~is_a], minlength=n_max)
    if (n_a == 0).any() or (n_b == 0).any():
        raise BadInput(f"some participants would see no {cfg.a} or no {cfg.b} trial: the "
                       f"square needs at least one test item per group")
    rng = np.random.default_rng(cfg.seed)
    diffs = np.empty((cfg.n_sims, n_max))
    for s in range(cfg.n_sims):
        correct = np.asarray(draw_correct(model, cond, part, item, rng), float)
        diffs[s] = (np.bincount(part[is_a], correct[is_a], n_max) / n_a
                    - np.bincount(part[~is_a], correct[~is_a], n_max) / n_b)
    return diffs


def trials_per_condition(cfg: PowerConfig) -> float:
    """Mean trials a participant answers per condition in the square."""
    return len(cfg.groups()) / len(cfg.square())


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
