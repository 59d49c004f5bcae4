"""The methods paragraph, written from the data and run records actually analysed, so the
report can never describe a study other than the one it shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from bodyscene.benchmark.analysis.groups import HUMANS, SIMULATED_HUMANS

from .config import ReportConfig


def run_records(*folders: Path | None) -> list[dict]:
    """The run records (JSON with a 'seed' or 'config') found beside the analysed files."""
    found = []
    for folder in folders:
        if folder is None:
            continue
        folder = Path(folder)
        folder = folder if folder.is_dir() else folder.parent
        for path in sorted(folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and ("seed" in record or "config" in record):
                found.append({"file": str(path), **record})
    return found


def _find(record: Any, needle: str) -> list[Any]:
    """Values of keys containing `needle`, anywhere in a nested record."""
    hits = []
    if isinstance(record, dict):
        for k, v in record.items():
            if needle in str(k) and isinstance(v, (int, float)) and not isinstance(v, bool):
                hits.append(v)
            hits += _find(v, needle)
    elif isinstance(record, list):
        for v in record:
            hits += _find(v, needle)
    return hits


def stimulus_duration(obs: pd.DataFrame, records: list[dict]) -> str | None:
    measured = obs.loc[obs["agent_kind"] == "human", "stim_duration_s"].dropna()
    if len(measured):
        return (f"stimuli were shown for a median {1000 * measured.median():.0f} ms "
                f"(measured; interquartile range {1000 * measured.quantile(0.25):.0f}-"
                f"{1000 * measured.quantile(0.75):.0f} ms)")
    intended = obs.loc[obs["agent_kind"] == "human", "stim_intended_s"].dropna()
    if len(intended):
        values = sorted(set(intended.round(4)))
        return ("the planned stimulus duration was " +
                ", ".join(f"{1000 * v:.0f} ms" for v in values[:4]) +
                (" (and others)" if len(values) > 4 else "") + " (not measured)")
    planned = sorted({float(v) for r in records for v in _find(r, "duration")})
    if planned:
        return "the planned stimulus duration was " + ", ".join(f"{1000 * v:.0f} ms"
                                                                 for v in planned)
    return None


def methods_paragraph(obs: pd.DataFrame, records: list[dict], cfg: ReportConfig,
                      manifest_name: str, excluded: dict | None = None) -> str:
    humans = obs[obs["agent_kind"] == "human"]
    models = obs[obs["agent_kind"] == "model"]
    parts = []
    for group, label in ((HUMANS, "participants"), (SIMULATED_HUMANS, "SIMULATED observers")):
        people = humans[humans["group"] == group]
        if len(people):
            per = people.groupby("agent").size()
            parts.append(f"{people['agent'].nunique()} {label} answered {len(people)} trials "
                         f"({per.median():.0f} per observer, median)")
    conditions = [c for c in ("original", "body", "background", "conflict")
                  if c in set(obs["condition"])]
    k = sorted(set(obs["n_choices"]))
    text = ["Methods (generated from the analysed data). "]
    if parts:
        text.append("; ".join(parts) + ". ")
    text.append(f"Trials came from the manifest {manifest_name}: {obs['item_id'].nunique()} items "
                f"of {obs['action'].nunique()} actions in the conditions {', '.join(conditions)}; "
                f"each trial offered {' or '.join(map(str, k))} choices (chance "
                f"{', '.join(f'{1 / x:.3f}' for x in k)}). ")
    excluded = excluded or {}
    dropped = excluded.get("anticipations", {})
    if dropped:
        gone = excluded.get("agents_without_trials", [])
        text.append(f"{sum(dropped.values())} answers flagged as anticipations (faster than "
                    f"the lab's minimum RT) were left out, from {len(dropped)} participant(s)" +
                    (f"; nothing was left of {', '.join(gone)}, who is not in the analysis"
                     if gone else "") + ". ")
    duration = stimulus_duration(obs, records)
    if duration:
        text.append(duration[0].upper() + duration[1:] + ". ")
    if len(models):
        desc = []
        for agent, m in models.groupby("agent", sort=True):
            readout = ", ".join(sorted(set(m["readout"]) - {""}))
            aggregation = ", ".join(sorted(set(m["aggregation"]) - {""}))
            desc.append(f"{agent} ({len(m)} trials; readout {readout or 'n/a'}, frames "
                        f"{aggregation or 'n/a'})")
        text.append(f"{models['agent'].nunique()} models answered the same trials, scored on "
                    f"the offered choices: {'; '.join(desc)}. ")
    seeds = sorted({str(r["seed"]) for r in records if r.get("seed") is not None})
    if seeds:
        text.append(f"Seeds in the run records found beside the data: {', '.join(seeds)}. ")
    text.append(f"Intervals are {100 * cfg.ci:.0f}% percentile intervals from {cfg.bootstrap} "
                f"hierarchical bootstrap resamples (observers, then items; seed {cfg.seed}). "
                "Body vs background was tested within each group by a paired t-test over "
                "participants (people) or McNemar's test over items (models; exact below 25 "
                "discordant pairs; Newcombe's interval for the paired difference), "
                "Holm-corrected across groups. Accuracy was modelled by a mixed-effects "
                "logistic regression correct ~ condition * group with participant-specific condition "
                "slopes (correlated) and item intercepts (maximum likelihood, Laplace approximation, Wald "
                "intervals), cross-checked by a GEE with exchangeable correlation. Error "
                "consistency is Cohen's kappa beyond the agreement expected from two observers' "
                "accuracies (Geirhos et al., 2020), computed within each condition and "
                "averaged over conditions. "
                f"Human noise ceilings come from {cfg.split_halves} random split halves of the "
                "participants, Spearman-Brown corrected.")
    if len(humans) and humans["simulated"].all():
        text.append(" NOTE: all human data in this report are SIMULATED.")
    return "".join(text)
