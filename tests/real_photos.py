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
    from bodyscene.stimuli.segmenters.mediapipe_tflite import find_detector, find_models

    from bodyscene.errors import BadInput

    try:
        find_models()
        find_detector()
    except BadInput as exc:
        return str(exc)
    return None


# --- people seen without a head (issue 23) ----------------------------------------------------
# Regions of the photos (x0, y0, x1, y1) with no head in them, each shown as a pan and a zoom
# video like the others: the person fills part of every frame. Placed by eye below the chin.
HEADLESS = {
    ("astronaut", "chest down"): (0, 190, 500, 512),
    ("astronaut", "waist down"): (0, 330, 500, 512),
    ("astronaut", "hands only"): (60, 400, 300, 512),
    ("camera", "chest down"): (0, 180, 330, 512),
    ("camera", "waist down"): (0, 300, 220, 512),
    ("camera", "hands only"): (245, 145, 335, 235),
    ("grace_hopper", "chest down"): (20, 345, 512, 600),
    ("grace_hopper", "waist down"): (20, 450, 512, 600),
}
# the same crops of the coffee photo, where nobody is: every detection there is a false one
EMPTY_REGIONS = ((0, 0, 600, 400), (0, 100, 600, 400), (150, 150, 450, 400), (300, 0, 600, 200))


def region_crop(region: tuple[int, int, int, int], motion: str, t: int) -> tuple[float, ...]:
    """Frame t's square inside `region` (x0, y0, side), moving as `crop` moves in a photo."""
    x0, y0, x1, y1 = region
    cx, cy, side = crop((y1 - y0, x1 - x0), motion, t)
    return x0 + cx, y0 + cy, side


def region_frames(img: np.ndarray, region, motion: str) -> tuple[list[np.ndarray], list]:
    """The video's frames and, per frame, the 2x3 map from frame to photo pixels."""
    out, maps = [], []
    for t in range(N_FRAMES):
        x0, y0, side = region_crop(region, motion, t)
        m = np.array([[side / SIDE, 0, x0], [0, side / SIDE, y0]])
        out.append(cv2.warpAffine(img, m, (SIDE, SIDE), flags=cv2.INTER_AREA |
                                  cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT))
        maps.append(m)
    return out, maps


def measure_headless(segmenter) -> dict:
    """Recall, false detections and mask agreement of `segmenter` without heads in view.

    recall: frames with a person found / frames with a person (all headless frames); dropped:
    videos with a frame where nobody was found (the `single` policy drops them whole); false
    rate: frames of the person-free coffee crops where anybody was found; IoU: per headless frame
    with a person found, its mask (all people found) against the segmenter's own mask of the
    whole photo, warped into that frame."""
    hits = frames_n = 0
    dropped, ious = [], []
    full = {}
    for (name, kind), region in HEADLESS.items():
        img = photo(name)
        if name not in full:
            (people,) = segmenter.segment([img])
            full[name] = people.masks.any(0) if len(people) else np.zeros(img.shape[:2], bool)
        for motion in ("pan", "zoom"):
            frames_, maps = region_frames(img, region, motion)
            found = segmenter.segment(frames_)
            missed = 0
            for people, m in zip(found, maps):
                frames_n += 1
                if len(people) == 0:
                    missed += 1
                    continue
                hits += 1
                truth = cv2.warpAffine(full[name].astype(np.uint8), m, (SIDE, SIDE),
                                       flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                       borderMode=cv2.BORDER_REFLECT) > 0   # as the frames
                mask = people.masks.any(0)
                ious.append(float((mask & truth).sum() / max((mask | truth).sum(), 1)))
            if missed:
                dropped.append(f"{name} {kind} {motion}")
    coffee, false = photo("coffee"), 0
    empty_n = 0
    for region in EMPTY_REGIONS:
        for motion in ("pan", "zoom"):
            for people in segmenter.segment(region_frames(coffee, region, motion)[0]):
                empty_n += 1
                false += len(people) > 0
    return {"frames": frames_n, "recall": hits / frames_n, "dropped": dropped,
            "videos": 2 * len(HEADLESS), "empty_frames": empty_n, "false_rate": false / empty_n,
            "iou_mean": float(np.mean(ious)) if ious else float("nan"),
            "iou_min": float(np.min(ious)) if ious else float("nan")}


def main(argv: list[str] | None = None) -> None:
    """`python tests/real_photos.py [--segmenter NAME] [--option KEY=VALUE ...]`: the figures."""
    import argparse

    from bodyscene.stimuli.segmenters import create_segmenter, describe

    ap = argparse.ArgumentParser(description=measure_headless.__doc__.splitlines()[0])
    ap.add_argument("--segmenter", default="mediapipe")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    options = {}
    for text in args.option:
        key, _, value = text.partition("=")
        options[key] = value
    seg = create_segmenter(args.segmenter, **options)
    r = measure_headless(seg)
    print(f"{describe(seg)} on {r['frames']} head-cropped frames ({r['videos']} videos) and "
          f"{r['empty_frames']} person-free frames:")
    print(f"  recall {r['recall']:.3f} (target >= 0.98); videos dropped {len(r['dropped'])} of "
          f"{r['videos']} (target 0)")
    print(f"  false detections {100 * r['false_rate']:.1f}% of person-free frames (target <= 2%)")
    print(f"  IoU vs the whole photo's mask: mean {r['iou_mean']:.3f}, min {r['iou_min']:.3f} "
          f"(target >= 0.85)")
    for v in r["dropped"]:
        print(f"  dropped: {v}")


if __name__ == "__main__":
    main()
