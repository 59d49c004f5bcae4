"""Benchmark: coverage of the mixed model's 95% intervals when participants differ in their
condition effects (issue 19: 0.92-0.98 over >= 400 simulated studies).

Each study is a Latin-square design (4 conditions, each item once per participant) drawn with
participant intercepts (SD 1), item intercepts (SD 1) and participant condition slopes (SD
`--slope-sd`, 0.5 by default, logit scale); the planted condition effects are the targets.
In the same run it fits the random-intercepts-only model to the same studies, the baseline
whose intervals are too narrow here, and prints both coverages, their ratio, and the seconds
per study of each fit (CPU time; inflated on a loaded machine).

    python tests/perf/bench_glmm_coverage.py
    python tests/perf/bench_glmm_coverage.py --studies 400 --participants 16 --items 80
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for the simulation

from bodyscene.benchmark.analysis.stats.regression import fit_mixed  # noqa: E402
from test_glmm import ACCURACY, slope_study  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=400)
    ap.add_argument("--participants", type=int, default=16)
    ap.add_argument("--items", type=int, default=80)
    ap.add_argument("--slope-sd", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    logit = {c: math.log(a / (1 - a)) for c, a in ACCURACY.items()}
    rng = np.random.default_rng(args.seed)
    hits = {True: [], False: []}
    cpu = {True: 0.0, False: 0.0}
    for _ in range(args.studies):
        obs = slope_study(args.participants, args.items, ACCURACY, args.slope_sd, rng)
        for slopes in (True, False):
            t0 = time.process_time()
            table = fit_mixed(obs, slopes=slopes).set_index("term")
            cpu[slopes] += time.process_time() - t0
            for c in list(ACCURACY)[1:]:
                row = table.loc[f"condition[{c}]"]
                hits[slopes].append(row["ci_low"] <= logit[c] - logit["original"]
                                    <= row["ci_high"])
    cover = {k: float(np.mean(v)) for k, v in hits.items()}
    n = len(hits[True])
    print(f"{args.studies} studies of {args.participants} participants x {args.items} items, "
          f"slope SD {args.slope_sd}: {n} intervals per model")
    for slopes, name in ((True, "(1 + condition | participant) + (1 | item)"),
                         (False, "(1 | participant) + (1 | item)  [baseline]")):
        se = math.sqrt(cover[slopes] * (1 - cover[slopes]) / n)
        print(f"  {name:<46} coverage {cover[slopes]:.3f} (+- {1.96 * se:.3f}),  "
              f"{cpu[slopes] / args.studies:.3f} s CPU per fit")
    print(f"coverage slopes / intercepts-only = {cover[True] / cover[False]:.3f}; "
          f"target 0.92-0.98: {'met' if 0.92 <= cover[True] <= 0.98 else 'NOT met'}")


if __name__ == "__main__":
    main()
