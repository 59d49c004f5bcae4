"""`--segmenter yolo`: Ultralytics YOLO segmentation from a local weights file, the paper's choice
(yolov8x-seg). Ultralytics is imported lazily and in offline mode, so nothing is downloaded or
reported home."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from bodyscene.errors import BadInput
from bodyscene.extras import missing_extra, require

try:
    import cv2
except ModuleNotFoundError as exc:  # no stimuli extra: one line naming it
    raise missing_extra(exc) or exc

from . import People, register_segmenter

PERSON = 0   # COCO class id of 'person'


def _import_ultralytics():
    """Ultralytics in offline mode, with its usage reporting off (it would phone home)."""
    os.environ["YOLO_OFFLINE"] = "1"
    require("ultralytics", purpose="--segmenter yolo (Ultralytics, AGPL-3.0)")
    from ultralytics import YOLO, settings

    if settings.get("sync", False):
        settings.update({"sync": False})
    return YOLO


@register_segmenter("yolo")
def make_yolo(weights: str | None = None, image_size: int = 640, conf: float = 0.25,
              batch_size: int = 1, device: str | None = None) -> YoloSegmenter:
    """The factory behind `--segmenter yolo`: `--weights` is required."""
    if weights is None:
        raise BadInput("--segmenter yolo needs --weights: a local Ultralytics segmentation "
                       "checkpoint such as yolov8x-seg.pt (the paper's; nothing is fetched at "
                       "run time), or use --segmenter mediapipe, which needs no weights file")
    return YoloSegmenter(weights, imgsz=image_size, conf=conf, batch=batch_size, device=device)


class YoloSegmenter:
    """Ultralytics YOLO segmentation, person class only, masks at the frame's full resolution.

    `weights` is a local `.pt` file; a model `.yaml` (e.g. `yolov8n-seg.yaml`, resolved from
    Ultralytics' bundled configs) builds the architecture with random weights, which is what
    tests and timing use. Batching pays off on a GPU; on a CPU batch=1 is as fast."""

    def __init__(self, weights: str | Path, imgsz: int = 640, conf: float = 0.25,
                 batch: int = 1, device: str | None = None):
        weights = str(weights)
        is_yaml = weights.endswith((".yaml", ".yml"))
        if not is_yaml and not Path(weights).is_file():
            raise BadInput(f"--weights {weights}: weights file not found (download a YOLO "
                           f"segmentation model such as yolov8x-seg.pt once and pass its path; "
                           f"nothing is fetched at run time)")
        if not 0.0 < conf < 1.0:
            raise BadInput(f"--conf: a detection threshold in (0, 1), got {conf}")
        if imgsz < 32:
            raise BadInput(f"--image-size: at least 32 pixels, got {imgsz}")
        if batch < 1:
            raise BadInput(f"--batch-size: at least 1, got {batch}")
        YOLO = _import_ultralytics()
        try:
            self.model = YOLO(weights)
        except Exception as exc:  # a corrupt or foreign file: say which, in one line
            raise BadInput(f"--weights {weights}: cannot load as an Ultralytics model "
                           f"({type(exc).__name__}: {exc})".replace("\n", " ")) from None
        if getattr(self.model, "task", "segment") != "segment":
            raise BadInput(f"--weights {weights}: a {self.model.task} model, expected a "
                           f"segmentation model (e.g. yolov8x-seg.pt)")
        self.name = "yolo"
        self.settings = {"weights": Path(weights).name, "conf": conf, "image_size": imgsz}
        self.imgsz, self.conf, self.batch, self.device = imgsz, conf, batch, device

    def segment(self, frames: Sequence[np.ndarray]) -> list[People]:
        out: list[People] = []
        for i in range(0, len(frames), self.batch):
            chunk = [np.ascontiguousarray(f[..., ::-1]) for f in frames[i:i + self.batch]]
            results = self.model.predict(chunk, imgsz=self.imgsz, conf=self.conf,
                                         classes=[PERSON], retina_masks=True, verbose=False,
                                         device=self.device, save=False)
            for frame, r in zip(chunk, results):
                out.append(_people(r, frame.shape[0], frame.shape[1]))
        return out


def _people(result, height: int, width: int) -> People:
    """One Ultralytics result as bool masks at (height, width), person class only."""
    masks = getattr(result, "masks", None)
    if masks is None or result.boxes is None or len(result.boxes) == 0:
        return People.none(height, width)
    data = masks.data.detach().cpu().numpy() > 0.5
    keep = result.boxes.cls.detach().cpu().numpy().astype(int) == PERSON
    data, scores = data[keep], result.boxes.conf.detach().cpu().numpy()[keep].astype(np.float32)
    if data.shape[1:] != (height, width):
        # retina masks come at the input size already; this only guards other backends
        data = np.stack([cv2.resize(m.astype(np.uint8), (width, height),
                                    interpolation=cv2.INTER_NEAREST).astype(bool)
                         for m in data]) if len(data) else np.zeros((0, height, width), bool)
    return People(data, scores)
