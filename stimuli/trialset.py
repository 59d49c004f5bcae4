"""Turning items (frames or clips with person masks) into a matched trial set and its manifest.

Both the synthetic world and the real-video path hand `Item`s to a `TrialSetWriter`, which writes
each item's original, body and background stimuli and its mask as PNGs and keeps a per-shard
item list. `finalize` then joins the shards, draws conflict pairs and choice sets (both need every
action), and writes `trials.csv`. The split into writer and finalize is what lets a cluster array
job build shards independently and merge them afterwards with the same result as one run."""

from __future__ import annotations

import hashlib
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bodyscene.extras import missing_extra

try:
    import cv2
except ModuleNotFoundError as exc:  # no stimuli extra: one line naming it
    raise missing_extra(exc) or exc

from bodyscene import CONDITIONS, VIEWS
from bodyscene.configs import ConfigError, opt
from bodyscene.errors import BadInput, where
from bodyscene.provenance import write_run_record
from bodyscene.seeds import derive_rng
from bodyscene.tables import (
    Schema,
    is_float,
    is_int,
    non_empty,
    one_of,
    read_csv,
    write_csv_atomic,
)

from .compose import (
    INPAINT_METHODS,
    MaskNoise,
    background_only,
    body_only,
    conflict,
    mask_iou,
    perturb_mask,
)
from .manifest import clip_sha256, join_choices, split_choices, write_manifest

__all__ = ["Item", "MaskNoise", "TrialSetConfig", "TrialSetWriter", "finalize",
           "parse_mask_noise", "parse_rgb", "read_choices_file"]


_SHARD_FILE = re.compile(r"^items\.shard-(\d+)-of-(\d+)\.csv$")


@dataclass
class TrialSetConfig:
    """How items become trials; shared by the synthetic world and the real-video path. `seed`
    is the trial set's one seed (the synthetic world renders from it too)."""

    clip_frames: int = opt(1, "frames per trial: 1 = single-frame trials, N > 1 = clips of N "
                           "frames")
    fps: float | None = opt(None, "playback rate of clip trials (default: the source's)")
    k: int | None = opt(None, "choices offered per trial (default: all actions if <= 8, "
                        "else 5)")
    choices_file: str | None = opt(None, "CSV 'action,choices' fixing the ';'-separated "
                                   "choice set per action")
    fill: tuple[int, int, int] = opt((0, 0, 0), "RGB fill of the body condition's background "
                                     "(default: 0,0,0)", parse=lambda t: parse_rgb(t))
    dilation: float = opt(1.2, "person-mask dilation factor before inpainting (paper: 1.2)")
    inpaint_method: str = opt("telea", "OpenCV inpainting method",
                              choices=tuple(sorted(INPAINT_METHODS)))
    inpaint_radius: float = opt(5.0, "inpainting radius in pixels")
    mask_noise: MaskNoise | None = opt(None, "controlled mask noise KIND:FRACTION, KIND in "
                                       "erode|dilate|flip (e.g. dilate:0.1)",
                                       parse=lambda t: parse_mask_noise(t))
    conflict_per_action: int | None = opt(None, "conflict trials per action on the test split "
                                          "(default: one per test item)")
    contact_sheet_items: int = opt(8, "items shown on the review picture contact_sheet.png")
    seed: int = opt(0, "seeds every random choice of the trial set (and the synthetic world)")

    def check(self) -> None:
        """Reject impossible settings before any work is done (one line naming the field;
        the command line names its flag)."""
        if self.clip_frames < 1:
            raise ConfigError("clip_frames", f"at least 1, got {self.clip_frames}")
        if self.fps is not None and not 0 < self.fps <= 1000:
            raise ConfigError("fps", f"a playback rate in (0, 1000] frames per second, got "
                                     f"{self.fps}")
        if self.k is not None and self.k < 2:
            raise ConfigError("k", f"at least 2 choices per trial, got {self.k}")
        if self.choices_file is not None and not Path(self.choices_file).is_file():
            raise BadInput(f"{self.choices_file}: choices file not found")
        if len(self.fill) != 3 or not all(0 <= int(v) <= 255 for v in self.fill):
            raise ConfigError("fill", f"expected R,G,B with values 0-255, got {self.fill}")
        if not 1.0 <= self.dilation <= 5.0:
            raise ConfigError("dilation", f"a factor between 1 (no dilation) and 5, got "
                                          f"{self.dilation}")
        if self.inpaint_method not in INPAINT_METHODS:
            raise ConfigError("inpaint_method", f"one of {', '.join(sorted(INPAINT_METHODS))}, "
                                                f"got {self.inpaint_method!r}")
        if not self.inpaint_radius > 0:
            raise ConfigError("inpaint_radius", f"a positive radius in pixels, got "
                                                f"{self.inpaint_radius}")
        if self.conflict_per_action is not None and self.conflict_per_action < 0:
            raise ConfigError("conflict_per_action", f"0 or more, got "
                                                     f"{self.conflict_per_action}")
        if self.contact_sheet_items < 0:
            raise ConfigError("contact_sheet_items", f"0 or more, got "
                                                     f"{self.contact_sheet_items}")


@dataclass
class Item:
    """One trial item: a single frame (T = 1) or a clip window (T = clip_frames)."""

    item_id: str
    action: str
    split: str
    source: str
    frame: int                      # first frame index in the source video
    fps: float
    frames: np.ndarray              # (T, H, W, 3) uint8 RGB
    masks: np.ndarray               # (T, H, W) bool: the person mask to compose with
    segmenter: str
    exact_masks: np.ndarray | None = None   # ground truth, synthetic world only


ITEMS_SCHEMA = Schema(
    name="item list",
    required=("item_id", "action", "split", "source", "frame", "n_frames", "fps",
              "mask_fraction", "mask_iou", "segmenter", "height", "width",
              "sha256_original", "sha256_body", "sha256_background"),
    checks={"item_id": non_empty, "action": non_empty, "split": one_of(("train", "val", "test")),
            "frame": is_int(0), "n_frames": is_int(1), "fps": is_float(0.0, 1000.0),
            "mask_fraction": is_float(0.0, 1.0), "mask_iou": is_float(0.0, 1.0, allow_empty=True)},
    unique=("item_id",),
)


def parse_rgb(text: str) -> tuple[int, int, int]:
    try:
        rgb = tuple(int(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise BadInput(f"--fill: expected R,G,B with values 0-255, got {text!r}")
    return rgb  # type: ignore[return-value]


def parse_mask_noise(text: str | None) -> MaskNoise | None:
    if not text:
        return None
    kind, _, frac = text.partition(":")
    try:
        return MaskNoise(kind, float(frac))
    except (ValueError, BadInput) as exc:
        raise BadInput(f"--mask-noise: expected KIND:FRACTION with KIND erode|dilate|flip and "
                       f"FRACTION in [0, 1], got {text!r} ({exc})") from None


def _stim_path(condition: str, item_id: str, n_frames: int) -> Path:
    return Path("stimuli") / condition / (item_id if n_frames > 1 else f"{item_id}.png")


def _encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", rgb[..., ::-1] if rgb.ndim == 3 else rgb)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _write_frames(root: Path, rel: Path, frames: np.ndarray) -> str:
    """Write one PNG (T = 1) or a folder of PNGs; return the manifest's sha256 for it."""
    if len(frames) == 1:
        data = _encode_png(frames[0])
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        return hashlib.sha256(data).hexdigest()
    (root / rel).mkdir(parents=True, exist_ok=True)
    digests = []
    for t, frame in enumerate(frames):
        data = _encode_png(frame)
        (root / rel / f"{t:03d}.png").write_bytes(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return clip_sha256(digests)


def _read_frames(path: Path, gray: bool = False) -> np.ndarray:
    files = sorted(path.glob("*.png")) if path.is_dir() else [path]
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    frames = []
    for f in files:
        img = cv2.imread(str(f), flag)
        if img is None:
            raise BadInput(f"{f}: unreadable PNG")
        frames.append(img if gray else img[..., ::-1])
    return np.stack(frames)


class TrialSetWriter:
    """Writes the original/body/background stimuli of items for one shard (thread-safe)."""

    def __init__(self, out_dir: str | Path, cfg: TrialSetConfig,
                 shard: tuple[int, int] = (0, 1)):
        cfg.check()
        self.out = Path(out_dir)
        self.cfg = cfg
        i, n = shard
        if not (n >= 1 and 0 <= i < n):
            raise BadInput(f"--shard: expected i/n with 0 <= i < n, got {i}/{n}")
        self.items_file = self.out / f"items.shard-{i}-of-{n}.csv"
        if (self.out / "trials.csv").exists():
            raise BadInput(f"{self.out / 'trials.csv'}: a finished trial set is already there; "
                           f"choose a new --out (nothing is overwritten)")
        if self.items_file.exists():
            raise BadInput(f"{self.items_file}: shard {i}/{n} was already built in this folder; "
                           f"choose a new --out (nothing is overwritten)")
        self.out.mkdir(parents=True, exist_ok=True)
        self._rows: list[dict] = []
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, item: Item) -> None:
        with self._lock:
            if item.item_id in self._ids:
                raise BadInput(f"item_id {item.item_id!r} appears twice in this trial set")
            self._ids.add(item.item_id)
        if item.frames.ndim != 4 or item.masks.shape != item.frames.shape[:3]:
            raise ValueError(f"{item.item_id}: frames must be (T,H,W,3) and masks (T,H,W)")
        cfg = self.cfg
        rng = derive_rng(cfg.seed, "mask-noise/" + item.item_id)
        masks = np.stack([perturb_mask(m, cfg.mask_noise, rng) for m in item.masks])
        bodies = np.stack([body_only(f, m, cfg.fill) for f, m in zip(item.frames, masks)])
        backgrounds = np.stack([
            background_only(f, m, cfg.dilation, cfg.inpaint_method, cfg.inpaint_radius)
            for f, m in zip(item.frames, masks)])
        T = len(item.frames)
        shas = {}
        for cond, frames in zip(VIEWS, (item.frames, bodies, backgrounds)):
            shas[cond] = _write_frames(self.out, _stim_path(cond, item.item_id, T), frames)
        _write_frames(self.out, _stim_path("masks", item.item_id, T).relative_to("stimuli"),
                      masks.astype(np.uint8) * 255)
        iou = "" if item.exact_masks is None else round(mask_iou(masks, item.exact_masks), 6)
        segmenter = item.segmenter + (f"+noise({cfg.mask_noise})" if cfg.mask_noise else "")
        row = dict(item_id=item.item_id, action=item.action, split=item.split,
                   source=item.source, frame=item.frame, n_frames=T,
                   fps=cfg.fps if cfg.fps else item.fps,
                   mask_fraction=round(float(masks.mean()), 6), mask_iou=iou,
                   segmenter=segmenter, height=item.frames.shape[1], width=item.frames.shape[2],
                   **{f"sha256_{c}": s for c, s in shas.items()})
        with self._lock:
            self._rows.append(row)

    def close(self) -> Path:
        rows = sorted(self._rows, key=lambda r: r["item_id"])
        write_csv_atomic(self.items_file, rows, ITEMS_SCHEMA.columns)
        return self.items_file


def _shard_files(out: Path) -> list[Path]:
    found = {}
    for p in out.glob("items.shard-*-of-*.csv"):
        m = _SHARD_FILE.match(p.name)
        if m:
            found[(int(m.group(1)), int(m.group(2)))] = p
    if not found:
        raise BadInput(f"{out}: no shard item lists (items.shard-I-of-N.csv) to merge")
    totals = {n for _, n in found}
    if len(totals) != 1:
        raise BadInput(f"{out}: shards of different splits ({sorted(totals)} parts) are mixed")
    n = totals.pop()
    missing = [f"{i}/{n}" for i in range(n) if (i, n) not in found]
    if missing:
        raise BadInput(f"{out}: shard(s) {', '.join(missing)} missing; build them with "
                       f"--shard before merging")
    return [found[(i, n)] for i in range(n)]


def _choice_sets(items: pd.DataFrame, actions: list[str], cfg: TrialSetConfig) -> dict[str, list]:
    """Per item, the offered actions (true one included), drawn from the seed and the item id,
    or fixed per action by a choices file."""
    k = cfg.k if cfg.k else (len(actions) if len(actions) <= 8 else 5)
    if not 2 <= k <= len(actions):
        raise BadInput(f"--k: choices per trial must be between 2 and the number of actions "
                       f"({len(actions)}), got {k}")
    fixed = read_choices_file(Path(cfg.choices_file), actions) if cfg.choices_file else None
    sets = {}
    for item_id, action in zip(items.item_id, items.action):
        rng = derive_rng(cfg.seed, "choices/" + item_id)
        if fixed is not None:
            offered = list(fixed[action])
        else:
            others = [a for a in actions if a != action]
            offered = [action] + [others[j] for j in rng.choice(len(others), k - 1,
                                                                replace=False)]
        sets[item_id] = [offered[j] for j in rng.permutation(len(offered))]
    return sets


def read_choices_file(path: Path, actions: list[str]) -> dict[str, list[str]]:
    schema = Schema(name="choices file", required=("action", "choices"),
                    checks={"action": non_empty, "choices": non_empty}, unique=("action",))
    df = read_csv(path, schema)
    fixed = {}
    for i, (action, choices) in enumerate(zip(df.action, df.choices)):
        listed = split_choices(choices)
        unknown = [c for c in listed + [action] if c not in actions]
        if unknown:
            raise BadInput(f"{where(path, i + 2, 'choices')}: unknown action {unknown[0]!r}")
        if action not in listed:
            raise BadInput(f"{where(path, i + 2, 'choices')}: must include {action!r} itself")
        fixed[action] = listed
    missing = [a for a in actions if a not in fixed]
    if missing:
        raise BadInput(f"{path}: no choice set for action(s) {', '.join(missing)}")
    return fixed


def _conflict_pairs(items: pd.DataFrame, cfg: TrialSetConfig) -> list[tuple[str, str]]:
    """(body item, background item) pairs on the test split: each body item of one action gets
    the background of a test item of another action, drawn with the seed."""
    test = items[items.split == "test"].sort_values("item_id")
    pairs = []
    for action, group in test.groupby("action", sort=True):
        body_ids = list(group.item_id)
        if cfg.conflict_per_action is not None:
            rng = derive_rng(cfg.seed, "conflict-select/" + action)
            pick = rng.choice(len(body_ids), min(cfg.conflict_per_action, len(body_ids)),
                              replace=False)
            body_ids = [body_ids[j] for j in sorted(pick)]
        candidates = test[(test.action != action)]
        for body_id in body_ids:
            body_shape = test.loc[test.item_id == body_id, "n_frames"].iloc[0]
            pool = candidates[candidates.n_frames == body_shape]
            if pool.empty:
                continue
            rng = derive_rng(cfg.seed, "conflict/" + body_id)
            pairs.append((body_id, pool.item_id.iloc[int(rng.integers(len(pool)))]))
    return pairs


def finalize(out_dir: str | Path, cfg: TrialSetConfig, run_config: object = None) -> Path:
    """Merge all shards of `out_dir` into `trials.csv` with conflict trials and choice sets."""
    out = Path(out_dir)
    manifest_path = out / "trials.csv"
    if manifest_path.exists():
        raise BadInput(f"{manifest_path}: already exists (nothing is overwritten)")
    parts = [read_csv(p, ITEMS_SCHEMA) for p in _shard_files(out)]
    items = pd.concat(parts, ignore_index=True).sort_values("item_id", ignore_index=True)
    dup = items.item_id.duplicated()
    if dup.any():
        raise BadInput(f"{out}: item {items.item_id[dup].iloc[0]!r} was built by two shards")
    if items.empty:
        raise BadInput(f"{out}: no items were kept, so there is nothing to make trials from "
                       f"(see rejected.csv)")
    actions = sorted(set(items.action))
    if len(actions) < 2:
        raise BadInput(f"{out}: trials need at least 2 actions, found {actions}")
    choices = _choice_sets(items, actions, cfg)
    rows = []
    by_id = items.set_index("item_id")
    for it in items.itertuples(index=False):
        for cond in VIEWS:
            rows.append(dict(
                trial_id=f"{it.item_id}-{cond}", item_id=it.item_id, action=it.action,
                condition=cond, split=it.split,
                stimulus=_stim_path(cond, it.item_id, int(it.n_frames)).as_posix(),
                n_frames=it.n_frames, fps=it.fps, sha256=getattr(it, f"sha256_{cond}"),
                choices=join_choices(choices[it.item_id]), source=it.source, frame=it.frame,
                mask_fraction=it.mask_fraction, segmenter=it.segmenter, mask_iou=it.mask_iou))
    for body_id, bg_id in _conflict_pairs(items, cfg):
        body, bg = by_id.loc[body_id], by_id.loc[bg_id]
        n = int(body.n_frames)
        original = _read_frames(out / _stim_path("original", body_id, n))
        masks = _read_frames(out / _stim_path("masks", body_id, n).relative_to("stimuli"),
                             gray=True) > 127
        background = _read_frames(out / _stim_path("background", bg_id, n))
        frames = np.stack([conflict(o, m, b) for o, m, b in zip(original, masks, background)])
        rel = _stim_path("conflict", body_id, n)
        sha = _write_frames(out, rel, frames)
        offered = list(choices[body_id])
        if bg.action not in offered:
            # the background's action must be on offer, or following the scene is impossible
            rng = derive_rng(cfg.seed, "conflict-choice/" + body_id)
            swap = [j for j, a in enumerate(offered) if a != body.action]
            offered[swap[int(rng.integers(len(swap)))]] = bg.action
        rows.append(dict(
            trial_id=f"{body_id}-conflict", item_id=body_id, action=body.action,
            condition="conflict", split="test", stimulus=rel.as_posix(), n_frames=n,
            fps=body.fps, sha256=sha, choices=join_choices(offered), source=body.source,
            frame=body.frame, mask_fraction=body.mask_fraction, segmenter=body.segmenter,
            mask_iou=body.mask_iou, body_action=body.action, background_action=bg.action,
            background_item=bg_id))
    counts = report_counts(out, items, rows, cfg)
    write_manifest(manifest_path, rows)
    _contact_sheet(out, items, cfg)
    mask_sheet(out, items)
    write_run_record(out, run_config if run_config is not None else cfg, cfg.seed,
                     name="stimuli_run.json", n_items=len(items), n_trials=len(rows),
                     actions=actions, trials_per_condition=counts)
    return manifest_path


def report_counts(out: Path, items: pd.DataFrame, rows: list[dict],
                  cfg: TrialSetConfig) -> dict[str, int]:
    """Say how many trials each condition got, at the end of every build; a condition the user
    asked for that came out empty is an error (conflict trials are asked for unless
    --conflict-per-action is 0), so a run never silently produces none."""
    counts = {c: sum(r["condition"] == c for r in rows) for c in CONDITIONS}
    line = "trials per condition: " + ", ".join(f"{c} {counts[c]}" for c in CONDITIONS)
    print(line)
    if counts["conflict"] == 0 and cfg.conflict_per_action != 0:
        test = sorted(set(items.action[items.split == "test"]))
        raise BadInput(f"{out}: no conflict trials ({line}): they pair test-split items of two "
                       f"different actions, and the test split has items of {len(test)} "
                       f"action(s){' (' + ', '.join(test) + ')' if test else ''}; keep more "
                       f"test videos (HAA500 indices 017-019) or pass --conflict-per-action 0")
    empty = [c for c in CONDITIONS if counts[c] == 0]
    if empty:
        print(f"warning: no {' or '.join(empty)} trials in this set ({line})", file=sys.stderr)
    return counts


def mask_sheet(out: Path, items: pd.DataFrame, limit: int = 48, cell: int = 128,
               columns: int = 8) -> Path:
    """`masks_sheet.png`, for reviewing segmentation where no exact mask exists (real footage):
    up to `limit` items (every action first, then by id), each its middle frame with the mask
    used tinted red and outlined, and its mask fraction. The synthetic world has mask_iou."""
    chosen = items.sort_values("item_id").groupby("action", sort=True).head(
        max(1, limit // max(1, items.action.nunique())))
    chosen = chosen.head(limit)
    tiles = []
    for it in chosen.itertuples(index=False):
        n = int(it.n_frames)
        frames = _read_frames(out / _stim_path("original", it.item_id, n))
        masks = _read_frames(out / _stim_path("masks", it.item_id, n).relative_to("stimuli"),
                             gray=True) > 127
        img, mask = frames[len(frames) // 2], masks[len(masks) // 2]
        tinted = img.copy()
        tinted[mask] = (0.55 * img[mask] + 0.45 * np.array([255, 0, 0])).astype(np.uint8)
        h, w = img.shape[:2]
        s = cell / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = cv2.resize(tinted, size, interpolation=cv2.INTER_AREA)
        edge = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(edge, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(small, contours, -1, (255, 255, 0), 1)
        tile = np.full((cell + 14, cell, 3), 255, np.uint8)
        tile[:small.shape[0], :small.shape[1]] = small
        cv2.putText(tile, f"{it.item_id[:22]} {100 * float(it.mask_fraction):.0f}%",
                    (2, cell + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    blank = np.full((cell + 14, cell, 3), 255, np.uint8)
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[k:k + columns], axis=1) for k in range(0, len(tiles), columns)]
    path = out / "masks_sheet.png"
    cv2.imwrite(str(path), np.concatenate(rows, axis=0)[..., ::-1])
    return path


def _contact_sheet(out: Path, items: pd.DataFrame, cfg: TrialSetConfig, cell: int = 128) -> Path:
    """A grid for visual QC: one row per sampled test item, columns original / body /
    background / conflict (the middle frame of a clip)."""
    test = items[items.split == "test"]
    pool = test if not test.empty else items
    rng = derive_rng(cfg.seed, "contact-sheet")
    # one item of each action first (so every action gets looked at), then any others
    pool = pool.sort_values("item_id", ignore_index=True)
    order = list(rng.permutation(len(pool)))
    first = {}
    for j in order:
        first.setdefault(pool.action.iloc[j], j)
    ranked = list(first.values()) + [j for j in order if j not in set(first.values())]
    pick = sorted(ranked[:min(cfg.contact_sheet_items, len(pool))],
                  key=lambda j: (pool.action.iloc[j], pool.item_id.iloc[j]))
    rows = []
    header = np.full((24, cell * len(CONDITIONS), 3), 255, np.uint8)
    for j, cond in enumerate(CONDITIONS):
        cv2.putText(header, cond, (j * cell + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    rows.append(header)
    for idx in pick:
        it = pool.iloc[idx]
        n = int(it.n_frames)
        tiles = []
        for cond in CONDITIONS:
            path = out / _stim_path(cond, it.item_id, n)
            if path.exists():
                frames = _read_frames(path)
                img = frames[len(frames) // 2]
                h, w = img.shape[:2]
                s = cell / max(h, w)
                img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                                 interpolation=cv2.INTER_NEAREST if s >= 1 else cv2.INTER_AREA)
                tile = np.full((cell, cell, 3), 128, np.uint8)
                tile[:img.shape[0], :img.shape[1]] = img
            else:
                tile = np.full((cell, cell, 3), 200, np.uint8)
            tiles.append(tile)
        row = np.concatenate(tiles, axis=1)
        for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):   # outlined: any scene
            cv2.putText(row, f"{it.action}", (4, cell - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        colour, width, cv2.LINE_AA)
        rows.append(row)
    sheet = np.concatenate(rows, axis=0)
    path = out / "contact_sheet.png"
    cv2.imwrite(str(path), sheet[..., ::-1])
    return path
