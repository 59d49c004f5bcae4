"""Generated inputs for the report in every shape a lab has: people alone, models alone, one
participant, real and simulated people together, practice and catch rows, readouts, answers
left out... Each observer answers with a known accuracy; the rows written are returned too, so a
test can compute what the report must show without the report's code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from bodyscene.benchmark.harness.predictions import COLUMNS as PRED_COLUMNS
from bodyscene.human_study.responses import ResponseWriter
from bodyscene.stimuli.manifest import read_manifest
from conftest import write_toy_manifest

from bodyscene.tables import write_csv_atomic

ACTIONS = ("clap", "kick", "wave", "run", "jump", "sit", "swim", "throw", "climb", "bow",
           "dance", "row")


@dataclass
class Shape:
    """What to generate (every field has a small default)."""

    people: int = 3                      # real participants
    simulated: int = 0                   # simulated participants (`simulated=true`)
    models: tuple[str, ...] = ("net",)
    n_actions: int = 3
    k: int | None = None                 # choices per trial (None: all actions)
    test_items: int = 3
    conflict: bool = True
    accuracy: float = 0.7                # people (each +- 0.15 at most, within [0, 1])
    model_accuracy: float | None = None  # None: each model its own, per condition
    practice_catch: bool = False         # practice and catch rows beside the main ones
    readouts: bool = False               # predictions/readouts/<model>-body.csv
    skip_condition: dict[str, str] = field(default_factory=dict)  # agent -> condition left out
    skip_action: str | None = None       # trials of this action answered by nobody
    keep: float = 1.0                    # share of trials each observer answers
    anticipate_all: str | None = None    # this agent's every answer flagged as anticipation
    one_condition_per_item: bool = False  # each item shown in one condition only (to everyone)
    seed: int = 0


@dataclass
class Inputs:
    trials: Path
    responses: Path | None
    predictions: Path | None
    rows: pd.DataFrame          # every main-phase answer written: agent, group, condition, ...


def _answer(row, ok: bool, rng: np.random.Generator) -> str:
    if ok:
        return row.action
    wrong = [c for c in row.choice_list if c != row.action]
    return wrong[int(rng.integers(len(wrong)))]


def write_inputs(root: Path, shape: Shape) -> Inputs:
    """Manifest, responses and predictions of `shape` under `root`."""
    actions = ACTIONS[:shape.n_actions]
    trials = write_toy_manifest(root, actions=actions, k=shape.k, conflict=shape.conflict,
                                items_per_split={"train": 1, "test": shape.test_items},
                                seed=shape.seed)
    manifest = read_manifest(trials, check_files=False)
    test = manifest[manifest["split"] == "test"]
    train = manifest[manifest["split"] == "train"]
    rng = np.random.default_rng(shape.seed)
    written = []
    responses = root / "responses" if shape.people + shape.simulated else None
    predictions = root / "predictions" if shape.models else None
    people = ([(f"p{i:02d}", False) for i in range(shape.people)] +
              [(f"s{i:02d}", True) for i in range(shape.simulated)])

    def answered(agent: str) -> pd.DataFrame:
        keep = test[(test["condition"] != shape.skip_condition.get(agent))
                    & (test["action"] != shape.skip_action)]
        if shape.one_condition_per_item:
            conditions = sorted(set(test["condition"]))
            items = sorted(set(test["item_id"]))
            shown = {i: conditions[n % len(conditions)] for n, i in enumerate(items)}
            keep = keep[keep["condition"] == keep["item_id"].map(shown)]
        if shape.keep < 1.0:
            keep = keep[rng.random(len(keep)) < shape.keep]
        return keep

    if responses is not None:
        responses.mkdir(parents=True)
    for agent, simulated in people:
        acc = float(np.clip(shape.accuracy + rng.uniform(-0.15, 0.15), 0, 1))
        with ResponseWriter(responses / f"{agent}.csv") as w:
            extra = ([(r, "practice") for r in train.head(2).itertuples()] +
                     [(r, "catch") for r in train.tail(2).itertuples()]
                     if shape.practice_catch else [])
            main = [(r, "main") for r in answered(agent).itertuples()]
            for order, (row, phase) in enumerate(extra[:2] + main + extra[2:]):
                ok = bool(rng.random() < acc)
                answer = _answer(row, ok, rng)
                w.write(dict(agent=agent, agent_kind="human", session="1",
                             trial_id=row.trial_id, sha256=row.sha256, response=answer,
                             correct=ok, rt_s=0.6, order=order, block=0,
                             choice_order=row.choices, timestamp="2026-01-01T00:00:00",
                             simulated=simulated, phase=phase,
                             anticipation=agent == shape.anticipate_all))
                if phase == "main":
                    written.append(dict(agent=agent, simulated=simulated, kind="human",
                                        trial_id=row.trial_id, item_id=row.item_id,
                                        condition=row.condition, correct=ok))
    if predictions is not None:
        predictions.mkdir(parents=True)
    for m, name in enumerate(shape.models):
        acc = {c: a if shape.model_accuracy is None else shape.model_accuracy
               for c, a in zip(("original", "body", "background", "conflict"),
                               rng.uniform(0.3, 0.95, 4))}
        rows, body = [], []
        for order, row in enumerate(answered(name).itertuples()):
            ok = bool(rng.random() < acc[row.condition])
            rows.append(_prediction(name, row, ok, order, rng, actions, "sum"))
            written.append(dict(agent=name, simulated=False, kind="model",
                                trial_id=row.trial_id, item_id=row.item_id,
                                condition=row.condition, correct=ok))
            if shape.readouts:
                body.append(_prediction(name, row, bool(rng.random() < 0.5), order, rng,
                                        actions, "body"))
        columns = list(PRED_COLUMNS) + [f"p_{a}" for a in actions]
        write_csv_atomic(predictions / f"{name}.csv", rows, columns)
        if shape.readouts:
            (predictions / "readouts").mkdir(exist_ok=True)
            write_csv_atomic(predictions / "readouts" / f"{name}-body.csv", body, columns)
    table = pd.DataFrame(written, columns=["agent", "simulated", "kind", "trial_id", "item_id",
                                           "condition", "correct"])
    if shape.anticipate_all:
        table = table[table["agent"] != shape.anticipate_all]
    return Inputs(trials, responses, predictions, table.reset_index(drop=True))


def _prediction(name: str, row, ok: bool, order: int, rng: np.random.Generator, actions,
                readout: str) -> dict:
    answer = _answer(row, ok, rng)
    rest = 0.4 / (len(actions) - 1)
    return dict(agent=name, agent_kind="model", session="eval", trial_id=row.trial_id,
                sha256=row.sha256, response=answer, correct=ok, rt_s="", order=order, block=0,
                choice_order=row.choices, timestamp="t", simulated=False,
                response_open=answer, readout=readout, aggregation="mean",
                **{f"p_{a}": 0.6 if a == answer else rest for a in actions})


def group_of(row) -> str:
    if row["kind"] == "model":
        return row["agent"]
    return "humans (simulated)" if row["simulated"] else "humans"


def expected_accuracy(rows: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(group, condition) -> pooled accuracy, from the rows as written."""
    groups = rows.apply(group_of, axis=1) if len(rows) else pd.Series(dtype=str)
    return {k: float(v) for k, v in rows.assign(group=groups)
            .groupby(["group", "condition"])["correct"].mean().items()}


def expected_people_kappa(rows: pd.DataFrame, group: str, min_shared: int = 10) -> float:
    """Mean over pairs of people of their kappa averaged over conditions (Geirhos et al.
    2020), written out plainly: the number the report must show as the ceiling."""
    people = rows[rows.apply(group_of, axis=1) == group] if len(rows) else rows
    agents = sorted(set(people["agent"]))
    per_pair = []
    for i, a in enumerate(agents):
        for b in agents[i + 1:]:
            kappas = []
            for _, cell in people.groupby("condition"):
                x = cell[cell["agent"] == a].set_index("trial_id")["correct"]
                y = cell[cell["agent"] == b].set_index("trial_id")["correct"]
                shared = x.index.intersection(y.index)
                if len(shared) < min_shared:
                    continue
                x, y = x[shared].to_numpy(bool), y[shared].to_numpy(bool)
                c_obs = float((x == y).mean())
                c_exp = x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean())
                if c_exp < 1:
                    kappas.append((c_obs - c_exp) / (1 - c_exp))
            if kappas:
                per_pair.append(float(np.mean(kappas)))
    return float(np.mean(per_pair)) if per_pair else float("nan")
