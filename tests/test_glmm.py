"""The mixed model with participant condition slopes: lme4's answers on stored data sets
(tests/data/lme4/, made by fit_lme4.R; no R needed here), the model row of the report table,
and the coverage of its intervals (slow)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bodyscene.benchmark.analysis.stats import glmm
from bodyscene.benchmark.analysis.stats.regression import (
    MODEL_TERM,
    chosen_model,
    design,
    fit_mixed,
)

LME4 = Path(__file__).parent / "data" / "lme4"
DATA_SETS = sorted(p.stem for p in LME4.glob("*.csv"))


def _obs(name: str) -> pd.DataFrame:
    d = pd.read_csv(LME4 / f"{name}.csv")
    return d.rename(columns={"participant": "agent", "item": "item_id"}).assign(
        correct=lambda x: x["correct"].astype(bool), simulated=True)


def _fit(obs: pd.DataFrame) -> glmm.Fit:
    d = design(obs)
    cols = ["intercept"] + [c for c in d.exog.columns if c.startswith("condition[")
                            and ":" not in c]
    return glmm.fit(d.exog.to_numpy(), obs["correct"].to_numpy(float), d.participants,
                    d.items, Z=d.exog[cols].to_numpy())


@pytest.mark.parametrize("name", DATA_SETS)
def test_glmm_with_slopes_agrees_with_lme4(name):
    """lme4 1.1 glmer(nAGQ = 0), (1 + condition | participant) + (1 | item): fixed effects
    within 1e-3, standard errors within 2 %, log-likelihood, SDs and correlations close."""
    ref = json.loads((LME4 / f"lme4_{name}.json").read_text())
    obs = _obs(name)
    fit = _fit(obs)
    assert len(fit.beta) == len(ref["estimate"])
    assert fit.beta == pytest.approx(ref["estimate"], abs=1e-3)
    assert np.sqrt(np.diag(fit.cov)) == pytest.approx(ref["se"], rel=0.02)
    assert -fit.deviance / 2 == pytest.approx(ref["loglik"], abs=1e-2)
    assert fit.re_sd == pytest.approx(ref["sd_participant"], abs=5e-3)
    assert fit.re_corr == pytest.approx(np.array(ref["corr_participant"]), abs=2e-2)
    assert fit.sd_item == pytest.approx(ref["sd_item"], abs=5e-3)
