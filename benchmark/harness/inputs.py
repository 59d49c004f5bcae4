"""What a model declares about its input, and clips built for models that want whole clips.

A model may set, as attributes (all optional; docs/evaluate_your_model.md):
- `input`: "frame" (default: one image per forward, a clip scored frame by frame) or "clip";
- `input_transform`: {"size", "mean", "std", "resize": pad | crop | stretch, "channels": RGB |
  BGR}; the default is the suite's own: pad to a square with black, resize, ImageNet mean/std;
- for clip models: `clip_frames` (T; None = all of the clip's frames), `clip_sampling`
  ("uniform": T frames spread evenly over the clip, "fps": T consecutive frames resampled to
  `clip_fps`, "all"), `clip_layout` ("NTCHW", default, or "NCTHW") and `num_clips` (temporal
  crops whose probabilities are averaged, as torchvision and MMAction2 test video models).
A single-image trial becomes a clip of T copies of its image (T = 1 under "all")."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bodyscene.errors import ModelError

from .data import MEAN, RESIZES, STD

INPUTS = ("frame", "clip")
SAMPLINGS = ("uniform", "fps", "all")
LAYOUTS = ("NTCHW", "NCTHW")


@dataclass(frozen=True)
class InputSpec:
    input: str = "frame"
    size: int = 224
    mean: tuple[float, ...] = MEAN
    std: tuple[float, ...] = STD
    resize: str = "pad"
    channels: str = "RGB"
    clip_frames: int | None = None
    clip_sampling: str = "uniform"
    clip_fps: float | None = None
    clip_layout: str = "NTCHW"
    num_clips: int = 1

    @property
    def clip(self) -> bool:
        return self.input == "clip"

    def record(self) -> dict[str, Any]:
        """What the run record keeps; clip fields only for clip models."""
        out = asdict(self)
        if not self.clip:
            for k in [k for k in out if k.startswith("clip_") or k == "num_clips"]:
                del out[k]
        return out

    def tensors(self) -> dict[str, Any]:
        """Keyword arguments of data.to_input."""
        return {"mean": self.mean, "std": self.std, "bgr": self.channels == "BGR",
                "layout": self.clip_layout}


def input_spec(model, size: int | None = None, clips: int | None = None,
               name: str = "") -> InputSpec:
    """The model's declaration, checked; `size` (a checkpoint's training size or --image-size)
    and `clips` (--clips) override it."""
    name = name or type(model).__name__
    t = dict(getattr(model, "input_transform", None) or {})
    unknown = sorted(set(t) - {"size", "mean", "std", "resize", "channels"})
    if unknown:
        raise ModelError(f"model {name!r}: input_transform key {unknown[0]!r}: expected size, "
                         f"mean, std, resize, channels")
    spec = InputSpec(
        input=getattr(model, "input", "frame"),
        size=int(size or t.get("size") or 224),
        mean=tuple(float(x) for x in t.get("mean", MEAN)),
        std=tuple(float(x) for x in t.get("std", STD)),
        resize=t.get("resize", "pad"), channels=t.get("channels", "RGB"),
        clip_frames=getattr(model, "clip_frames", None),
        clip_sampling=getattr(model, "clip_sampling", "uniform"),
        clip_fps=getattr(model, "clip_fps", None),
        clip_layout=getattr(model, "clip_layout", "NTCHW"),
        num_clips=int(clips or getattr(model, "num_clips", 1) or 1))
    for value, allowed, what in ((spec.input, INPUTS, "input"),
                                 (spec.resize, RESIZES, "input_transform resize"),
                                 (spec.channels, ("RGB", "BGR"), "input_transform channels"),
                                 (spec.clip_sampling, SAMPLINGS, "clip_sampling"),
                                 (spec.clip_layout, LAYOUTS, "clip_layout")):
        if value not in allowed:
            raise ModelError(f"model {name!r}: {what} {value!r}: expected one of "
                             f"{', '.join(allowed)}")
    if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.std) <= 0:
        raise ModelError(f"model {name!r}: input_transform mean and std are 3 numbers each "
                         f"(std > 0), got {spec.mean} and {spec.std}")
    if spec.clip_frames is not None and int(spec.clip_frames) < 1:
        raise ModelError(f"model {name!r}: clip_frames must be at least 1 or None (all), "
                         f"got {spec.clip_frames}")
    if spec.clip_sampling == "fps" and not spec.clip_fps:
        raise ModelError(f"model {name!r}: clip_sampling 'fps' needs clip_fps")
    if spec.num_clips < 1 or spec.size < 8:
        raise ModelError(f"model {name!r}: needs num_clips >= 1 and an input size >= 8, got "
                         f"{spec.num_clips} and {spec.size}")
    return spec


def clip_positions(n: int, fps: float, spec: InputSpec, k: int = 0) -> np.ndarray:
    """Which of a clip's n frames (0..n-1) make temporal crop k of spec.num_clips."""
    if spec.clip_sampling == "all":
        return np.arange(n)
    t, clips = int(spec.clip_frames or n), spec.num_clips
    if spec.clip_sampling == "uniform":
        # T segments; crop k takes the point (k + 0.5) / K of the way through each segment.
        pos = (np.arange(t) + (k + 0.5) / clips) * n / t
    else:  # consecutive frames at the model's fps, windows spread evenly over the clip
        step = float(fps) / float(spec.clip_fps)
        span = t * step
        start = (max(n - span, 0.0) * (k + 0.5) / clips) if clips > 1 else max(n - span, 0) / 2
        pos = start + np.arange(t) * step
    return np.clip(np.floor(pos).astype(np.int64), 0, n - 1)


class ClipFrames:
    """A TrialFrames seen as clips: entry = (trial, temporal crop), `batch` gives uint8
    (B, T, V, H, W, 3). Same interface as TrialFrames (`trial`, `label`, `actions`, `trials`,
    `cache`), so predict, aggregate and the training loop take either."""

    def __init__(self, frames, spec: InputSpec, clips: int | None = None):
        self.frames, self.spec = frames, spec
        self.actions, self.trials, self.cache = frames.actions, frames.trials, frames.cache
        clips = clips or spec.num_clips
        starts = np.flatnonzero(np.r_[True, frames.trial[1:] != frames.trial[:-1]]) \
            if len(frames) else np.zeros(0, np.int64)
        counts = np.diff(np.r_[starts, len(frames)])
        fps = self.trials["fps"].astype(float).to_numpy()
        rows, trial = [], []
        for s, n in zip(starts.tolist(), counts.tolist()):
            i = int(frames.trial[s])
            for k in range(clips):
                rows.append(s + clip_positions(n, fps[i], spec, k))
                trial.append(i)
        self.rows = rows
        self.trial = np.asarray(trial, np.int64)
        self.label = frames.label[[r[0] for r in rows]] if rows else np.zeros(0, np.int64)
        self.lengths = np.asarray([len(r) for r in rows], np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def record(self) -> dict[str, Any]:
        lengths = sorted(set(self.lengths.tolist()))
        return {"clip_lengths": lengths, "clips_per_trial": int(len(self) /
                                                                max(len(self.trials), 1))}

    def batch(self, indices: np.ndarray, drop: np.ndarray | None = None):
        """uint8 (B, T, V, H, W, 3), labels (B,), present (B, V); entries of one batch have one
        length (predict batches them so). `drop` (B, V) blanks a view in every frame."""
        indices = np.asarray(indices, np.int64)
        samples = np.stack([self.rows[i] for i in indices])           # (B, T)
        cache_rows = self.frames.index[samples]                       # (B, T, V)
        if drop is not None:
            cache_rows = np.where(drop[:, None, :], self.cache.blank, cache_rows)
        pixels = self.cache.take(cache_rows)
        present = (cache_rows != self.cache.blank).any(axis=1)
        return (torch.from_numpy(np.ascontiguousarray(pixels)),
                torch.from_numpy(self.label[indices]), torch.from_numpy(present))

    def __getitem__(self, indices):
        return self.batch(indices)


def model_frames(frames, spec: InputSpec):
    """What a model with `spec` is fed from a TrialFrames: itself, or its clips."""
    return ClipFrames(frames, spec) if spec.clip else frames
