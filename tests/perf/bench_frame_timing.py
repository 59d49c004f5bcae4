"""Frame timing of a 200-trial session on the virtual display (Xvfb), answered by xdotool.

Prints intended vs measured stimulus durations (mean, sd, max error), dropped frames, and the
ratio measured/intended (intended = whole refreshes at the monitor profile's rate, the baseline
of the same run). Xvfb has no vertical blank, so the runner paces flips in software: these
numbers show the runner's own overhead on a busy machine, not a lab display's timing (check that
with the same columns of a real session's data file).

    python tests/perf/bench_frame_timing.py [--trials 200] [--duration 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan  # noqa: E402
from bodyscene.human_study.responses import read_responses  # noqa: E402
from bodyscene.human_study.session import responses_path  # noqa: E402
from conftest import write_toy_manifest  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--duration", type=float, default=0.1, help="stimulus seconds")
    ap.add_argument("--display", default=":188")
    args = ap.parse_args()
    actions = ("clap", "kick", "wave", "jump", "run")
    per_action = -(-args.trials // len(actions))
    work = Path(tempfile.mkdtemp(prefix="bench-frames-"))
    manifest = write_toy_manifest(work / "toy", actions=actions, size=32,
                                  items_per_split={"val": 1, "test": per_action})
    plan = read_plan(make_plan(manifest, work / "plan", PlanConfig(
        n_participants=1, practice_items=0, break_every=10_000, max_run=4,
        stimulus_s=args.duration)))
    lab = work / "lab.json"
    lab.write_text(json.dumps({"monitor": {"resolution": [640, 480], "refresh_hz": 60.0},
                               "timing": {"fixation_s": 0.05, "iti_s": 0.02}}))
    xvfb = subprocess.Popen(["Xvfb", args.display, "-screen", "0", "800x600x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": args.display}
    data = work / "data"
    path = responses_path(data, "P01", 1)
    n = len(plan.trials("P01"))
    try:
        time.sleep(1.0)
        run = subprocess.Popen([sys.executable, "-m", "bodyscene.cli", "experiment", "run",
                                "--plan", str(plan.dir), "--participant", "P01", "--data",
                                str(data), "--config", str(lab), "--windowed", "--window-size",
                                "640x480"], env=env, stdout=subprocess.DEVNULL)
        window = ""
        while not window:
            time.sleep(0.3)
            window = subprocess.run(["xdotool", "search", "--name", "bodyscene P01"], env=env,
                                    capture_output=True, text=True).stdout.split("\n")[0]
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env)
        t0 = time.time()
        while run.poll() is None:
            subprocess.run(["xdotool", "key", "space", "1"], env=env)
            time.sleep(0.05)
        wall = time.time() - t0
    finally:
        xvfb.terminate()
    df = read_responses(path)
    record = json.loads((data / f"{path.stem}.run.json").read_text())
    intended = df["stim_intended_s"].astype(float).to_numpy()
    measured = df["stim_duration_s"].astype(float).to_numpy()
    dropped = df["dropped_frames"].astype(int).to_numpy()
    err = measured - intended
    print(f"trials {len(df)} of {n} planned, session wall {wall:.1f} s, display "
          f"{record['display']}")
    print(f"intended  mean {intended.mean() * 1000:.2f} ms (sd {intended.std() * 1000:.2f})")
    print(f"measured  mean {measured.mean() * 1000:.2f} ms, sd {measured.std() * 1000:.2f} ms, "
          f"max error {np.abs(err).max() * 1000:.2f} ms, median error "
          f"{np.median(err) * 1000:.2f} ms")
    print(f"dropped frames: {dropped.sum()} in total, {np.mean(dropped > 0) * 100:.1f}% of "
          f"trials lost at least one")
    print(f"ratio measured/intended: mean {np.mean(measured / intended):.3f}, "
          f"worst {np.max(measured / intended):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
