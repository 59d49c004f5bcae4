"""Human-likeness of a model: how far its accuracy profile lies from the people's, measured
against how far the people's own profile is from itself (the noise ceiling).

A profile is accuracy per condition (coarse) or per condition x action (fine). The ceiling comes
from split halves of the participants: the two halves' profiles correlate r_half and differ by
d_half (root mean square over cells). Spearman-Brown turns r_half into the reliability of the
full sample, r_full = 2 r_half / (1 + r_half). For distances the same step is exact on variances:
a half's mean has twice the noise variance of the full mean, the difference of two halves four
times, so the full human profile's own noise is d_half / 2: a model whose true profile equals the
people's cannot be expected to come closer than that.

For correlations the attainable value is not the reliability itself but its square root: the
observed human profile correlates with the true one by sqrt(r_full) (classical test theory), so
a model equal to the true profile scores r = sqrt(r_full), and `r_normalised` = r / sqrt(r_full)
is 1 for it (dividing by r_full, as before, gave it 1.11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import (
    HUMANS,
    SIMULATED_HUMANS,
    group_order,
    is_human_group,
)

PROFILES = {"condition": ("condition",), "condition x action": ("condition", "action")}
LIKENESS_COLUMNS = ["model", "human_group", "profile", "n_cells", "distance", "ceiling_distance",
                    "distance_ratio", "r", "r_ceiling", "r_attainable", "r_normalised", "r_half",
                    "n_participants", "note", "simulated"]
CEILING_COLUMNS = ["human_group", "profile", "r_half", "r_full", "d_half", "ceiling_distance",
                   "n_participants", "note", "simulated"]


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """Reliability of a sample `factor` times as large as the one with reliability r."""
    return float(factor * r / (1 + (factor - 1) * r)) if np.isfinite(r) and r > -1 else np.nan


def _cells(obs: pd.DataFrame, by: tuple[str, ...]) -> pd.Series:
    key = obs[by[0]].astype(str)
    for col in by[1:]:
        key = key + " / " + obs[col].astype(str)
    return key


def _tables(people: pd.DataFrame, cells: pd.Index, key: pd.Series) -> tuple[np.ndarray, ...]:
    a_codes, _ = pd.factorize(people["agent"])
    c_codes = cells.get_indexer(key)
    sums = np.zeros((a_codes.max() + 1, len(cells)))
    counts = np.zeros_like(sums)
    np.add.at(sums, (a_codes, c_codes), people["correct"].to_numpy(float))
    np.add.at(counts, (a_codes, c_codes), 1.0)
    return sums, counts


def _rmse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x) & np.isfinite(y)
    with np.errstate(invalid="ignore", divide="ignore"):  # no shared cell: NaN, not a warning
        return np.sqrt(np.nansum(np.where(ok, (x - y) ** 2, 0.0), axis=-1) / ok.sum(axis=-1))


def _corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation over the cells finite in both."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=-1)
    x = np.where(ok, x, 0.0)
    y = np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # no shared cell: NaN, not a warning
        mx = x.sum(axis=-1, keepdims=True) / n[..., None]
        my = y.sum(axis=-1, keepdims=True) / n[..., None]
        dx = np.where(ok, x - mx, 0.0)
        dy = np.where(ok, y - my, 0.0)
        return (dx * dy).sum(-1) / np.sqrt((dx ** 2).sum(-1) * (dy ** 2).sum(-1))


def split_half_ceiling(sums: np.ndarray, counts: np.ndarray, n_splits: int = 200,
                       seed: int = 0) -> dict:
    """Split-half reliability of a participants x cells accuracy table.

    Returns r_half (mean over random splits), r_full (Spearman-Brown), d_half (mean RMS
    difference of the halves' profiles) and ceiling_distance = d_half / 2."""
    n_people = sums.shape[0]
    if n_people < 2:
        return {"r_half": np.nan, "r_full": np.nan, "d_half": np.nan,
                "ceiling_distance": np.nan, "n_participants": n_people}
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n_splits, n_people)), axis=1)
    half = n_people // 2
    in_a = np.zeros((n_splits, n_people))
    in_b = np.zeros((n_splits, n_people))
    rows = np.arange(n_splits)[:, None]
    in_a[rows, order[:, :half]] = 1.0
    in_b[rows, order[:, half:2 * half]] = 1.0  # equal halves; an odd one out sits out
    with np.errstate(invalid="ignore", divide="ignore"):
        prof_a = (in_a @ sums) / (in_a @ counts)
        prof_b = (in_b @ sums) / (in_b @ counts)
    r = _corr(prof_a, prof_b)
    d = _rmse(prof_a, prof_b)
    r_half = float(np.nanmean(r)) if np.isfinite(r).any() else np.nan
    d_half = float(np.nanmean(d)) if np.isfinite(d).any() else np.nan
    # Spearman-Brown extrapolates a reliability; a negative split-half correlation (the
    # profile's differences lie within the noise) has none, and the formula would leave [-1, 1]
    r_full = spearman_brown(r_half) if r_half >= 0 else np.nan
    return {"r_half": r_half, "r_full": r_full, "d_half": d_half,
            "ceiling_distance": d_half / 2, "n_participants": n_people}


def human_likeness(obs: pd.DataFrame, n_splits: int = 200, seed: int = 0) -> pd.DataFrame:
    """Per model, per profile and per human group: distance (RMS, accuracy units) and
    correlation to the human profile, the human noise ceiling, and both normalised by it
    (distance_ratio 1 = as close as the people's own noise allows; r_normalised 1 = as
    correlated as the people's reliability allows: r / sqrt(r_ceiling))."""
    rows = []
    models = [g for g in group_order(obs) if not is_human_group(g)]
    for human_group in [g for g in (HUMANS, SIMULATED_HUMANS) if g in set(obs["group"])]:
        people = obs[obs["group"] == human_group]
        for profile, by in PROFILES.items():
            cells = pd.Index(sorted(set(_cells(obs, by))))
            sums, counts = _tables(people, cells, _cells(people, by))
            ceiling = split_half_ceiling(sums, counts, n_splits, seed)
            with np.errstate(invalid="ignore", divide="ignore"):
                human = sums.sum(0) / counts.sum(0)
            for model in models:
                m = obs[obs["group"] == model]
                ms, mc = _tables(m, cells, _cells(m, by))
                with np.errstate(invalid="ignore", divide="ignore"):
                    prof = ms.sum(0) / mc.sum(0)
                dist = float(_rmse(prof, human))
                r = float(_corr(prof, human))
                rows.append({"model": model, "human_group": human_group, "profile": profile,
                             "n_cells": int((np.isfinite(prof) & np.isfinite(human)).sum()),
                             "distance": dist, "ceiling_distance": ceiling["ceiling_distance"],
                             "distance_ratio": dist / ceiling["ceiling_distance"]
                             if ceiling["ceiling_distance"] > 0 else np.nan,
                             "r": r, "r_ceiling": ceiling["r_full"],
                             "r_attainable": np.sqrt(ceiling["r_full"])
                             if ceiling["r_full"] > 0 else np.nan,
                             "r_normalised": r / np.sqrt(ceiling["r_full"])
                             if ceiling["r_full"] > 0 else np.nan,
                             "r_half": ceiling["r_half"],
                             "n_participants": ceiling["n_participants"],
                             "note": _why(ceiling, dist, r),
                             "simulated": human_group == SIMULATED_HUMANS})
    return pd.DataFrame(rows, columns=LIKENESS_COLUMNS)


def _why(ceiling: dict, dist: float, r: float) -> str:
    """Why a likeness cell is empty, in words."""
    if ceiling["n_participants"] < 2:
        return "fewer than 2 participants: no noise ceiling"
    if not np.isfinite(dist):
        return "no profile cell shared with the people"
    if not np.isfinite(r):
        return "a flat profile (all cells equal): no correlation"
    if not ceiling["r_full"] > 0:
        return "split-half reliability not above 0: r not normalised"
    return ""


def human_ceiling(obs: pd.DataFrame, n_splits: int = 200, seed: int = 0) -> pd.DataFrame:
    """The split-half ceiling alone, per human group and profile (also without any model)."""
    rows = []
    for human_group in [g for g in (HUMANS, SIMULATED_HUMANS) if g in set(obs["group"])]:
        people = obs[obs["group"] == human_group]
        for profile, by in PROFILES.items():
            key = _cells(people, by)
            sums, counts = _tables(people, pd.Index(sorted(set(key))), key)
            ceiling = split_half_ceiling(sums, counts, n_splits, seed)
            rows.append({"human_group": human_group, "profile": profile, **ceiling,
                         "note": _why_no_ceiling(ceiling),
                         "simulated": human_group == SIMULATED_HUMANS})
    return pd.DataFrame(rows, columns=CEILING_COLUMNS)


def _why_no_ceiling(ceiling: dict) -> str:
    if ceiling["n_participants"] < 2:
        return "fewer than 2 participants: no split halves"
    if not np.isfinite(ceiling["r_half"]):
        return "the halves' profiles are flat or share no cell: no correlation"
    if not np.isfinite(ceiling["r_full"]):
        return "negative split-half correlation: no reliability to extrapolate"
    return ""
