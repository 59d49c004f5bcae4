"""What a session needs besides the screen: where its data file lives, which trials remain
after a crash, the on-screen order of the choices, and the row written for each trial.

Kept free of PsychoPy so the runner's bookkeeping is tested without a window and shared with
the simulated observers."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from bodyscene.errors import BadInput
from bodyscene.provenance import versions

from .responses import RESPONSES_SCHEMA, read_responses

_SOFTWARE = ("bodyscene", "psychopy", "numpy", "python")


def response_columns() -> tuple[str, ...]:
    """Every responses column, core and experiment, in the contract's order."""
    return RESPONSES_SCHEMA.columns


def responses_path(data_dir: str | Path, participant: str, session: int) -> Path:
    """`<participant>_s<session>_bodyscene.csv`: PsychoPy's participant-first naming, without a
    date so that a resumed session finds its own file."""
    if not participant or any(c in participant for c in "/\\:") or participant.startswith("."):
        raise BadInput(f"participant {participant!r} cannot name a data file")
    return Path(data_dir) / f"{participant}_s{int(session)}_bodyscene.csv"


def software_string() -> str:
    found = versions()
    return ";".join(f"{k}={found[k]}" for k in _SOFTWARE if k in found)


def remaining_trials(trials: pd.DataFrame, path: Path, resume: bool,
                     plan_sha256: str) -> pd.DataFrame:
    """The trials still to run. Without `resume` an existing file is refused; with it, the
    file must belong to this plan and the session continues after its last completed trial."""
    exists = path.exists() and path.stat().st_size > 0
    if not exists:
        return trials
    if not resume:
        raise BadInput(f"{path}: data for this participant and session already exist; rerun "
                       f"with --resume to continue it (nothing is overwritten)")
    done = read_responses(path)
    if len(done) and set(done["plan_sha256"]) != {plan_sha256}:
        raise BadInput(f"{path}: was recorded with another plan (plan_sha256 differs); it "
                       f"cannot be resumed with this one")
    last = int(done["order"].max()) if len(done) else -1
    return trials[trials["order"] > last]


def shuffled_choices(choices: str, rng: np.random.Generator) -> list[str]:
    """The trial's choices in a fresh random on-screen order."""
    order = [c for c in choices.split(";") if c]
    rng.shuffle(order)
    return order


def response_row(trial, participant: str, session: int, response: str, rt_s: float | None,
                 choice_order: list[str], image_sha256: str, plan_sha256: str,
                 manifest_sha256: str, software: str, timing: dict | None = None,
                 simulated: bool = False) -> dict:
    """The responses row for one answered trial (timing: stim_onset_s, stim_duration_s,
    dropped_frames, refresh_hz as measured by the runner)."""
    row = {
        "agent": participant, "agent_kind": "human", "session": int(session),
        "trial_id": trial.trial_id, "sha256": image_sha256, "response": response,
        "correct": response == trial.action, "rt_s": rt_s, "order": int(trial.order),
        "block": int(trial.block), "choice_order": ";".join(choice_order),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "simulated": simulated,
        "phase": trial.phase, "plan_sha256": plan_sha256, "manifest_sha256": manifest_sha256,
        "software": software, "stim_intended_s": float(trial.duration_s),
    }
    row.update(timing or {})
    return row
