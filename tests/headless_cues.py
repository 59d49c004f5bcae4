"""Which offline cue tells a person seen without a head from a person-free frame (issue 23)?

Not a test: a measurement behind the issue's status, kept so anyone can repeat it. On the
head-cropped videos of tests/real_photos.py (chest down, waist down, hands only; 128 frames) and
its person-free coffee crops (64 frames), each candidate cue gives one score per frame. A cue can
only be used with a threshold above every person-free score (else it makes false detections);
the table prints, per cue, the highest person-free score and the recall above it, that is the
best recall the cue can give with no false detection on these frames, a threshold tuned on the
very frames it is measured on (an optimistic figure).

Cues: the SSDLite person detector the mediapipe backend uses (ssd_person.py); from the MediaPipe
0.10.21 wheel, the pose-landmark model run on the whole frame (presence, visibility of the
lower- and upper-body landmarks), the palm detector, the hand-landmark model's hand flag and the
selfie mask (area above 0.5, peak); and a COCO object detector, MB3-CenterNet as the MIT npm
package `@vladmandic/human` 3.3.6 ships it (TensorFlow.js graph, read here by a small reader of
our own), person heat-map peak at three input sizes.

    npm pack @vladmandic/human@3.3.6          # -> vladmandic-human-3.3.6.tgz
    pip download mediapipe==0.10.21 --no-deps --only-binary=:all: --python-version 3.11 \\
        --platform manylinux_2_28_x86_64 -d .
    python tests/headless_cues.py --human vladmandic-human-3.3.6.tgz \\
        --mediapipe-wheel mediapipe-0.10.21-*.whl [--csv scores.csv]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
import tarfile
import zipfile

import cv2
import numpy as np

import real_photos as rp
from bodyscene.errors import BadInput

CENTERNET = ("package/models/centernet.json", "package/models/centernet.bin")
WHEEL_MODELS = {
    "palm": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}


# -- a TensorFlow.js graph model, run with torch up to the outputs asked for ------------------
def _tfjs_weights(manifest: list, data: bytes) -> dict[str, np.ndarray]:
    """Weights from the model's one binary shard: float32/int32 as stored, float16 and
    uint8/uint16 quantized ones expanded to float32."""
    if len(manifest) != 1:
        raise ValueError(f"expected one weight group, got {len(manifest)}")
    out, off = {}, 0
    for w in manifest[0]["weights"]:
        n = int(np.prod(w["shape"])) if w["shape"] else 1
        q = w.get("quantization")
        kind = np.dtype({"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16,
                         "float32": np.float32, "int32": np.int32, "bool": np.bool_}
                        [q["dtype"] if q else w["dtype"]])
        raw = np.frombuffer(data, kind, n, off)
        off += n * kind.itemsize
        if q:
            raw = raw.astype(np.float32)
            if q["dtype"] != "float16":
                raw = raw * q["scale"] + q["min"]
        out[w["name"]] = raw.reshape(w["shape"])
    if off != len(data):
        raise ValueError(f"the weights take {off} bytes, the shard has {len(data)}")
    return out


class TfjsGraph:
    """The ops MB3-CenterNet's backbone and heads use (NHWC graph, run as NCHW)."""

    def __init__(self, graph: dict, data: bytes, outputs: list[str]):
        import torch

        self.torch = torch
        self.nodes = {n["name"]: n for n in graph["modelTopology"]["node"]}
        self.consts = _tfjs_weights(graph["weightsManifest"], data)
        self.outputs, self.order, seen = outputs, [], set()
        stack = [(o, False) for o in outputs]
        while stack:                                   # depth first, inputs before readers
            name, done = stack.pop()
            if done:
                self.order.append(name)
            elif name not in seen:
                seen.add(name)
                stack.append((name, True))
                stack += [(i.split(":")[0], False) for i in self._inputs(name)]
        self.kernels = {}
        for name in self.order:
            op = self.nodes[name]["op"]
            if op in ("_FusedConv2D", "Conv2D"):
                w = torch.from_numpy(self.consts[self._inputs(name)[1]].copy())
                self.kernels[name] = w.permute(3, 2, 0, 1).contiguous()
            elif op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
                w = torch.from_numpy(self.consts[self._inputs(name)[1]].copy())
                self.kernels[name] = w.permute(2, 3, 0, 1).reshape(-1, 1, *w.shape[:2])

    def _inputs(self, name: str) -> list[str]:
        return [i for i in self.nodes[name].get("input", []) if not i.startswith("^")]

    def _conv(self, x, name: str, depthwise: bool):
        F = self.torch.nn.functional
        attr = self.nodes[name].get("attr", {})
        stride = int(attr["strides"]["list"]["i"][1]) if "strides" in attr else 1
        w = self.kernels[name]
        if base64.b64decode(attr.get("padding", {}).get("s", "U0FNRQ==")) == b"SAME":
            (h, wd), (kh, kw) = x.shape[2:], w.shape[2:]
            ph = max((math.ceil(h / stride) - 1) * stride + kh - h, 0)
            pw = max((math.ceil(wd / stride) - 1) * stride + kw - wd, 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))   # TF pads the end more
        fused = [base64.b64decode(s).decode()
                 for s in attr.get("fused_ops", {}).get("list", {}).get("s", [])]
        bias = (self.torch.from_numpy(self.consts[self._inputs(name)[2]].copy())
                if fused[:1] == ["BiasAdd"] else None)
        y = F.conv2d(x, w, bias, stride=stride, groups=x.shape[1] if depthwise else 1)
        for op in fused[1:]:
            y = y.clamp(0, 6) if op == "Relu6" else F.relu(y)
        return y

    def __call__(self, x):
        torch, F = self.torch, self.torch.nn.functional
        v = {}

        def get(name):
            name = name.split(":")[0]
            if name in v:
                return v[name]
            c = torch.from_numpy(np.asarray(self.consts[name], np.float32).copy())
            return c.reshape(1, -1, 1, 1) if c.ndim == 1 and c.numel() > 1 else c

        with torch.inference_mode():
            for name in self.order:
                op, ins = self.nodes[name]["op"], self._inputs(name)
                if op == "Const":
                    continue
                if op == "Placeholder":
                    v[name] = x
                elif op in ("_FusedConv2D", "Conv2D"):
                    v[name] = self._conv(get(ins[0]), name, False)
                elif op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
                    v[name] = self._conv(get(ins[0]), name, True)
                elif op in ("Add", "AddV2", "Mul"):
                    a, b = get(ins[0]), get(ins[1])
                    v[name] = a * b if op == "Mul" else a + b
                elif op in ("Relu6", "Relu", "Sigmoid", "Identity"):
                    a = get(ins[0])
                    v[name] = {"Relu6": lambda t: t.clamp(0, 6), "Relu": F.relu,
                               "Sigmoid": torch.sigmoid, "Identity": lambda t: t}[op](a)
                elif op == "Mean":                      # squeeze-and-excite: over H and W
                    v[name] = get(ins[0]).mean((2, 3), keepdim=True)
                elif op == "ConcatV2":                  # along channels
                    v[name] = torch.cat([get(i) for i in ins[:-1]], 1)
                elif op == "ResizeBilinear":            # the heads' x2 upsampling, any input size
                    a = get(ins[0])
                    v[name] = F.interpolate(a, size=(2 * a.shape[2], 2 * a.shape[3]),
                                            mode="bilinear", align_corners=False)
                else:
                    raise NotImplementedError(f"{name}: op {op}")
        return [v[o] for o in self.outputs]


def centernet(human_tgz: str) -> TfjsGraph:
    with tarfile.open(human_tgz) as tf:
        graph = json.load(tf.extractfile(CENTERNET[0]))
        data = tf.extractfile(CENTERNET[1]).read()
    return TfjsGraph(graph, data, ["tower_0/keypoints"])


# -- the cues ----------------------------------------------------------------------------------
def _letterbox(frame: np.ndarray, side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = side / max(h, w)
    nh, nw = round(h * s), round(w * s)
    out = np.zeros((side, side, 3), np.float32)
    py, px = (side - nh) // 2, (side - nw) // 2
    out[py:py + nh, px:px + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def _run(interpreter, x: np.ndarray) -> dict[str, np.ndarray]:
    from bodyscene.stimuli.segmenters.mediapipe_tflite import _run as run_float32

    return run_float32(interpreter, x.astype(np.float32))


class Cues:
    def __init__(self, human_tgz: str, wheel: str):
        import tempfile

        import torch
        from ai_edge_litert.interpreter import Interpreter

        from bodyscene.stimuli.segmenters.mediapipe_tflite import find_detector, find_models
        from bodyscene.stimuli.segmenters.ssd_person import PersonDetector

        torch.set_num_threads(1)
        self.torch = torch
        models = find_models()
        self.ssd = PersonDetector(find_detector(), 0.01, 1)
        self.cn = centernet(human_tgz)

        def load(path):
            it = Interpreter(model_path=str(path), num_threads=1)
            it.allocate_tensors()
            return it

        self.landmark = load(models["pose_landmark_full.tflite"])
        self.selfie = load(models["selfie_segmentation.tflite"])
        self._tmp = tempfile.TemporaryDirectory(prefix="headless-cues-")
        with zipfile.ZipFile(wheel) as zf:
            for key, inner in WHEEL_MODELS.items():
                path = f"{self._tmp.name}/{key}.tflite"
                with open(path, "wb") as fh:
                    fh.write(zf.read(inner))
                setattr(self, key, load(path))

    def __call__(self, frame: np.ndarray) -> dict[str, float]:
        sig = lambda x: 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))
        out = {"ssdlite": float(self.ssd.scores_and_boxes(frame)[0].max())}
        for side in (256, 384, 512):
            x = cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA
                           if side <= frame.shape[0] else cv2.INTER_LINEAR).astype(np.float32)
            (heat,) = self.cn(self.torch.from_numpy(x).permute(2, 0, 1)[None])
            out[f"centernet_{side}"] = float(heat[0, 0].max())     # class 0: person
        lm = _run(self.landmark, _letterbox(frame, 256) / 255.0)
        vis = sig(lm["Identity"][0].reshape(39, 5)[:33, 3])
        out["pose_presence"] = float(lm["Identity_1"][0, 0])
        out["pose_lower_visibility"] = float(np.sort(vis[23:33])[-4:].mean())
        out["pose_upper_visibility"] = float(np.sort(vis[11:23])[-4:].mean())
        out["palm"] = float(sig(_run(self.palm, _letterbox(frame, 192) / 255.0)
                                ["Identity_1"][0, :, 0]).max())
        out["hand_flag"] = float(_run(self.hand, _letterbox(frame, 224) / 255.0)
                                 ["Identity_1"][0, 0])
        sel = next(iter(_run(self.selfie, cv2.resize(frame, (256, 256),
                                                     interpolation=cv2.INTER_AREA) / 255.0)
                        .values()))[0, :, :, 0]
        out["selfie_area"] = float((sel > 0.5).mean())
        out["selfie_peak"] = float(sel.max())
        return out


def scores(cues: Cues):
    import pandas as pd

    rows = []
    for (name, kind), region in rp.HEADLESS.items():
        img = rp.photo(name)
        for motion in ("pan", "zoom"):
            for t, f in enumerate(rp.region_frames(img, region, motion)[0]):
                rows.append({"person": True, "video": f"{name} {kind} {motion}", "t": t,
                             **cues(f)})
    coffee = rp.photo("coffee")
    for k, region in enumerate(rp.EMPTY_REGIONS):
        for motion in ("pan", "zoom"):
            for t, f in enumerate(rp.region_frames(coffee, region, motion)[0]):
                rows.append({"person": False, "video": f"coffee {k} {motion}", "t": t,
                             **cues(f)})
    return pd.DataFrame(rows)


def table(df):
    import pandas as pd

    person = df["person"]
    rows = []
    for cue in [c for c in df.columns if c not in ("person", "video", "t")]:
        ceiling = df.loc[~person, cue].max()
        hit = df[cue] > ceiling
        rows.append({"cue": cue, "person-free max": ceiling,
                     "person min": df.loc[person, cue].min(),
                     "recall above person-free max": hit[person].mean(),
                     "videos with a miss": df.loc[person & ~hit, "video"].nunique()})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--human", required=True, help="the @vladmandic/human 3.3.6 npm tarball")
    ap.add_argument("--mediapipe-wheel", required=True, help="a mediapipe 0.10.21 wheel")
    ap.add_argument("--csv", help="also write every frame's scores here")
    args = ap.parse_args()
    try:
        cues = Cues(args.human, args.mediapipe_wheel)
    except BadInput as exc:                 # the segmenter's own models are not fetched
        sys.exit(str(exc))
    except (OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as exc:
        sys.exit(f"--human {args.human} / --mediapipe-wheel {args.mediapipe_wheel}: expected "
                 f"the @vladmandic/human 3.3.6 npm tarball and a mediapipe 0.10.21 wheel "
                 f"({type(exc).__name__}: {exc})")
    df = scores(cues)
    if args.csv:
        df.to_csv(args.csv, index=False)
    n_person, n_free = int(df["person"].sum()), int((~df["person"]).sum())
    print(f"{n_person} head-cropped frames ({df[df.person].video.nunique()} videos), "
          f"{n_free} person-free frames; issue 23 asks recall >= 0.98, no video with a miss, "
          f"<= 2 % false detections")
    print(table(df).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    person = df["person"]
    for a, b in (("ssdlite", "centernet_256"),):
        # the two detectors together, each above its own person-free maximum
        hit = (df[a] > df.loc[~person, a].max()) | (df[b] > df.loc[~person, b].max())
        print(f"{a} or {b}, each above its person-free max: recall "
              f"{hit[person].mean():.3f}, videos with a miss "
              f"{df.loc[person & ~hit, 'video'].nunique()} "
              f"({', '.join(sorted(df.loc[person & ~hit, 'video'].unique()))})")


if __name__ == "__main__":
    main()
