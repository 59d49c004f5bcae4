"""The predictions contract (`predictions/*.csv`): a model's answers in the responses format.

Same columns as human responses (agent_kind=model) so a model is one more observer, plus
`response_open` (its choice among all actions), how a two-stream model was read out, how clip
frames were aggregated, and one probability column `p_<action>` per action."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd
from bodyscene.human_study.responses import RESPONSES_SCHEMA, read_responses

from bodyscene.errors import BadInput, where
from bodyscene.tables import Schema, is_float, non_empty

PROB_PREFIX = "p_"

PREDICTIONS_SCHEMA = Schema(
    name="predictions",
    required=RESPONSES_SCHEMA.required + ("response_open", "readout", "aggregation"),
    optional=RESPONSES_SCHEMA.optional + ("checkpoint", "model"),
    checks={**RESPONSES_SCHEMA.checks, "response_open": non_empty},
    extra_prefixes=(PROB_PREFIX,),
)
COLUMNS = PREDICTIONS_SCHEMA.columns

if TYPE_CHECKING:
    from bodyscene.stimuli.manifest import Manifest


def prob_column(action: str) -> str:
    return PROB_PREFIX + action


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions file; probability columns become floats in [0, 1]."""
    df = read_responses(path, PREDICTIONS_SCHEMA)
    if (df["agent_kind"] != "model").any():
        i = int((df["agent_kind"] != "model").to_numpy().nonzero()[0][0])
        raise BadInput(f"{where(path, i + 2, 'agent_kind')}: predictions are written by models, "
                       f"expected 'model'")
    check = is_float(0.0, 1.0)
    for col in [c for c in df.columns if c.startswith(PROB_PREFIX)]:
        for i, v in enumerate(df[col].tolist()):
            problem = check(v)
            if problem:
                raise BadInput(f"{where(path, i + 2, col)}: {problem}, got {v!r}")
        df[col] = df[col].astype(float)
    return df


# ------------------------------------------------------------------------- the one row builder

def prediction_row(trial, p: Sequence[float], actions: Sequence[str], *, agent: str,
                   order: int, stamp: str, manifest_sha256: str, readout: str = "softmax",
                   aggregation: str = "mean", checkpoint: str = "", model: str = "") -> dict:
    """One predictions row for one manifest trial (any row object with trial_id, sha256,
    action and choices) from the model's probabilities `p` over `actions` (sorted). `response`
    is the most probable offered choice (the first listed wins a tie: the question people
    answered), `response_open` the most probable of all actions."""
    from bodyscene.stimuli.manifest import split_choices

    index = {a: i for i, a in enumerate(actions)}
    offered = split_choices(trial.choices)
    response = max(offered, key=lambda a: p[index[a]])
    return {"agent": agent, "agent_kind": "model", "session": 1, "trial_id": trial.trial_id,
            "sha256": trial.sha256, "response": response, "correct": response == trial.action,
            "rt_s": "", "order": order, "block": 0, "choice_order": trial.choices,
            "timestamp": stamp, "simulated": False, "phase": "main",
            "manifest_sha256": manifest_sha256,
            "response_open": actions[max(range(len(actions)), key=lambda i: p[i])],
            "readout": readout, "aggregation": aggregation, "checkpoint": checkpoint,
            "model": model, **{prob_column(a): float(p[i]) for i, a in enumerate(actions)}}


def columns_for(actions: Sequence[str]) -> list[str]:
    """A predictions file's header for a manifest of these actions."""
    return list(COLUMNS) + [prob_column(a) for a in actions]


# ------------------------------------------------------------------- strict validation

SUM_TOLERANCE = 1e-4


def validate_predictions(path: str | Path, trials: "str | Path | Manifest", split: str = "test",
                         allow_missing: bool = False, responses: str | Path | None = None,
                         limit: int = 20) -> list[str]:
    """Every way a predictions file can disagree with its trial manifest, one line each (file,
    row, column, what was expected); empty if the file is valid. At most `limit` lines.
    `trials` is the manifest's path or an already-read Manifest (then nothing is re-hashed)."""
    from bodyscene.stimuli.manifest import Manifest

    path = Path(path)
    try:
        df = read_predictions(path)
    except BadInput as exc:
        return [str(exc)]
    problems = check_predictions(df, Manifest.of(trials), path, split, allow_missing, limit)
    if responses is not None and len(problems) < limit:
        people = _participants(Path(responses))
        clash = sorted(set(df["agent"]) & people)
        if clash:
            problems.append(f"{where(path, 2, 'agent')}: agent {clash[0]!r} is also a "
                            f"participant's name in {responses}; name the model otherwise")
    return problems[:limit]


def check_predictions(df: pd.DataFrame, manifest: "Manifest", path: str | Path,
                      split: str = "test", allow_missing: bool = False,
                      limit: int = 20) -> list[str]:
    """The one check of read predictions against the manifest: probability columns, trials,
    hashes, sums, choices, responses, `correct`, coverage of the split."""
    from bodyscene.stimuli.manifest import split_choices

    trials = manifest.file
    actions = manifest.actions
    problems: list[str] = []
    have = [c for c in df.columns if c.startswith(PROB_PREFIX)]
    for a in actions:
        if prob_column(a) not in have:
            problems.append(f"{where(path, 1, prob_column(a))}: missing; a predictions file "
                            f"has one probability column per action of {trials}")
    for c in have:
        if c[len(PROB_PREFIX):] not in actions:
            problems.append(f"{where(path, 1, c)}: {c[len(PROB_PREFIX):]!r} is not an action "
                            f"of {trials} ({', '.join(actions)})")
    if problems:
        return problems[:limit]
    by_id = manifest.records  # one dict lookup per answer: a pandas row lookup costs 10x more
    probs = df[[prob_column(a) for a in actions]].to_numpy(float)
    index = {a: i for i, a in enumerate(actions)}
    seen: set[tuple] = set()
    for i, row in enumerate(df.itertuples(index=False)):
        r = i + 2
        if len(problems) >= limit:
            break
        if row.trial_id not in by_id:
            problems.append(f"{where(path, r, 'trial_id')}: {row.trial_id!r} is not a trial of "
                            f"{trials}")
            continue
        key = (row.agent, row.session, row.trial_id, row.readout)
        if key in seen:
            problems.append(f"{where(path, r, 'trial_id')}: {row.trial_id!r} answered twice by "
                            f"{row.agent!r}")
        seen.add(key)
        trial = by_id[row.trial_id]
        if row.sha256 != trial["sha256"]:
            problems.append(f"{where(path, r, 'sha256')}: not the stimulus hash in {trials} "
                            f"(the model saw other pixels)")
        total = probs[i].sum()
        if abs(total - 1) > SUM_TOLERANCE:
            problems.append(f"{where(path, r, 'p_*')}: probabilities sum to {total:.6f}, "
                            f"expected 1 within {SUM_TOLERANCE:g}")
        offered = list(trial["choice_list"])
        if sorted(split_choices(row.choice_order)) != sorted(offered):
            problems.append(f"{where(path, r, 'choice_order')}: {row.choice_order!r} is not the "
                            f"trial's choices {trial['choices']!r}")
        if row.response not in offered:
            problems.append(f"{where(path, r, 'response')}: {row.response!r} was not offered "
                            f"on this trial ({', '.join(offered)})")
        else:
            best = max(probs[i][index[a]] for a in offered if a in index)
            if probs[i][index[row.response]] < best - 1e-9:
                problems.append(f"{where(path, r, 'response')}: {row.response!r} is not the "
                                f"most probable of the offered choices by its own p_ columns")
        if row.response_open not in index:
            problems.append(f"{where(path, r, 'response_open')}: {row.response_open!r} is not "
                            f"an action ({', '.join(actions)})")
        if bool(row.correct) != (row.response == trial["action"]):
            problems.append(f"{where(path, r, 'correct')}: {row.correct} but the response is "
                            f"{row.response!r} and the trial's action {trial['action']!r}")
    wanted = manifest.split(split)
    missing = sorted(set(wanted["trial_id"]) - set(df["trial_id"]))
    if missing and not allow_missing and len(problems) < limit:
        problems.append(f"{path}: {len(missing)} {split} trial(s) missing: "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                        f"(coverage must be complete; pass --allow-missing to accept)")
    return problems[:limit]


def _participants(responses: Path) -> set[str]:
    files = sorted(responses.rglob("*.csv")) if responses.is_dir() else [responses]
    names: set[str] = set()
    for f in files:
        df = pd.read_csv(f, dtype=str, usecols=lambda c: c in ("agent", "agent_kind"))
        if "agent" in df:
            names |= set(df.loc[df.get("agent_kind", "human") == "human", "agent"])
    return names


class PredictionsWriter:
    """Write predictions from your own pipeline: `add(trial_id, probabilities)` per trial (a
    {action: p} dict, or a sequence in the manifest's sorted action order), then `close()`,
    which fills the response columns, writes the file atomically and validates it strictly.
    `trials` is the manifest's path or a Manifest; its stimuli are hashed once, when read.

        with predictions_writer("predictions/mynet.csv", "trials.csv") as w:
            for trial_id, p in my_results:
                w.add(trial_id, p)"""

    def __init__(self, path: str | Path, trials: "str | Path | Manifest", split: str = "test",
                 allow_missing: bool = False, model: str = "", aggregation: str = "mean"):
        from bodyscene.stimuli.manifest import Manifest

        self.path = Path(path)
        if self.path.suffix != ".csv":
            raise BadInput(f"{self.path}: a predictions file is a .csv")
        if self.path.exists():
            raise BadInput(f"{self.path}: a predictions file already exists (nothing is "
                           f"overwritten)")
        self.manifest = Manifest.of(trials)
        self.trials = self.manifest.file
        self.actions = self.manifest.actions
        self.split, self.allow_missing = split, allow_missing
        self.model, self.aggregation = model, aggregation
        self.probs: dict[str, list[float]] = {}

    def add(self, trial_id: str, probabilities) -> None:
        if trial_id not in self.manifest.by_id.index:
            raise BadInput(f"trial {trial_id!r} is not in {self.trials}")
        if isinstance(probabilities, dict):
            unknown = sorted(set(probabilities) - set(self.actions))
            if unknown:
                raise BadInput(f"trial {trial_id!r}: {unknown[0]!r} is not an action "
                               f"({', '.join(self.actions)})")
            p = [float(probabilities.get(a, 0.0)) for a in self.actions]
        else:
            p = [float(x) for x in probabilities]
        if len(p) != len(self.actions):
            raise BadInput(f"trial {trial_id!r}: {len(p)} probabilities, expected one per "
                           f"action ({len(self.actions)}: {', '.join(self.actions)})")
        self.probs[trial_id] = p

    def close(self) -> Path:
        import time

        from bodyscene.tables import write_csv_atomic

        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        by_id = self.manifest.by_id
        rows = [prediction_row(by_id.loc[tid], p, self.actions, agent=self.path.stem,
                               order=order, stamp=stamp, manifest_sha256=self.manifest.sha256,
                               aggregation=self.aggregation, model=self.model)
                for order, (tid, p) in enumerate(self.probs.items())]
        tmp = self.path.with_name(f".{self.path.stem}.check.csv")
        write_csv_atomic(tmp, rows, columns_for(self.actions))
        problems = validate_predictions(tmp, self.manifest, self.split, self.allow_missing,
                                        limit=1)
        if problems:
            tmp.unlink()
            raise BadInput(problems[0].replace(str(tmp), str(self.path)))
        tmp.replace(self.path)
        return self.path

    def __enter__(self) -> "PredictionsWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()


predictions_writer = PredictionsWriter
