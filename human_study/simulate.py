"""Simulated observers: responses files from a known accuracy pattern.

They pilot the whole pipeline (plan -> responses -> statistics -> report) before a single person
is tested, and they drive the power analysis. Every row they write says `simulated=true`, so no
statistic or report can mistake them for people.

The observer model is a logistic mixed model: for participant p, item i and condition c,
logit P(correct) = logit(accuracy[c]) + u_p + v_i with u_p ~ N(0, participant_sd) and
v_i ~ N(0, item_sd) on the logit scale. `accuracy[c]` is therefore the accuracy of a typical
observer on a typical item (the population average is slightly closer to 0.5). On conflict
trials "correct" means choosing the body's action, as in the manifest. Response times are
lognormal with mean `rt_mean_s`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bodyscene.errors import BadInput


@dataclass
class ObserverModel:
    """A typical observer's P(correct) per condition and the spread around it."""

    accuracy: dict[str, float]
    participant_sd: float = 0.3
    item_sd: float = 0.3
    rt_mean_s: float = 1.0
    rt_sd_log: float = 0.35

    def __post_init__(self) -> None:
        for cond, p in self.accuracy.items():
            if not 0.0 < float(p) < 1.0:
                raise BadInput(f"accuracy for {cond!r} must lie strictly between 0 and 1, "
                               f"got {p}")
        for name in ("participant_sd", "item_sd", "rt_sd_log"):
            if getattr(self, name) < 0:
                raise BadInput(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.rt_mean_s <= 0:
            raise BadInput(f"rt_mean_s must be > 0, got {self.rt_mean_s}")


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def draw_correct(model: ObserverModel, conditions: np.ndarray, participants: np.ndarray,
                 items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One correct/incorrect draw per trial (arrays of equal length; participants and items may
    be any hashable labels). Fresh random effects are drawn for this call, so one call is one
    simulated study. Vectorised: a power analysis calls it thousands of times."""
    conditions = np.asarray(conditions)
    participants = np.asarray(participants)
    items = np.asarray(items)
    if not (len(conditions) == len(participants) == len(items)):
        raise ValueError("conditions, participants and items must have the same length")
    cond_names, cond_idx = np.unique(conditions, return_inverse=True)
    missing = [str(c) for c in cond_names if c not in model.accuracy]
    if missing:
        raise BadInput(f"the observer model has no accuracy for condition(s) "
                       f"{', '.join(missing)} (give e.g. {missing[0]}=0.8)")
    base = _logit(np.array([float(model.accuracy[c]) for c in cond_names]))
    _, part_idx = np.unique(participants, return_inverse=True)
    _, item_idx = np.unique(items, return_inverse=True)
    u = rng.normal(0.0, model.participant_sd, part_idx.max(initial=-1) + 1)
    v = rng.normal(0.0, model.item_sd, item_idx.max(initial=-1) + 1)
    eta = base[cond_idx] + u[part_idx] + v[item_idx]
    p = 1.0 / (1.0 + np.exp(-eta))
    return rng.random(len(p)) < p


def draw_rt(model: ObserverModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """Lognormal response times whose mean is `rt_mean_s`."""
    s = model.rt_sd_log
    return model.rt_mean_s * np.exp(rng.normal(-s * s / 2.0, s, n))


def simulate_participants(plan_dir: str | Path, model: ObserverModel, out_dir: str | Path,
                          seed: int, participants: Sequence[str] | None = None) -> list[Path]:
    """Write one responses CSV per planned participant (or the named ones), answering the
    participant's planned trials in order, through the experiment's own ResponseWriter.

    Wrong answers are drawn uniformly among the other offered choices; the on-screen choice
    order is shuffled per trial as the experiment does. Catch trials use accuracy['catch'] when
    given, else their condition's. Existing files are refused, never overwritten."""
    from .plan import read_plan
    from .responses import ResponseWriter
    from .session import (
        response_columns,
        response_row,
        responses_path,
        shuffled_choices,
        software_string,
    )

    plan = read_plan(plan_dir)
    names = list(participants) if participants is not None else list(plan.participants)
    unknown = [p for p in names if p not in plan.participants]
    if unknown:
        raise BadInput(f"{plan.dir / 'plan.json'}: no participant {unknown[0]!r} in the plan "
                       f"(it has {', '.join(plan.participants)})")
    out_dir = Path(out_dir)
    targets = [responses_path(out_dir, p, 1) for p in names]
    for path in targets:
        if path.exists():
            raise BadInput(f"{path}: a responses file already exists (nothing is overwritten); "
                           f"choose another --out")
    rng = np.random.default_rng(seed)
    # One study: the random effects are shared by every participant's draw.
    lists = [plan.trials(p) for p in names]
    conds = np.concatenate([_sim_condition(t, model) for t in lists])
    parts = np.concatenate([np.full(len(t), i) for i, t in enumerate(lists)])
    items = np.concatenate([t["item_id"].to_numpy(str) for t in lists])
    correct_all = draw_correct(model, conds, parts, items, rng)
    rts_all = draw_rt(model, len(conds), rng)
    software = software_string()
    written = []
    start = 0
    for name, trials, path in zip(names, lists, targets):
        n = len(trials)
        correct, rts = correct_all[start:start + n], rts_all[start:start + n]
        start += n
        with ResponseWriter(path, columns=response_columns(), mode="new") as writer:
            for k, row in enumerate(trials.itertuples(index=False)):
                order = shuffled_choices(row.choices, rng)
                response = row.action
                if not correct[k]:
                    others = [c for c in order if c != row.action]
                    if others:
                        response = others[rng.integers(len(others))]
                writer.write(response_row(row, name, 1, response, float(rts[k]), order,
                                          row.sha256, plan.sha256, plan.manifest_sha256,
                                          software, simulated=True))
        written.append(path)
    return written


def _sim_condition(trials, model: ObserverModel) -> np.ndarray:
    conds = trials["condition"].to_numpy(str).astype(object)
    if "catch" in model.accuracy:
        conds[trials["phase"].to_numpy(str) == "catch"] = "catch"
    return conds


def parse_accuracy(text: str, flag: str = "--accuracy") -> dict[str, float]:
    """'original=0.8,body=0.85' -> {condition: P(correct)}; the one parser for every command
    that takes planned accuracies."""
    from bodyscene import CONDITIONS

    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            if not sep or not name:
                raise ValueError
            p = float(value)
        except ValueError:
            raise BadInput(f"{flag}: expected condition=probability pairs such as "
                           f"original=0.8,body=0.85, got {part!r}") from None
        if name not in CONDITIONS:
            raise BadInput(f"{flag}: unknown condition {name!r} (expected one of "
                           f"{', '.join(CONDITIONS)})")
        if not 0.0 <= p <= 1.0:
            raise BadInput(f"{flag}: a probability is between 0 and 1, got {part!r}")
        out[name] = p
    if not out:
        raise BadInput(f"{flag}: expected condition=probability pairs, got {text!r}")
    return out
