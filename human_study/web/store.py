"""Where the server puts what browsers send: one responses file per participant session,
written through the lab runner's `ResponseWriter` (appended and fsync'ed before the server
answers), and a `.web.jsonl` sidecar for what the contract has no column for (recruitment
parameters, per-frame intervals, reload attempts).

A server killed mid-write can leave a torn last line. That row was never acknowledged (the
answer goes out after the fsync), so the page still holds it and sends it again: the torn
line is cut off when the file is next opened, and the row is stored once."""

from __future__ import annotations

import csv
import json
import logging
import os
import threading
from pathlib import Path

from bodyscene.errors import BadInput

from ..responses import RESPONSES_SCHEMA, ResponseWriter
from ..session import responses_path

log = logging.getLogger("bodyscene.web")


class Duplicate(Exception):
    """The trial is already stored for this participant session."""


class SessionFile:
    """One participant session: its responses file and sidecar, and the trials already in it."""

    def __init__(self, data_dir: Path, participant: str, session: int):
        self.path = responses_path(data_dir, participant, session)
        self.sidecar = self.path.with_suffix(".web.jsonl")
        self.lock = threading.Lock()
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        drop_torn_tail(self.path)
        drop_torn_tail(self.sidecar)
        self.done = stored_trials(self.path)
        self.writer = ResponseWriter(self.path, columns=RESPONSES_SCHEMA.columns,
                                     mode="append")
        if new:
            fsync_dir(self.path.parent)  # the new file's name is durable too
        self._side = open(self.sidecar, "a", encoding="utf-8")

    def store(self, row: dict, extra: dict) -> None:
        """Append the row (and its sidecar record) unless the trial is already stored; both
        are on disk when this returns."""
        with self.lock:
            if row["trial_id"] in self.done:
                raise Duplicate(row["trial_id"])
            self.note({"event": "trial", "trial_id": row["trial_id"], "order": row["order"],
                       **extra})
            self.writer.write(row)
            self.done[row["trial_id"]] = int(row["order"])

    def note(self, record: dict) -> None:
        """Append one JSON line to the sidecar, durably."""
        self._side.write(json.dumps(record, sort_keys=True) + "\n")
        self._side.flush()
        os.fsync(self._side.fileno())

    def close(self) -> None:
        self.writer.close()
        self._side.close()


class Store:
    """SessionFiles opened on first use and kept open (one writer per file, one lock each)."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._files: dict[tuple[str, int], SessionFile] = {}
        self._lock = threading.Lock()

    def get(self, participant: str, session: int) -> SessionFile:
        with self._lock:
            key = (participant, session)
            if key not in self._files:
                self._files[key] = SessionFile(self.data_dir, participant, session)
            return self._files[key]

    def peek(self, participant: str, session: int) -> dict[str, int]:
        """The trials stored so far (trial_id -> order) without creating a file."""
        if not responses_path(self.data_dir, participant, session).exists():
            return {}
        f = self.get(participant, session)  # opening it repairs a torn tail
        with f.lock:
            return dict(f.done)

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()


def stored_trials(path: Path) -> dict[str, int]:
    """trial_id -> order of the rows in a responses file (empty if there is none)."""
    if not path.exists() or path.stat().st_size == 0:
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "trial_id" not in reader.fieldnames:
            raise BadInput(f"{path}: not a responses file (no trial_id column)")
        return {r["trial_id"]: int(r["order"]) for r in reader}


def drop_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (a write cut short by a kill) off the file."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    log.warning("%s: dropping a torn last line (%d bytes, never acknowledged)", path,
                len(data) - keep)
    with open(path, "r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
