"""`make_report`: inputs checked, statistics computed, tables, figures, HTML and summary.json
written into a new folder (an existing non-empty folder is refused: a report is never
overwritten)."""

from __future__ import annotations

import html
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import HUMANS, SIMULATED_HUMANS, group_order
from bodyscene.benchmark.analysis.observations import load_observations
from bodyscene.benchmark.analysis.stats.accuracy import conditions_in
from bodyscene.benchmark.analysis.stats.leaderboard import reference_group
from bodyscene.benchmark.harness.evaluate import with_weights
from bodyscene.stimuli.manifest import manifest_sha256
from tqdm import tqdm

from bodyscene.provenance import write_run_record
from bodyscene.tables import fresh_output_dir, write_frame_atomic, write_json_atomic

from . import figures as figs
from .analyse import analyse
from .config import ReportConfig
from .html import figure_html, leaderboard_html, page, table_html, thin
from .methods import methods_paragraph, run_records

LEADERBOARD_TEXT = (
    "Rank 1 = most human-like: the mean of a model's ranks on accuracy difference to the "
    "people, observed consistency, error consistency (kappa within each condition, averaged) "
    "and the gap between its body - background difference and the people's. The first row is "
    "the people: their consistencies are people-people values, the ceiling. Profile distance "
    "/ noise ceiling: 1 = as close to the people as their own noise allows.")


def _all_nan(table: pd.DataFrame, column: str) -> bool:
    return table.empty or column not in table.columns or table[column].isna().all()


def _sections(tables: dict[str, pd.DataFrame]) -> list[tuple]:
    """(heading, explanation, figure names, table names, one line when the data are too thin
    or None). Everything after the leaderboard, in the order a reader asks for it."""
    reg = tables.get("regression")
    flagged = (sorted(set(reg.loc[reg["separation"].fillna(False).astype(bool), "term"]))
               if reg is not None and "separation" in reg.columns else [])
    return [
        ("Accuracy by condition",
         "Share of trials answered correctly among the offered choices, per group and "
         "condition; bars are 95% hierarchical bootstrap intervals (observers, then items, "
         "resampled); the dashed line is chance (1/k). n_boot_dropped counts resamples that drew "
         "no trial of the cell (left out of the interval).",
         ["accuracy_by_condition"], ["accuracy"], None),
        ("Error consistency",
         "Cohen's kappa on trial-by-trial correctness beyond the agreement expected from two "
         "observers' accuracies (Geirhos et al., 2020), computed within each condition and "
         "averaged over conditions (pooling conditions inflates it); kappa_pooled is kept as a "
         "secondary column. The people-people mean is the ceiling a model is judged against.",
         ["error_consistency"], ["error_consistency", "error_consistency_conditions",
                                 "error_consistency_pairs"],
         "No two observers share enough trials in any condition: error consistency is "
         "undefined for these data." if _all_nan(tables["error_consistency_pairs"], "kappa")
         else None),
        ("Body vs background",
         "Planned contrast within each group: people paired over participants (paired t), "
         "models paired over items (McNemar, Newcombe interval); p-values Holm-corrected across "
         "groups.", ["contrasts"], ["contrasts_body_background"],
         "No group has trials in both body and background conditions."
         if _all_nan(tables["contrasts_body_background"], "estimate") else None),
        ("Human-likeness of accuracy profiles",
         "Distance (RMS, accuracy units) between a model's accuracy profile and the people's, "
         "divided by the people's own noise (split halves, Spearman-Brown); 1 means as close as "
         "the human data allow. r_normalised = r / sqrt(split-half reliability): 1 for a model "
         "whose profile is the people's true one.",
         ["human_likeness"], ["human_likeness", "human_ceiling"],
         "Fewer than two participants (or no model): no noise ceiling, so no human-likeness."
         if _all_nan(tables["human_likeness"], "distance_ratio") else None),
        ("Conflict trials",
         "Share of answers on conflict trials naming the body's action and the background's "
         "action, with 95% hierarchical bootstrap intervals.", ["conflict"], ["conflict"],
         "No conflict trials in these data." if tables["conflict"].empty else None),
        ("Model vs model", "McNemar on the trials both models answered, overall and per "
         "condition, Newcombe intervals, Holm-corrected across all pairs and conditions.", [],
         ["contrasts_model_model"],
         "Fewer than two models: nothing to compare." if tables["contrasts_model_model"].empty
         else None),
        ("Mixed-effects regression",
         "Logistic regression correct ~ condition * group (treatment coding against original "
         "and the first group), random intercepts for participant and item, maximum likelihood "
         "(Laplace) with Wald intervals; GEE as cross-check. Estimates in log-odds. " +
         (f"{len(flagged)} term(s) involve a cell at 0% or 100% correct (separation: no finite "
          f"estimate); they have no interval, are marked in the table and left out of the "
          f"figure: {', '.join(flagged)}." if flagged else "No cell is at 0% or 100%."),
         ["regression_effects"], ["regression"],
         None if reg is not None else "Not fitted (--no-regression)."),
    ]


def _clean(value):
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def _records(df: pd.DataFrame) -> list[dict]:
    return [_clean(r) for r in df.to_dict("records")]


def summary(obs: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> dict:
    """The headline numbers for machines (summary.json)."""
    groups: dict[str, dict] = {}
    for r in tables["accuracy"].itertuples():
        groups.setdefault(r.group, {})[r.condition] = {
            "accuracy": r.accuracy, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "chance": r.chance, "accuracy_open": r.accuracy_open, "n_trials": r.n_trials,
            "n_agents": r.n_agents, "simulated": r.simulated}
    conflict: dict[str, dict] = {}
    for r in tables["conflict"].itertuples():
        conflict.setdefault(r.group, {"simulated": r.simulated})[r.cue] = {
            "share": r.share, "ci_low": r.ci_low, "ci_high": r.ci_high, "chance": r.chance}
    pairs = tables["error_consistency_pairs"]
    by_type = (pairs.dropna(subset=["kappa"]).groupby("pair_type")["kappa"]
               .agg(["mean", "median", "count"]).reset_index())
    cons = ["family", "group", "comparison", "test", "n", "estimate", "ci_low", "ci_high",
            "statistic", "p", "p_holm", "simulated"]
    mm = tables["contrasts_model_model"]
    mm = mm[mm["condition"] == "all"] if len(mm) else mm
    return _clean({
        "includes_simulated": bool(obs["simulated"].any()),
        "n_trials": int(len(obs)),
        "groups": groups,
        "contrasts": _records(tables["contrasts_body_background"][cons]) +
                     (_records(mm[[c for c in cons if c in mm.columns]]) if len(mm) else []),
        "error_consistency": {"by_pair_type": _records(by_type),
                              "models": _records(tables["error_consistency"])},
        "human_likeness": _records(tables["human_likeness"]),
        "conflict": conflict,
        "leaderboard": _records(tables["leaderboard"]),
        "leaderboard_ranking": LEADERBOARD_TEXT,
    })


def _reference_first(summary: pd.DataFrame) -> pd.DataFrame:
    """Consistency summary rows of the group models are ranked against first."""
    if summary.empty:
        return summary
    ref = reference_group(summary["human_group"])
    return pd.concat([summary[summary["human_group"] == ref],
                      summary[summary["human_group"] != ref]], ignore_index=True)


def _figures(obs: pd.DataFrame, tables: dict[str, pd.DataFrame], out: Path,
             dpi: int, progress: bool = True) -> dict[str, Path]:
    board = tables["leaderboard"]
    groups = group_order(obs)
    if len(board):  # people first, then models in leaderboard order, not alphabetically
        ranked = [g for g in board["observer"] if g in groups]
        groups = [g for g in groups if g not in ranked and g in (HUMANS, SIMULATED_HUMANS)] + \
            ranked + [g for g in groups if g not in ranked and g not in (HUMANS,
                                                                         SIMULATED_HUMANS)]
    conditions = conditions_in(obs)
    jobs = {}
    if len(board) > 1:
        jobs["patterns"] = lambda: figs.patterns(tables["accuracy"], board, conditions)
    jobs |= {
        "accuracy_by_condition": lambda: figs.accuracy_by_condition(tables["accuracy"], groups,
                                                                    conditions),
        "contrasts": lambda: figs.contrasts(tables["contrasts_body_background"]),
        "error_consistency": lambda: figs.consistency(
            tables["error_consistency_pairs"], _reference_first(tables["error_consistency"]),
            [g for g in groups if g not in (HUMANS, SIMULATED_HUMANS)]),
    }
    if "regression" in tables and tables["regression"]["estimate"].notna().any():
        jobs["regression_effects"] = lambda: figs.regression_effects(tables["regression"])
    if len(tables["human_likeness"]):
        jobs["human_likeness"] = lambda: figs.likeness(tables["human_likeness"])
    if len(tables["conflict"]):
        jobs["conflict"] = lambda: figs.conflict(tables["conflict"], groups)
    actions = sorted(set(obs["action"]))
    jobs["confusions"] = lambda: figs.confusions(tables["confusion"], groups, conditions,
                                                 actions)
    made = {}
    for name, job in tqdm(jobs.items(), desc="figures", unit="figure", leave=False,
                          disable=not progress):
        figs.save(job(), out, name, dpi)
        made[name] = out / f"{name}.png"
    return made


def make_report(trials: str | Path, responses_dir: str | Path | None,
                predictions_dir: str | Path | None, out_dir: str | Path,
                cfg: ReportConfig | None = None) -> dict:
    """Write the whole report into `out_dir` (new or empty) and return the summary."""
    cfg = cfg or ReportConfig()
    out = Path(out_dir)
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    obs = load_observations(trials, responses_dir, predictions_dir,
                            include_readouts=cfg.include_readouts,
                            exclude_anticipations=cfg.exclude_anticipations)
    lap("load")
    out = fresh_output_dir(out, "report folder")
    tables = analyse(obs, cfg)
    tables["leaderboard"] = with_weights(tables["leaderboard"], run_records(
        responses_dir and Path(responses_dir), predictions_dir and Path(predictions_dir)))
    lap("statistics")
    for name, table in {"observations": obs, **tables}.items():
        write_frame_atomic(out / f"{name}.csv", table)
    lap("write_tables")
    made = _figures(obs, tables, out, cfg.dpi, cfg.progress)
    lap("figures")
    records = run_records(responses_dir and Path(responses_dir),
                          predictions_dir and Path(predictions_dir))
    methods = methods_paragraph(obs, records, cfg, Path(trials).name)
    head = summary(obs, tables)
    head["methods"] = methods
    board = tables["leaderboard"]
    if len(board) > 1:
        lead = ["<h2>Leaderboard: how human-like is each model?</h2>",
                f"<p class='lead'>{html.escape(LEADERBOARD_TEXT)} All numbers in "
                "<a href='leaderboard.csv'>leaderboard.csv</a>.</p>",
                leaderboard_html(board, conditions_in(obs))]
        if "patterns" in made:
            lead.append(figure_html(made["patterns"], "Accuracy by condition: each model "
                                    "beside the people, in leaderboard order"))
    else:
        lead = ["<h2>Leaderboard</h2>", thin("No leaderboard: it needs people and at least one "
                                             "model in the data.")]
    sections = []
    for heading, text, fig_names, table_names, too_thin in _sections(tables):
        if too_thin:
            sections.append((heading, text, [thin(too_thin)]))
            continue
        parts = [figure_html(made[f], heading) for f in fig_names if f in made]
        parts += [table_html(tables[t], f"{t}.csv") for t in table_names if t in tables]
        sections.append((heading, text, parts))
    sections.append(("Confusions", "Per group and condition: rows are the true action (the "
                     "body's on conflict trials), columns the response, rows sum to 1.",
                     [figure_html(made["confusions"], "Confusions"),
                      "<p>counts: <a href='confusion.csv'>confusion.csv</a></p>"]))
    title = "bodyscene report" + (" (includes SIMULATED observers)"
                                  if head["includes_simulated"] else "")
    (out / "report.html").write_text(page(title, head["includes_simulated"], lead, methods,
                                          sections), encoding="utf-8")
    write_json_atomic(out / "summary.json", head)
    lap("html")
    write_run_record(out, cfg, cfg.seed, name="report_run.json", seconds=seconds,
                     trials=str(trials), manifest_sha256=manifest_sha256(trials),
                     responses=str(responses_dir), predictions=str(predictions_dir),
                     n_trials=len(obs), agents=sorted(set(obs["agent"])))
    return head
