"""What a session needs besides the screen: where its data file lives, which trials remain
after a crash, the on-screen order of the choices, and the row written for each trial.

Kept free of PsychoPy so the runner's bookkeeping is tested without a window and shared with
the simulated observers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bodyscene.errors import BadInput
from bodyscene.provenance import versions
from bodyscene.seeds import derive_rng
from bodyscene.stimuli.manifest import split_choices

from .responses import RESPONSES_SCHEMA, human_row, read_responses

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
    done = read_responses(path)
    complete = len(done) and set(trials["order"]) <= set(done["order"])
    if not resume and complete:
        raise BadInput(f"{path}: this participant's session is complete; give a new "
                       f"participant id, or --session {session_of(path) + 1} for another session "
                       f"(nothing is overwritten)")
    if not resume:
        raise BadInput(f"{path}: data for this participant and session already exist; rerun "
                       f"with --resume to continue it (nothing is overwritten)")
    if len(done) and set(done["plan_sha256"]) != {plan_sha256}:
        raise BadInput(f"{path}: was recorded with another plan (plan_sha256 differs); it "
                       f"cannot be resumed with this one")
    last = int(done["order"].max()) if len(done) else -1
    return trials[trials["order"] > last]


def session_of(path: Path) -> int:
    """The session number in a `responses_path` name."""
    return int(path.name.rsplit("_s", 1)[1].split("_", 1)[0])


def shuffled_choices(choices: str, rng: np.random.Generator) -> list[str]:
    """The trial's choices in a fresh random on-screen order."""
    order = split_choices(choices)
    rng.shuffle(order)
    return order


def choice_order(choices: str, seed_text: str, order: int, mode: str = "trial") -> list[str]:
    """The on-screen order of a trial's choices: shuffled afresh per trial (`trial`), or in
    one fixed order per participant (`participant`: actions ranked by a hash of the participant
    seed, so every trial lists its actions in the same relative order)."""
    if mode == "participant":
        import hashlib

        rank = lambda a: hashlib.sha256(f"{seed_text}:{a}".encode()).hexdigest()  # noqa: E731
        return sorted(split_choices(choices), key=rank)
    return shuffled_choices(choices, trial_rng(seed_text, order))


def trial_rng(seed_text: str, order: int) -> np.random.Generator:
    """A generator for one trial's choice order, reproducible from the plan hash, participant
    (both in `seed_text`) and trial position, so a resumed session shows the same order."""
    return derive_rng(0, "choice-order", seed_text, int(order))


def response_row(trial, participant: str, session: int, response: str, rt_s: float | None,
                 choice_order: list[str], image_sha256: str, plan_sha256: str,
                 manifest_sha256: str, software: str, timing: dict | None = None,
                 simulated: bool = False) -> dict:
    """The responses row for one answered plan trial (timing: stim_onset_s, stim_duration_s,
    dropped_frames, refresh_hz, flags as measured by the runner), built by `human_row`."""
    return human_row(agent=participant, session=session, trial_id=trial.trial_id,
                     action=trial.action, sha256=image_sha256, response=response, rt_s=rt_s,
                     order=trial.order, block=trial.block, choice_order=choice_order,
                     phase=trial.phase, simulated=simulated, plan_sha256=plan_sha256,
                     manifest_sha256=manifest_sha256, software=software,
                     **{"stim_intended_s": float(trial.duration_s), **(timing or {})})
