"""The responses contract (`responses/*.csv`): one row per trial an observer answered.

Human and model observers share these columns (README.md), so every statistic treats a model as
one more observer; predictions add columns of their own (see `bodyscene.benchmark.harness.predictions`). Rows are
appended and fsync'ed one trial at a time: killing the process loses at most the trial on screen,
and an existing file is only ever appended to."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import pandas as pd

from bodyscene.errors import BadInput, where
from bodyscene.tables import (
    Schema,
    is_bool,
    is_float,
    parse_bool,
    is_int,
    is_sha256,
    non_empty,
    one_of,
    read_csv,
)

if TYPE_CHECKING:
    from bodyscene.stimuli.manifest import Manifest

AGENT_KINDS = ("human", "model")
PHASES = ("main", "practice", "catch")
# Where a session ran in a web browser (the online experiment): browser name/version and the
# screen and window size in CSS pixels (WxH); empty for the lab runner.
BROWSER_COLUMNS = ("browser", "screen_px", "window_px")

CORE_COLUMNS = ("agent", "agent_kind", "session", "trial_id", "sha256", "response", "correct",
                "rt_s", "order", "block", "choice_order", "timestamp", "simulated")
# browser-raf: the web page timed the stimulus with requestAnimationFrame callbacks
TIMING_MODES = ("vsync", "software", "browser-raf")
# Recorded by the experiment beside the core columns: which part of the session the trial
# belonged to (statistics use `main` only; empty means main), the hashes that tie the file to
# its plan and manifest, software versions, and per-trial frame timing taken from the flips
# that bracketed the stimulus: onset and offset flip times (PsychoPy clock), their difference,
# the refreshes the stimulus was drawn on, refreshes lost (from PsychoPy's recorded frame
# intervals), the refresh rate used and whether flips waited for the display's vertical blank
# or were paced in software (--assume-refresh). A timeout leaves `response` and `rt_s` empty
# (scored wrong); `anticipation` flags an answer faster than the lab's minimum RT;
# `practice_round` counts repetitions of the practice block (1 = first).
EXPERIMENT_COLUMNS = ("phase", "plan_sha256", "manifest_sha256", "software", "stim_intended_s",
                      "stim_onset_s", "stim_duration_s", "dropped_frames", "refresh_hz",
                      "stim_offset_s", "stim_frames", "timing_mode", "timed_out", "anticipation",
                      "practice_round")


def _optional(check):
    """A check that also accepts an empty cell (rows written by other tools)."""
    return lambda v: None if v == "" else check(v)


RESPONSES_SCHEMA = Schema(
    name="responses",
    required=CORE_COLUMNS,
    optional=EXPERIMENT_COLUMNS + BROWSER_COLUMNS,
    checks={
        "agent": non_empty,
        "agent_kind": one_of(AGENT_KINDS),
        "trial_id": non_empty,
        "sha256": is_sha256,
        "correct": is_bool,
        "rt_s": is_float(0.0, None, allow_empty=True),
        "order": is_int(0),
        "block": is_int(0),
        "simulated": is_bool,
        "phase": lambda v: None if v in ("",) + PHASES else f"expected one of {', '.join(PHASES)}",
        "stim_intended_s": is_float(0.0, None, allow_empty=True),
        "stim_onset_s": is_float(None, None, allow_empty=True),
        "stim_offset_s": is_float(None, None, allow_empty=True),
        "stim_duration_s": is_float(0.0, None, allow_empty=True),
        "refresh_hz": is_float(0.0, None, allow_empty=True),
        "dropped_frames": _optional(is_int(0)),
        "stim_frames": _optional(is_int(0)),
        "practice_round": _optional(is_int(1)),
        "timing_mode": _optional(one_of(TIMING_MODES)),
        "timed_out": _optional(is_bool),
        "anticipation": _optional(is_bool),
    },
)


class ResponseWriter:
    """Appends one row per trial to a responses CSV and makes it durable before returning.

    `mode="new"` refuses an existing file (nothing is overwritten); `mode="append"` continues
    one whose header matches. `sync_each=False` (a batch written at once, as an import) syncs
    once on close instead of after every row. Use as a context manager."""

    def __init__(self, path: str | Path, columns: Sequence[str] = RESPONSES_SCHEMA.columns,
                 mode: str = "new", sync_each: bool = True):
        self.path = Path(path)
        self.sync_each = sync_each
        self.columns = list(columns)
        exists = self.path.exists() and self.path.stat().st_size > 0
        if mode == "new" and exists:
            raise BadInput(f"{self.path}: a responses file already exists; resume it or choose "
                           f"another participant/session (nothing is overwritten)")
        if mode not in ("new", "append"):
            raise ValueError(f"mode must be 'new' or 'append', got {mode!r}")
        if exists:
            with open(self.path, newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
            if header != self.columns:
                raise BadInput(f"{where(self.path, 1)}: header does not match the columns this "
                               f"writer appends ({len(header)} vs {len(self.columns)} columns)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.columns, lineterminator="\n")
        if not exists:
            self._writer.writeheader()
            self._sync()

    def write(self, row: Mapping[str, object]) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"unknown response column(s): {sorted(unknown)}")
        self._writer.writerow({c: _cell(row.get(c, "")) for c in self.columns})
        if self.sync_each:
            self._sync()

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._sync()
            self._fh.close()

    def __enter__(self) -> "ResponseWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if value != value else repr(round(value, 6))
    return str(value)


def read_responses(path: str | Path, schema: Schema = RESPONSES_SCHEMA) -> pd.DataFrame:
    """Read and validate one responses (or predictions) file; `correct`/`simulated` become bools
    (true/false as written here, True/False as pandas writes, TRUE/FALSE as R, 1/0 as PsychoPy)
    and `rt_s` a float column. An empty `response` is a time-out: kept and scored wrong. A torn
    last line (the process was killed mid-write) is an error naming the row, never silently
    dropped."""
    df = read_csv(path, schema)
    for col in ("correct", "simulated"):
        df[col] = df[col].map(parse_bool).astype(bool)
    df["rt_s"] = pd.to_numeric(df["rt_s"].replace("", float("nan")))
    df["order"] = df["order"].astype(int)
    df["block"] = df["block"].astype(int)
    return df


# --- one human row, one check against the manifest ---------------------------------------------
# Every venue (lab runner, web server, importers, simulated observers) builds its rows here and
# checks what a source claims about a trial here, so the columns and the scoring are defined once.

def human_row(*, agent: str, session: int, trial_id: str, action: str, sha256: str,
              response: str | None, rt_s: float | None, order: int, block: int,
              choice_order: Sequence[str], phase: str = "main", simulated: bool = False,
              timestamp: str | None = None, **extra: object) -> dict:
    """The responses row for one answered trial. `correct` is scored here from the trial's
    `action` (never taken from the source); `extra` holds the experiment and browser columns
    (unknown names are refused, so a typo cannot drop a column silently)."""
    import time

    unknown = set(extra) - set(RESPONSES_SCHEMA.columns)
    if unknown:
        raise ValueError(f"unknown response column(s): {sorted(unknown)}")
    row = {
        "agent": agent, "agent_kind": "human", "session": int(session), "trial_id": trial_id,
        "sha256": sha256, "response": response or "", "correct": bool(response)
        and response == action, "rt_s": rt_s, "order": int(order), "block": int(block),
        "choice_order": ";".join(choice_order),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z") if timestamp is None else timestamp,
        "simulated": bool(simulated), "phase": phase,
    }
    row.update(extra)
    return row


def check_response(choices: Sequence[str], planned_sha256: str, *, sha256: str | None = None,
                   choice_order: Sequence[str] | None = None,
                   response: str | None = None) -> tuple[str, str] | None:
    """What is wrong with a claimed answer to one trial, as (field, reason), or None.

    `choices` and `planned_sha256` come from the manifest (or plan); the rest from the source:
    the pixels' hash, the on-screen order of the choices and the answer. The reason never names
    the trial, its action or its condition, so a web reply may repeat it."""
    if sha256 is not None and sha256.strip().lower() != planned_sha256:
        return "sha256", "differs from the manifest's hash for this trial (other pixels were shown)"
    if choice_order and (not all(isinstance(c, str) for c in choice_order)
                         or sorted(choice_order) != sorted(choices)):
        return "choice_order", "is not an order of the trial's offered choices"
    if response is not None and response != "" and response not in choices:
        return "response", "is not one of the trial's offered choices"
    return None


def load_manifest(path: str | Path, check_files: bool = False) -> "Manifest":
    """The trial manifest as responses are checked against it: the one `Manifest` object, read,
    validated and hashed once (the stimuli's own hashes are checked only with `check_files`:
    importers match rows by the hashes written in it)."""
    from bodyscene.stimuli.manifest import Manifest

    return Manifest.read(path, check_files=check_files, check_hashes=check_files)
