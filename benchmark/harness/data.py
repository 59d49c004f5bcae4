"""Trial frames for models: which images a model sees on a trial, decoded once into a cache.

The evaluation protocol (docs/harness.md) decides each view a model consumes:

| trial condition | `original` view   | `body` view                      | `background` view                     |
|-----------------|-------------------|----------------------------------|---------------------------------------|
| original        | the trial's image | the item's body stimulus         | the item's background stimulus        |
| body            | the trial's image | the trial's image                | blank                                 |
| background      | the trial's image | blank                            | the trial's image                     |
| conflict        | the trial's image | the body stimulus of `item_id`   | the background stimulus of `background_item` |

A clip trial contributes one sample per frame. Every frame is padded to a square, resized once and
kept as uint8 (in memory or a memory-mapped file), so no epoch after the first decodes a PNG.
Augmentation and normalisation run on whole batches on the training device; the paired views of
one frame share one geometric transform."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from bodyscene.stimuli.manifest import stimulus_frames

from bodyscene import VIEWS
from bodyscene.errors import BadInput, where

# ImageNet statistics, so torchvision weights see the inputs they were trained on; a blank view
# (all-zero pixels) is then the same black as a body stimulus's background.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------ the protocol

def view_sources(manifest: pd.DataFrame, trials: pd.DataFrame, views: Sequence[str],
                 manifest_path: str | Path = "trials.csv") -> list[list[Path | None]]:
    """Per trial, the stimulus each view shows (None = blank), by the protocol above.
    An item's stimuli are looked up by (item_id, condition) in the whole manifest (all splits)."""
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise BadInput(f"model view {bad[0]!r}: expected one of {', '.join(VIEWS)}")
    by_condition = {(r.item_id, r.condition): Path(r.path)
               for r in manifest.itertuples(index=False) if r.condition != "conflict"}
    row_of = {tid: i + 2 for i, tid in enumerate(manifest["trial_id"].tolist())}

    def find(trial, item: str, condition: str, column: str) -> Path:
        try:
            return by_condition[(item, condition)]
        except KeyError:
            raise BadInput(f"{where(manifest_path, row_of.get(trial.trial_id), column)}: trial "
                           f"{trial.trial_id!r} ({trial.condition}) needs the {condition} "
                           f"stimulus of item {item!r}, which the manifest lacks") from None

    out = []
    for t in trials.itertuples(index=False):
        own = Path(t.path)
        row: list[Path | None] = []
        for view in views:
            if view == "original" or view == t.condition:
                row.append(own)
            elif t.condition in ("body", "background"):
                row.append(None)
            elif t.condition == "original":
                row.append(find(t, t.item_id, view, "item_id"))
            elif view == "body":  # conflict: the body of its own item ...
                row.append(find(t, t.item_id, "body", "item_id"))
            else:  # ... on the background of the other action's item
                row.append(find(t, t.background_item, "background", "background_item"))
        out.append(row)
    return out


# ----------------------------------------------------------------------------------- caching

RESIZES = ("pad", "crop", "stretch")


def load_frame(path: Path, size: int, resize: str = "pad") -> np.ndarray:
    """One PNG as RGB uint8 (size, size, 3). `pad` (the default): padded with black to a square,
    then resized, so nothing is cut off; `crop`: the short side resized to `size`, then the
    centre cut out (torchvision's eval transform); `stretch`: resized, aspect ignored."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInput(f"{path}: not a readable image")
    h, w = img.shape[:2]
    if resize == "stretch" or (resize == "crop" and h == w):
        interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
        return np.ascontiguousarray(img[..., ::-1])
    if resize == "crop":
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)
        top, left = (nh - size) // 2, (nw - size) // 2
        return np.ascontiguousarray(img[top:top + size, left:left + size, ::-1])
    side = max(h, w)
    if h != w:
        top, left = (side - h) // 2, (side - w) // 2
        img = cv2.copyMakeBorder(img, top, side - h - top, left, side - w - left,
                                 cv2.BORDER_CONSTANT, value=(0, 0, 0))
    if side != size:
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img[..., ::-1])


class FrameCache:
    """Decoded frames in one uint8 array (N + 1, size, size, 3); the last row is the blank view.
    `where="memory"` keeps it in RAM, `"mmap"` in a temporary memory-mapped file (for sets larger
    than RAM), any other string is a folder for that file."""

    def __init__(self, files: Sequence[Path], size: int, where: str = "memory",
                 threads: int = 2, progress: bool = True, resize: str = "pad"):
        from tqdm import tqdm

        self.size = size
        self.row = {f: i for i, f in enumerate(files)}
        shape = (len(files) + 1, size, size, 3)
        self._tmp = None
        if where == "memory":
            self.array = np.zeros(shape, np.uint8)
        else:
            folder = None if where == "mmap" else Path(where)
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="frames-", suffix=".u8", dir=folder)
            os.close(fd)
            self._tmp = Path(name)
            self.array = np.memmap(self._tmp, np.uint8, "w+", shape=shape)
        with ThreadPoolExecutor(max(1, threads)) as pool:  # cv2 releases the GIL
            frames = pool.map(lambda f: load_frame(f, size, resize), files)
            for i, frame in enumerate(tqdm(frames, total=len(files), desc="decode frames",
                                           unit="img", disable=not progress, leave=False)):
                self.array[i] = frame
        self.blank = len(files)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Pixels of cache rows (any shape of indices) -> (*rows.shape, size, size, 3)."""
        return self.array[rows]

    def close(self) -> None:
        if self._tmp is not None:
            del self.array
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class StreamedFrames:
    """FrameCache's interface without the cache: each batch's frames are decoded when it is
    gathered, so evaluating any number of frames holds one batch in memory (`cache="stream"`,
    evaluation's default: it sees most frames once)."""

    def __init__(self, files: Sequence[Path], size: int, threads: int = 2,
                 resize: str = "pad"):
        self.files, self.size, self.resize = list(files), size, resize
        self.row = {f: i for i, f in enumerate(self.files)}
        self.blank = len(self.files)
        self._pool = ThreadPoolExecutor(max(1, threads))  # cv2 releases the GIL

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        out = np.zeros((*rows.shape, self.size, self.size, 3), np.uint8)
        wanted = np.unique(rows[rows != self.blank])
        decoded = dict(zip(wanted.tolist(), self._pool.map(
            lambda r: load_frame(self.files[r], self.size, self.resize), wanted.tolist())))
        flat, pixels = rows.reshape(-1), out.reshape(-1, self.size, self.size, 3)
        for i, r in enumerate(flat.tolist()):
            if r != self.blank:
                pixels[i] = decoded[r]
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False)


# ----------------------------------------------------------------------------------- dataset

class TrialFrames:
    """The frames of some trials, each as the views a model consumes.

    Arrays, one entry per sample (= one frame of one trial): `trial` (row in `self.trials`),
    `frame`, `label` (index into `actions`), `index` (S, V) cache rows and `present` (S, V)
    bool. `batch(indices)` gathers uint8 pixels (B, V, H, W, 3) with no decoding."""

    def __init__(self, manifest: pd.DataFrame, views: Sequence[str], image_size: int,
                 actions: Sequence[str], split: str | None = None,
                 conditions: Sequence[str] | None = None, cache: str = "memory",
                 threads: int = 2, manifest_path: str | Path = "trials.csv",
                 progress: bool = True, resize: str = "pad"):
        trials = manifest
        if split is not None:
            trials = trials[trials["split"] == split]
        if conditions is not None:
            trials = trials[trials["condition"].isin(list(conditions))]
        self.trials = trials.reset_index(drop=True)
        self.views = tuple(views)
        self.actions = list(actions)
        label_of = {a: i for i, a in enumerate(self.actions)}
        unknown = sorted(set(self.trials["action"]) - set(label_of))
        if unknown:
            raise BadInput(f"{manifest_path}: action {unknown[0]!r} is not among the model's "
                           f"actions ({', '.join(self.actions)})")
        sources = view_sources(manifest, self.trials, self.views, manifest_path)
        frame_lists: dict[Path, list[Path]] = {}
        for row in sources:
            for src in row:
                if src is not None and src not in frame_lists:
                    frame_lists[src] = stimulus_frames(src)
        files = sorted({f for fl in frame_lists.values() for f in fl})
        self.cache = (StreamedFrames(files, image_size, threads, resize) if cache == "stream"
                      else FrameCache(files, image_size, cache, threads, progress, resize))
        trial, frame, label, index = [], [], [], []
        for i, (t, row) in enumerate(zip(self.trials.itertuples(index=False), sources)):
            lengths = {len(frame_lists[s]) for s in row if s is not None}
            if len(lengths) > 1:
                raise BadInput(f"{manifest_path}: trial {t.trial_id!r}: its views have "
                               f"different numbers of frames {sorted(lengths)}")
            n = lengths.pop() if lengths else int(t.n_frames)
            for k in range(n):
                trial.append(i)
                frame.append(k)
                label.append(label_of[t.action])
                index.append([self.cache.row[frame_lists[s][k]] if s is not None
                              else self.cache.blank for s in row])
        self.trial = np.asarray(trial, np.int64)
        self.frame = np.asarray(frame, np.int64)
        self.label = np.asarray(label, np.int64)
        self.index = np.asarray(index, np.int64).reshape(len(trial), len(self.views))
        self.present = self.index != self.cache.blank

    def __len__(self) -> int:
        return len(self.label)

    def batch(self, indices: np.ndarray, drop: np.ndarray | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uint8 pixels (B, V, H, W, 3), labels (B,), present (B, V) for sample `indices`;
        views where `drop` (B, V) is true are shown blank (view dropout)."""
        indices = np.asarray(indices, np.int64)
        rows = self.index[indices]
        if drop is not None:
            rows = np.where(drop, self.cache.blank, rows)
        pixels = self.cache.take(rows)
        return (torch.from_numpy(np.ascontiguousarray(pixels)),
                torch.from_numpy(self.label[indices]),
                torch.from_numpy(rows != self.cache.blank))

    def __getitem__(self, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Indexed by a whole batch, so a DataLoader with batch_size=None and a batch sampler
        # gathers in its workers with one fancy-indexing call per batch.
        return self.batch(indices)


# ----------------------------------------------------------------------------------- sampling

class ClassBalancedSampler:
    """The paper's sampling: a class uniformly, then one of its frames uniformly.

    Drop-in for DistributedSampler: `set_epoch`, `num_replicas`, `rank`. An epoch's order is a
    pure function of (seed, epoch), so a resumed run draws exactly what the killed one would
    have, and every rank agrees on the global order (each takes its own share)."""

    def __init__(self, labels: np.ndarray, num_samples: int | None = None, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0):
        labels = np.asarray(labels)
        self.classes = np.unique(labels)
        order = np.argsort(labels, kind="stable")
        self.members = order
        counts = np.array([(labels == c).sum() for c in self.classes])
        self.starts, self.counts = np.cumsum(counts) - counts, counts
        self.num_samples = num_samples or len(labels)
        self.seed, self.epoch = seed, 0
        self.num_replicas, self.rank = num_replicas, rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_order(self, epoch: int | None = None) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else epoch])
        cls = rng.integers(0, len(self.classes), self.num_samples)
        pick = (rng.random(self.num_samples) * self.counts[cls]).astype(np.int64)
        return self.members[self.starts[cls] + pick]

    def __iter__(self) -> Iterator[int]:
        per_rank = self.num_samples // self.num_replicas
        mine = self.global_order()[self.rank::self.num_replicas][:per_rank]
        return iter(mine.tolist())

    def __len__(self) -> int:
        return self.num_samples // self.num_replicas


# ------------------------------------------------------------------------------ augmentation

@dataclass(frozen=True)
class Augment:
    """Training augmentation (the authors used colour jitter and blur): a random flip, shift and
    scale shared by the views of one frame, brightness/contrast jitter and an occasional blur."""

    flip: bool = True
    shift: float = 0.1
    scale: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    blur_p: float = 0.1

    def draw(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Parameters for n frames; drawn on the CPU for the whole global batch, so results do
        not depend on the device or on how a batch is split across processes."""
        u = torch.rand(n, 7, generator=generator)
        return {
            "flip": (u[:, 0] < 0.5) & self.flip,
            "shift": (u[:, 1:3] * 2 - 1) * self.shift * 2,  # in [-1, 1] grid units
            "scale": 1 + (u[:, 3] * 2 - 1) * self.scale,
            "brightness": 1 + (u[:, 4] * 2 - 1) * self.brightness,
            "contrast": 1 + (u[:, 5] * 2 - 1) * self.contrast,
            "blur": u[:, 6] < self.blur_p,
        }


def to_input(pixels: torch.Tensor, device: torch.device | str = "cpu",
             params: dict[str, torch.Tensor] | None = None,
             channels_last: bool = False, mean: Sequence[float] = MEAN,
             std: Sequence[float] = STD, bgr: bool = False,
             layout: str = "NTCHW") -> list[torch.Tensor]:
    """uint8 (B, V, H, W, 3) -> one normalised float tensor (B, 3, H, W) per view, on `device`,
    augmented with `params` (from `Augment.draw`) when given. Clips, uint8 (B, T, V, H, W, 3),
    become (B, T, 3, H, W) per view, or (B, 3, T, H, W) with `layout="NCTHW"`; the frames of one
    clip share one augmentation. `mean`/`std` (0..1 scale) and `bgr` are the model's own."""
    if pixels.dim() == 6:
        n, t = pixels.shape[:2]
        if params is not None:
            params = {k: v.repeat_interleave(t, dim=0) for k, v in params.items()}
        flat = to_input(pixels.reshape(n * t, *pixels.shape[2:]), device, params, False,
                        mean, std, bgr)
        clips = [x.view(n, t, *x.shape[1:]) for x in flat]
        if layout == "NCTHW":
            clips = [x.permute(0, 2, 1, 3, 4) for x in clips]
        return [x.contiguous() for x in clips]
    if bgr:
        pixels = pixels.flip(-1)
    norm_mean, norm_std = mean, std
    b, v, h, w, c = pixels.shape
    # Work on 0..255 floats in (B, V*C, H, W): one grid per frame then moves all its views at
    # once, so paired views stay aligned; normalisation is folded into one in-place pass.
    x = pixels.to(device, non_blocking=True).permute(0, 1, 4, 2, 3).reshape(b, v * c, h, w)
    x = x.float()
    if params is not None:
        p = {k: t.to(x.device) for k, t in params.items()}
        sx = torch.where(p["flip"], -p["scale"], p["scale"])
        theta = torch.zeros(b, 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 1, 1] = sx, p["scale"]
        theta[:, :, 2] = p["shift"]
        grid = F.affine_grid(theta, (b, v * c, h, w), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        x = x.view(b, v, c, h, w)
        # Contrast around each view's own mean, so a blank view stays black.
        mean = x.mean(dim=(2, 3, 4), keepdim=True)
        x = (x - mean).mul_(p["contrast"].view(b, 1, 1, 1, 1)).add_(mean)
        x = x.mul_(p["brightness"].view(b, 1, 1, 1, 1)).view(b, v * c, h, w)
        which = p["blur"].nonzero().flatten()
        if len(which):
            x[which] = _blur(x[which])
        x = x.clamp_(0, 255)
    mean = torch.tensor(norm_mean, device=x.device).repeat(v).mul_(255).view(1, v * c, 1, 1)
    scale = torch.tensor(norm_std, device=x.device).repeat(v).mul_(255).reciprocal_()
    x = x.sub_(mean).mul_(scale.view(1, v * c, 1, 1)).view(b, v, c, h, w)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    if v == 1:
        return [x[:, 0].contiguous(memory_format=memory)]
    return [x[:, k].contiguous(memory_format=memory) for k in range(v)]


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 binomial blur, separable (a grouped conv is several times slower on CPU)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    h = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    return (h[..., :-2, :] + 2 * h[..., 1:-1, :] + h[..., 2:, :]) / 16


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Full batches only (every rank takes an equal share of each); at least one."""
    return max(1, num_samples // batch_size) if num_samples >= batch_size else 1


def batch_slices(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    n = steps_per_epoch(len(order), batch_size)
    size = min(batch_size, len(order))
    return [order[i * size:(i + 1) * size] for i in range(n)]
