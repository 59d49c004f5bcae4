"""Planned contrasts: body vs background within each group, model vs model, Holm-corrected.

People are compared with themselves: each participant's body and background accuracies are
paired (paired t-test, Wilcoxon signed-rank beside it). A model is one observer, so its
contrast pairs trials: the body and background trials of the same item (McNemar). Two models
are compared on the very same trials (McNemar). McNemar is exact (binomial on the discordant
pairs) when those are few, where the chi-square approximation is poor."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import group_order, is_human_group
from scipy import stats

EXACT_BELOW = 25  # discordant pairs under which McNemar uses the exact binomial test
Z95 = float(stats.norm.ppf(0.975))


def mcnemar(b: int, c: int, exact: bool | None = None,
            n_pairs: int | None = None) -> tuple[float, float, str]:
    """McNemar's test on the discordant counts b (first right, second wrong) and c (the reverse).

    Returns (statistic, two-sided p, method). Exact: binomial test of b among b + c at 1/2, the
    statistic being min(b, c). Otherwise chi-square with continuity correction,
    (|b - c| - 1)^2 / (b + c) on 1 df. A table of n_pairs > 0 pairs that all agree (b = c = 0)
    is no evidence of a difference: p = 1. With no pairs at all (n_pairs = 0) the test is
    undefined: (nan, nan, "undefined"), to be left out of any multiple-test correction."""
    b, c = int(b), int(c)
    n = b + c
    if n_pairs == 0:
        return float("nan"), float("nan"), "undefined"
    if n == 0:
        return 0.0, 1.0, "exact"
    if exact is None:
        exact = n < EXACT_BELOW
    if exact:
        p = min(1.0, 2.0 * stats.binom.cdf(min(b, c), n, 0.5))
        return float(min(b, c)), float(p), "exact"
    chi2 = (abs(b - c) - 1.0) ** 2 / n
    return float(chi2), float(stats.chi2.sf(chi2, 1)), "chi2"


def _mcnemar_name(method: str, over: str) -> str:
    return f"McNemar over {over}" if method == "undefined" else f"McNemar ({method}) over {over}"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (no continuity correction)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_ci(a: int, b: int, c: int, d: int) -> dict:
    """Difference of two paired proportions, (b - c) / n, with Newcombe's (1998) method-10
    95% interval.

    a = both right, b = first right only, c = second right only, d = both wrong. The Wilson
    intervals of the two marginal proportions are combined through the (continuity-corrected)
    correlation phi of the 2x2 table. Unlike the Wald interval it stays inside [-1, 1] and is
    not [0, 0] when b = c = 0; Fagerland, Lydersen & Laake (2014) recommend it."""
    a, b, c, d = (int(x) for x in (a, b, c, d))
    n = a + b + c + d
    if n == 0:
        return {"estimate": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n)
    l2, u2 = wilson(a + c, n)
    num = a * d - b * c
    num = max(num - n / 2, 0.0) if num > 0 else num   # method 10's continuity correction
    den = np.sqrt(float((a + b) * (c + d) * (a + c) * (b + d)))
    phi = num / den if den > 0 else 0.0
    theta = (b - c) / n
    lower = theta - np.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                                + (u2 - p2) ** 2, 0.0))
    upper = theta + np.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                                + (p2 - l2) ** 2, 0.0))
    return {"estimate": float(theta), "ci_low": float(max(-1.0, lower)),
            "ci_high": float(min(1.0, upper))}


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
           "statistic": float("nan"), "p": float("nan"), "p_wilcoxon": float("nan"),
           "note": ""}
    if n < 2 or a not in per.columns or b not in per.columns:
        row["note"] = f"fewer than 2 participants answered both {a} and {b} trials"
        return row
    diff = (per[a] - per[b]).to_numpy()
    row["estimate"] = float(diff.mean())
    half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)
    row["ci_low"], row["ci_high"] = row["estimate"] - half, row["estimate"] + half
    if np.allclose(diff, diff[0]):
        if diff[0] == 0:   # nobody differs: no evidence of a difference
            row["statistic"], row["p"] = 0.0, 1.0
        else:              # t would be infinite: no finite statistic, left out of Holm
            row["note"] = (f"every participant's difference is {diff[0]:.3g}: no variance, "
                           f"t undefined")
            return row
    else:
        t = stats.ttest_rel(per[a], per[b])
        row["statistic"], row["p"] = float(t.statistic), float(t.pvalue)
    if np.any(diff != 0):
        row["p_wilcoxon"] = float(stats.wilcoxon(diff).pvalue)
    else:
        row["note"] = "every participant's difference is 0: no Wilcoxon test"
    return row


def _paired_over_items(cell: pd.DataFrame, a: str, b: str) -> dict:
    per = (cell[cell["condition"].isin([a, b])]
           .pivot_table(index=["agent", "item_id"], columns="condition", values="correct",
                        aggfunc="mean"))
    per = per.dropna() if {a, b} <= set(per.columns) else per.iloc[:0]
    x = per[a].to_numpy() > 0.5 if len(per) else np.array([], bool)
    y = per[b].to_numpy() > 0.5 if len(per) else np.array([], bool)
    aa, bb, cc, dd = _table(x, y)
    stat, p, method = mcnemar(bb, cc, n_pairs=len(per))
    return {"test": _mcnemar_name(method, "items"), "n": int(len(per)),
            **paired_difference_ci(aa, bb, cc, dd), "statistic": stat, "p": p,
            "p_wilcoxon": float("nan"), "b": bb, "c": cc,
            "note": "" if len(per) else f"no item answered in both {a} and {b}: McNemar "
                                        f"undefined, not counted in the Holm correction"}


def _table(x: np.ndarray, y: np.ndarray) -> tuple[int, int, int, int]:
    """The paired 2x2 table: both right, first only, second only, both wrong."""
    return (int((x & y).sum()), int((x & ~y).sum()), int((~x & y).sum()),
            int((~x & ~y).sum()))


def condition_contrasts(obs: pd.DataFrame, a: str = "body",
                        b: str = "background") -> pd.DataFrame:
    """Condition a minus condition b within each group, Holm-corrected across the groups whose
    test is defined (an undefined test has no statistic and no p, and its note says why)."""
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
        table = table[[c for c in table.columns if c != "note"] + ["note"]]
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
            aa, bb, cc, dd = _table(x, y)
            stat, p, method = mcnemar(bb, cc, n_pairs=len(sub))
            rows.append({"family": "model vs model", "group": f"{m1} vs {m2}",
                         "comparison": f"{m1} - {m2}", "condition": condition,
                         "test": _mcnemar_name(method, "trials"), "n": int(len(sub)),
                         **paired_difference_ci(aa, bb, cc, dd), "statistic": stat,
                         "p": p, "b": bb, "c": cc, "simulated": False,
                         "note": "" if len(sub) else "no trial answered by both models: "
                                                     "McNemar undefined, not counted in the "
                                                     "Holm correction"})
    table = pd.DataFrame(rows, columns=None if rows else [
        "family", "group", "comparison", "condition", "test", "n", "estimate", "ci_low",
        "ci_high", "statistic", "p", "b", "c", "simulated", "p_holm", "note"])
    if not table.empty:
        table["p_holm"] = holm(table["p"])
        table = table[[c for c in table.columns if c != "note"] + ["note"]]
    return table
