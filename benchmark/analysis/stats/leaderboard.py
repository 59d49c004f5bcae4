"""The leaderboard: one row per model, ranked by how human-like its behaviour is.

The readouts are model-vs-human's (Geirhos et al. 2021) plus this suite's own:

  accuracy per condition           on the offered choices
  accuracy_difference              mean over conditions of |model - people| (accuracy units)
  observed_consistency             share of trials model and person are both right or both
                                   wrong, averaged over conditions and people
  error_consistency                kappa with each person, per condition, averaged (the
                                   headline of `consistency.py`); `error_consistency_humans`
                                   beside it is the people's own value (the ceiling)
  profile_distance_ratio           distance of the accuracy profile to the people's in units of
                                   their split-half noise (1 = at the noise ceiling)
  body_minus_background            accuracy on body minus background frames, and
  body_background_gap              its distance |model - people| to the people's difference
  conflict_body_share              share of conflict answers naming the body's action

Human-likeness rank: as model-vs-human ranks models by the mean of their ranks over its
readouts, the `human_likeness` score here is the mean rank over four readouts - accuracy
difference (low is better), observed consistency (high), error consistency (high) and the
body - background gap (low); rank 1 is the most human-like. Alternative readouts of a
two-stream model (`<model>:<readout>`) are listed under their model and not ranked."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import HUMANS, SIMULATED_HUMANS, is_human_group

RANKED = {"accuracy_difference": True, "observed_consistency": False,
          "error_consistency": False, "body_background_gap": True}  # True: lower is better


def reference_group(groups) -> str | None:
    """Models are ranked against real people when there are any, else simulated ones."""
    groups = set(groups)
    return HUMANS if HUMANS in groups else SIMULATED_HUMANS if SIMULATED_HUMANS in groups \
        else None


def leaderboard(accuracy: pd.DataFrame, consistency: pd.DataFrame, likeness: pd.DataFrame,
                conflict: pd.DataFrame) -> pd.DataFrame:
    """One row for the reference people, then one per model in rank order (readouts as
    sub-rows). Inputs are the tables of accuracy_table (group x condition), consistency_summary
    (headline), human_likeness and conflict_shares. Without models it is the people's row
    alone; without people it is empty (nothing to rank against)."""
    ref = reference_group(accuracy["group"])
    if ref is None:   # no people: nothing to rank against (the CSV keeps its header)
        return pd.DataFrame(columns=["rank", "observer", "readout_of", "human_likeness",
                                     *RANKED, "error_consistency_humans",
                                     "profile_distance_ratio", "body_minus_background",
                                     "conflict_body_share", "simulated"])
    acc = accuracy.pivot_table(index="group", columns="condition", values="accuracy",
                               sort=False)
    conds = list(acc.columns)
    human = acc.loc[ref]
    models = [g for g in acc.index if not is_human_group(g)]
    cons = consistency[consistency["human_group"] == ref].set_index("observer") \
        if len(consistency) else pd.DataFrame()
    like = likeness[(likeness["human_group"] == ref) & (likeness["profile"] == "condition")] \
        .set_index("model") if len(likeness) else pd.DataFrame()
    body_share = (conflict[conflict["cue"] == "body"].set_index("group")["share"]
                  if len(conflict) else pd.Series(dtype=float))

    def diff(a: pd.Series) -> float:
        return (float(a["body"] - a["background"]) if {"body", "background"} <= set(a.index)
                else np.nan)

    def get(table: pd.DataFrame, row: str, col: str) -> float:
        return float(table.loc[row, col]) if row in table.index and col in table.columns \
            else np.nan

    human_gap = diff(human)
    # the people's own row of the consistency summary: people-people values, with or
    # without models
    rows = [{"rank": np.nan, "observer": ref, "readout_of": "",
             **{f"accuracy_{c}": float(human[c]) for c in conds},
             "accuracy_difference": np.nan,   # comparisons of the people with themselves
             "observed_consistency": get(cons, ref, "human_human_c_obs"),
             "error_consistency": get(cons, ref, "human_human_kappa"),
             "error_consistency_humans": get(cons, ref, "human_human_kappa"),
             "profile_distance_ratio": np.nan, "body_minus_background": human_gap,
             "body_background_gap": np.nan, "conflict_body_share": body_share.get(ref, np.nan)}]
    for m in models:
        a = acc.loc[m]
        shared = [c for c in conds if np.isfinite(a[c]) and np.isfinite(human[c])]
        parent = m.split(":", 1)[0] if ":" in m and m.split(":", 1)[0] in models else ""
        rows.append({
            "rank": np.nan, "observer": m, "readout_of": parent,
            **{f"accuracy_{c}": float(a[c]) for c in conds},
            "accuracy_difference": float(np.mean([abs(a[c] - human[c]) for c in shared]))
            if shared else np.nan,
            "observed_consistency": get(cons, m, "c_obs_with_humans"),
            "error_consistency": get(cons, m, "kappa_with_humans"),
            "error_consistency_humans": get(cons, m, "human_human_kappa"),
            "profile_distance_ratio": get(like, m, "distance_ratio"),
            "body_minus_background": diff(a),
            "body_background_gap": abs(diff(a) - human_gap),
            "conflict_body_share": body_share.get(m, np.nan)})
    table = pd.DataFrame(rows)
    main = (table["observer"] != ref) & (table["readout_of"] == "")
    ranks = pd.DataFrame({col: table.loc[main, col].rank(ascending=low, method="average")
                          for col, low in RANKED.items()})
    table["human_likeness"] = np.nan
    table.loc[main, "human_likeness"] = ranks.mean(axis=1, skipna=True)
    table.loc[main, "rank"] = table.loc[main, "human_likeness"].rank(method="min")
    table["simulated"] = ref == SIMULATED_HUMANS
    # reading order: people, then models by rank, each followed by its readouts
    order_key = table["readout_of"].where(table["readout_of"] != "", table["observer"])
    model_rank = table.set_index("observer")["rank"]
    table["_k1"] = np.where(table["observer"] == ref, -1, order_key.map(model_rank).fillna(1e9))
    table["_k2"] = (table["readout_of"] != "").astype(int)
    table = table.sort_values(["_k1", "_k2", "observer"]).drop(columns=["_k1", "_k2"])
    lead = ["rank", "observer", "readout_of", "human_likeness"]
    return table[lead + [c for c in table.columns if c not in lead]].reset_index(drop=True)
