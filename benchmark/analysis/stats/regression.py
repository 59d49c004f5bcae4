"""Humans and models in one model: logistic regression `correct ~ condition * agent_group`.

The mixed model has random intercepts for participant (observer) and item, since trials are
nested in both; it is fitted by variational Bayes (statsmodels BinomialBayesMixedGLM.fit_vb), so
its intervals are posterior mean +- 1.96 posterior SD. A GEE with exchangeable correlation is the
cross-check: a population-averaged fit with robust (sandwich) errors, clustered by item, because
a model is a single observer and a cluster per observer would leave a model's terms with one
cluster. The design matrices are built here, so term names are readable and do not depend on a
formula engine: `condition[body]`, `group[baseline]`, `condition[body]:group[baseline]`, each
against the reference condition and group (the first of each: original, humans)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import group_order
from scipy import sparse, stats

from .accuracy import conditions_in

Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Design:
    exog: pd.DataFrame          # fixed effects, named columns
    participants: np.ndarray    # observer code per trial
    items: np.ndarray           # item code per trial
    n_participants: int
    n_items: int


def design(obs: pd.DataFrame) -> Design:
    """Treatment-coded fixed effects for condition, group and their interaction."""
    conds = conditions_in(obs)
    groups = group_order(obs)
    cols = {"intercept": np.ones(len(obs))}
    cond = {c: (obs["condition"] == c).to_numpy(float) for c in conds[1:]}
    grp = {g: (obs["group"] == g).to_numpy(float) for g in groups[1:]}
    cols.update({f"condition[{c}]": v for c, v in cond.items()})
    cols.update({f"group[{g}]": v for g, v in grp.items()})
    for g, gv in grp.items():
        for c, cv in cond.items():
            cols[f"condition[{c}]:group[{g}]"] = cv * gv
    exog = pd.DataFrame(cols, index=obs.index)
    p_codes, p_uniq = pd.factorize(obs["agent"])
    i_codes, i_uniq = pd.factorize(obs["item_id"])
    return Design(exog, p_codes, i_codes, len(p_uniq), len(i_uniq))


def fit_mixed(obs: pd.DataFrame, fe_prior_sd: float = 2.0, vc_prior_sd: float = 1.0) -> pd.DataFrame:
    """Fit the mixed logistic model; tidy table of fixed effects and random-intercept SDs."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    d = design(obs)
    n = len(obs)
    rows = np.arange(n)
    z_p = sparse.csr_matrix((np.ones(n), (rows, d.participants)), shape=(n, d.n_participants))
    z_i = sparse.csr_matrix((np.ones(n), (rows, d.items)), shape=(n, d.n_items))
    exog_vc = sparse.hstack([z_p, z_i]).tocsr()
    ident = np.r_[np.zeros(d.n_participants, int), np.ones(d.n_items, int)]
    model = BinomialBayesMixedGLM(obs["correct"].to_numpy(float), d.exog.to_numpy(),
                                  exog_vc, ident, vcp_p=vc_prior_sd, fe_p=fe_prior_sd,
                                  fep_names=list(d.exog.columns),
                                  vcp_names=["participant", "item"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit_vb()
    mean, sd = np.asarray(result.fe_mean), np.asarray(result.fe_sd)
    table = pd.DataFrame({"method": "mixed logistic (VB)", "term": d.exog.columns,
                          "estimate": mean, "se": sd, "ci_low": mean - Z95 * sd,
                          "ci_high": mean + Z95 * sd, "p": np.nan})
    # Variance parameters are log SDs with a Gaussian posterior: report SDs on the logit scale.
    vm, vs = np.asarray(result.vcp_mean), np.asarray(result.vcp_sd)
    vc = pd.DataFrame({"method": "mixed logistic (VB)",
                       "term": ["sd(participant)", "sd(item)"],
                       "estimate": np.exp(vm), "se": np.nan, "ci_low": np.exp(vm - Z95 * vs),
                       "ci_high": np.exp(vm + Z95 * vs), "p": np.nan})
    return _finish(pd.concat([table, vc], ignore_index=True))


def fit_gee(obs: pd.DataFrame, cluster: str = "item_id") -> pd.DataFrame:
    """Population-averaged logistic GEE with exchangeable working correlation."""
    import statsmodels.api as sm

    d = design(obs)
    groups = pd.factorize(obs[cluster])[0]
    model = sm.GEE(obs["correct"].to_numpy(float), d.exog, groups=groups,
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
    return _finish(table)


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    fixed = ~table["term"].str.startswith("sd(")
    table["odds_ratio"] = np.where(fixed, np.exp(table["estimate"]), np.nan)
    # |logit| beyond ~8 means a cell at 0% or 100%: the estimate is bounded only by the prior
    # (VB) or diverges (GEE); flag it so nobody reads it as an effect size.
    table["separation"] = fixed & (table["estimate"].abs() > 8)
    return table


def regression_table(obs: pd.DataFrame, gee: bool = True) -> pd.DataFrame:
    """Mixed model, then the GEE cross-check, one tidy table; a fit that fails is reported as a
    row saying so instead of stopping the report."""
    parts = []
    for name, fit in [("mixed logistic (VB)", fit_mixed)] + ([("GEE", fit_gee)] if gee else []):
        try:
            parts.append(fit(obs))
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            parts.append(pd.DataFrame([{"method": name, "term": f"fit failed: {exc}"}]))
    table = pd.concat(parts, ignore_index=True)
    table["simulated"] = bool(obs["simulated"].any())
    return table
