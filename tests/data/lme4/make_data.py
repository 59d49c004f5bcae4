"""Writes the fixed data sets that `fit_lme4.R` fits (run once; the CSVs are committed).

Latin-square studies (participant r sees item i in condition (i + r) mod k, each item once)
with participant intercepts and condition slopes, correlated, and item intercepts, on the logit
scale; `with_models` adds two models (one observer each, every item in every condition) as
groups, the shape the report fits. Fixed seeds: rerunning rewrites the same files.

    python tests/data/lme4/make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def latin_square(n_people: int, n_items: int, logit: list[float], sd_slope: float,
                 seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = len(logit)
    conds = ["original", "body", "background", "conflict"][:k]
    part = np.repeat(np.arange(n_people), n_items)
    item = np.tile(np.arange(n_items), n_people)
    cond = (item % k + part) % k
    sds = np.r_[1.0, np.full(k - 1, sd_slope)]
    corr = np.full((k, k), 0.3) + 0.7 * np.eye(k)
    corr[0, 1:] = corr[1:, 0] = -0.4
    b = rng.multivariate_normal(np.zeros(k), corr * np.outer(sds, sds), n_people)
    u = rng.normal(0.0, 0.8, n_items)
    z = np.zeros((len(part), k))
    z[:, 0] = 1.0
    z[np.arange(len(part)), cond] = 1.0   # treatment coding: intercept + own condition
    eta = np.asarray(logit)[cond] + np.where(cond > 0, logit[0], 0.0)
    eta = eta + np.einsum("tk,tk->t", z, b[part]) + u[item]
    correct = rng.random(len(part)) < 1 / (1 + np.exp(-eta))
    return pd.DataFrame({"participant": [f"p{p:02d}" for p in part],
                         "item": [f"i{i:03d}" for i in item], "condition": np.array(conds)[cond],
                         "group": "humans", "correct": correct.astype(int)})


def with_models(people: pd.DataFrame, accuracy: dict[str, list[float]], seed: int):
    rng = np.random.default_rng(seed)
    conds = list(dict.fromkeys(people["condition"]))
    items = sorted(people["item"].unique())
    rows = [people]
    for name, acc in accuracy.items():
        grid = pd.DataFrame([(i, c) for i in items for c in conds], columns=["item", "condition"])
        p = grid["condition"].map(dict(zip(conds, acc)))
        rows.append(grid.assign(participant=name, group=name,
                                correct=(rng.random(len(grid)) < p).astype(int)))
    return pd.concat(rows, ignore_index=True)[people.columns]


def main() -> None:
    latin_square(24, 60, [1.5, -0.4, -1.2], 0.8, seed=1).to_csv(HERE / "three_conditions.csv",
                                                                 index=False)
    latin_square(20, 80, [1.7, -0.3, -1.0, -0.7], 0.7, seed=2).to_csv(
        HERE / "four_conditions.csv", index=False)
    people = latin_square(16, 48, [1.5, -0.5, -1.0], 0.8, seed=3)
    with_models(people, {"m1": [0.8, 0.7, 0.5], "m2": [0.6, 0.65, 0.4]}, seed=4).to_csv(
        HERE / "with_models.csv", index=False)


if __name__ == "__main__":
    main()
