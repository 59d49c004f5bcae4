"""Evaluation's cost (not collected by pytest).

Figures, each a ratio against a baseline measured in the same run:
  throughput ratio   the API path, `bodyscene.evaluate(...)` (what `evaluate --model` calls:
                     manifest read and validated, files written, predictions read back as a
                     DataFrame), over a bare loop that reads the same frames with cv2, resizes,
                     normalises and runs the same model at the same batch size: for an image model
                     (torchvision resnet18) on single frames and for r3d_18 on clips.
                     Target >= 0.9.
  peak memory ratio  peak RSS of a process evaluating ~10,000 frames over one evaluating ~1,000
                     (streamed frames: target ~1.0, flat), and the same with `--cache memory`
                     for contrast.

    OMP_NUM_THREADS=2 python tests/perf/bench_evaluate.py [--size 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_toy_manifest  # noqa: E402


def bare_loop(model, trials: Path, size: int, batch: int, clip_frames: int | None,
              mean, std) -> float:
    """The same frames, the same model and batch size, with nothing of the harness."""
    import cv2
    import pandas as pd

    df = pd.read_csv(trials)
    df = df[df["split"] == "test"]
    root = trials.parent
    m = torch.tensor(mean).view(1, 3, 1, 1) * 255
    s = torch.tensor(std).view(1, 3, 1, 1) * 255

    def load(path: Path) -> np.ndarray:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)[..., ::-1]

    t0 = time.perf_counter()
    items = []
    for stim in df["stimulus"]:
        p = root / stim
        if clip_frames is None:
            items.append([p])
        else:
            frames = sorted(p.glob("*.png"))
            pick = np.floor((np.arange(clip_frames) + 0.5) * len(frames) / clip_frames)
            items.append([frames[int(i)] for i in pick])
    if clip_frames is None:  # a frame model sees every frame of a clip
        items = [[f] for it in items for f in it]
    with torch.inference_mode():
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            x = torch.from_numpy(np.stack([[load(f) for f in it] for it in chunk]))
            x = (x.permute(0, 1, 4, 2, 3).float() - m.unsqueeze(1)) / s.unsqueeze(1)
            if clip_frames is None:
                x = x[:, 0]
            else:
                x = x.permute(0, 2, 1, 3, 4)
            model(x).softmax(1).numpy()
    return time.perf_counter() - t0


def api_path(name: str, trials: Path, **kw) -> float:
    import bodyscene

    t0 = time.perf_counter()
    bodyscene.evaluate(name, trials, device="cpu", **kw)
    return time.perf_counter() - t0


def throughput(tmp: Path, size: int, repeats: int) -> None:
    from bodyscene.models.registry import create_model

    image = write_toy_manifest(tmp / "img", size=size, items_per_split={"test": 40},
                               actions=("kick", "punch", "wave"))
    clips = write_toy_manifest(tmp / "clip", size=size, clip_frames=8,
                               items_per_split={"test": 10}, actions=("kick", "punch", "wave"))
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp / "r18.pth")
    torch.save(torchvision.models.video.r3d_18(weights=None).state_dict(), tmp / "r3d.pth")
    cases = [
        ("resnet18, frames", image, None, 32, "torchvision", {"arch": "resnet18"}, tmp / "r18.pth"),
        ("r3d_18, 8-frame clips", clips, 8, 8, "r3d_18", {"frames": 8}, tmp / "r3d.pth"),
    ]
    for label, trials, t, batch, name, options, weights in cases:
        model = create_model(name, 3, weights=str(weights), **options).eval()
        tv = create_model(name, 3, weights=str(weights), **options)
        mean = tv.input_transform.get("mean", (0.485, 0.456, 0.406))
        std = tv.input_transform.get("std", (0.229, 0.224, 0.225))
        # "stretch" = the bare loop's plain resize (the stimuli are square either way)
        bare, ours = [], []
        for r in range(repeats):
            bare.append(bare_loop(model, trials, size, batch, t, mean, std))
            ours.append(api_path(name, trials, weights=weights, options=options,
                                 image_size=size, batch_size=batch,
                                 out=tmp / f"p{r}" / f"{name}.csv"))
        n = len(__import__("pandas").read_csv(trials).query("split == 'test'"))
        print(f"{label}: {n} test trials, batch {batch}, {size}px: bare loop "
              f"{min(bare):.2f} s, bodyscene.evaluate {min(ours):.2f} s, throughput ratio "
              f"{min(bare) / min(ours):.2f} (best of {repeats})")


def peak(tmp: Path, items: int, cache: str, size: int) -> tuple[int, float]:
    trials = tmp / f"mem{items}" / "trials.csv"
    if not trials.exists():
        write_toy_manifest(trials.parent, size=size, clip_frames=8,
                           items_per_split={"test": items}, actions=("kick", "punch", "wave"))
    frames = 3 * items * 4 * 8
    out = tmp / f"pm{items}{cache}" / "tiny.csv"
    # VmHWM, not ru_maxrss: a forked child's ru_maxrss starts at its parent's peak.
    code = ("import sys; from bodyscene.cli import main; "
            f"rc = main(['evaluate', '--model', 'baseline', '--option', 'backbone=\"tiny\"', "
            f"'--image-size', '{size}', '--trials', '{trials}', '--out', '{out}', '--cache', "
            f"'{cache}', '--device', 'cpu', '--quiet']); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]);"
            " sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr[-2000:])
    return frames, int(proc.stdout.split()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--mem-size", type=int, default=112)
    ap.add_argument("--memory-only", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.memory_only:
            throughput(tmp, args.size, args.repeats)
        for cache in ("stream", "memory"):
            (f1, m1), (f2, m2) = (peak(tmp, 10, cache, args.mem_size),
                                  peak(tmp, 105, cache, args.mem_size))
            print(f"peak RSS, --cache {cache}: {f1} frames {m1:.0f} MiB, {f2} frames "
                  f"{m2:.0f} MiB, ratio {m2 / m1:.2f}")


if __name__ == "__main__":
    main()
