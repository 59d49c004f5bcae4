"""The trial manifest (`trials.csv`): the contract every other part reads.

One row per trial stimulus. The conditions of one frame or clip share an `item_id`; `sha256` lets any
reader prove that people and models saw identical pixels. This module is the schema's one
definition, its validator, and the helpers that hash stimuli; writers build rows and call
`write_manifest`, readers call `read_manifest`."""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PureWindowsPath
from typing import Iterable, Mapping

import pandas as pd

from bodyscene import CONDITIONS  # noqa: F401  (re-exported for readers of the manifest)
from bodyscene.errors import BadInput, where
from bodyscene.tables import (
    Schema,
    file_sha256,
    is_float,
    is_int,
    is_sha256,
    non_empty,
    one_of,
    read_csv,
    write_csv_atomic,
)

SPLITS = ("train", "val", "test")
CHOICE_SEP = ";"

MANIFEST_SCHEMA = Schema(
    name="trial manifest",
    required=("trial_id", "item_id", "action", "condition", "split", "stimulus", "n_frames", "fps",
              "sha256", "choices", "source", "frame", "mask_fraction", "segmenter"),
    # body_action/background_action/background_item: conflict rows only (background_item is the
    # item whose inpainted background the body was placed on, so a two-stream model can be fed
    # exactly the two views the composite was made of). mask_iou: IoU of the mask used with the
    # exact mask, known for synthetic data (empty for real video).
    optional=("body_action", "background_action", "background_item", "mask_iou"),
    checks={
        "trial_id": non_empty,
        "item_id": non_empty,
        "action": non_empty,
        "condition": one_of(CONDITIONS),
        "split": one_of(SPLITS),
        "stimulus": non_empty,
        "n_frames": is_int(1),
        "fps": is_float(0.0, 1000.0),
        "sha256": is_sha256,
        "choices": non_empty,
        "frame": is_int(0),
        "mask_fraction": is_float(0.0, 1.0),
        "mask_iou": is_float(0.0, 1.0, allow_empty=True),
    },
    unique=("trial_id",),
)
COLUMNS = MANIFEST_SCHEMA.columns


def stimulus_frames(stimulus: Path) -> list[Path]:
    """The PNG frames of a stimulus: the file itself, or a clip folder's PNGs in name order."""
    if stimulus.is_dir():
        return sorted(p for p in stimulus.iterdir() if p.suffix.lower() == ".png")
    return [stimulus]


def clip_sha256(frame_digests: Iterable[str]) -> str:
    """A clip's sha256: that of its frames' hex digests joined by newlines, in frame order."""
    return hashlib.sha256("\n".join(frame_digests).encode("ascii")).hexdigest()


def stimulus_sha256(stimulus: Path) -> str:
    """A PNG's sha256, or for a clip folder clip_sha256 of its frames in file-name order."""
    if stimulus.is_dir():
        return clip_sha256(file_sha256(p) for p in stimulus_frames(stimulus))
    return file_sha256(stimulus)


def split_choices(choices: str) -> list[str]:
    """The actions offered on a trial, in their listed order: the only place `choices` text
    (and a `choice_order` written the same way) is split."""
    return [c for c in str(choices).split(CHOICE_SEP) if c]


def join_choices(choices: Iterable[str]) -> str:
    choices = list(choices)
    bad = [c for c in choices if CHOICE_SEP in c or not c]
    if bad:
        raise BadInput(f"action name {bad[0]!r} cannot be offered as a choice: "
                       f"names must be non-empty and free of {CHOICE_SEP!r}")
    return CHOICE_SEP.join(choices)


def write_manifest(path: str | Path, rows: Iterable[Mapping[str, object]]) -> Path:
    """Write rows (dicts keyed by COLUMNS) sorted by trial_id, atomically, so the same rows give
    a byte-identical file."""
    rows = sorted(rows, key=lambda r: str(r["trial_id"]))
    path = Path(path)
    write_csv_atomic(path, rows, COLUMNS)
    return path


def outside_reason(stimulus: str) -> str | None:
    """Why a `stimulus` path is not a relative path inside the manifest's folder (None if it
    is). Checked on the text, so a symlinked data folder inside it still works."""
    text = stimulus.replace("\\", "/")
    if text.startswith("/") or PureWindowsPath(stimulus).drive:
        return "is an absolute path"
    if posixpath.normpath(text).split("/")[0] == "..":
        return "leads outside the manifest's folder"
    return None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR colour type -> channels as decoded (a palette expands to RGB)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def png_size_mode(data: bytes) -> tuple[tuple[int, int], str] | None:
    """((height, width), 'N channel(s) uint8|uint16') of a PNG that fully decodes, else None.
    Pillow decodes (it comes with matplotlib), so validating needs no OpenCV; size and mode come
    from the IHDR header, which Pillow would report as 8-bit for a 16-bit colour image."""
    import io

    from PIL import Image

    if len(data) < 33 or data[12:16] != b"IHDR" or data[25] not in _PNG_CHANNELS:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception:   # Pillow raises OSError, SyntaxError, ValueError... for a broken file
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return (height, width), f"{_PNG_CHANNELS[data[25]]} channel(s) " \
                            f"{'uint16' if data[24] == 16 else 'uint8'}"


def decode_frames(df: pd.DataFrame, path: str | Path, progress: bool = False) -> None:
    """Decode every frame of every stimulus (a read manifest's `path` column): each must be a
    PNG that decodes, and all frames of one item (every condition) must share one size and one
    mode (channels and depth). A file with a recomputed hash but the wrong content fails here."""
    from tqdm import tqdm

    seen: dict[str, tuple[tuple[int, ...], str, str]] = {}
    rows = list(enumerate(zip(df["item_id"], df["path"])))
    for i, (item, stim) in tqdm(rows, desc="decoding", unit="trial", disable=not progress,
                                leave=False):
        at = where(path, i + 2, "stimulus")
        for frame in stimulus_frames(Path(stim)):
            data = frame.read_bytes()
            if not data.startswith(PNG_SIGNATURE):
                raise BadInput(f"{at}: {str(frame)!r} is not a PNG file")
            decoded = png_size_mode(data)
            if decoded is None:
                raise BadInput(f"{at}: {str(frame)!r} does not decode as a PNG image")
            size, mode = decoded
            first = seen.setdefault(item, (size, mode, frame.name))
            if (size, mode) != first[:2]:
                raise BadInput(f"{at}: {str(frame)!r} is {size[1]}x{size[0]} with {mode}, but "
                               f"item {item!r} began with {first[0][1]}x{first[0][0]} with "
                               f"{first[1]} ({first[2]}); all frames of an item must match")


def read_manifest(path: str | Path, check_files: bool = True,
                  check_hashes: bool = True, decode: bool = False) -> pd.DataFrame:
    """Read and validate a manifest. Adds `path` (absolute stimulus path) and `choice_list`.

    Beyond the schema: conflict rows must name both (different) actions and offer both as
    choices, every row's action must be among its choices, stimuli must be relative paths inside
    the manifest's folder, exist and (with check_hashes) match their sha256; with decode, every
    frame must decode (decode_frames)."""
    path = Path(path)
    df = read_csv(path, MANIFEST_SCHEMA)
    if df.empty:
        raise BadInput(f"{path}: the manifest has no trials")
    root = path.parent
    paths, choice_lists = [], []
    for i, row in enumerate(df.itertuples(index=False)):
        r = i + 2
        choices = split_choices(row.choices)
        if row.action not in choices:
            raise BadInput(f"{where(path, r, 'choices')}: the true action {row.action!r} "
                           f"is not among the offered choices {row.choices!r}")
        if len(set(choices)) != len(choices):
            raise BadInput(f"{where(path, r, 'choices')}: an action is offered twice in "
                           f"{row.choices!r}")
        if row.condition == "conflict":
            for col in ("body_action", "background_action", "background_item"):
                if not getattr(row, col):
                    raise BadInput(f"{where(path, r, col)}: a conflict trial needs {col}")
            if row.body_action != row.action:
                raise BadInput(f"{where(path, r, 'action')}: a conflict trial's action is its "
                               f"body_action {row.body_action!r}, got {row.action!r}")
            if row.background_action not in choices:
                # its background share would be 0 by construction, not by the observers
                raise BadInput(f"{where(path, r, 'choices')}: a conflict trial must offer its "
                               f"background_action {row.background_action!r} among the "
                               f"choices {row.choices!r}")
            if row.background_action == row.body_action:
                raise BadInput(f"{where(path, r, 'background_action')}: a conflict trial's "
                               f"background action must differ from its body action "
                               f"{row.body_action!r}")
        outside = outside_reason(row.stimulus)
        if outside:
            raise BadInput(f"{where(path, r, 'stimulus')}: {row.stimulus!r} {outside}; a "
                           f"stimulus is a path relative to the manifest, inside its folder")
        stim = root / row.stimulus
        if check_files:
            if not stim.exists():
                raise BadInput(f"{where(path, r, 'stimulus')}: stimulus {str(stim)!r} is missing")
            frames = stimulus_frames(stim)
            if len(frames) != int(row.n_frames):
                raise BadInput(f"{where(path, r, 'n_frames')}: expected {row.n_frames} frame(s) "
                               f"in {str(stim)!r}, found {len(frames)}")
            if check_hashes and stimulus_sha256(stim) != row.sha256:
                raise BadInput(f"{where(path, r, 'sha256')}: {str(stim)!r} does not match its "
                               f"sha256 (the image changed after the manifest was written)")
        paths.append(stim)
        choice_lists.append(choices)
    df["path"] = paths
    df["choice_list"] = choice_lists
    if decode and check_files:
        decode_frames(df, path)
    return df


def manifest_sha256(path: str | Path) -> str:
    """Hash of the manifest file itself, recorded by every run that reads it (often before it
    is read, so a missing file is refused here)."""
    if not Path(path).is_file():
        raise BadInput(f"{path}: trial manifest file not found")
    return file_sha256(path)


def actions_of(df: pd.DataFrame) -> list[str]:
    """The manifest's action vocabulary in a fixed (sorted) order: class index i is actions[i]."""
    return sorted(set(df["action"]))


@dataclass(frozen=True, eq=False)
class Manifest:
    """A validated trial manifest, read (and its stimuli hashed) once, then passed around whole:
    the table (with `path` and `choice_list`), the file it came from, that file's sha256 and the
    action vocabulary. Evaluation, the predictions writer and validator and the experiment take
    this object instead of re-reading the CSV."""

    table: pd.DataFrame
    file: Path
    sha256: str

    @classmethod
    def read(cls, path: str | Path, check_files: bool = True, check_hashes: bool = True,
             decode: bool = False) -> "Manifest":
        """Read and validate (read_manifest's checks), hashing each stimulus at most once."""
        digest = manifest_sha256(path)
        table = read_manifest(path, check_files, check_hashes, decode)
        return cls(table, Path(path), digest)

    @classmethod
    def of(cls, trials: "str | Path | Manifest", **read_options) -> "Manifest":
        """`trials` itself when it is already a Manifest, else the file read."""
        return trials if isinstance(trials, Manifest) else cls.read(trials, **read_options)

    @property
    def actions(self) -> list[str]:
        """Class index i is actions[i] (actions_of)."""
        return actions_of(self.table)

    def vocabulary(self) -> set[str]:
        """Every action the manifest names, as a trial's action or among its offered choices."""
        found = set(self.table["action"])
        for choices in self.table["choice_list"]:
            found.update(choices)
        return found

    def split(self, name: str) -> pd.DataFrame:
        """The trials of one split (`all`: every trial)."""
        return self.table if name == "all" else self.table[self.table["split"] == name]

    @cached_property
    def by_id(self) -> pd.DataFrame:
        """The table indexed by trial_id (the column kept), built once."""
        return self.table.set_index("trial_id", drop=False)

    @cached_property
    def records(self) -> dict[str, dict]:
        """trial_id -> that row as a dict, for checks that look up one trial per answer."""
        return self.table.set_index("trial_id", drop=False).to_dict("index")

    def __len__(self) -> int:
        return len(self.table)

    def __str__(self) -> str:
        return str(self.file)
