"""Benchmark: the whole report on 28 participants x 240 trials and 10 models.

Target: the report in at most 10 s on the 2-core development machine. In one run this script
makes the study (not timed), then times

  load + validate   load_observations: every responses and predictions file read, checked
                    against the manifest (hashes, choices, duplicates) - the floor any report
                    pays
  report            make_report with the default 2000 bootstrap resamples: statistics (the
                    mixed model and GEE included), tables, figures (PNG + SVG), HTML, summary

and prints the report's wall time as a ratio against the 10 s target and against
load + validate, with the share of each stage (from the report's own run record) and the
report's CPU time (a steadier figure on a shared machine).

    python tests/perf/bench_report.py
    python tests/perf/bench_report.py --participants 28 --models 10 --bootstrap 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for the study writer

from bodyscene.benchmark.analysis.observations import load_observations  # noqa: E402
from bodyscene.benchmark.analysis.report import ReportConfig, make_report  # noqa: E402
from test_report import write_study  # noqa: E402

TARGET_S = 10.0
ACTIONS = ("clap", "kick", "wave", "run", "jump", "sit")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=28)
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="copy the report here (to look at it)")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    models = {f"model{m:02d}": dict(zip(("original", "body", "background", "conflict"),
                                        rng.uniform(0.3, 0.95, 4)))
              for m in range(args.models)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # 6 actions x 10 test items x 4 conditions = 240 trials per observer
        trials, responses, predictions = write_study(root / "study", args.participants,
                                                     models, seed=args.seed, actions=ACTIONS,
                                                     test_items=10)
        t0 = time.perf_counter()
        obs = load_observations(trials, responses, predictions)
        load_s = time.perf_counter() - t0
        n_people = obs.loc[obs["agent_kind"] == "human", "agent"].nunique()
        per = obs.groupby("agent").size()
        print(f"study: {n_people} participants x {int(per.median())} trials, "
              f"{obs.loc[obs['agent_kind'] == 'model', 'agent'].nunique()} models, "
              f"{len(obs)} answers")
        out = Path(args.keep) if args.keep else root / "report"
        t0, c0 = time.perf_counter(), time.process_time()
        make_report(trials, responses, predictions, out,
                    ReportConfig(bootstrap=args.bootstrap, seed=args.seed, progress=False))
        report_s = time.perf_counter() - t0
        report_cpu = time.process_time() - c0
        stages = json.loads((out / "report_run.json").read_text())["seconds"]
    print(f"load + validate: {load_s:.2f} s")
    print(f"whole report:    {report_s:.2f} s ({args.bootstrap} bootstrap resamples)")
    # CPU seconds of this process (all its threads): on a machine shared with other jobs the
    # wall time grows with their load, this much less
    print(f"  its CPU time   {report_cpu:6.2f} s")
    for stage in ("load", "statistics", "write_tables", "figures", "html"):
        s = stages[stage]
        print(f"  {stage:<13} {s:6.2f} s  {100 * s / report_s:5.1f} %")
    print(f"report / {TARGET_S:.0f} s target      = {report_s / TARGET_S:.3f}  "
          f"(<= 1 meets the target)")
    print(f"report / load + validate  = {report_s / load_s:.1f}")


if __name__ == "__main__":
    main()
