"""Making the body, background and conflict stimuli of a frame from the frame and a person mask.

The paper's recipe: body = person pixels on black; background = the person mask dilated by 1.2 of
its extent and filled by OpenCV inpainting (the authors used Telea, radius 5), so no silhouette
survives to give the action away; conflict = the body of one action pasted, at the same position
and scale, on the inpainted background of another. All functions work on one RGB uint8 frame and
a bool mask; clips are composed frame by frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bodyscene.extras import missing_extra

try:
    import cv2
except ModuleNotFoundError as exc:  # no stimuli extra: one line naming it
    raise missing_extra(exc) or exc

from bodyscene.errors import BadInput

INPAINT_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def dilate_mask(mask: np.ndarray, factor: float = 1.2) -> np.ndarray:
    """Grow the mask so that its extent (the larger side of its bounding box) grows by `factor`:
    a margin of (factor - 1) / 2 of the extent on every side."""
    if factor <= 1.0 or not mask.any():
        return mask.copy()
    ys, xs = np.nonzero(mask)
    extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    radius = max(1, int(math.ceil((factor - 1.0) / 2.0 * extent)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def body_only(frame: np.ndarray, mask: np.ndarray, fill=(0, 0, 0)) -> np.ndarray:
    """Person pixels kept, everything else set to `fill` (black in the paper)."""
    out = np.empty_like(frame)
    out[...] = np.asarray(fill, dtype=frame.dtype)
    out[mask] = frame[mask]
    return out


def background_only(frame: np.ndarray, mask: np.ndarray, dilation: float = 1.2,
                    method: str = "telea", radius: float = 5.0) -> np.ndarray:
    """The scene with the (dilated) person region inpainted from its surroundings."""
    if method not in INPAINT_METHODS:
        raise BadInput(f"inpaint method must be one of {sorted(INPAINT_METHODS)}, got {method!r}")
    hole = dilate_mask(mask, dilation)
    if not hole.any():
        return frame.copy()
    return cv2.inpaint(np.ascontiguousarray(frame), hole.astype(np.uint8) * 255, radius,
                       INPAINT_METHODS[method])


def conflict(body_frame: np.ndarray, body_mask: np.ndarray,
             background: np.ndarray) -> np.ndarray:
    """The person of `body_frame` pasted at the same position and scale on another action's
    inpainted `background` (resized to the body frame's size if the videos differ)."""
    h, w = body_frame.shape[:2]
    if background.shape[:2] != (h, w):
        background = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA)
    out = background.copy()
    out[body_mask] = body_frame[body_mask]
    return out


@dataclass(frozen=True)
class MaskNoise:
    """Controlled segmentation error for sensitivity studies: `erode` removes and `dilate` adds
    `fraction` × mask-area pixels along the boundary (nearest first); `flip` toggles that many
    random pixels within the mask's bounding box grown by 10%."""

    kind: str
    fraction: float

    def __post_init__(self):
        if self.kind not in ("erode", "dilate", "flip"):
            raise BadInput(f"mask noise kind must be erode, dilate or flip, got {self.kind!r}")
        if not 0.0 <= self.fraction <= 1.0:
            raise BadInput(f"mask noise fraction must be in [0, 1], got {self.fraction}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.fraction:g}"


def perturb_mask(mask: np.ndarray, noise: MaskNoise | None,
                 rng: np.random.Generator) -> np.ndarray:
    if noise is None or noise.fraction == 0 or not mask.any():
        return mask.copy()
    n = int(round(noise.fraction * mask.sum()))
    out = mask.copy()
    if noise.kind in ("erode", "dilate"):
        region = mask if noise.kind == "erode" else ~mask
        # distance of each pixel in `region` to the boundary; the nearest ones change first,
        # ties broken randomly so the boundary erodes evenly
        dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
        idx = np.flatnonzero(region)
        order = np.lexsort((rng.random(idx.size), dist.ravel()[idx]))
        chosen = idx[order[:n]]
        out.ravel()[chosen] = noise.kind == "dilate"
        return out
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    my, mx = (ys.max() - ys.min() + 1) // 10 + 1, (xs.max() - xs.min() + 1) // 10 + 1
    y0, y1 = max(0, ys.min() - my), min(h, ys.max() + my + 1)
    x0, x1 = max(0, xs.min() - mx), min(w, xs.max() + mx + 1)
    box = np.arange(y0, y1)[:, None] * w + np.arange(x0, x1)[None, :]
    box = box.ravel()
    chosen = rng.choice(box, size=min(n, box.size), replace=False)
    out.ravel()[chosen] = ~out.ravel()[chosen]
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
