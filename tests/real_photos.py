"""Real footage for tests, made at test time from photos that ship inside installed packages:
scikit-image's `astronaut`, `camera` and `coffee` (no person) and matplotlib's
`grace_hopper.jpg`. Each becomes a short video of pan or zoom crops in HAA500's folder layout.

Points and boxes were placed by eye on the photos, in the photos' own pixels; `crop` maps them
into any frame of a video, so a test can ask whether a mask covers the person where they are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SIDE = 256       # video frames are SIDE x SIDE
N_FRAMES = 8


@dataclass(frozen=True)
class Photo:
    name: str
    on: tuple[tuple[int, int], ...]     # (x, y) points on the person
    off: tuple[tuple[int, int], ...]    # (x, y) points well away from the person
    core: tuple[int, int, int, int] | None   # x0, y0, x1, y1 inside the person: a mask's box holds it


PHOTOS = {
    "astronaut": Photo("astronaut", on=((215, 100), (120, 330), (60, 450)),
                       off=((470, 60), (20, 100), (400, 100)), core=(60, 80, 300, 450)),
    "camera": Photo("camera", on=((230, 110), (100, 350), (40, 480)),
                    off=((450, 50), (420, 450), (60, 60)), core=(40, 90, 290, 450)),
    "grace_hopper": Photo("grace_hopper", on=((265, 260), (260, 500), (100, 580)),
                          off=((490, 150), (40, 150)), core=(150, 60, 420, 580)),
    "coffee": Photo("coffee", on=(), off=(), core=None),
}

# action -> [(HAA500 index, photo, motion)]: 2 actions x 2 videos with a person (a train and a
# test video each, so conflict trials exist), and the coffee cup as a video with nobody in it
VIDEOS = {
    "portrait": [(0, "astronaut", "zoom"), (17, "grace_hopper", "pan")],
    "filming": [(0, "camera", "pan"), (1, "coffee", "pan"), (17, "camera", "zoom")],
}


def photo(name: str) -> np.ndarray:
    """The photo as (H, W, 3) uint8 RGB."""
    if name == "grace_hopper":
        import matplotlib.cbook as cbook
        import matplotlib.image as mimage

        img = mimage.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        return np.ascontiguousarray(img[..., :3])
    from skimage import data

    img = getattr(data, name)()
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def crop(shape: tuple[int, int], motion: str, t: int) -> tuple[float, float, float]:
    """Frame t's square crop of a photo of `shape` (h, w): (x0, y0, side). `pan` slides an
    80% square from left to right; `zoom` closes in from the whole short side to 80% of it."""
    h, w = shape
    short = min(h, w)
    k = t / (N_FRAMES - 1)
    if motion == "pan":
        side = 0.8 * short
        return k * (w - side), (h - side) / 2, side
    side = short * (1 - 0.2 * k)
    return (w - side) / 2, (h - side) / 2, side


def to_frame(points, shape, motion: str, t: int) -> np.ndarray:
    """Photo pixels -> frame t's pixels (points may fall outside the frame)."""
    x0, y0, side = crop(shape, motion, t)
    return (np.asarray(points, float).reshape(-1, 2) - [x0, y0]) * (SIDE / side)


def frames(name: str, motion: str) -> list[np.ndarray]:
    img = photo(name)
    out = []
    for t in range(N_FRAMES):
        x0, y0, side = crop(img.shape[:2], motion, t)
        m = np.array([[side / SIDE, 0, x0], [0, side / SIDE, y0]])
        out.append(cv2.warpAffine(img, m, (SIDE, SIDE), flags=cv2.INTER_AREA |
                                  cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT))
    return out


def write_videos(root: Path) -> Path:
    """The VIDEOS as HAA500 lays them out: root/video/<action>/<action>_<NNN>.mp4."""
    for action, videos in VIDEOS.items():
        for index, name, motion in videos:
            path = root / "video" / action / f"{action}_{index:03d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8,
                                     (SIDE, SIDE))
            assert writer.isOpened(), f"OpenCV cannot write {path}"
            for f in frames(name, motion):
                writer.write(np.ascontiguousarray(f[..., ::-1]))
            writer.release()
    return root


def source(action: str, index: int) -> tuple[str, str]:
    """(photo, motion) behind a video."""
    for i, name, motion in VIDEOS[action]:
        if i == index:
            return name, motion
    raise KeyError((action, index))


def unavailable() -> str | None:
    """Why the offline segmenter cannot run here (None when it can): the test then skips."""
    try:
        import skimage
    except ImportError:
        return "scikit-image is not installed (pip install -e '.[dev]')"
    try:
        import ai_edge_litert
    except ImportError:
        return "ai-edge-litert is not installed (pip install -e '.[realseg]'; CI installs it)"
    from bodyscene.stimuli.segmenters.mediapipe_tflite import find_models

    from bodyscene.errors import BadInput

    try:
        find_models()
    except BadInput as exc:
        return str(exc)
    return None
