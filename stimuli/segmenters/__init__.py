"""Person segmenters are plugins, like models: frames in, the people on each frame out.

A segmenter is any object with `name` (the backend, e.g. "yolo"), `settings` (a dict of its own
options as it resolved them: recorded in the run record and the manifest's `segmenter` column),
`batch` (frames it wants per call) and `segment(frames) -> list[People]`. `create_segmenter`
finds one by name in three places, in this order: the built-ins registered here (`yolo`,
`mediapipe`), a `"package.module:factory"` string, and the entry-point group
`bodyscene.segmenters`; a factory is called with the options the user gave, and only those.
An optional `miss_hint` (one sentence: whom it is known to miss, what to do) is added to the
build's warning when an action loses most of its videos to "no person detected".

`clean_people` is the build's first step on every frame, whatever the backend: it drops small
disconnected pieces of masks (a stray blob of a building) before people are counted, so the
exactly-one-person rule counts people rather than blobs, and no floating patch is composed; and
it joins masks that repeat one person (one lying mostly inside another, as a second detection of
the same body gives), so a person is counted once however the backend split them, while two
people, whose masks at most touch or partly overlap, are still two."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from bodyscene.errors import BadInput
from bodyscene.plugins import entry_points, import_callable, load_entry_point

ENTRY_POINT_GROUP = "bodyscene.segmenters"
MIN_PART = 0.02   # a piece smaller than 2% of the frame's largest person is not a person's part
SAME_PERSON = 0.5  # a mask lying this much inside another (of the smaller one) repeats that person

_REGISTRY: dict[str, Callable[..., Any]] = {}


@dataclass
class People:
    """The people found on one frame: masks (N, H, W) bool and detection scores (N,)."""

    masks: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.masks)

    @classmethod
    def none(cls, height: int, width: int) -> People:
        return cls(np.zeros((0, height, width), bool), np.zeros(0, np.float32))


class Segmenter(Protocol):
    """What the build needs from a segmenter (see the module docstring)."""

    name: str
    settings: dict
    batch: int

    def segment(self, frames: Sequence[np.ndarray]) -> list[People]:
        """Frames are (H, W, 3) uint8 RGB; masks come back at each frame's own size."""
        ...


def register_segmenter(name: str):
    """Decorator: record a factory `f(**options) -> Segmenter` under `name`."""
    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise BadInput(f"segmenter name {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory
    return wrap


def _builtins() -> None:
    """Import the built-in backends' modules (light: their heavy imports happen on use)."""
    from . import mediapipe_tflite, yolo  # noqa: F401  (importing registers them)


def list_segmenters() -> list[str]:
    _builtins()
    return sorted(set(_REGISTRY) | set(_entry_points()))


def _entry_points():
    return entry_points(ENTRY_POINT_GROUP, _REGISTRY, "segmenter", BadInput)


def resolve_segmenter(name: str) -> Callable[..., Any]:
    """The factory behind `name`: built in, `module:callable`, or an entry point."""
    _builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        return import_callable(name, f"--segmenter {name}", BadInput)
    eps = _entry_points()
    if name in eps:
        return load_entry_point(eps[name], f"--segmenter {name}", BadInput)
    raise BadInput(f"--segmenter {name}: unknown; known segmenters are "
                   f"{', '.join(list_segmenters())}, or give your own as "
                   f"'package.module:factory'")


def create_segmenter(name: str, **options: Any) -> Segmenter:
    """Build segmenter `name` with the options given (None values are left out, so each
    backend applies its own defaults). An option the backend does not take is one line."""
    factory = resolve_segmenter(name)
    options = {k: v for k, v in options.items() if v is not None}
    try:
        inspect.signature(factory).bind(**options)
    except TypeError:
        params = inspect.signature(factory).parameters
        bad = sorted(k for k in options if k not in params)
        flags = ", ".join("--" + k.replace("_", "-") for k in bad) or str(sorted(options))
        raise BadInput(f"--segmenter {name}: does not take {flags} (it takes "
                       f"{', '.join(params) or 'no options'})") from None
    except ValueError:
        pass  # no introspectable signature: let the call speak for itself
    seg = factory(**options)
    for attr in ("name", "batch", "segment"):
        if not hasattr(seg, attr):
            raise BadInput(f"--segmenter {name}: its factory returned {type(seg).__name__}, "
                           f"which has no {attr!r} (see docs/real_videos.md, the protocol)")
    return seg


def describe(segmenter: Any) -> str:
    """The manifest's `segmenter` value: the backend and its settings, e.g.
    `yolo(weights=yolov8x-seg.pt conf=0.25 image_size=640)`."""
    settings = getattr(segmenter, "settings", None) or {}
    if not settings:
        return str(segmenter.name)
    return f"{segmenter.name}(" + " ".join(f"{k}={v}" for k, v in settings.items()) + ")"


def clean_people(people: People, min_part: float = MIN_PART) -> People:
    """Drop every connected piece of a mask smaller than `min_part` of the frame's largest
    person (8-connectivity), then every mask left empty, then join repeats of one person
    (join_repeats), before anybody is counted. `min_part` 0 keeps every piece."""
    if len(people) == 0:
        return people
    if min_part <= 0:
        return join_repeats(people)
    import cv2

    areas = people.masks.reshape(len(people), -1).sum(axis=1)
    floor = min_part * float(areas.max())
    masks, scores = [], []
    for mask, score in zip(people.masks, people.scores):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
        keep = [j for j in range(1, n) if stats[j, cv2.CC_STAT_AREA] >= floor]
        if not keep:
            continue
        masks.append(mask if len(keep) == n - 1 else np.isin(labels, keep))
        scores.append(score)
    h, w = people.masks.shape[1:]
    if not masks:
        return People.none(h, w)
    return join_repeats(People(np.stack(masks), np.asarray(scores, np.float32)))


def join_repeats(people: People, same: float = SAME_PERSON) -> People:
    """Masks of one person, counted once: taken best score first, a mask of which at least
    `same` of the smaller of it and an earlier one lies inside that one is joined into it
    (their union, with the better score). Masks that are disjoint, touch, or overlap less stay
    separate people. The order of the first of each group is kept."""
    if len(people) < 2:
        return people
    areas = people.masks.reshape(len(people), -1).sum(axis=1)
    leader: dict[int, list[int]] = {}
    for i in np.argsort(-people.scores, kind="stable"):
        for lead, group in leader.items():
            union = people.masks[group].any(axis=0)
            inter = int((people.masks[i] & union).sum())
            if inter and inter >= same * min(int(areas[i]), int(union.sum())):
                group.append(int(i))
                break
        else:
            leader[int(i)] = [int(i)]
    if len(leader) == len(people):
        return people
    leads = sorted(leader)
    return People(np.stack([people.masks[leader[k]].any(axis=0) for k in leads]),
                  np.asarray([people.scores[leader[k]].max() for k in leads], np.float32))
