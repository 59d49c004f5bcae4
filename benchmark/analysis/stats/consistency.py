"""Error consistency (Geirhos et al. 2020): do two observers get the same trials wrong?

Two observers with accuracies p1 and p2 who err independently agree (both right or both wrong)
on a share c_exp = p1 p2 + (1 - p1)(1 - p2) of trials. Error consistency is Cohen's kappa of the
observed agreement c_obs beyond that: kappa = (c_obs - c_exp) / (1 - c_exp). It is computed on the
trials both observers answered; the human-human distribution is the ceiling a model is judged
against."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import SIMULATED_HUMANS

MIN_SHARED = 10  # fewer shared trials than this leave a pair's kappa undefined


def error_consistency(correct1, correct2) -> dict:
    """c_obs, c_exp and kappa for two aligned boolean vectors (the same trials)."""
    a = np.asarray(correct1, bool)
    b = np.asarray(correct2, bool)
    n = a.size
    if n == 0:
        return {"n": 0, "c_obs": np.nan, "c_exp": np.nan, "kappa": np.nan}
    p1, p2 = a.mean(), b.mean()
    c_obs = float((a == b).mean())
    c_exp = float(p1 * p2 + (1 - p1) * (1 - p2))
    kappa = (c_obs - c_exp) / (1 - c_exp) if c_exp < 1 else np.nan
    return {"n": n, "c_obs": c_obs, "c_exp": c_exp, "kappa": float(kappa)}


def kind_of(agent_kind: str, simulated: bool) -> str:
    if agent_kind == "model":
        return "model"
    return "human (simulated)" if simulated else "human"


def pairwise_consistency(obs: pd.DataFrame, min_shared: int = MIN_SHARED) -> pd.DataFrame:
    """One row per pair of observers: n shared trials, c_obs, c_exp, kappa, pair type
    (e.g. 'human-model'). All pairs at once from observer x trial matrices."""
    agents = obs.drop_duplicates("agent").set_index("agent")
    names = list(agents.index)
    a_codes = pd.Index(names).get_indexer(obs["agent"])
    t_codes, _ = pd.factorize(obs["trial_id"])
    seen = np.zeros((len(names), t_codes.max() + 1))
    right = np.zeros_like(seen)
    seen[a_codes, t_codes] = 1.0
    right[a_codes, t_codes] = obs["correct"].to_numpy(float)
    wrong = seen - right
    n = seen @ seen.T
    both_right = right @ right.T
    both_wrong = wrong @ wrong.T
    with np.errstate(invalid="ignore", divide="ignore"):
        c_obs = (both_right + both_wrong) / n
        p1 = (right @ seen.T) / n      # row observer's accuracy on the trials shared with col
        p2 = (seen @ right.T) / n
        c_exp = p1 * p2 + (1 - p1) * (1 - p2)
        kappa = np.where(c_exp < 1, (c_obs - c_exp) / (1 - c_exp), np.nan)
    iu, ju = np.triu_indices(len(names), k=1)
    kinds = [kind_of(agents.loc[a, "agent_kind"], bool(agents.loc[a, "simulated"]))
             for a in names]
    groups = agents["group"].tolist()
    table = pd.DataFrame({
        "agent1": [names[i] for i in iu], "agent2": [names[j] for j in ju],
        "group1": [groups[i] for i in iu], "group2": [groups[j] for j in ju],
        "kind1": [kinds[i] for i in iu], "kind2": [kinds[j] for j in ju],
        "pair_type": ["-".join(sorted((kinds[i], kinds[j]), key=_kind_rank)) for i, j in
                      zip(iu, ju)],
        "n_shared": n[iu, ju].astype(int), "c_obs": c_obs[iu, ju], "c_exp": c_exp[iu, ju],
        "kappa": kappa[iu, ju]})
    few = table["n_shared"] < min_shared
    table.loc[few, ["c_obs", "c_exp", "kappa"]] = np.nan
    table["simulated"] = [kinds[i] == "human (simulated)" or kinds[j] == "human (simulated)"
                          for i, j in zip(iu, ju)]
    return table


def _kind_rank(kind: str) -> int:
    return {"human": 0, "human (simulated)": 1, "model": 2}[kind]


def consistency_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean kappa with each human group, beside the human-human ceiling (mean and
    interquartile range of kappa over pairs of people)."""
    rows = []
    human_groups = [g for g in ("humans", SIMULATED_HUMANS)
                    if g in set(pairs["group1"]) | set(pairs["group2"])]
    models = sorted(set(pairs.loc[pairs["kind1"] == "model", "group1"]) |
                    set(pairs.loc[pairs["kind2"] == "model", "group2"]))
    for hg in human_groups:
        hh = pairs[(pairs["group1"] == hg) & (pairs["group2"] == hg)]["kappa"].dropna()
        ceiling = float(hh.mean()) if len(hh) else np.nan
        for model in models:
            hm = pairs[((pairs["group1"] == hg) & (pairs["group2"] == model)) |
                       ((pairs["group2"] == hg) & (pairs["group1"] == model))]["kappa"].dropna()
            rows.append({"model": model, "human_group": hg,
                         "kappa_with_humans": float(hm.mean()) if len(hm) else np.nan,
                         "n_pairs": int(len(hm)), "human_human_kappa": ceiling,
                         "human_human_q25": float(hh.quantile(0.25)) if len(hh) else np.nan,
                         "human_human_q75": float(hh.quantile(0.75)) if len(hh) else np.nan,
                         "simulated": hg == SIMULATED_HUMANS})
    return pd.DataFrame(rows)
