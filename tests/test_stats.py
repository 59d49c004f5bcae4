"""The statistics against hand-computed values, and their behaviour on data with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from bodyscene.benchmark.analysis.stats.accuracy import accuracy_table
from bodyscene.benchmark.analysis.stats.bootstrap import hierarchical_ci
from bodyscene.benchmark.analysis.stats.conflict import conflict_shares
from bodyscene.benchmark.analysis.stats.consistency import (
    pair_summary,
    error_consistency,
    pairwise_consistency,
)
from bodyscene.benchmark.analysis.stats.contrasts import (
    condition_contrasts,
    holm,
    mcnemar,
    paired_difference_ci,
)
from bodyscene.benchmark.analysis.stats.likeness import (
    human_likeness,
    spearman_brown,
    split_half_ceiling,
)


def tidy(rows: list[dict]) -> pd.DataFrame:
    """A minimal trials table in the layout of bodyscene.benchmark.analysis.observations."""
    df = pd.DataFrame(rows)
    defaults = {"agent_kind": "human", "simulated": False, "action": "clap", "n_choices": 3,
                "chance": 1 / 3, "correct_open": np.nan, "response": "", "body_action": "",
                "background_action": "", "condition": "body"}
    for col, value in defaults.items():
        if col not in df.columns:
            df[col] = value
    if "group" not in df.columns:
        df["group"] = np.where(df["agent_kind"] == "model", df["agent"], "humans")
    if "trial_id" not in df.columns:
        df["trial_id"] = df["item_id"] + "-" + df["condition"]
    return df


# ------------------------------------------------------------------ error consistency

def test_error_consistency_hand_computed():
    a = [1, 1, 1, 0, 0, 1, 0, 1, 1, 0]
    b = [1, 1, 0, 0, 1, 1, 0, 1, 0, 0]
    # p1 = .6, p2 = .5; agreement on 7 of 10; c_exp = .6*.5 + .4*.5 = .5; kappa = .2/.5 = .4
    got = error_consistency(a, b)
    assert got["c_obs"] == pytest.approx(0.7)
    assert got["c_exp"] == pytest.approx(0.5)
    assert got["kappa"] == pytest.approx(0.4)
    assert error_consistency(a, a)["kappa"] == pytest.approx(1.0)
    assert math.isnan(error_consistency([1, 1, 1], [1, 1, 1])["kappa"])  # c_exp = 1


def test_pairwise_consistency_uses_shared_trials_only():
    a = [1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1]
    b = [1, 1, 0, 0, 1, 1, 0, 1, 0, 0]
    rows = [{"agent": "p1", "item_id": f"i{t}", "correct": bool(v)} for t, v in enumerate(a)]
    rows += [{"agent": "p2", "item_id": f"i{t}", "correct": bool(v)} for t, v in enumerate(b)]
    rows += [{"agent": "m", "agent_kind": "model", "item_id": f"i{t}", "correct": bool(v)}
             for t, v in enumerate(a[:10])]
    pairs = pairwise_consistency(tidy(rows), min_shared=5).set_index(["agent1", "agent2"])
    assert pairs.loc[("p1", "p2"), "n_shared"] == 10  # p1's last two trials are not shared
    assert pairs.loc[("p1", "p2"), "kappa"] == pytest.approx(0.4)
    assert pairs.loc[("p1", "m"), "kappa"] == pytest.approx(1.0)
    assert pairs.loc[("p2", "m"), "pair_type"] == "human-model"
    assert pairs.loc[("p1", "p2"), "pair_type"] == "human-human"
    few = pairwise_consistency(tidy(rows), min_shared=11)
    assert few["kappa"].isna().all()


def test_error_consistency_within_conditions_is_zero_for_independent_observers():
    """Independent observers whose accuracy depends on the condition: kappa within each
    condition is ~0, so the headline (mean over conditions) is ~0; pooled over conditions it is
    ~0.2 (the bias the per-condition computation removes)."""
    rng = np.random.default_rng(12)
    acc = {"original": 0.95, "body": 0.8, "background": 0.5, "conflict": 0.2}
    rows = []
    for agent in ("a", "b", "c", "d"):
        for cond, p in acc.items():
            hits = rng.random(5000) < p          # independent draws: errors unrelated
            rows += [{"agent": agent, "item_id": f"i{t}", "condition": cond,
                      "correct": bool(h)} for t, h in enumerate(hits)]
    obs = tidy(rows)
    per_condition = pairwise_consistency(obs)
    assert len(per_condition) == 6 * 4 and per_condition["kappa"].abs().max() < 0.05
    summary = pair_summary(per_condition, obs)
    assert (summary["n_conditions"] == 4).all()
    assert summary["kappa"].abs().max() < 0.03
    assert summary["kappa_pooled"].min() > 0.15   # the old, pooled number


# ------------------------------------------------------------------------- McNemar, Holm

def test_mcnemar_exact_hand_computed():
    # b=10, c=2: two-sided binomial p = 2 * P(X <= 2 | n=12, 1/2) = 2 * (1 + 12 + 66) / 4096
    stat, p, method = mcnemar(10, 2)
    assert method == "exact" and stat == 2
    assert p == pytest.approx(158 / 4096)
    assert mcnemar(0, 0)[1] == 1.0
    assert mcnemar(3, 3)[1] == 1.0


def test_mcnemar_chi2_hand_computed():
    # b=30, c=10: chi2 = (|30-10| - 1)^2 / 40 = 9.025; p = erfc(sqrt(chi2 / 2)) for 1 df
    stat, p, method = mcnemar(30, 10)
    assert method == "chi2"
    assert stat == pytest.approx(9.025)
    assert p == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))


def test_mcnemar_agrees_with_statsmodels():
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    for b, c, exact in [(7, 1, True), (4, 9, True), (40, 22, False)]:
        ref = sm_mcnemar([[50, b], [c, 30]], exact=exact, correction=True).pvalue
        assert mcnemar(b, c, exact=exact)[1] == pytest.approx(ref)


def test_paired_difference_ci_matches_newcombe_1998():
    """Newcombe (1998, Stat Med 17:2635), Table III, method 10: 35 published limits."""
    import json
    from pathlib import Path
    known = json.loads((Path(__file__).parent / "data" / "newcombe1998_method10.json")
                       .read_text())
    checked = 0
    for a, b, c, d, lo, hi in known["rows"]:
        got = paired_difference_ci(a, b, c, d)
        assert -1 <= got["ci_low"] <= got["estimate"] <= got["ci_high"] <= 1
        for want, value in ((lo, got["ci_low"]), (hi, got["ci_high"])):
            if want is not None:
                assert round(value, 4) == pytest.approx(want, abs=1e-9), (a, b, c, d)
                checked += 1
    assert checked == 35


def test_paired_difference_ci_stays_in_range_and_covers():
    """The Wald interval gave [0, 0] for b = c = 0 and exceeded 1 for b=5, c=1, n=6; the exact
    coverage (summed over every possible 2x2 table) must be near 95%."""
    none = paired_difference_ci(10, 0, 0, 10)   # no discordant pair in 20: not [0, 0]
    assert none["ci_low"] < -0.05 and none["ci_high"] > 0.05
    wide = paired_difference_ci(0, 5, 1, 0)
    assert -1 <= wide["ci_low"] < wide["ci_high"] <= 1
    for n, probs in ((20, [0.6, 0.15, 0.05, 0.2]), (40, [0.5, 0.2, 0.1, 0.2])):
        truth, covered = probs[1] - probs[2], 0.0
        for a in range(n + 1):
            for b in range(n + 1 - a):
                for c in range(n + 1 - a - b):
                    d = n - a - b - c
                    got = paired_difference_ci(a, b, c, d)
                    if got["ci_low"] <= truth <= got["ci_high"]:
                        covered += stats.multinomial.pmf([a, b, c, d], n, probs)
        assert 0.93 <= covered <= 0.98, (n, covered)  # measured 0.965, 0.952


def test_holm_hand_computed():
    # sorted: .005*4=.02, .01*3=.03, .03*2=.06, max(.04*1, .06)=.06
    got = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # 2 * .5 = 1, then monotone
    got = holm([0.01, np.nan, 0.02])
    assert np.isnan(got[1]) and got[0] == pytest.approx(0.02)


def test_holm_agrees_with_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(1).random(12) ** 3
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])


def test_model_contrast_pairs_items():
    # body right on items 0-9, background right on items 0-1: b = 8 discordant pairs, c = 0
    rows = []
    for i in range(12):
        rows.append({"agent": "m", "agent_kind": "model", "item_id": f"i{i}",
                     "condition": "body", "correct": i < 10})
        rows.append({"agent": "m", "agent_kind": "model", "item_id": f"i{i}",
                     "condition": "background", "correct": i < 2})
    table = condition_contrasts(tidy(rows))
    row = table.iloc[0]
    assert (row["b"], row["c"]) == (8, 0)
    assert row["p"] == pytest.approx(2 * 0.5 ** 8)
    assert row["estimate"] == pytest.approx(8 / 12)


def test_human_contrast_pairs_participants():
    from scipy import stats

    rng = np.random.default_rng(0)
    rows, body, background = [], [], []
    for p in range(8):
        acc_b, acc_g = rng.integers(6, 10), rng.integers(3, 8)
        body.append(acc_b / 10)
        background.append(acc_g / 10)
        for i in range(10):
            rows.append({"agent": f"p{p}", "item_id": f"i{i}", "condition": "body",
                         "correct": i < acc_b})
            rows.append({"agent": f"p{p}", "item_id": f"i{i}", "condition": "background",
                         "correct": i < acc_g})
    row = condition_contrasts(tidy(rows)).iloc[0]
    ref = stats.ttest_rel(body, background)
    assert row["p"] == pytest.approx(ref.pvalue)
    assert row["estimate"] == pytest.approx(np.mean(body) - np.mean(background))
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


# ------------------------------------------------------------------------------ bootstrap

def _nested(rng, n_people=10, n_items=30, p=0.7, sd=1.0):
    """Participants who differ a lot in ability: the hierarchical interval must see it."""
    logit = np.log(p / (1 - p)) + rng.normal(0, sd, n_people)[:, None] \
        + rng.normal(0, 0.3, n_items)[None, :]
    correct = rng.random((n_people, n_items)) < 1 / (1 + np.exp(-logit))
    agents = np.repeat([f"p{i}" for i in range(n_people)], n_items)
    items = np.tile([f"i{j}" for j in range(n_items)], n_people)
    return agents, items, correct.ravel()


def test_bootstrap_seeded_and_reproducible():
    agents, items, correct = _nested(np.random.default_rng(0))
    first = hierarchical_ci(agents, items, correct, n_boot=300, seed=7)
    assert hierarchical_ci(agents, items, correct, n_boot=300, seed=7) == first
    assert hierarchical_ci(agents, items, correct, n_boot=300, seed=8) != first
    assert first[1] < first[0] < first[2]
    assert first[0] == pytest.approx(correct.mean())


def test_bootstrap_counts_resamples_that_draw_no_trial():
    """Observer A saw only item 1, B only item 2. A resample draws no trial when it draws A
    twice and item 2 twice, or B twice and item 1 twice: 2 x (1/4 x 1/4) = 1/8 of resamples."""
    point, lo, hi, dropped = hierarchical_ci(np.array(["A", "B"]), np.array(["i1", "i2"]),
                                             np.array([1.0, 0.0]), n_boot=4000, seed=3)
    assert point == 0.5 and lo == 0.0 and hi == 1.0
    assert dropped / 4000 == pytest.approx(1 / 8, abs=0.02)


def test_bootstrap_is_wider_than_a_naive_trial_bootstrap():
    agents, items, correct = _nested(np.random.default_rng(2), sd=1.2)
    _, lo, hi, _ = hierarchical_ci(agents, items, correct, n_boot=500, seed=0)
    naive = np.arange(len(correct)).astype(str)  # every trial its own observer and item
    _, nlo, nhi, _ = hierarchical_ci(np.zeros(len(correct)), naive, correct, n_boot=500,
                                     seed=0)
    assert (hi - lo) > 1.3 * (nhi - nlo)


def test_accuracy_table_cells_and_chance():
    rows = [{"agent": "m", "agent_kind": "model", "item_id": f"i{i}", "condition": c,
             "correct": i % 2 == 0, "n_choices": k, "chance": 1 / k, "correct_open": 0.0}
            for i in range(6) for c, k in (("body", 2), ("background", 4))]
    table = accuracy_table(tidy(rows), n_boot=100, seed=0).set_index("condition")
    assert list(table.index) == ["body", "background"]
    assert table.loc["body", "accuracy"] == pytest.approx(0.5)
    assert table.loc["body", "chance"] == pytest.approx(0.5)
    assert table.loc["background", "chance"] == pytest.approx(0.25)
    assert table.loc["body", "n_trials"] == 6 and table.loc["body", "n_agents"] == 1


def test_conflict_shares_hand_computed():
    answers = ["clap", "clap", "kick", "kick", "kick", "wave"]  # body clap, background kick
    rows = [{"agent": "m", "agent_kind": "model", "item_id": f"i{i}", "condition": "conflict",
             "response": r, "correct": r == "clap", "body_action": "clap",
             "background_action": "kick"} for i, r in enumerate(answers)]
    table = conflict_shares(tidy(rows), n_boot=50).set_index("cue")
    assert table.loc["body", "share"] == pytest.approx(2 / 6)
    assert table.loc["background", "share"] == pytest.approx(3 / 6)
    assert table.loc["body", "share_other"] == pytest.approx(1 / 6)


# ------------------------------------------------------------------------ noise ceiling

def test_spearman_brown():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(0.0) == 0.0
    assert spearman_brown(0.6, factor=3) == pytest.approx(1.8 / 2.2)


def test_split_half_ceiling_matches_the_real_noise():
    """Participants share one true profile; the ceiling distance must predict how far the
    full sample's profile lies from that truth, and the reliability must be high."""
    rng = np.random.default_rng(0)
    truth = np.array([0.9, 0.8, 0.55, 0.4, 0.7, 0.65, 0.3, 0.85])
    n_people, n_trials = 20, 15
    predicted, actual, reliability = [], [], []
    for _ in range(40):
        sums = rng.binomial(n_trials, truth, size=(n_people, truth.size)).astype(float)
        counts = np.full_like(sums, n_trials)
        ceiling = split_half_ceiling(sums, counts, n_splits=50, seed=1)
        predicted.append(ceiling["ceiling_distance"])
        actual.append(np.sqrt(np.mean((sums.sum(0) / counts.sum(0) - truth) ** 2)))
        reliability.append(ceiling["r_full"])
    assert np.mean(predicted) == pytest.approx(np.mean(actual), rel=0.2)
    assert np.mean(reliability) > 0.9
    flat = rng.binomial(n_trials, 0.6, size=(n_people, 8)).astype(float)
    flat_ceiling = split_half_ceiling(flat, np.full_like(flat, n_trials), 50)
    assert not flat_ceiling["r_full"] >= 0.5   # low, or none (negative split-half r)
    if flat_ceiling["r_half"] < 0:   # Spearman-Brown would leave [-1, 1]: no reliability
        assert np.isnan(flat_ceiling["r_full"])


def test_human_likeness_orders_models():
    rng = np.random.default_rng(3)
    human_p = {"original": 0.9, "body": 0.85, "background": 0.55, "conflict": 0.6}
    far_p = {"original": 0.95, "body": 0.35, "background": 0.9, "conflict": 0.3}
    rows = []
    for p in range(12):
        for c, acc in human_p.items():
            for i in range(20):
                rows.append({"agent": f"p{p}", "item_id": f"i{i}", "condition": c,
                             "correct": bool(rng.random() < acc)})
    for name, prof in (("near", human_p), ("far", far_p)):
        for c, acc in prof.items():
            for i in range(200):
                rows.append({"agent": name, "agent_kind": "model", "item_id": f"i{i}",
                             "condition": c, "correct": bool(rng.random() < acc)})
    like = human_likeness(tidy(rows), n_splits=50).query("profile == 'condition'")
    like = like.set_index("model")
    assert like.loc["near", "distance"] < 0.08 < 0.3 < like.loc["far", "distance"]
    assert like.loc["near", "r"] > 0.9 > 0.5 > like.loc["far", "r"]
    assert like.loc["near", "distance_ratio"] < like.loc["far", "distance_ratio"]


# ------------------------------------------- recovery through the simulated observers

def _simulate_study(simulate, model, n_people: int, n_items: int, conditions, rng):
    """Every participant answers every item once per condition; a fresh sample of people and
    items each call. Returns a tidy trials table."""
    cond = np.tile(np.repeat(np.array(conditions, dtype=object), n_items), n_people)
    part = np.repeat(np.arange(n_people), len(conditions) * n_items)
    item = np.tile(np.arange(n_items), len(conditions) * n_people)
    correct = np.asarray(simulate.draw_correct(model, cond, part, item, rng), bool)
    return tidy([{"agent": f"p{p}", "item_id": f"i{i}", "condition": c, "correct": bool(k)}
                 for p, i, c, k in zip(part, item, cond, correct)])


def _population_accuracy(simulate, model, conditions, rng) -> dict[str, float]:
    """The estimand: accuracy over the population of people and items, by a very large
    simulated sample."""
    n_people, n_items = 600, 600
    truth = {}
    for c in conditions:
        cond = np.full(n_people * n_items, c, dtype=object)
        part = np.repeat(np.arange(n_people), n_items)
        item = np.tile(np.arange(n_items), n_people)
        truth[c] = float(np.mean(simulate.draw_correct(model, cond, part, item, rng)))
    return truth


def test_bootstrap_intervals_cover_the_truth():
    from bodyscene.human_study import simulate
    model = simulate.ObserverModel(accuracy={"body": 0.85, "background": 0.65},
                                   participant_sd=0.4, item_sd=0.4)
    rng = np.random.default_rng(11)
    truth = _population_accuracy(simulate, model, ("body", "background"), rng)
    hits = []
    for rep in range(40):
        obs = _simulate_study(simulate, model, 10, 20, ("body", "background"), rng)
        table = accuracy_table(obs, n_boot=200, seed=rep).set_index("condition")
        for c, t in truth.items():
            hits.append(table.loc[c, "ci_low"] <= t <= table.loc[c, "ci_high"])
    coverage = float(np.mean(hits))
    assert 0.8 <= coverage <= 1.0, coverage


def test_regression_recovers_the_body_background_effect():
    from bodyscene.benchmark.analysis.stats.regression import fit_gee, fit_mixed
    from bodyscene.human_study import simulate
    acc = {"original": 0.85, "body": 0.8, "background": 0.6}
    model = simulate.ObserverModel(accuracy=acc, participant_sd=0.3, item_sd=0.3)
    obs = _simulate_study(simulate, model, 20, 40, tuple(acc), np.random.default_rng(5))
    logit = {c: math.log(a / (1 - a)) for c, a in acc.items()}
    truth = logit["body"] - logit["background"]  # about 0.98 on the log-odds scale
    mixed = fit_mixed(obs).set_index("term")
    est = mixed.loc["condition[body]", "estimate"] - mixed.loc["condition[background]",
                                                               "estimate"]
    assert est > 0
    assert abs(est - truth) < 0.4, (est, truth)
    assert mixed.loc["condition[background]", "ci_high"] < 0  # background clearly harder
    gee = fit_gee(obs).set_index("term")
    assert gee.loc["condition[body]", "estimate"] > gee.loc["condition[background]", "estimate"]


def test_power_grows_with_participants_and_is_alpha_without_effect():
    import bodyscene.human_study.simulate  # noqa: F401
    from bodyscene.benchmark.analysis.stats.power import (
        PowerConfig,
        participants_needed,
        power_curve,
    )

    cfg = PowerConfig(accuracy={"body": 0.85, "background": 0.75}, participants=(4, 12, 32),
                      items_per_condition=30, n_sims=120, seed=0)
    curve = power_curve(cfg)
    assert list(curve["n_participants"]) == [4, 12, 32]
    assert curve["power"].iloc[0] < curve["power"].iloc[-1]
    assert curve["power"].iloc[-1] > 0.8
    assert participants_needed(curve) in (12, 32)
    null = power_curve(PowerConfig(accuracy={"body": 0.8, "background": 0.8},
                                   participants=(12,), items_per_condition=20, n_sims=200))
    assert null["power"].iloc[0] < 0.1  # one-directional hits: about alpha / 2
    assert participants_needed(null) is None


# ------------------------------------------------------------------- the mixed model

def _latin_square_study(n_people: int, n_items: int, accuracy: dict, sd: float,
                        rng: np.random.Generator) -> pd.DataFrame:
    """The plan's design: items dealt to k groups, participant row r sees group g in condition
    (g + r) mod k, each item once; observers drawn from the simulated observer model."""
    from bodyscene.human_study import simulate
    conds = np.array(list(accuracy), dtype=object)
    part = np.repeat(np.arange(n_people), n_items)
    item = np.tile(np.arange(n_items), n_people)
    cond = conds[(item % len(conds) + part) % len(conds)]
    model = simulate.ObserverModel(accuracy=accuracy, participant_sd=sd, item_sd=sd)
    correct = simulate.draw_correct(model, cond, part, item, rng)
    return pd.DataFrame({"agent": [f"p{p}" for p in part], "item_id": [f"i{i}" for i in item],
                         "condition": cond, "correct": correct, "group": "humans",
                         "simulated": True})


def test_glmm_equals_logistic_regression_without_random_effects():
    """With the random-intercept SDs fixed near 0 the model is a plain logistic regression:
    estimates and standard errors must equal statsmodels' GLM."""
    import statsmodels.api as sm
    from bodyscene.benchmark.analysis.stats import glmm
    from bodyscene.benchmark.analysis.stats.regression import design
    obs = _latin_square_study(12, 40, {"original": 0.85, "body": 0.8, "background": 0.6},
                              0.5, np.random.default_rng(4))
    d = design(obs)
    fit = glmm.fit(d.exog.to_numpy(), obs["correct"].to_numpy(float), d.participants, d.items,
                   sd=(1e-6, 1e-6))
    ref = sm.GLM(obs["correct"].to_numpy(float), d.exog, family=sm.families.Binomial()).fit()
    assert fit.beta == pytest.approx(ref.params.to_numpy(), abs=1e-6)
    assert np.sqrt(np.diag(fit.cov)) == pytest.approx(ref.bse.to_numpy(), rel=1e-5)


def test_glmm_recovers_planted_effects_and_sds():
    from bodyscene.benchmark.analysis.stats.regression import fit_mixed
    acc = {"original": 0.85, "body": 0.8, "background": 0.7, "conflict": 0.6}
    obs = _latin_square_study(28, 200, acc, 1.0, np.random.default_rng(1))
    table = fit_mixed(obs).set_index("term")
    logit = {c: math.log(a / (1 - a)) for c, a in acc.items()}
    for c in ("body", "background", "conflict"):
        row = table.loc[f"condition[{c}]"]
        assert abs(row["estimate"] - (logit[c] - logit["original"])) < 3 * row["se"]
    assert table.loc["sd(item)", "estimate"] == pytest.approx(1.0, abs=0.3)
    assert table.loc["sd(participant)", "estimate"] == pytest.approx(1.0, abs=0.45)
    assert not table["separation"].any()


def test_regression_flags_separation_and_keeps_other_terms():
    """A model at 100% on body frames: its terms that involve that cell get no interval, the
    reason is written beside them, and the people's terms are untouched."""
    from bodyscene.benchmark.analysis.stats.regression import regression_table
    acc = {"original": 0.85, "body": 0.8, "background": 0.6}
    obs = _latin_square_study(12, 60, acc, 0.5, np.random.default_rng(2))
    rng = np.random.default_rng(3)
    items = obs[["item_id"]].drop_duplicates()
    model = pd.concat([items.assign(condition=c) for c in acc], ignore_index=True).assign(
        agent="m", group="m", simulated=False)
    model["correct"] = np.where(model["condition"] == "body", True,
                                rng.random(len(model)) < 0.7)
    table = regression_table(pd.concat([obs, model], ignore_index=True))
    for method, fit in table.groupby("method"):
        fit = fit.set_index("term")
        flagged = set(fit.index[fit["separation"]])
        assert flagged == {"condition[body]:group[m]"}, (method, flagged)
        assert fit.loc["condition[body]:group[m]", "note"].startswith("separation: m on body")
        assert np.isnan(fit.loc["condition[body]:group[m]", "ci_low"])
        assert np.isfinite(fit.loc["condition[body]", "ci_low"])


@pytest.mark.slow
def test_glmm_intervals_hold_their_coverage():
    """Planted truth, 200 simulated Latin-square studies: the 95% intervals of the condition
    effects must cover the truth 92-98% of the time (variational Bayes covered 77-89%)."""
    from bodyscene.benchmark.analysis.stats.regression import fit_mixed
    acc = {"original": 0.85, "body": 0.8, "background": 0.7, "conflict": 0.6}
    logit = {c: math.log(a / (1 - a)) for c, a in acc.items()}
    rng = np.random.default_rng(2024)
    hits = []
    for _ in range(200):
        table = fit_mixed(_latin_square_study(16, 80, acc, 1.0, rng)).set_index("term")
        for c in ("body", "background", "conflict"):
            row = table.loc[f"condition[{c}]"]
            hits.append(row["ci_low"] <= logit[c] - logit["original"] <= row["ci_high"])
    coverage = float(np.mean(hits))
    print(f"coverage of the condition effects: {coverage:.3f} over {len(hits)} intervals")
    assert 0.92 <= coverage <= 0.98, coverage


def test_r_normalised_is_one_for_a_model_equal_to_the_population():
    """Participants drawn around one true fine profile (condition x action); a model whose
    profile *is* that truth must score r_normalised = 1 on average (it scored 1.11 when r was
    divided by the reliability instead of its square root)."""
    rng = np.random.default_rng(7)
    conds, actions = ("original", "body", "background", "conflict"), [f"a{i}" for i in range(8)]
    truth = {(c, a): p for (c, a), p in
             zip([(c, a) for c in conds for a in actions], rng.uniform(0.3, 0.95, 32))}
    cells = pd.DataFrame(list(truth), columns=["condition", "action"])
    p_true = np.array(list(truth.values()))
    people = cells.loc[np.tile(np.repeat(np.arange(32), 4), 16)].reset_index(drop=True)
    people["agent"] = np.repeat([f"p{p}" for p in range(16)], 32 * 4)
    people["item_id"] = "i"
    # the model: exactly the true accuracy in every cell (1000 trials, rounded counts)
    model = cells.loc[np.repeat(np.arange(32), 1000)].reset_index(drop=True)
    model = model.assign(agent="m", agent_kind="model", item_id="i",
                         correct=np.tile(np.arange(1000), 32) < np.repeat(
                             np.round(1000 * p_true), 1000))
    scores = []
    for _ in range(15):
        people["correct"] = rng.random(len(people)) < np.tile(np.repeat(p_true, 4), 16)
        rows = pd.concat([people, model], ignore_index=True)
        like = human_likeness(tidy(rows), n_splits=100, seed=1)
        row = like[like["profile"] == "condition x action"].iloc[0]
        assert 0.3 < row["r_ceiling"] < 0.95  # noisy enough that the ceiling matters
        scores.append(row["r_normalised"])
    print(f"r_normalised of the true profile: mean {np.mean(scores):.3f}")
    assert np.mean(scores) == pytest.approx(1.0, abs=0.05), np.mean(scores)


def test_power_simulates_the_plans_latin_square(tmp_path):
    """The simulated trials are the plan's: for a toy trial set, every participant of a real
    `make_plan` sees each test item in the condition the power simulation gives it."""
    from bodyscene.benchmark.analysis.stats.power import square_design, square_trials
    from bodyscene.human_study.plan import PlanConfig, make_plan
    from bodyscene.stimuli.manifest import read_manifest
    from conftest import write_toy_manifest
    trials = write_toy_manifest(tmp_path / "stim", items_per_split={"train": 1, "val": 1,
                                                                    "test": 4})
    plan = make_plan(trials, tmp_path / "plan", PlanConfig(n_participants=8, seed=3))
    conds, groups = square_design(read_manifest(trials, check_files=False), seed=3)
    assert conds == ("original", "body", "background", "conflict")
    items = sorted(read_manifest(trials, check_files=False)
                   .query("split == 'test'")["item_id"].unique())
    part, item, cond = square_trials(8, np.asarray(groups), conds)
    for p in range(8):
        listed = pd.read_csv(plan / f"P{p + 1:02d}.csv").query("phase == 'main'")
        got = dict(zip(listed["item_id"], listed["condition"]))
        want = {items[i]: c for i, c in zip(item[part == p], cond[part == p])}
        assert got == want


def test_power_without_random_effects_matches_the_noncentral_t():
    """No participant or item variability: each participant's difference is a difference of two
    binomial proportions, so the paired t-test's power is known from the noncentral t."""
    from bodyscene.benchmark.analysis.stats.power import PowerConfig, power_curve
    pa, pb, m, n = 0.8, 0.7, 20, 12
    cfg = PowerConfig(accuracy={"body": pa, "background": pb}, participants=(n,),
                      items_per_condition=m, participant_sd=0.0, item_sd=0.0, n_sims=2000)
    got = power_curve(cfg)["power"].iloc[0]
    sd = math.sqrt(pa * (1 - pa) / m + pb * (1 - pb) / m)
    ncp = (pa - pb) / sd * math.sqrt(n)
    want = stats.nct.sf(stats.t.ppf(0.975, n - 1), n - 1, ncp)
    assert got == pytest.approx(want, abs=0.04), (got, want)


def test_power_of_the_square_is_lower_when_items_vary():
    """Each participant sees body and background on different items, so item variability adds
    to the participant's difference instead of cancelling."""
    from bodyscene.benchmark.analysis.stats.power import PowerConfig, power_curve
    base = dict(accuracy={"body": 0.85, "background": 0.8}, participants=(28,),
                items_per_condition=40, participant_sd=0.3, n_sims=1000, seed=1)
    calm = power_curve(PowerConfig(item_sd=0.0, **base))["power"].iloc[0]
    varied = power_curve(PowerConfig(item_sd=1.5, **base))["power"].iloc[0]
    assert varied < calm - 0.07, (calm, varied)  # measured: 0.85 vs 0.74


def test_leaderboard_hand_computed():
    from bodyscene.benchmark.analysis.stats.leaderboard import leaderboard
    acc = {"humans": (0.9, 0.9, 0.6), "A": (0.9, 0.9, 0.6), "B": (0.9, 0.3, 0.9),
           "A:body": (0.5, 0.9, 0.2)}
    accuracy = pd.DataFrame([{"group": g, "condition": c, "accuracy": a}
                             for g, v in acc.items()
                             for c, a in zip(("original", "body", "background"), v)])
    cons = pd.DataFrame([
        {"observer": "humans", "human_group": "humans", "kappa_with_humans": 0.4,
         "c_obs_with_humans": 0.85, "human_human_kappa": 0.4, "human_human_c_obs": 0.85},
        {"observer": "A", "human_group": "humans", "kappa_with_humans": 0.3,
         "c_obs_with_humans": 0.8, "human_human_kappa": 0.4, "human_human_c_obs": 0.85},
        {"observer": "B", "human_group": "humans", "kappa_with_humans": 0.1,
         "c_obs_with_humans": 0.6, "human_human_kappa": 0.4, "human_human_c_obs": 0.85}])
    conflict = pd.DataFrame([{"group": "B", "cue": "body", "share": 0.2}])
    board = leaderboard(accuracy, cons, pd.DataFrame(), conflict)
    assert board["observer"].tolist() == ["humans", "A", "A:body", "B"]
    b = board.set_index("observer")
    assert b.loc["B", "accuracy_difference"] == pytest.approx((0 + 0.6 + 0.3) / 3)
    assert b.loc["B", "body_minus_background"] == pytest.approx(-0.6)
    assert b.loc["B", "body_background_gap"] == pytest.approx(0.9)   # |-0.6 - 0.3|
    assert b.loc["A", "rank"] == 1 and b.loc["B", "rank"] == 2
    assert b.loc["A", "human_likeness"] == 1.0 and b.loc["B", "human_likeness"] == 2.0
    assert np.isnan(b.loc["A:body", "rank"]) and b.loc["A:body", "readout_of"] == "A"
    assert b.loc["humans", "error_consistency"] == 0.4   # the people-people ceiling
    assert b.loc["humans", "observed_consistency"] == 0.85
    alone = leaderboard(accuracy[accuracy["group"] == "humans"], cons.iloc[:1], pd.DataFrame(),
                        pd.DataFrame())
    assert alone["observer"].tolist() == ["humans"]   # no models yet: the people's row alone
    assert alone.loc[0, "error_consistency"] == 0.4
    assert b.loc["B", "conflict_body_share"] == 0.2
