"""Conflict trials: does an observer follow the body or the background?

On a conflict trial the body of one action stands on the background of another, and both are
among the offered choices. The share of answers naming the body's action and the share naming
the background's action say which cue drives the observer; both get hierarchical bootstrap
intervals like accuracy, and their chance level is 1/k each."""

from __future__ import annotations

import pandas as pd

from .accuracy import accuracy_table

CUES = {"body": "body_action", "background": "background_action"}


def conflict_shares(obs: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
                    ci: float = 0.95) -> pd.DataFrame:
    """One row per group and cue: share, ci_low, ci_high, chance, n_trials, n_agents."""
    conflict = obs[obs["condition"] == "conflict"].copy()
    if conflict.empty:
        return pd.DataFrame(columns=["group", "cue", "share", "ci_low", "ci_high", "chance",
                                     "n_trials", "n_agents", "simulated"])
    parts = []
    for cue, column in CUES.items():
        conflict[f"follows_{cue}"] = conflict["response"] == conflict[column]
        table = accuracy_table(conflict, n_boot=n_boot, seed=seed, ci=ci,
                               outcome=f"follows_{cue}", by=("group",))
        parts.append(table.assign(cue=cue).rename(columns={"accuracy": "share"}))
    other = conflict.assign(other=~(conflict["follows_body"] | conflict["follows_background"]))
    share_other = other.groupby("group")["other"].mean()
    table = pd.concat(parts, ignore_index=True)
    table["share_other"] = table["group"].map(share_other)
    cols = ["group", "cue", "share", "ci_low", "ci_high", "chance", "share_other", "n_trials",
            "n_agents", "simulated"]
    return table[cols]
