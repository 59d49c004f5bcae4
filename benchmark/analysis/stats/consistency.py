"""Error consistency (Geirhos et al. 2020): do two observers get the same trials wrong?

Two observers with accuracies p1 and p2 who err independently agree (both right or both wrong)
on a share c_exp = p1 p2 + (1 - p1)(1 - p2) of trials. Error consistency is Cohen's kappa of the
observed agreement c_obs beyond that: kappa = (c_obs - c_exp) / (1 - c_exp).

Kappa is computed *within each condition* and the headline is the mean over conditions, as
Geirhos et al. compute it per experimental condition. Pooled over conditions it is biased
upwards: when both observers find one condition harder than another, they agree more often than
their overall accuracies predict even if their errors are independent within every condition
(with accuracies 0.95/0.8/0.5/0.2, independent observers score a pooled kappa near 0.2). The
pooled value is kept as a labelled secondary column. The human-human distribution is the
ceiling a model is judged against."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import SIMULATED_HUMANS

MIN_SHARED = 10  # fewer shared trials than this (per condition) leave a kappa undefined
SIMULATED_KIND = "human (simulated)"


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
    return SIMULATED_KIND if simulated else "human"


def _kappa_matrices(agent_codes: np.ndarray, trial_codes: np.ndarray, correct: np.ndarray,
                    n_agents: int) -> dict[str, np.ndarray]:
    """n shared, c_obs, c_exp, kappa for every pair of observers at once (observer x observer
    matrices from observer x trial indicator matrices)."""
    _, t = np.unique(trial_codes, return_inverse=True)
    seen = np.zeros((n_agents, t.max() + 1 if t.size else 0))
    right = np.zeros_like(seen)
    seen[agent_codes, t] = 1.0
    right[agent_codes, t] = correct
    wrong = seen - right
    n = seen @ seen.T
    with np.errstate(invalid="ignore", divide="ignore"):
        c_obs = (right @ right.T + wrong @ wrong.T) / n
        p1 = (right @ seen.T) / n      # row observer's accuracy on the trials shared with col
        p2 = (seen @ right.T) / n
        c_exp = p1 * p2 + (1 - p1) * (1 - p2)
        kappa = np.where(c_exp < 1, (c_obs - c_exp) / (1 - c_exp), np.nan)
    return {"n": n, "c_obs": c_obs, "c_exp": c_exp, "kappa": kappa}


def _why_undefined(n: int, c_exp: float, min_shared: int) -> str:
    if n == 0:
        return "no shared trials"
    if n < min_shared:
        return f"fewer than {min_shared} shared trials"
    if not c_exp < 1:
        return "both observers always right (or always wrong): kappa undefined"
    return ""


def pairwise_consistency(obs: pd.DataFrame, min_shared: int = MIN_SHARED,
                         strata: tuple[str, ...] = ("condition",),
                         agent: str = "agent", trial: str = "trial_id",
                         correct: str = "correct") -> pd.DataFrame:
    """One row per pair of observers and stratum (by default per condition) on the trials both
    answered: n_shared, c_obs, c_exp, kappa, and a `note` saying why an undefined kappa is
    undefined. `obs` also needs the columns agent_kind, simulated and group."""
    agents = obs.drop_duplicates(agent).set_index(agent)
    names = list(agents.index)
    kinds = [kind_of(agents.loc[a, "agent_kind"], bool(agents.loc[a, "simulated"]))
             for a in names]
    groups = agents["group"].tolist()
    iu, ju = np.triu_indices(len(names), k=1)
    base = pd.DataFrame({
        "agent1": [names[i] for i in iu], "agent2": [names[j] for j in ju],
        "group1": [groups[i] for i in iu], "group2": [groups[j] for j in ju],
        "kind1": [kinds[i] for i in iu], "kind2": [kinds[j] for j in ju],
        "pair_type": ["-".join(sorted((kinds[i], kinds[j]), key=_kind_rank))
                      for i, j in zip(iu, ju)],
        "simulated": [SIMULATED_KIND in (kinds[i], kinds[j]) for i, j in zip(iu, ju)]})
    parts = []
    strata = [s for s in strata if s in obs.columns]
    for keys, cell in (obs.groupby(strata, sort=True) if strata else [((), obs)]):
        keys = keys if isinstance(keys, tuple) else (keys,)
        m = _kappa_matrices(pd.Index(names).get_indexer(cell[agent]), cell[trial].to_numpy(),
                            cell[correct].to_numpy(float), len(names))
        part = base.copy()
        for s, k in zip(strata, keys):
            part[s] = k
        part["n_shared"] = m["n"][iu, ju].astype(int)
        for col in ("c_obs", "c_exp", "kappa"):
            part[col] = m[col][iu, ju]
        few = part["n_shared"] < min_shared
        part.loc[few, ["c_obs", "c_exp", "kappa"]] = np.nan
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["note"] = [_why_undefined(n, e, min_shared) if not np.isfinite(k) else ""
                     for n, e, k in zip(table["n_shared"], table["c_exp"].fillna(0.0),
                                        table["kappa"])]
    lead = ["agent1", "agent2", *strata]
    return table[lead + [c for c in table.columns if c not in lead]]


def pair_summary(by_stratum: pd.DataFrame, obs: pd.DataFrame, min_shared: int = MIN_SHARED,
                 agent: str = "agent", trial: str = "trial_id",
                 correct: str = "correct") -> pd.DataFrame:
    """One row per pair: `kappa` = mean of the per-condition kappas (the headline), the number
    of conditions it averages, n_shared over all conditions, and `kappa_pooled` over all trials
    regardless of condition (secondary; biased upwards when accuracy differs by condition);
    `c_obs` is the observed consistency (share of trials both right or both wrong), also
    averaged over conditions."""
    keys = ["agent1", "agent2"]
    info = ("group1", "group2", "kind1", "kind2", "pair_type", "simulated")
    agg = by_stratum.groupby(keys, sort=False).agg(
        **{c: (c, "first") for c in info}, n_shared=("n_shared", "sum"),
        kappa=("kappa", "mean"), n_conditions=("kappa", "count"),
        c_obs=("c_obs", "mean")).reset_index()
    pooled = pairwise_consistency(obs, min_shared, strata=(), agent=agent, trial=trial,
                                  correct=correct)
    agg = agg.merge(pooled[keys + ["kappa"]].rename(columns={"kappa": "kappa_pooled"}),
                    on=keys, how="left")
    agg["note"] = np.where(agg["n_conditions"] > 0, "",
                           np.where(agg["n_shared"] == 0, "no shared trials",
                                    f"kappa undefined in every condition (fewer than "
                                    f"{min_shared} shared trials, or an observer always "
                                    f"right)"))
    return agg


def _kind_rank(kind: str) -> int:
    return {"human": 0, SIMULATED_KIND: 1, "model": 2}[kind]


def consistency_summary(pairs: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Per human group, first the people themselves, then each model (and per value of `by`,
    e.g. condition, when given): the mean kappa and observed consistency with the group's
    people, beside the people-people value (mean and interquartile range over pairs of
    people), which is the ceiling: a model that errs like a typical person reaches it on
    average. The people's own row (`observer` = the group) holds the people-people values, so a
    study without models still sees its ceiling. `pairs` is `pair_summary` (headline
    per-condition mean kappa) or, with `by`, the per-condition table of
    `pairwise_consistency`. Without people the table is empty: there is no ceiling."""
    rows = []
    human_groups = [g for g in ("humans", SIMULATED_HUMANS)
                    if g in set(pairs["group1"]) | set(pairs["group2"])]
    models = sorted(set(pairs.loc[pairs["kind1"] == "model", "group1"]) |
                    set(pairs.loc[pairs["kind2"] == "model", "group2"]))
    strata = [(None, pairs)] if by is None else list(pairs.groupby(by, sort=False))
    for hg in human_groups:
        for key, cell in strata:
            within = (cell["group1"] == hg) & (cell["group2"] == hg)
            hh = cell.loc[within, "kappa"].dropna()
            ceiling = {
                "human_human_kappa": float(hh.mean()) if len(hh) else np.nan,
                "human_human_q25": float(hh.quantile(0.25)) if len(hh) else np.nan,
                "human_human_q75": float(hh.quantile(0.75)) if len(hh) else np.nan,
                "n_human_pairs": int(len(hh))}
            if "c_obs" in cell.columns:
                ceiling["human_human_c_obs"] = _mean(cell.loc[within, "c_obs"])
            n_people = len(set(cell.loc[cell["group1"] == hg, "agent1"]) |
                           set(cell.loc[cell["group2"] == hg, "agent2"]))
            for observer in [hg] + models:
                pick = within if observer == hg else (
                    ((cell["group1"] == hg) & (cell["group2"] == observer)) |
                    ((cell["group2"] == hg) & (cell["group1"] == observer)))
                hm = cell.loc[pick, "kappa"].dropna()
                row = {"observer": observer, "human_group": hg}
                if by is not None:
                    row[by] = key
                row.update({"kappa_with_humans": float(hm.mean()) if len(hm) else np.nan,
                            "n_pairs": int(len(hm)), **ceiling})
                if "c_obs" in cell.columns:
                    row["c_obs_with_humans"] = _mean(cell.loc[pick, "c_obs"])
                if "kappa_pooled" in cell.columns:
                    row["kappa_pooled_with_humans"] = _mean(cell.loc[pick, "kappa_pooled"])
                row["note"] = _why_no_summary(observer == hg, len(hm), len(hh), n_people)
                row["simulated"] = hg == SIMULATED_HUMANS
                rows.append(row)
    columns = ["observer", "human_group"] + ([by] if by else []) + [
        "kappa_with_humans", "n_pairs", "human_human_kappa", "human_human_q25",
        "human_human_q75", "n_human_pairs", "human_human_c_obs", "c_obs_with_humans",
        "kappa_pooled_with_humans", "note", "simulated"]
    return pd.DataFrame(rows, columns=[c for c in columns if not rows or c in rows[0]])


def _mean(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else np.nan


def _why_no_summary(people_row: bool, n_defined: int, n_people_pairs: int,
                    n_people: int) -> str:
    """Why a consistency summary cell is empty, in words (empty when nothing is missing)."""
    if n_people < 2:
        return "one participant: no people-people consistency (it needs two)"
    if not n_people_pairs:
        return "no pair of people shares enough trials: no people-people value"
    if people_row:
        return "people-people: the ceiling"
    if not n_defined:
        return "no model-person pair with a defined kappa"
    return ""
