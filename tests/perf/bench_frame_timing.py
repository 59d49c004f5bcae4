"""Frame timing of 200-trial sessions on the virtual display (Xvfb), answered by xdotool.

For each intended duration (default 100 and 200 ms) one session runs with flips paced in
software (`--assume-refresh 60`: Xvfb has no vertical blank). Prints logged duration against
intended (mean, SD, worst; the ratio logged/intended, intended being the baseline of the same
run), dropped frames, an independent check of the log against PsychoPy's own frame-interval
record (`<stem>.frames.csv`: the intervals between the flip that showed each stimulus and the
flip that removed it must add up to the logged duration), and the CPU used by the idle
instruction screen (the process's user+system time over a few seconds of waiting).

    python tests/perf/bench_frame_timing.py [--trials 200] [--durations 0.1,0.2]
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan  # noqa: E402
from bodyscene.human_study.responses import read_responses  # noqa: E402
from bodyscene.human_study.session import responses_path  # noqa: E402
from conftest import write_toy_manifest  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session(work: Path, duration: float, n_trials: int, env: dict, idle_s: float) -> dict:
    actions = ("clap", "kick", "wave", "jump", "run")
    per_action = -(-n_trials // len(actions))
    manifest = write_toy_manifest(work / "toy", actions=actions, size=32,
                                  items_per_split={"val": 1, "test": per_action})
    plan = read_plan(make_plan(manifest, work / "plan", PlanConfig(
        n_participants=1, practice_items=0, catch_trials=0, break_every=10_000, max_run=4,
        stimulus_s=duration, conditions=("original", "body", "background"))))
    lab = work / "lab.json"
    lab.write_text(json.dumps({"monitor": {"resolution": [800, 600], "refresh_hz": 60.0},
                               "timing": {"fixation_s": 0.05, "iti_s": 0.02}}))
    data = work / "data"
    path = responses_path(data, "P01", 1)
    run = subprocess.Popen([sys.executable, "-m", "bodyscene.cli", "experiment", "run",
                            "--plan", str(plan.dir), "--participant", "P01", "--data",
                            str(data), "--config", str(lab), "--windowed", "--window-size",
                            "640x480", "--assume-refresh", "60"], env=env,
                           stdout=subprocess.DEVNULL)
    window = ""
    while not window:
        time.sleep(0.3)
        window = subprocess.run(["xdotool", "search", "--name", "bodyscene P01"], env=env,
                                capture_output=True, text=True).stdout.split("\n")[0]
    subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env)
    time.sleep(1.0)  # the instruction screen is up once the window has its title
    c0, t0 = cpu_seconds(run.pid), time.time()
    time.sleep(idle_s)
    idle_cpu = (cpu_seconds(run.pid) - c0) / (time.time() - t0)
    t0 = time.time()
    while run.poll() is None:
        subprocess.run(["xdotool", "key", "space", "1"], env=env)
        time.sleep(0.05)
    wall = time.time() - t0
    df = read_responses(path)
    frames = pd.read_csv(path.with_name(f"{path.stem}.frames.csv"))
    record = json.loads((data / f"{path.stem}.run.json").read_text())
    return {"df": df, "frames": frames, "record": record, "wall": wall, "idle_cpu": idle_cpu,
            "planned": len(plan.trials("P01")), "exit": run.returncode}


def report(duration: float, r: dict) -> None:
    df, frames = r["df"], r["frames"]
    intended = df["stim_intended_s"].astype(float).to_numpy()
    logged = df["stim_duration_s"].astype(float).to_numpy()
    dropped = df["dropped_frames"].astype(int).to_numpy()
    hz = float(df["refresh_hz"].iloc[0])
    err = logged - intended
    sums = frames.groupby("order")["interval_s"].sum()
    check = np.abs(sums.reindex(df["order"]).to_numpy() - logged)
    within = np.abs(err) <= 1 / hz + 1e-9
    d = r["record"]["display"]
    print(f"--- {duration * 1000:.0f} ms intended: {len(df)} of {r['planned']} trials, exit "
          f"{r['exit']}, wall {r['wall']:.1f} s, timing {d['timing_mode']} at "
          f"{d['used_hz']} Hz (measured {d['measured_hz']} in {d['measure_s']} s)")
    print(f"intended  {intended.mean() * 1000:.2f} ms (whole refreshes at {hz:g} Hz)")
    print(f"logged    mean {logged.mean() * 1000:.2f} ms, SD {logged.std() * 1000:.2f} ms, "
          f"worst error {np.abs(err).max() * 1000:.2f} ms, median error "
          f"{np.median(err) * 1000:.2f} ms; within one refresh: {within.mean() * 100:.1f}%")
    print(f"ratio logged/intended: mean {np.mean(logged / intended):.3f}, worst "
          f"{np.max(logged / intended):.3f}")
    print(f"dropped frames: {dropped.sum()} in total, {np.mean(dropped > 0) * 100:.1f}% of "
          f"trials lost at least one; trials off by more than a refresh without a logged "
          f"drop: {int(np.sum(~within & (dropped == 0)))}")
    print(f"independent check (PsychoPy frame-interval record vs logged duration): worst "
          f"|sum(intervals) - duration| = {check.max() * 1e6:.1f} us over {len(sums)} trials; "
          f"PsychoPy's own drop count (interval > 1.5 refreshes) flags "
          f"{int((frames.groupby('order')['psychopy_dropped'].first() > 0).sum())} trials")
    print(f"idle instruction screen: {r['idle_cpu'] * 100:.1f}% of one core")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--durations", default="0.1,0.2", help="stimulus seconds, comma-separated")
    ap.add_argument("--display", default=":188")
    ap.add_argument("--idle", type=float, default=4.0, help="seconds to sample idle CPU")
    args = ap.parse_args()
    xvfb = subprocess.Popen(["Xvfb", args.display, "-screen", "0", "800x600x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": args.display}
    try:
        time.sleep(1.0)
        for duration in (float(v) for v in args.durations.split(",")):
            work = Path(tempfile.mkdtemp(prefix="bench-frames-"))
            report(duration, session(work, duration, args.trials, env, args.idle))
    finally:
        xvfb.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
