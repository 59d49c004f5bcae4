"""`bodyscene responses import`: data collected with other tools, as responses files.

Three sources: a jsPsych data file (`jsPsych.data.get().csv()`: one row per timeline trial,
`trial_type`, `stimulus`, `response` (the key), `rt` in ms), a PsychoPy Builder trial CSV (one
row per loop iteration: the conditions file's columns, `<component>.keys`, `<component>.rt`
in s, `participant`, `session`), or any tidy CSV given a column mapping. Each trial row is
matched to a manifest trial by its stimulus (the file's path, its name when that is unique, a
sha256 in the name or the value, or the file's own hash when it is found next to the source),
its response resolved to one of the trial's offered actions, and `correct` scored from the
manifest. A trial row that cannot be matched is refused with one line naming file, row and
column; nothing is half-written. The source file's sha256 goes into every row's `software`
and into the run record."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from bodyscene.errors import BadInput, where
from bodyscene.provenance import write_run_record
from bodyscene.stimuli.manifest import split_choices
from bodyscene.tables import file_sha256

from .responses import (PHASES, RESPONSES_SCHEMA, ResponseWriter, check_response, human_row,
                        load_manifest)

TOOLS = ("jspsych", "psychopy", "csv")
# What each responses field is read from when --map does not say (first column present wins).
DEFAULTS = {
    "jspsych": {"agent": ("subject_id", "participant", "participant_id", "subject",
                          "PROLIFIC_PID", "workerId"),
                "session": ("session",), "stimulus": ("stimulus",), "response": ("response",),
                "rt_ms": ("rt",), "choice_order": ("choice_order", "choices"),
                "timestamp": ("timestamp",)},
    "psychopy": {"agent": ("participant",), "session": ("session",),
                 "stimulus": ("stimulus", "image", "stim", "movie", "file", "filename"),
                 "response": ("*.keys", "*.clicked_name"), "rt_s": ("*.rt",),
                 "choice_order": ("choice_order", "choices"), "timestamp": ("date",)},
}
FIELDS = ("agent", "session", "stimulus", "trial_id", "sha256", "response", "rt_s", "rt_ms",
          "choice_order", "timestamp", "phase", "block")
# a tidy CSV: columns named as the responses contract names them need no --map
DEFAULTS["csv"] = {**{f: (f,) for f in FIELDS}, "agent": ("agent", "participant")}
# jsPsych plugins whose rows are stimulus trials (others: instructions, fixation, surveys)
JSPSYCH_TRIAL_TYPES = ("image-keyboard-response", "image-button-response",
                       "video-keyboard-response", "video-button-response", "animation",
                       "image-slider-response")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Source:
    """Where each responses field comes from in one source file."""

    path: Path
    tool: str
    table: pd.DataFrame
    columns: dict[str, str] = field(default_factory=dict)   # field -> source column


def parse_map(pairs: list[str]) -> dict[str, str]:
    """`--map field=column` pairs as a dict, refusing unknown fields."""
    mapping = {}
    for pair in pairs:
        key, sep, column = pair.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not key or not column:
            raise BadInput(f"--map expects FIELD=COLUMN, got {pair!r}")
        if key not in FIELDS:
            raise BadInput(f"--map {pair}: unknown field {key!r} (expected one of "
                           f"{', '.join(FIELDS)})")
        mapping[key] = column
    return mapping


def read_source(path: str | Path, tool: str, mapping: dict[str, str]) -> Source:
    path = Path(path)
    if tool not in TOOLS:
        raise BadInput(f"--from must be one of {', '.join(TOOLS)}, got {tool!r}")
    if not path.is_file():
        raise BadInput(f"{path}: data file not found")
    try:
        # utf-8-sig: PsychoPy writes a byte-order mark before the header
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not a readable CSV ({exc})".replace("\n", " ")) from None
    src = Source(path, tool, table)
    for key, column in mapping.items():
        if column not in table.columns:
            raise BadInput(f"{where(path, 1)}: --map {key}={column}: no column {column!r}")
        src.columns[key] = column
    for key, candidates in DEFAULTS[tool].items():
        if key in src.columns or (key == "rt_ms" and "rt_s" in src.columns) or (
                key == "rt_s" and "rt_ms" in src.columns):
            continue
        for cand in candidates:
            found = ([c for c in table.columns if c.endswith(cand[1:])] if cand.startswith("*")
                     else [cand] if cand in table.columns else [])
            if found:
                src.columns[key] = found[0]
                break
    if not any(k in src.columns for k in ("stimulus", "trial_id", "sha256")):
        raise BadInput(f"{where(path, 1)}: no column names the stimulus; give one with "
                       f"--map stimulus=COLUMN (or trial_id=, sha256=)")
    if "response" not in src.columns:
        raise BadInput(f"{where(path, 1)}: no response column; give one with "
                       f"--map response=COLUMN")
    return src


class Matcher:
    """Finds the manifest trial a source row showed."""

    def __init__(self, manifest: pd.DataFrame, source_dir: Path):
        self.manifest = manifest
        self.source_dir = source_dir
        self.by_id = {r.trial_id: r for r in manifest.itertuples(index=False)}
        self.by_sha = {r.sha256: r for r in manifest.itertuples(index=False)}
        self.paths = [(PurePosixPath(r.stimulus).parts, r)
                      for r in manifest.itertuples(index=False)]

    def find(self, value: str, key: str):
        """The manifest row for a source value of field `key`, or an error text."""
        value = value.strip()
        if key == "trial_id":
            return self.by_id.get(value) or f"no trial {value!r} in the manifest"
        if key == "sha256":
            return self.by_sha.get(value.lower()) or f"no trial with sha256 {value!r}"
        frames = _frames(value)
        if not frames:
            return "no stimulus file named"
        # a clip shown as its frames (jsPsych animation): the folder that holds them
        target = frames[0] if len(frames) == 1 else str(PurePosixPath(frames[0]).parent)
        parts = PurePosixPath(target.replace("\\", "/")).parts
        for n in range(len(parts), 0, -1):        # the longest unique trailing path
            hits = [r for p, r in self.paths if p[-n:] == parts[-n:]
                    or (n == len(parts) and _stem_parts(p)[-n:] == _stem_parts(parts)[-n:])]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1 and n == 1:
                return (f"stimulus {target!r} matches {len(hits)} trials by name (e.g. "
                        f"{hits[0].stimulus}, {hits[1].stimulus}); give a longer path or a "
                        f"hash")
        stem = PurePosixPath(target).stem
        if _HEX64.fullmatch(stem) and stem in self.by_sha:   # named by its hash
            return self.by_sha[stem]
        on_disk = self.source_dir / target
        if on_disk.is_file():                                 # the file itself: its hash
            hit = self.by_sha.get(file_sha256(on_disk))
            if hit is not None:
                return hit
        return f"stimulus {target!r} matches no manifest trial by name or hash"


def _frames(value: str) -> list[str]:
    """A stimulus cell as file paths: a path, or a JSON/Python list of paths."""
    value = value.strip()
    if value.startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            try:
                items = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return []
        return [str(v) for v in items if str(v).strip()]
    return [value] if value and value.lower() != "null" else []


def _stem_parts(parts: tuple[str, ...]) -> tuple[str, ...]:
    """Path parts with the file's extension dropped (a .jpg copy of a .png matches by name)."""
    return parts[:-1] + (PurePosixPath(parts[-1]).stem,) if parts else parts


def _list(value: str) -> list[str]:
    """A choice order written as 'a;b;c', a JSON list or a Python list."""
    value = value.strip()
    if not value or value.lower() == "null":
        return []
    if value.startswith("["):
        return [str(v) for v in _frames(value)]
    return split_choices(value)


def _key(value: str) -> str:
    """A key press as PsychoPy or jsPsych writes it: '1', 'num_1', "['1']", '"1"'."""
    value = value.strip()
    if value.startswith("["):
        got = _frames(value)
        value = got[-1] if got else ""   # PsychoPy 'store all keys': the last is the answer
    value = value.strip("'\"")
    return value[4:] if value.startswith("num_") else value


def is_trial_row(src: Source, row: dict) -> bool:
    """Whether a source row is a stimulus trial (rather than instructions, a fixation, ...)."""
    if src.tool == "jspsych" and "trial_type" in src.table.columns:
        return row["trial_type"] in JSPSYCH_TRIAL_TYPES
    key = next(k for k in ("stimulus", "trial_id", "sha256") if k in src.columns)
    return bool(row[src.columns[key]].strip())


def import_responses(source: str | Path, tool: str, trials_csv: str | Path, out_dir: str | Path,
                     mapping: dict[str, str] | None = None, participant: str | None = None,
                     session: int | None = None) -> tuple[Path, int]:
    """Write the source's trials as responses files (one per participant session) in
    out_dir; returns (out_dir, rows written). Every row is checked before any file is
    written."""
    src = read_source(source, tool, mapping or {})
    manifest = load_manifest(trials_csv)          # read and hashed once, not once per row
    matcher = Matcher(manifest.table, src.path.parent)
    source_sha = file_sha256(src.path)
    software = f"import={tool};source={src.path.name};source_sha256={source_sha}"
    match_key = next(k for k in ("trial_id", "sha256", "stimulus") if k in src.columns)
    if participant is None and "agent" not in src.columns:
        raise BadInput(f"{where(src.path, 1)}: no participant column; give one with --map "
                       f"agent=COLUMN or name the participant with --participant")
    rows: dict[tuple[str, int], list[dict]] = {}
    for i, row in enumerate(src.table.to_dict("records")):
        if not is_trial_row(src, row):
            continue
        r = i + 2
        col = src.columns[match_key]
        t = matcher.find(row[col], match_key)
        if isinstance(t, str):
            raise BadInput(f"{where(src.path, r, col)}: {t}")
        choices = split_choices(t.choices)
        shown = _list(row[src.columns["choice_order"]]) if "choice_order" in src.columns else []
        claimed = (row[src.columns["sha256"]] if "sha256" in src.columns
                   and match_key != "sha256" else None)
        wrong = check_response(choices, t.sha256, sha256=claimed, choice_order=shown)
        if wrong:
            raise BadInput(f"{where(src.path, r, src.columns[wrong[0]])}: {wrong[0]} "
                           f"{wrong[1]} ({t.trial_id!r}; offered: {', '.join(choices)})")
        response = _resolve(row[src.columns["response"]], shown, choices)
        if response is None:
            raise BadInput(f"{where(src.path, r, src.columns['response'])}: "
                           f"{row[src.columns['response']]!r} is none of the offered actions "
                           f"{', '.join(choices)}" + ("" if shown else
                                                      " (a key needs a choice_order column: "
                                                      "--map choice_order=COLUMN)"))
        agent = participant or row[src.columns["agent"]].strip()
        if not agent:
            raise BadInput(f"{where(src.path, r, src.columns['agent'])}: no participant id")
        sess = session if session is not None else _int(src, row, r, "session", 1)
        rows.setdefault((agent, sess), []).append(human_row(
            agent=agent, session=sess, trial_id=t.trial_id, action=t.action, sha256=t.sha256,
            response=response, rt_s=_rt(src, row, r), order=0,
            block=_int(src, row, r, "block", 1), choice_order=shown,
            timestamp=row[src.columns["timestamp"]] if "timestamp" in src.columns else "",
            phase=_phase(src, row, r), manifest_sha256=manifest.sha256, software=software))
    if not rows:
        raise BadInput(f"{src.path}: no trial rows found (for jsPsych, rows whose trial_type "
                       f"is one of {', '.join(JSPSYCH_TRIAL_TYPES)}; otherwise rows with a "
                       f"stimulus)")
    out_dir = Path(out_dir)
    targets = {key: out_dir / f"{key[0]}_s{key[1]}_import-{tool}.csv" for key in rows}
    for path in targets.values():
        if path.exists():
            raise BadInput(f"{path}: already exists (nothing is overwritten)")
    n = 0
    for key, items in rows.items():
        with ResponseWriter(targets[key], columns=RESPONSES_SCHEMA.columns,
                            sync_each=False) as writer:
            for order, item in enumerate(items):
                writer.write({**item, "order": order})
                n += 1
    write_run_record(out_dir, {"source": str(src.path), "tool": tool, "columns": src.columns,
                               "participant": participant, "session": session}, None,
                     name=f"import-{tool}_{src.path.stem}.json", source_sha256=source_sha,
                     manifest=str(trials_csv), manifest_sha256=manifest.sha256,
                     files=sorted(p.name for p in targets.values()))
    return out_dir, n


def _phase(src: Source, row: dict, r: int) -> str:
    """The part of the session a row belongs to (empty: main)."""
    if "phase" not in src.columns:
        return "main"
    value = row[src.columns["phase"]].strip().lower()
    if value not in ("",) + PHASES:
        raise BadInput(f"{where(src.path, r, src.columns['phase'])}: expected one of "
                       f"{', '.join(PHASES)}, got {value!r}")
    return value or "main"


def _resolve(value: str, shown: list[str], choices: list[str]) -> str | None:
    """The action a response names: the action itself, or the key/number of its position
    among the choices shown (1-based, as numbered on screen)."""
    value = value.strip()
    if value in choices:
        return value
    key = _key(value)
    if key in choices:
        return key
    if shown and key.isdigit() and 1 <= int(key) <= len(shown):
        return shown[int(key) - 1]
    return None


def _rt(src: Source, row: dict, r: int) -> float | None:
    for key, scale in (("rt_s", 1.0), ("rt_ms", 1e-3)):
        if key in src.columns:
            value = _key(row[src.columns[key]]) if row[src.columns[key]].startswith("[") \
                else row[src.columns[key]].strip()
            if value in ("", "null", "None"):
                return None
            try:
                rt = float(value) * scale
            except ValueError:
                raise BadInput(f"{where(src.path, r, src.columns[key])}: expected a number, "
                               f"got {value!r}") from None
            if not rt >= 0:
                raise BadInput(f"{where(src.path, r, src.columns[key])}: a response time "
                               f"cannot be negative")
            return rt
    return None


def _int(src: Source, row: dict, r: int, key: str, default: int) -> int:
    if key not in src.columns or not row[src.columns[key]].strip():
        return default
    value = row[src.columns[key]].strip()
    try:
        return int(float(value))
    except ValueError:
        raise BadInput(f"{where(src.path, r, src.columns[key])}: expected an integer, got "
                       f"{value!r}") from None
