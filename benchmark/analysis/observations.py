"""One tidy trials table for every observer, human or model, checked against the manifest.

The report compares people and models trial by trial, so before any statistic runs this module
proves that every answer refers to a trial of the manifest, on the very pixels the manifest lists
(sha256), and that no observer answered a trial twice. Simulated observers are kept in their own
group ("humans (simulated)") so they can never be mistaken for people."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from bodyscene.benchmark.harness.predictions import read_predictions, validate_predictions
from bodyscene.human_study.responses import read_responses
from bodyscene.stimuli.manifest import Manifest, read_manifest, split_choices

from bodyscene.errors import BadInput, where
from bodyscene.tables import parse_bool

from .groups import HUMANS, SIMULATED_HUMANS, group_order, is_human_group  # noqa: F401

READOUTS_DIR = "readouts"

COLUMNS = ("agent", "agent_kind", "group", "simulated", "session", "trial_id", "item_id",
           "action", "condition", "split", "choices", "n_choices", "chance", "response",
           "correct", "response_open", "correct_open", "body_action", "background_action",
           "rt_s", "readout", "aggregation", "stim_intended_s", "stim_duration_s", "source_file",
           "source_row")


@dataclass(frozen=True)
class Sources:
    """Which files were read, for the report's methods paragraph and run record."""

    responses: tuple[Path, ...]
    predictions: tuple[Path, ...]


def csv_files(location: str | Path | None, include_readouts: bool = False) -> list[Path]:
    """The CSVs of a folder (not recursive; `readouts/` only when asked) or a single file."""
    if location is None:
        return []
    location = Path(location)
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise BadInput(f"{location}: no such file or folder")
    files = sorted(p for p in location.glob("*.csv") if not p.name.startswith("."))
    if include_readouts and (location / READOUTS_DIR).is_dir():
        files += sorted(p for p in (location / READOUTS_DIR).glob("*.csv")
                        if not p.name.startswith("."))
    return files


def load_observations(trials: str | Path | pd.DataFrame, responses: str | Path | None,
                      predictions: str | Path | None, include_readouts: bool = False,
                      manifest_path: str | Path | None = None,
                      exclude_anticipations: bool = False,
                      left_out: dict | None = None) -> pd.DataFrame:
    """Read every responses and predictions CSV into one table with the columns of COLUMNS.

    `trials` is the manifest's path (or an already-read manifest, then name it in
    `manifest_path` for messages). Predictions pass the strict check of `bodyscene
    predictions validate` (all but coverage). Only main-phase trials are kept (practice and catch trials
    are not data). Raises BadInput naming file and row for an unknown trial, a sha256 other than
    the manifest's, a response not among the offered choices, a `correct` flag that contradicts
    the response, or a trial answered twice by one agent. With `exclude_anticipations`, answers
    the lab runner flagged as faster than its minimum RT (`anticipation` = true) are dropped
    (they stay in the responses files); `left_out`, when given, is filled with how many per
    participant and whom nothing was left of (the report's methods and run record say so).
    (Not DataFrame.attrs: pandas deep-copies those on every operation, 3 s in a report.)"""
    if isinstance(trials, pd.DataFrame):
        manifest = trials
        mpath = Path(manifest_path or "trials.csv")
    else:
        mpath = Path(trials)
        # The stimuli themselves need not be on the analysis machine: the hashes in the answer
        # files are checked against the manifest's, which is what ties answers to pixels.
        manifest = read_manifest(mpath, check_files=False)
    parts = []
    excluded: dict[str, int] = {}   # agent -> anticipations left out
    for path in csv_files(responses):
        df = read_responses(path)
        if exclude_anticipations and "anticipation" in df.columns:
            flagged = df["anticipation"].map(lambda v: v != "" and parse_bool(v)).astype(bool)
            for agent, n in df.loc[flagged, "agent"].value_counts().items():
                excluded[str(agent)] = excluded.get(str(agent), 0) + int(n)
            df = df[~flagged]
        parts.append(_one_file(path, df, manifest, mpath, "human"))
    pred_root = Path(predictions) if predictions is not None else None
    main_agents: set[str] = set()
    # the strict check reads the manifest already read here, without its stimuli
    checked = Manifest(manifest, mpath, "")
    for path in csv_files(predictions, include_readouts):
        # the strict check of `bodyscene predictions validate` (probabilities, offered choices,
        # the response the most probable of them, hashes), short of coverage: the report
        # compares observers on the trials they share
        problems = validate_predictions(path, checked, split="all", allow_missing=True, limit=1)
        if problems:
            raise BadInput(problems[0])
        df = read_predictions(path)
        if pred_root is not None and pred_root.is_dir() and path.parent.name == READOUTS_DIR:
            # An alternative readout is its own observer; evaluation names it <model>.<readout>,
            # a file that reuses its model's name gets the readout appended.
            clash = df["agent"].isin(main_agents)
            df.loc[clash, "agent"] = df.loc[clash, "agent"] + ":" + df.loc[clash, "readout"]
        else:
            main_agents |= set(df["agent"])
        parts.append(_one_file(path, df, manifest, mpath, "model"))
    if not parts:
        raise BadInput(f"no responses or predictions CSV found in {responses} or {predictions}")
    obs = pd.concat(parts, ignore_index=True)
    if obs.empty:
        left_out = (f" ({sum(excluded.values())} anticipations left out)" if excluded else "")
        raise BadInput(f"the responses and predictions hold no main-phase trials "
                       f"({responses}, {predictions}){left_out}")
    dup = obs.duplicated(["agent", "trial_id"], keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        row = obs.iloc[i]
        first = obs[(obs["agent"] == row["agent"]) & (obs["trial_id"] == row["trial_id"])].iloc[0]
        raise BadInput(f"{where(row['source_file'], int(row['source_row']), 'trial_id')}: agent "
                       f"{row['agent']!r} answered trial {row['trial_id']!r} twice (first in "
                       f"{first['source_file']} row {int(first['source_row'])}); each agent may "
                       f"answer a trial once")
    clash = obs.groupby("agent")["agent_kind"].nunique()
    if (clash > 1).any():
        agent = clash[clash > 1].index[0]
        raise BadInput(f"agent {agent!r} appears both as a human and as a model; agent names "
                       f"must be unique across responses and predictions")
    obs = obs[list(COLUMNS)].reset_index(drop=True)
    if left_out is not None:
        left_out.update(anticipations=excluded,
                        agents_without_trials=sorted(set(excluded) - set(obs["agent"])))
    return obs


def _one_file(path: Path, df: pd.DataFrame, manifest: pd.DataFrame, mpath: Path,
              kind: str) -> pd.DataFrame:
    """Check one file's rows against the manifest and return them in the tidy layout."""
    df = df.copy()
    df["source_row"] = np.arange(len(df)) + 2  # as in a spreadsheet, header = row 1
    df["source_file"] = str(path)
    wrong_kind = df["agent_kind"] != kind
    if wrong_kind.any():
        i = int(np.flatnonzero(wrong_kind.to_numpy())[0])
        folder = "responses" if kind == "human" else "predictions"
        raise BadInput(f"{where(path, i + 2, 'agent_kind')}: files in the {folder} folder hold "
                       f"{kind} answers, expected {kind!r}")
    if "phase" in df.columns:
        df = df[df["phase"].isin(["", "main"])]
    m = manifest.set_index("trial_id")
    known = df["trial_id"].isin(m.index)
    if not known.all():
        r = df.loc[~known].iloc[0]
        raise BadInput(f"{where(path, int(r['source_row']), 'trial_id')}: trial "
                       f"{r['trial_id']!r} is not in the manifest {mpath}")
    info = m.loc[df["trial_id"]]
    same = df["sha256"].to_numpy() == info["sha256"].to_numpy()
    if not same.all():
        i = int(np.flatnonzero(~same)[0])
        r = df.iloc[i]
        raise BadInput(f"{where(path, int(r['source_row']), 'sha256')}: trial {r['trial_id']!r} "
                       f"was shown with other pixels than the manifest lists (sha256 "
                       f"{r['sha256'][:12]}... vs {info['sha256'].iloc[i][:12]}...)")
    choices = info["choices"].astype(str).to_numpy()
    actions = info["action"].astype(str).to_numpy()
    responses = df["response"].astype(str).to_numpy()
    for i, (resp, offered) in enumerate(zip(responses, choices)):
        # An empty response is a timeout: kept, scored wrong.
        if resp and resp not in split_choices(offered):
            r = df.iloc[i]
            raise BadInput(f"{where(path, int(r['source_row']), 'response')}: {resp!r} was not "
                           f"among the offered choices {offered!r} of trial {r['trial_id']!r}")
    scored = responses == actions
    flagged = df["correct"].to_numpy(bool)
    if (scored != flagged).any():
        i = int(np.flatnonzero(scored != flagged)[0])
        r = df.iloc[i]
        raise BadInput(f"{where(path, int(r['source_row']), 'correct')}: correct="
                       f"{str(bool(flagged[i])).lower()} contradicts response {responses[i]!r} "
                       f"for a trial whose action is {actions[i]!r}")
    out = pd.DataFrame({
        "agent": df["agent"].astype(str).to_numpy(),
        "agent_kind": kind,
        "simulated": df["simulated"].to_numpy(bool),
        "session": df["session"].astype(str).to_numpy(),
        "trial_id": df["trial_id"].astype(str).to_numpy(),
        "item_id": info["item_id"].astype(str).to_numpy(),
        "action": actions,
        "condition": info["condition"].astype(str).to_numpy(),
        "split": info["split"].astype(str).to_numpy(),
        "choices": choices,
        "response": responses,
        "correct": scored,
        "body_action": _opt(info, "body_action"),
        "background_action": _opt(info, "background_action"),
        "rt_s": df["rt_s"].to_numpy(float),
        "source_file": df["source_file"].to_numpy(),
        "source_row": df["source_row"].to_numpy(),
    })
    out["n_choices"] = np.array([len(split_choices(s)) for s in choices])
    out["chance"] = 1.0 / out["n_choices"]
    if kind == "model":
        out["response_open"] = df["response_open"].astype(str).to_numpy()
        out["correct_open"] = (out["response_open"] == out["action"]).astype(float)
        out["readout"] = df["readout"].astype(str).to_numpy()
        out["aggregation"] = df["aggregation"].astype(str).to_numpy()
    else:
        out["response_open"] = ""
        out["correct_open"] = np.nan
        out["readout"] = ""
        out["aggregation"] = ""
    for col in ("stim_intended_s", "stim_duration_s"):  # planned and measured, if recorded
        values = df.get(col)
        out[col] = (pd.to_numeric(values.replace("", np.nan), errors="coerce").to_numpy(float)
                    if values is not None else np.nan)
    if kind == "model":
        out["group"] = out["agent"]
    else:
        out["group"] = np.where(out["simulated"], SIMULATED_HUMANS, HUMANS)
    return out


def _opt(info: pd.DataFrame, col: str) -> np.ndarray:
    if col not in info.columns:
        return np.full(len(info), "", dtype=object)
    return info[col].astype(str).to_numpy()
