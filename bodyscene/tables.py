"""Reading and writing the CSV files that are the suite's contracts.

Every contract (trial manifest, responses, predictions) is a CSV with a declared set of required
and optional columns; this module is the one place that checks a file against such a declaration
so all readers reject bad files the same way: one line naming file, row and column."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import BadInput, where


@dataclass(frozen=True)
class Schema:
    """A CSV contract: column order, which columns may be absent, and per-column checks.

    `checks` maps a column to a function returning an error text for a bad value (or None).
    Columns matching `extra_prefixes` (e.g. per-action probability columns `p_<action>`) are
    allowed beyond the declared ones."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    checks: Mapping[str, Callable[[str], str | None]] = field(default_factory=dict)
    extra_prefixes: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


def read_csv(path: str | Path, schema: Schema) -> pd.DataFrame:
    """Read `path` as strings, check it against `schema`, raise BadInput at the first problem."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: {schema.name} file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path}: empty file, expected a {schema.name} CSV with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not a readable CSV ({exc})".replace("\n", " ")) from None
    missing = [c for c in schema.required if c not in df.columns]
    if missing:
        raise BadInput(f"{where(path, 1)}: missing column(s) {', '.join(missing)} "
                       f"(a {schema.name} needs {', '.join(schema.required)})")
    known = set(schema.columns)
    unknown = [c for c in df.columns
               if c not in known and not any(c.startswith(p) for p in schema.extra_prefixes)]
    if unknown:
        raise BadInput(f"{where(path, 1)}: unexpected column(s) {', '.join(map(str, unknown))} "
                       f"for a {schema.name}")
    for col in schema.optional:
        if col not in df.columns:
            df[col] = ""
    for col, check in schema.checks.items():
        if col not in df.columns:
            continue
        for i, value in enumerate(df[col].tolist()):
            problem = check(value)
            if problem:
                raise BadInput(f"{where(path, i + 2, col)}: {problem}, got {value!r}")
    for col in schema.unique:
        dup = df[col].duplicated(keep="first")
        if dup.any():
            i = int(dup.to_numpy().nonzero()[0][0])
            raise BadInput(f"{where(path, i + 2, col)}: duplicate value {df[col].iloc[i]!r} "
                           f"(each {col} may appear once)")
    return df


def write_csv_atomic(path: str | Path, rows: Iterable[Mapping[str, object]],
                     columns: Sequence[str], significant: int | None = None) -> None:
    """Write a whole table through a temporary file and a rename, so a reader never sees half.

    Floats are rounded to 6 decimals (the contract files: manifests, responses, predictions,
    whose bytes are pinned), or with `significant` written to that many significant digits
    (statistics: a p-value of 2.95e-07 must not become 0.0)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="raise",
                                lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _fmt(row.get(c, ""), significant) for c in columns})
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_frame_atomic(path: str | Path, table: pd.DataFrame, significant: int = 6) -> None:
    """`write_csv_atomic` for a DataFrame of results: its rows, in its column order, floats to
    `significant` significant digits (%.6g by default)."""
    write_csv_atomic(path, table.to_dict("records"), list(table.columns), significant)


def _fmt(value: object, significant: int | None = None) -> str:
    if value is None:
        return ""
    if significant is not None:   # results tables
        if isinstance(value, (bool, np.bool_)):
            return "true" if value else "false"
        if isinstance(value, (float, np.floating)):
            return f"{float(value):.{significant}g}" if value == value else ""
        return str(value)
    # contract files: these exact rules are what the pinned manifest hashes were written with
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6)) if value == value else ""
    return str(value)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- reusable value checks -------------------------------------------------------------------

def is_int(min_value: int | None = None) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        try:
            n = int(v)
        except ValueError:
            return "expected an integer"
        if min_value is not None and n < min_value:
            return f"expected an integer >= {min_value}"
        return None
    return check


def is_float(lo: float | None = None, hi: float | None = None,
             allow_empty: bool = False) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        if v == "" and allow_empty:
            return None
        try:
            x = float(v)
        except ValueError:
            return "expected a number"
        if x != x or (lo is not None and x < lo) or (hi is not None and x > hi):
            return f"expected a number in [{lo}, {hi}]"
        return None
    return check


def one_of(values: Iterable[str]) -> Callable[[str], str | None]:
    allowed = tuple(values)

    def check(v: str) -> str | None:
        return None if v in allowed else f"expected one of {', '.join(allowed)}"
    return check


def non_empty(v: str) -> str | None:
    return None if v.strip() else "expected a value"


TRUE_SPELLINGS = ("true", "True", "TRUE", "1")
FALSE_SPELLINGS = ("false", "False", "FALSE", "0")


def is_bool(v: str) -> str | None:
    """The spellings our writers, pandas, R and PsychoPy use for booleans."""
    ok = v in TRUE_SPELLINGS or v in FALSE_SPELLINGS
    return None if ok else "expected true or false (also True/False, TRUE/FALSE, 1/0)"


def is_sha256(v: str) -> str | None:
    ok = len(v) == 64 and all(c in "0123456789abcdef" for c in v)
    return None if ok else "expected a 64-character lowercase hex sha256"


def parse_bool(v: str) -> bool:
    """A value `is_bool` accepted, as a bool."""
    return v in TRUE_SPELLINGS


# --- output folders and JSON records ---------------------------------------------------------

def fresh_output_dir(out: str | Path, what: str = "output folder",
                     hint: str = "choose a new --out") -> Path:
    """Create `out`, refusing one that already holds anything: nothing a run wrote is ever
    overwritten."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        state = "is not a folder" if not out.is_dir() else "is not empty"
        raise BadInput(f"{out}: the {what} {state} (nothing is overwritten); {hint}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{out}: cannot create the {what} ({exc.strerror})") from None
    return out


def write_json_atomic(path: str | Path, data: object, sort_keys: bool = False) -> Path:
    """Write JSON through a temporary file and a rename, so a reader never sees half."""
    import json

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return path
