"""Every statistic of the report computed from the tidy trials table, as named tables."""

from __future__ import annotations

import pandas as pd
from bodyscene.benchmark.analysis.stats.accuracy import accuracy_table, agent_accuracy
from bodyscene.benchmark.analysis.stats.conflict import conflict_shares
from bodyscene.benchmark.analysis.stats.consistency import (
    consistency_summary,
    pair_summary,
    pairwise_consistency,
)
from bodyscene.benchmark.analysis.stats.contrasts import (
    condition_contrasts,
    model_vs_model,
)
from bodyscene.benchmark.analysis.stats.leaderboard import leaderboard
from bodyscene.benchmark.analysis.stats.likeness import human_ceiling, human_likeness
from bodyscene.benchmark.analysis.stats.regression import regression_table
from tqdm import tqdm

from .config import ReportConfig


def analyse(obs: pd.DataFrame, cfg: ReportConfig) -> dict[str, pd.DataFrame]:
    """{table name: DataFrame}; the names become the CSV file names."""
    steps = [
        ("accuracy", lambda: accuracy_table(obs, n_boot=cfg.bootstrap, seed=cfg.seed,
                                            ci=cfg.ci)),
        ("accuracy_by_action", lambda: accuracy_table(
            obs, n_boot=cfg.bootstrap, seed=cfg.seed, ci=cfg.ci,
            by=("group", "condition", "action"))),
        ("agent_accuracy", lambda: agent_accuracy(obs)),
        ("contrasts_body_background", lambda: condition_contrasts(obs, "body", "background")),
        ("contrasts_model_model", lambda: model_vs_model(obs)),
        ("error_consistency_by_condition",
         lambda: pairwise_consistency(obs, cfg.min_shared_trials)),
        ("human_ceiling", lambda: human_ceiling(obs, cfg.split_halves, cfg.seed)),
        ("human_likeness", lambda: human_likeness(obs, cfg.split_halves, cfg.seed)),
        ("conflict", lambda: conflict_shares(obs, n_boot=cfg.bootstrap, seed=cfg.seed,
                                             ci=cfg.ci)),
    ]
    if cfg.regression:
        steps.append(("regression", lambda: regression_table(obs, gee=cfg.gee)))
    tables: dict[str, pd.DataFrame] = {}
    for name, step in tqdm(steps, desc="statistics", unit="table", leave=False,
                               disable=not cfg.progress):
        tables[name] = step()
    by_condition = tables["error_consistency_by_condition"]
    tables["error_consistency_pairs"] = pair_summary(by_condition, obs, cfg.min_shared_trials)
    tables["error_consistency"] = consistency_summary(tables["error_consistency_pairs"])
    tables["error_consistency_conditions"] = consistency_summary(by_condition, by="condition")
    tables["leaderboard"] = leaderboard(tables["accuracy"], tables["error_consistency"],
                                        tables["human_likeness"], tables["conflict"])
    tables["confusion"] = confusion_table(obs)
    return tables


def confusion_table(obs: pd.DataFrame) -> pd.DataFrame:
    """Counts of (true action, response) per group and condition; an empty response is
    'no response'."""
    resp = obs["response"].where(obs["response"] != "", "(no response)")
    table = (obs.assign(response=resp)
             .groupby(["group", "condition", "action", "response"], sort=True)
             .size().rename("n").reset_index())
    simulated = obs.groupby("group")["simulated"].all()
    table["simulated"] = table["group"].map(simulated).astype(bool)
    return table
