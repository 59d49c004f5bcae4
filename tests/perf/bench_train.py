"""Training-harness benchmarks (not collected by pytest); every figure is a ratio against a
baseline measured in the same run, so machine speed cancels out.

(a) harness overhead: `train()` images/s over a minimal hand-written PyTorch loop (same model,
    data and batch size; the loop holds the decoded images as one float tensor)   target >= 0.9
(b) two-stream cost: DomainNet step time / (2 x baseline step time), both through `train()`
                                                                                 target <= 1.05
(c) data loading: steps/s with real cached data (gather, augment, normalise) over steps/s on a
    constant in-memory batch                                                      target >= 0.95

    python tests/perf/bench_train.py [--backbone resnet18 --image-size 64 --batch-size 32]

Each figure is the best of `--repeats` interleaved measurements (other processes on the machine
only ever slow a measurement down). A `train()` rate is its metrics.csv images/s (epoch time
without validation), from the epochs after the first (the first warms up)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for write_toy_manifest


def harness_rate(trials: Path, root: Path, tag: str, args, model: str) -> float:
    from bodyscene.benchmark.harness.train import TrainConfig, train

    out = root / f"{tag}"
    train(TrainConfig(trials=str(trials), model=model, backbone=args.backbone, out=str(out),
                      epochs=args.epochs, lr=0.01, batch_size=args.batch_size,
                      image_size=args.image_size, seed=0, progress=False, device=args.device))
    metrics = pd.read_csv(out / "metrics.csv")
    return float(metrics["images_per_s"].iloc[1:].median())


def train_frames(trials: Path, args):
    from bodyscene.benchmark.harness.data import TrialFrames
    from bodyscene.stimuli.manifest import actions_of, read_manifest

    manifest = read_manifest(trials)
    return TrialFrames(manifest, ("original",), args.image_size, actions_of(manifest),
                       split="train", conditions=("original",), progress=False)


def hand_loop_rate(frames, args, constant: bool) -> float:
    """The loop anyone would write: images pre-decoded into one normalised float tensor,
    shuffled batches (or one constant batch), forward, cross-entropy, backward, SGD step."""
    from bodyscene.benchmark.harness.data import to_input
    from bodyscene.models.registry import create_model

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model("baseline", len(frames.actions), backbone=args.backbone).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pixels, labels, _ = frames.batch(np.arange(len(frames)))
    images = to_input(pixels, device)[0]
    labels = labels.to(device)
    steps = max(1, len(frames) // args.batch_size)

    def epoch() -> float:
        t0 = time.perf_counter()
        order = torch.randperm(len(frames))
        for s in range(steps):
            idx = order[:args.batch_size] if constant else \
                order[s * args.batch_size:(s + 1) * args.batch_size]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        float(loss.detach())
        return steps * args.batch_size / (time.perf_counter() - t0)

    rates = [epoch() for _ in range(args.epochs)]
    return float(np.median(rates[1:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--frames", type=int, default=192, help="training frames in the toy set")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from conftest import write_toy_manifest

    root = Path(tempfile.mkdtemp(prefix="bench_train_"))
    per_action = max(1, args.frames // 4)
    trials = write_toy_manifest(root / "toy", actions=("a", "b", "c", "d"),
                                items_per_split={"train": per_action, "val": 2, "test": 1},
                                size=args.image_size, conflict=False)
    frames = train_frames(trials, args)
    best = {k: 0.0 for k in ("harness", "domainnet", "hand", "constant")}
    for r in range(args.repeats):
        best["harness"] = max(best["harness"], harness_rate(trials, root, f"b{r}", args,
                                                            "baseline"))
        best["hand"] = max(best["hand"], hand_loop_rate(frames, args, constant=False))
        best["domainnet"] = max(best["domainnet"], harness_rate(trials, root, f"d{r}", args,
                                                                "domainnet"))
        best["constant"] = max(best["constant"], hand_loop_rate(frames, args, constant=True))
    print(f"setup: {args.backbone} at {args.image_size} px, batch {args.batch_size}, "
          f"{len(frames)} training frames, {args.threads} threads, device {args.device}")
    print("images/s: " + ", ".join(f"{k} {v:.1f}" for k, v in best.items()))
    a = best["harness"] / best["hand"]
    b = best["harness"] / (2 * best["domainnet"])  # = step(DomainNet) / (2 step(baseline))
    c = best["harness"] / best["constant"]
    print(f"(a) harness / hand-written loop images/s      = {a:.3f}  (target >= 0.9)")
    print(f"(b) DomainNet step / (2 x baseline step)      = {b:.3f}  (target <= 1.05)")
    print(f"(c) cached real data / constant batch steps/s = {c:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
