"""Planned contrasts: body vs background within each group, model vs model, Holm-corrected.

People are compared with themselves: each participant's body and background accuracies are
paired (paired t-test, Wilcoxon signed-rank beside it). A model is one observer, so its
contrast pairs trials: the body and background versions of the same item (McNemar). Two models
are compared on the very same trials (McNemar). McNemar is exact (binomial on the discordant
pairs) when those are few, where the chi-square approximation is poor."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import group_order, is_human_group
from scipy import stats

EXACT_BELOW = 25  # discordant pairs under which McNemar uses the exact binomial test


def mcnemar(b: int, c: int, exact: bool | None = None) -> tuple[float, float, str]:
    """McNemar's test on the discordant counts b (first right, second wrong) and c (the reverse).

    Returns (statistic, two-sided p, method). Exact: binomial test of b among b + c at 1/2, the
    statistic being min(b, c). Otherwise chi-square with continuity correction,
    (|b - c| - 1)^2 / (b + c) on 1 df."""
    b, c = int(b), int(c)
    n = b + c
    if n == 0:
        return 0.0, 1.0, "exact"
    if exact is None:
        exact = n < EXACT_BELOW
    if exact:
        p = min(1.0, 2.0 * stats.binom.cdf(min(b, c), n, 0.5))
        return float(min(b, c)), float(p), "exact"
    chi2 = (abs(b - c) - 1.0) ** 2 / n
    return float(chi2), float(stats.chi2.sf(chi2, 1)), "chi2"


def paired_difference_ci(b: int, c: int, n: int) -> dict:
    """Difference of two paired proportions, (b - c) / n, with its Wald 95% interval."""
    if n == 0:
        return {"estimate": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    d = (b - c) / n
    half = 1.959964 * np.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n
    return {"estimate": float(d), "ci_low": float(d - half), "ci_high": float(d + half)}


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaNs stay NaN."""
    p = np.asarray(pvalues, float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def _paired_over_participants(cell: pd.DataFrame, a: str, b: str) -> dict:
    per = (cell[cell["condition"].isin([a, b])]
           .pivot_table(index="agent", columns="condition", values="correct", aggfunc="mean"))
    per = per.dropna()
    n = len(per)
    row = {"test": "paired t-test over participants", "n": n,
           "estimate": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
           "statistic": float("nan"), "p": float("nan"), "p_wilcoxon": float("nan")}
    if n < 2 or a not in per.columns or b not in per.columns:
        return row
    diff = (per[a] - per[b]).to_numpy()
    row["estimate"] = float(diff.mean())
    half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)
    row["ci_low"], row["ci_high"] = row["estimate"] - half, row["estimate"] + half
    if np.allclose(diff, diff[0]):
        row["statistic"], row["p"] = (0.0, 1.0) if diff[0] == 0 else (float("inf"), 0.0)
    else:
        t = stats.ttest_rel(per[a], per[b])
        row["statistic"], row["p"] = float(t.statistic), float(t.pvalue)
    if np.any(diff != 0):
        row["p_wilcoxon"] = float(stats.wilcoxon(diff).pvalue)
    return row


def _paired_over_items(cell: pd.DataFrame, a: str, b: str) -> dict:
    per = (cell[cell["condition"].isin([a, b])]
           .pivot_table(index=["agent", "item_id"], columns="condition", values="correct",
                        aggfunc="mean"))
    per = per.dropna() if {a, b} <= set(per.columns) else per.iloc[:0]
    x = per[a].to_numpy() > 0.5 if len(per) else np.array([], bool)
    y = per[b].to_numpy() > 0.5 if len(per) else np.array([], bool)
    bb, cc = int((x & ~y).sum()), int((~x & y).sum())
    stat, p, method = mcnemar(bb, cc)
    return {"test": f"McNemar ({method}) over items", "n": int(len(per)),
            **paired_difference_ci(bb, cc, len(per)), "statistic": stat, "p": p,
            "p_wilcoxon": float("nan"), "b": bb, "c": cc}


def condition_contrasts(obs: pd.DataFrame, a: str = "body",
                        b: str = "background") -> pd.DataFrame:
    """Condition a minus condition b within each group, Holm-corrected across groups."""
    rows = []
    for group in group_order(obs):
        cell = obs[obs["group"] == group]
        test = (_paired_over_participants(cell, a, b) if is_human_group(group)
                else _paired_over_items(cell, a, b))
        rows.append({"family": f"{a} vs {b}", "group": group, "comparison": f"{a} - {b}",
                     "simulated": bool(cell["simulated"].all()), **test})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p"])
    return table


def model_vs_model(obs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of models on the trials both answered, overall and per condition (McNemar),
    Holm-corrected across all these tests."""
    models = [g for g in group_order(obs) if not is_human_group(g)]
    wide = (obs[obs["agent_kind"] == "model"]
            .pivot_table(index=["trial_id", "condition"], columns="group", values="correct",
                         aggfunc="first"))
    rows = []
    for m1, m2 in combinations(models, 2):
        pair = wide[[m1, m2]].dropna()
        for condition in ["all"] + sorted(set(pair.index.get_level_values("condition"))):
            sub = pair if condition == "all" else pair.xs(condition, level="condition")
            x, y = sub[m1].to_numpy(bool), sub[m2].to_numpy(bool)
            bb, cc = int((x & ~y).sum()), int((~x & y).sum())
            stat, p, method = mcnemar(bb, cc)
            rows.append({"family": "model vs model", "group": f"{m1} vs {m2}",
                         "comparison": f"{m1} - {m2}", "condition": condition,
                         "test": f"McNemar ({method}) over trials", "n": int(len(sub)),
                         **paired_difference_ci(bb, cc, len(sub)), "statistic": stat,
                         "p": p, "b": bb, "c": cc, "simulated": False})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p"])
    return table
