"""The demo's cost (not collected by pytest): `bodyscene demo` and `bodyscene demo --quick`, each
run as a user runs it (a fresh process, into a new folder), timed from outside.

Figures, each a ratio against something measured in the same run:
  wall / target          the full demo against its 3-minute budget (issue 20), --quick against
                         2 minutes
  wall / training        the whole demo over its two training stages (baseline + DomainNet):
                         what stimuli, evaluation, simulated observers, report and start-up add
  recipe speed-up        training images/s of the demo's recipe (metrics.csv of the full run)
                         over today's recipe before issue 16 (ResNet-18, 64 px, batch 32, lr 0.01)
                         trained one epoch per model on the same world in the same run  goal >= 3
  wall / old epoch       the full demo's wall time in epochs of today's recipe (baseline +
                         DomainNet one epoch each): a figure that transfers across machines
lscpu's model name and flags are printed with the timings.
Also printed: per-stage seconds, peak memory of the demo process, and whether the paper's effect
held on that run (the demo's own checks).

    python tests/perf/bench_demo.py [--seed 0] [--threads 2] [--skip-full]

The demo's --threads (default 2) is passed through; it fixes the numbers as well as the speed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS_S = {"quick": 120.0, "full": 180.0}


def run(kind: str, seed: int, root: Path, threads: int = 2) -> dict:
    out = root / kind
    cmd = [sys.executable, "-m", "bodyscene.cli", "demo", "--out", str(out), "--seed", str(seed),
           "--threads", str(threads)]
    if kind == "quick":
        cmd.append("--quick")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    demo = json.loads((out / "demo.json").read_text())
    return {"wall_s": wall, **demo}


def report(kind: str, r: dict) -> None:
    stages = r["timings"]["stages_s"]
    training = sum(v for k, v in stages.items() if k.startswith("train "))
    print(f"\n{kind} demo: wall {r['wall_s']:.1f} s, peak memory "
          f"{r['timings']['peak_rss_mb']:.0f} MB")
    print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(f"  wall / {TARGETS_S[kind]:.0f} s target = {r['wall_s'] / TARGETS_S[kind]:.3f}"
          f"  (< 1 meets the target)")
    print(f"  wall / training stages ({training:.1f} s) = {r['wall_s'] / training:.3f}")
    for c in r["checks"]:
        print(f"  [{'holds' if c['holds'] else 'FAILS'}] {c['check']}: {c['measured']}")


def old_recipe_epoch(trials: Path, root: Path, threads: int = 2) -> dict:
    """One epoch per model of the demo's recipe before issue 16, in this process."""
    import pandas as pd
    from bodyscene.benchmark.harness.train import TrainConfig, train

    rates = {}
    for model in ("baseline", "domainnet"):
        out = train(TrainConfig(trials=str(trials), model=model, backbone="resnet18",
                                out=str(root / f"old-{model}"), epochs=1, lr=0.01,
                                batch_size=32, image_size=64, seed=0, threads=threads,
                                progress=False))
        row = pd.read_csv(out / "metrics.csv").iloc[0]
        rates[model] = {"images_per_s": float(row["images_per_s"]),
                        "seconds": float(row["seconds"])}
    return rates


def lscpu_fields() -> dict[str, str] | None:
    """lscpu's `name: value` lines (None where lscpu is missing); bench_demo_robustness uses it."""
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return None
    return dict(line.split(":", 1) for line in info.splitlines() if ":" in line)


def cpu_line() -> str:
    fields = lscpu_fields()
    if fields is None:
        return "lscpu not available"
    return (f"CPU: {fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} "
            f"CPU(s); flags: {fields.get('Flags', '?').strip()}")


def compare(full: dict, out: Path, root: Path, threads: int = 2) -> None:
    import pandas as pd

    old = old_recipe_epoch(out / "stimuli" / "trials.csv", root, threads)
    print("\ndemo recipe vs today's recipe (ResNet-18, 64 px, batch 32), same world, same run:")
    for model in ("baseline", "domainnet"):
        new = pd.read_csv(out / "runs" / model / "metrics.csv")["images_per_s"].median()
        print(f"  {model}: {new:.0f} vs {old[model]['images_per_s']:.0f} images/s = "
              f"{new / old[model]['images_per_s']:.2f}x  (goal >= 3)")
    epoch = sum(v["seconds"] for v in old.values())
    print(f"  one epoch of today's recipe (both models): {epoch:.1f} s; demo wall "
          f"{full['wall_s']:.1f} s = {full['wall_s'] / epoch:.2f} such epochs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="the demo's --threads")
    ap.add_argument("--skip-full", action="store_true", help="time only --quick")
    args = ap.parse_args()
    print(cpu_line())
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as tmp:
        for kind in ("quick",) + (() if args.skip_full else ("full",)):
            result = run(kind, args.seed, Path(tmp), args.threads)
            report(kind, result)
            if kind == "full":
                compare(result, Path(tmp) / kind, Path(tmp), args.threads)
    # the children's peak, for a check on the figure the demo records itself
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\npeak memory of any demo process (OS account): {child:.0f} MB")


if __name__ == "__main__":
    main()
