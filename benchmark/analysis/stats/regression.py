"""Humans and models in one model: logistic regression `correct ~ condition * agent_group`.

The mixed model is `(1 + condition | participant) + (1 | item)`: trials are nested in both, and
real participants differ in their condition effects (random intercepts alone then covered the
condition effects only 78-82% of the time). It is fitted by maximum likelihood with the Laplace
approximation (`glmm.py`, lme4's nAGQ = 0), with Wald intervals. The intercept-only model is
fitted too, as the start of the search and for the likelihood-ratio test reported beside the
fit; the slopes model is always the one reported (it is the design's maximal model, and
choosing by a test would make the intervals conditional on the test), unless its fit fails or
the data have one condition; the `model` row says which and why (`chosen_model`). A GEE with
exchangeable correlation is the cross-check: a population-averaged fit with robust (sandwich)
errors, clustered by item, because a model is a single observer and a cluster per observer
would leave a model's terms with one cluster. The design matrices are built here, so term
names are readable and do not depend on a formula engine: `condition[body]`, `group[baseline]`,
`condition[body]:group[baseline]`, each against the reference condition and group (the first
of each: original, humans).

Separation: a group x condition cell at 0% or 100% correct has no finite estimate. Every term
that involves such a cell, and every term with a non-finite or huge estimate or standard error,
is flagged (`separation` true, `note` says why) and gets no interval or p-value."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import group_order
from scipy import stats

from . import glmm
from .accuracy import conditions_in

Z95 = float(stats.norm.ppf(0.975))
HUGE_ESTIMATE, HUGE_SE = 10.0, 5.0   # log-odds: beyond these a term is not an effect size
MIXED = "mixed logistic (Laplace ML)"
MODEL_TERM = "model"                 # the row that says which random effects were fitted, why


@dataclass(frozen=True)
class Design:
    exog: pd.DataFrame          # fixed effects, named columns
    participants: np.ndarray    # observer code per trial
    items: np.ndarray           # item code per trial
    n_participants: int
    n_items: int


def design(obs: pd.DataFrame, condition: str = "condition", group: str = "group",
           subject: str = "agent", item: str = "item_id") -> Design:
    """Treatment-coded fixed effects for condition, group and their interaction."""
    conds = conditions_in(obs.rename(columns={condition: "condition"})[["condition"]])
    groups = group_order(obs, group)
    cols = {"intercept": np.ones(len(obs))}
    cond = {c: (obs[condition] == c).to_numpy(float) for c in conds[1:]}
    grp = {g: (obs[group] == g).to_numpy(float) for g in groups[1:]}
    cols.update({f"condition[{c}]": v for c, v in cond.items()})
    cols.update({f"group[{g}]": v for g, v in grp.items()})
    for g, gv in grp.items():
        for c, cv in cond.items():
            cols[f"condition[{c}]:group[{g}]"] = cv * gv
    exog = pd.DataFrame(cols, index=obs.index)
    p_codes, p_uniq = pd.factorize(obs[subject])
    i_codes, i_uniq = pd.factorize(obs[item])
    return Design(exog, p_codes, i_codes, len(p_uniq), len(i_uniq))


def cells_at_bound(obs: pd.DataFrame, outcome: str = "correct", condition: str = "condition",
                   group: str = "group") -> pd.DataFrame:
    """The group x condition cells whose trials are all right or all wrong (quasi-complete
    separation): group, condition, n_trials, accuracy."""
    cells = (obs.groupby([group, condition], sort=False)[outcome]
             .agg(n_trials="size", accuracy="mean").reset_index())
    at = cells[(cells["accuracy"] == 0) | (cells["accuracy"] == 1)]
    return at.rename(columns={group: "group", condition: "condition"}).reset_index(drop=True)


def _separated(obs: pd.DataFrame, terms, outcome: str, condition: str, group: str) -> dict:
    """{term: note} for the terms that involve a cell at 0% or 100%."""
    at = cells_at_bound(obs, outcome, condition, group)
    if at.empty:
        return {}
    ref_c = conditions_in(obs.rename(columns={condition: "condition"})[["condition"]])[0]
    ref_g = group_order(obs, group)[0]
    bound = {(r.group, r.condition): r.accuracy for r in at.itertuples()}
    return {term: "separation: " + "; ".join(f"{g} on {c} at {100 * bound[g, c]:.0f}%"
                                             for g, c in cells)
            for term, cells in glmm.separated_terms(set(bound), list(terms), ref_g,
                                                    ref_c).items()}


def fit_mixed(obs: pd.DataFrame, outcome: str = "correct", condition: str = "condition",
              group: str = "group", subject: str = "agent", item: str = "item_id",
              slopes: bool = True) -> pd.DataFrame:
    """Fit the mixed logistic model; tidy table of fixed effects, the participant SDs (and
    correlations, with slopes), the item SD and the `model` row (random effects fitted, the
    likelihood-ratio test of slopes against intercepts, and why this model)."""
    d = design(obs, condition, group, subject, item)
    separated = _separated(obs, d.exog.columns, outcome, condition, group)
    X, y = d.exog.to_numpy(), obs[outcome].to_numpy(float)
    prior = glmm.SEPARATION_PRIOR_SD if separated else None
    base = glmm.fit(X, y, d.participants, d.items, prior_sd=prior)
    slope_cols = ["intercept"] + [c for c in d.exog.columns
                                  if c.startswith("condition[") and ":" not in c]
    result, why = base, "one condition: random intercepts only"
    lrt = {"estimate": np.nan, "p": np.nan}
    if slopes and len(slope_cols) > 1:
        try:
            full = glmm.fit(X, y, d.participants, d.items, Z=d.exog[slope_cols].to_numpy(),
                            prior_sd=prior, start=base)
        except (np.linalg.LinAlgError, ValueError) as exc:
            full, why = None, f"slopes fit failed ({exc}): random intercepts only"
        if full is not None and np.all(np.isfinite(np.diag(full.cov))):
            df = len(slope_cols) * (len(slope_cols) + 1) // 2 - 1
            stat = max(base.deviance - full.deviance, 0.0)
            lrt = {"estimate": stat, "p": float(stats.chi2.sf(stat, df))}
            result = full
            why = (f"(1 + condition | participant) + (1 | item), always fitted (the design's "
                   f"maximal model); vs random intercepts: LRT chi2({df}) = {stat:.2f}, "
                   f"p = {lrt['p']:.3g} (conservative: variances tested at their bound)")
        elif full is not None:
            why = "slopes fit gave no finite standard errors: random intercepts only"
    elif not slopes:
        why = "random intercepts only (slopes not requested)"
    if not result.converged:
        why += "; the optimiser did not report convergence"
    est = result.beta
    var = np.diag(result.cov)
    se = np.sqrt(np.where(var > 0, var, np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * stats.norm.sf(np.abs(est / se))
    table = pd.DataFrame({"method": MIXED, "term": d.exog.columns, "estimate": est, "se": se,
                          "ci_low": est - Z95 * se, "ci_high": est + Z95 * se, "p": p})
    note = "" if result.converged else "the optimiser did not report convergence"
    names = (["intercept"] + [c[len("condition["):-1] for c in slope_cols[1:]])[
        :result.re_cov.shape[0]]
    terms = ["sd(participant)"] + [f"sd(participant | {n})" for n in names[1:]] + ["sd(item)"]
    sds = list(result.re_sd) + [result.sd_item]
    corr = result.re_corr
    for a in range(len(names)):
        for b in range(a):
            terms.append(f"corr(participant: {names[b]}, {names[a]})")
            sds.append(corr[a, b])
    vc = pd.DataFrame({"method": MIXED, "term": terms, "estimate": sds, "se": np.nan,
                       "ci_low": np.nan, "ci_high": np.nan, "p": np.nan})
    vc["note"] = ["at the lower bound (no variance found)"
                  if t.startswith("sd(") and v <= glmm.SD_BOUNDS[0] * 1.01 else note
                  for t, v in zip(vc["term"], vc["estimate"])]
    model = pd.DataFrame([{"method": MIXED, "term": MODEL_TERM, "estimate": lrt["estimate"],
                           "se": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": lrt["p"],
                           "note": why}])
    return _finish(pd.concat([table, vc, model], ignore_index=True), separated, note)


def chosen_model(table: pd.DataFrame) -> str:
    """The sentence saying which random effects the mixed model has and why (for the report)."""
    rows = table.loc[table["term"] == MODEL_TERM, "note"]
    return str(rows.iloc[0]) if len(rows) else ""


def fit_gee(obs: pd.DataFrame, cluster: str = "item_id", outcome: str = "correct",
            condition: str = "condition", group: str = "group",
            subject: str = "agent") -> pd.DataFrame:
    """Population-averaged logistic GEE with exchangeable working correlation."""
    import statsmodels.api as sm

    d = design(obs, condition, group, subject, cluster)
    groups = pd.factorize(obs[cluster])[0]
    model = sm.GEE(obs[outcome].to_numpy(float), d.exog, groups=groups,
                   family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # Separated cells give a non-positive robust variance: its SE is reported as NaN.
        warnings.simplefilter("ignore")
        result = model.fit(maxiter=100)
        params, se = np.asarray(result.params), np.asarray(result.bse)
        p = 2 * stats.norm.sf(np.abs(params / se))
    table = pd.DataFrame({"method": f"GEE exchangeable (clusters: {cluster})",
                          "term": d.exog.columns, "estimate": params, "se": se,
                          "ci_low": params - Z95 * se, "ci_high": params + Z95 * se, "p": p})
    return _finish(table, _separated(obs, d.exog.columns, outcome, condition, group))


def _finish(table: pd.DataFrame, separated: dict[str, str], note: str = "") -> pd.DataFrame:
    """Odds ratios, and the separation flag: terms that involve a cell at 0% or 100%, or whose
    estimate or standard error is non-finite or huge, get no interval and no p-value."""
    fixed = ~(table["term"].str.startswith(("sd(", "corr(")) | (table["term"] == MODEL_TERM))
    if "note" not in table.columns:
        table["note"] = note
    table["note"] = table["note"].fillna("")
    est, se = table["estimate"].to_numpy(float), table["se"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        unstable = fixed & (~np.isfinite(est) | ~np.isfinite(se) | (np.abs(est) > HUGE_ESTIMATE)
                            | (se > HUGE_SE))
    by_cell = table["term"].map(lambda t: separated.get(t, ""))
    flagged = fixed & ((by_cell != "") | unstable)
    table["note"] = np.where(by_cell != "", by_cell,
                             np.where(unstable, "separation: estimate or standard error "
                                                "non-finite or huge", table["note"]))
    table.loc[flagged, ["ci_low", "ci_high", "p"]] = np.nan
    table["separation"] = flagged
    keep = (fixed & ~flagged).to_numpy()
    odds = np.full(len(table), np.nan)
    odds[keep] = np.exp(table["estimate"].to_numpy(float)[keep])  # flagged terms may be huge
    table["odds_ratio"] = odds
    cols = ["method", "term", "estimate", "se", "ci_low", "ci_high", "p", "odds_ratio",
            "separation", "note"]
    return table[cols]


def regression_table(obs: pd.DataFrame, gee: bool = True) -> pd.DataFrame:
    """Mixed model, then the GEE cross-check, one tidy table; a fit that fails is reported as a
    row saying so instead of stopping the report."""
    parts = []
    for name, fit in [(MIXED, fit_mixed)] + ([("GEE", fit_gee)] if gee else []):
        try:
            parts.append(fit(obs))
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            parts.append(pd.DataFrame([{"method": name, "term": "(fit failed)",
                                        "note": f"fit failed: {exc}"}]))
    table = pd.concat(parts, ignore_index=True)
    table["simulated"] = bool(obs["simulated"].any())
    return table
