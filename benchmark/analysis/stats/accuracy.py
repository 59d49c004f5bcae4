"""Accuracy per group and condition with hierarchical bootstrap intervals and chance level.

Chance is each trial's 1/k (k offered choices) averaged over the cell's trials, so a cell mixing
trials with different numbers of choices gets the right floor. Models are scored on the same
restricted choice as people; their open-set accuracy (choice among all actions) sits beside it."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import group_order

from bodyscene.seeds import derive_rng

from .bootstrap import hierarchical_ci

CONDITION_ORDER = ("original", "body", "background", "conflict")


def conditions_in(obs: pd.DataFrame) -> list[str]:
    found = set(obs["condition"])
    return [c for c in CONDITION_ORDER if c in found] + sorted(found - set(CONDITION_ORDER))


def accuracy_table(obs: pd.DataFrame, n_boot: int = 2000, seed: int = 0, ci: float = 0.95,
                   outcome: str = "correct",
                   by: Sequence[str] = ("group", "condition")) -> pd.DataFrame:
    """One row per cell of `by`: accuracy, ci_low, ci_high (observers, then items resampled),
    chance, accuracy_open (models), n_trials, n_agents, n_items, n_boot_dropped (resamples
    that drew no trial of the cell, left out of the interval), simulated."""
    rows = []
    for keys, cell in obs.groupby(list(by), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        values = cell[outcome].to_numpy(float)
        point, lo, hi, dropped = hierarchical_ci(
            cell["agent"].to_numpy(), cell["item_id"].to_numpy(), values, n_boot=n_boot, ci=ci,
            seed=derive_rng(seed, outcome, *keys))
        open_ = cell["correct_open"].to_numpy(float)
        rows.append({**dict(zip(by, keys)), "accuracy": point, "ci_low": lo, "ci_high": hi,
                     "chance": float(cell["chance"].mean()),
                     "accuracy_open": float(np.nanmean(open_)) if np.isfinite(open_).any()
                     else float("nan"),
                     "n_trials": int(len(cell)), "n_agents": int(cell["agent"].nunique()),
                     "n_items": int(cell["item_id"].nunique()),
                     "n_boot_dropped": dropped,
                     "simulated": bool(cell["simulated"].all())})
    table = pd.DataFrame(rows)
    return sort_table(table, obs)


def sort_table(table: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """Rows in reading order: groups (people first), then conditions (original first)."""
    if table.empty:
        return table
    keys = []
    if "group" in table.columns:
        order = {g: i for i, g in enumerate(group_order(obs))}
        keys.append(table["group"].map(order).fillna(len(order)))
    if "condition" in table.columns:
        order = {c: i for i, c in enumerate(conditions_in(obs))}
        keys.append(table["condition"].map(order).fillna(len(order)))
    if not keys:
        return table.reset_index(drop=True)
    idx = np.lexsort([k.to_numpy() for k in reversed(keys)])
    return table.iloc[idx].reset_index(drop=True)


def agent_accuracy(obs: pd.DataFrame) -> pd.DataFrame:
    """Each observer's accuracy per condition (the unit of the paired human contrasts)."""
    table = (obs.groupby(["group", "agent", "condition"], sort=False)
             .agg(accuracy=("correct", "mean"), n_trials=("correct", "size"),
                  simulated=("simulated", "all"))
             .reset_index())
    return sort_table(table, obs)
