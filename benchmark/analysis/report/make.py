"""`make_report`: inputs checked, statistics computed, tables, figures, HTML and summary.json
written into a new folder (an existing non-empty folder is refused: a report is never
overwritten). Everything is written into a temporary folder beside the target and renamed into
place only when all of it succeeded, so a failed report leaves nothing behind."""

from __future__ import annotations

import html
import math
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from bodyscene.benchmark.analysis.groups import (
    HUMANS,
    SIMULATED_HUMANS,
    group_order,
    is_human_group,
)
from bodyscene.benchmark.analysis.observations import load_observations
from bodyscene.benchmark.analysis.stats.accuracy import conditions_in
from bodyscene.benchmark.analysis.stats.leaderboard import reference_group
from bodyscene.benchmark.analysis.stats.regression import chosen_model
from bodyscene.benchmark.harness.evaluate import with_weights
from bodyscene.stimuli.manifest import manifest_sha256
from tqdm import tqdm

from bodyscene.provenance import write_run_record
from bodyscene.errors import BadInput
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


def _sections(tables: dict[str, pd.DataFrame], obs: pd.DataFrame) -> list[tuple]:
    """(heading, explanation, figure names, table names, one line when the data are too thin
    or None, remarks shown above the content). Everything after the leaderboard, in the order a
    reader asks for it."""
    reg = tables.get("regression")
    flagged = (sorted(set(reg.loc[reg["separation"].fillna(False).astype(bool), "term"]))
               if reg is not None and "separation" in reg.columns else [])
    shape = _shape(obs)
    people, n_models = shape["people"], shape["models"]
    lonely = [g for g, n in people.items() if n == 1]
    consistency_remarks = (
        (["No people in the data: each model's consistency with the other models only; "
          "there is no people-people ceiling."] if not people else []) +
        [f"One participant in {g}: no people-people consistency and no ceiling (it needs "
         f"two)." for g in lonely])
    enough = [g for g, n in people.items() if n >= 2]
    if not people:
        likeness_thin = "No people in the data: no noise ceiling, so no human-likeness."
    elif not enough:
        likeness_thin = ("Fewer than two participants: no split-half reliability, so no "
                         "noise ceiling and no human-likeness.")
    else:
        likeness_thin = None
    likeness_remarks = ([] if likeness_thin or n_models else
                        ["No models yet: the people's split-half reliability (their noise "
                         "ceiling) alone."])
    return [
        ("Accuracy by condition",
         "Share of trials answered correctly among the offered choices, per group and "
         "condition; bars are 95% hierarchical bootstrap intervals (observers, then items, "
         "resampled); the dashed line is chance (1/k). n_boot_dropped counts resamples that drew "
         "no trial of the cell (left out of the interval).",
         ["accuracy_by_condition"], ["accuracy"], None, []),
        ("Error consistency",
         "Cohen's kappa on trial-by-trial correctness beyond the agreement expected from two "
         "observers' accuracies (Geirhos et al., 2020), computed within each condition and "
         "averaged over conditions (pooling conditions inflates it); kappa_pooled is kept as a "
         "secondary column. The people-people mean is the ceiling a model is judged against.",
         ["error_consistency"], ["error_consistency", "error_consistency_conditions",
                                 "error_consistency_pairs"],
         _no_consistency(people, n_models)
         if _all_nan(tables["error_consistency_pairs"], "kappa") else None,
         consistency_remarks),
        ("Body vs background",
         "Planned contrast within each group: people paired over participants (paired t), "
         "models paired over items (McNemar, Newcombe interval; p_wilcoxon is the people's "
         "signed-rank test only); p-values Holm-corrected across the groups whose test is "
         "defined.", ["contrasts"], ["contrasts_body_background"],
         "No group has trials in both body and background conditions."
         if _all_nan(tables["contrasts_body_background"], "estimate") else None, []),
        ("Human-likeness of accuracy profiles",
         "Distance (RMS, accuracy units) between a model's accuracy profile and the people's, "
         "divided by the people's own noise (split halves, Spearman-Brown); 1 means as close as "
         "the human data allow. r_normalised = r / sqrt(split-half reliability): 1 for a model "
         "whose profile is the people's true one.",
         ["human_likeness"], ["human_likeness", "human_ceiling"], likeness_thin,
         likeness_remarks),
        ("Conflict trials",
         "Share of answers on conflict trials naming the body's action and the background's "
         "action, with 95% hierarchical bootstrap intervals.", ["conflict"], ["conflict"],
         "No conflict trials in these data." if tables["conflict"].empty else None, []),
        ("Model vs model", "McNemar on the trials both models answered, overall and per "
         "condition, Newcombe intervals, Holm-corrected across all defined pairs and "
         "conditions.", [], ["contrasts_model_model"],
         "Fewer than two models: nothing to compare." if tables["contrasts_model_model"].empty
         else None, []),
        ("Mixed-effects regression",
         "Logistic regression correct ~ condition * group (treatment coding against original "
         "and the first group), random effects: " + (chosen_model(reg) if reg is not None
                                                      else "") + "; maximum likelihood "
         "(Laplace) with Wald intervals; GEE as cross-check. Estimates in log-odds. " +
         (f"{len(flagged)} term(s) involve a cell at 0% or 100% correct (separation: no finite "
          f"estimate); they have no interval, are marked in the table and left out of the "
          f"figure: {', '.join(flagged)}." if flagged else
          "No cell is at 0% or 100%." if reg is not None else ""),
         ["regression_effects"], ["regression"],
         None if reg is not None else "Not fitted (--no-regression).", []),
    ]


def _no_consistency(people: dict[str, int], n_models: int) -> str:
    """The one line of an error-consistency section without a single defined kappa."""
    if sum(people.values()) + n_models < 2:
        return "A single observer: no pair to compare, so no error consistency."
    return ("No two observers share enough trials in any condition: error consistency is "
            "undefined for these data.")


def _shape(obs: pd.DataFrame) -> dict:
    """What the data hold: participants per human group, and the number of models."""
    agents = obs.drop_duplicates("agent")
    people = agents[agents["group"].map(is_human_group)].groupby("group").size()
    return {"people": {g: int(n) for g, n in people.items()},
            "models": int((~agents["group"].map(is_human_group)).sum())}


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
    columns = ["family", "group", "comparison", "test", "n", "estimate", "ci_low", "ci_high",
               "statistic", "p", "p_holm", "simulated", "note"]
    mm = tables["contrasts_model_model"]
    mm = mm[mm["condition"] == "all"] if len(mm) else mm
    bb = tables["contrasts_body_background"]
    cons = tables["error_consistency"]
    people = {}
    for r in (cons[cons["observer"] == cons["human_group"]].itertuples() if len(cons) else []):
        people[r.human_group] = {
            "kappa_mean": r.human_human_kappa, "kappa_q25": r.human_human_q25,
            "kappa_q75": r.human_human_q75, "n_pairs": r.n_human_pairs,
            "observed_consistency": r.human_human_c_obs, "note": r.note,
            "simulated": r.simulated}
    return _clean({
        "includes_simulated": bool(obs["simulated"].any()),
        "observers": _shape(obs),
        "n_trials": int(len(obs)),
        "groups": groups,
        "contrasts": (_records(bb[[c for c in columns if c in bb.columns]]) if len(bb) else [])
        + (_records(mm[[c for c in columns if c in mm.columns]]) if len(mm) else []),
        "error_consistency": {"by_pair_type": _records(by_type), "people": people,
                              "observers": _records(cons)},
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
    jobs["accuracy_by_condition"] = lambda: figs.accuracy_by_condition(
        tables["accuracy"], groups, conditions)
    if not _all_nan(tables["contrasts_body_background"], "estimate"):
        jobs["contrasts"] = lambda: figs.contrasts(tables["contrasts_body_background"])
    if not _all_nan(tables["error_consistency_pairs"], "kappa"):
        jobs["error_consistency"] = lambda: figs.consistency(
            tables["error_consistency_pairs"], _reference_first(tables["error_consistency"]),
            [g for g in groups if not is_human_group(g)])
    if "regression" in tables and tables["regression"]["estimate"].notna().any():
        jobs["regression_effects"] = lambda: figs.regression_effects(tables["regression"])
    if not _all_nan(tables["human_likeness"], "distance_ratio"):
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


@contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out`, renamed to `out` only when the block succeeds; on any
    failure it is removed and `out` is left absent or as it was (empty)."""
    existed = out.exists()
    fresh_output_dir(out, "report folder")   # refuses a folder that holds anything
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise BadInput(f"{out.parent}: cannot write the report beside {out.name} "
                       f"({exc.strerror})") from None
    try:
        yield tmp
        shutil.copymode(out, tmp)   # mkdtemp's folder is private (0700); keep out's mode
        out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _leaderboard_html(board: pd.DataFrame, obs: pd.DataFrame, made: dict) -> list[str]:
    """The first screen: the ranking, or in one line why there is none (with the people's row
    when there are people but no models yet)."""
    if len(board) > 1:
        lead = ["<h2>Leaderboard: how human-like is each model?</h2>",
                f"<p class='lead'>{html.escape(LEADERBOARD_TEXT)} All numbers in "
                "<a href='leaderboard.csv'>leaderboard.csv</a>.</p>",
                leaderboard_html(board, conditions_in(obs))]
        if "patterns" in made:
            lead.append(figure_html(made["patterns"], "Accuracy by condition: each model "
                                    "beside the people, in leaderboard order"))
        return lead
    if len(board) == 1:
        return ["<h2>Leaderboard</h2>",
                thin("No models yet: the leaderboard ranks models against the people. Their "
                     "own row (consistencies are people-people values, the ceiling a model "
                     "will be judged against):"),
                leaderboard_html(board, conditions_in(obs)),
                "<p><a href='leaderboard.csv'>leaderboard.csv</a></p>"]
    return ["<h2>Leaderboard</h2>",
            thin("No people in the data: no ceiling and no human-likeness ranking. Each "
                 "model's accuracy is under Accuracy by condition, its consistency with the "
                 "other models under Error consistency.")]


def make_report(trials: str | Path, responses_dir: str | Path | None,
                predictions_dir: str | Path | None, out_dir: str | Path,
                cfg: ReportConfig | None = None) -> dict:
    """Write the whole report into `out_dir` (new or empty) and return the summary. Nothing is
    left in `out_dir` unless every part of the report was written."""
    cfg = cfg or ReportConfig()
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    excluded: dict = {}
    obs = load_observations(trials, responses_dir, predictions_dir,
                            include_readouts=cfg.include_readouts,
                            exclude_anticipations=cfg.exclude_anticipations, left_out=excluded)
    lap("load")
    with _staged(Path(out_dir)) as out:
        head = _write(obs, trials, responses_dir, predictions_dir, out, cfg, lap, excluded)
        write_run_record(out, cfg, cfg.seed, name="report_run.json", seconds=seconds,
                         trials=str(trials), manifest_sha256=manifest_sha256(trials),
                         responses=str(responses_dir), predictions=str(predictions_dir),
                         n_trials=len(obs), agents=sorted(set(obs["agent"])),
                         excluded=excluded)
    return head


def _write(obs: pd.DataFrame, trials: str | Path, responses_dir, predictions_dir, out: Path,
           cfg: ReportConfig, lap, excluded: dict) -> dict:
    """Statistics, tables, figures, the page and summary.json, written into `out`."""
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
    methods = methods_paragraph(obs, records, cfg, Path(trials).name, excluded)
    head = summary(obs, tables)
    head["methods"] = methods
    lead = _leaderboard_html(tables["leaderboard"], obs, made)
    sections = []
    for heading, text, fig_names, table_names, too_thin, remarks in _sections(tables, obs):
        if too_thin:
            sections.append((heading, text, [thin(too_thin)]))
            continue
        parts = [thin(r) for r in remarks]
        parts += [figure_html(made[f], heading) for f in fig_names if f in made]
        parts += [table_html(tables[t], f"{t}.csv") for t in table_names
                  if t in tables and len(tables[t])]
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
    return head
