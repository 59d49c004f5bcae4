"""Screenshots of every screen of the experiment for the docs (docs/screens/*.png).

Renders synthetic trial sets of k = 4 and k = 8 actions, plans one participant each, runs the
real experiment on a private Xvfb display (1920x1080) in an 800x600 and a 1920x1080 window with
`--screenshots` (each kind of screen saved once from the back buffer) and answers it with
xdotool key presses; into docs/screens/k<k>_<w>x<h>/. Needs PsychoPy, Xvfb and xdotool.

    python scripts/screenshots.py --out docs/screens
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAB = {"monitor": {"resolution": [1920, 1080], "width_cm": 53.0, "distance_cm": 60.0},
       "timing": {"fixation_s": 0.3, "iti_s": 0.1, "feedback_s": 0.4, "mask_s": 0.1,
                  "stimulus_deg": 8.0},
       "procedure": {"consent": True, "completion_code": "DEMO1234"}}
WANTED = {"consent", "instructions", "fixation", "stimulus", "mask", "response", "feedback",
          "break", "end"}
RUNS = [(4, (800, 600)), (8, (800, 600)), (4, (1920, 1080)), (8, (1920, 1080))]


def run_one(cli: list[str], work: Path, k: int, size: tuple[int, int], display: str,
            shots: Path) -> None:
    """Plan and run one participant of a k-action synthetic set in a window of `size`,
    pressing keys until every screen has been saved and the session has ended."""
    stim = work / f"stim{k}"
    if not stim.exists():
        subprocess.run(cli + ["stimuli", "synth", "--out", str(stim), "--actions", str(k),
                              "--clips-per-action", "5", "--frames-per-video", "4",
                              "--samples-per-video", "1", "--size", "128", "--seed", "3"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(cli + ["experiment", "plan", "--trials", str(stim / "trials.csv"),
                              "--participants", "1", "--out", str(stim / "plan"),
                              "--practice", "1", "--break-every", "2", "--catch", "0"],
                       check=True, stdout=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": display}
    run = subprocess.Popen(cli + ["experiment", "run", "--plan", str(stim / "plan"),
                                  "--participant", "P01", "--config", str(work / "lab.json"),
                                  "--data", str(shots / "data"), "--windowed", "--window-size",
                                  f"{size[0]}x{size[1]}", "--screenshots", str(shots),
                                  "--assume-refresh", "60"], env=env,
                           stdout=subprocess.DEVNULL)
    window, deadline = "", time.time() + 60
    while not window and time.time() < deadline:
        time.sleep(0.3)
        window = subprocess.run(["xdotool", "search", "--name", "bodyscene P01"], env=env,
                                capture_output=True, text=True).stdout.split("\n")[0]
    subprocess.run(["xdotool", "windowmove", window, "0", "0"], env=env)
    subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env)
    while run.poll() is None and time.time() < deadline + 180:
        for key in ("space", "1"):
            subprocess.run(["xdotool", "key", key], env=env)
        time.sleep(0.3)
    if run.poll() is None:
        subprocess.run(["xdotool", "key", "Escape"], env=env)
    run.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/screens"))
    ap.add_argument("--display", default=":187")
    args = ap.parse_args()
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            sys.exit(f"screenshots: {tool} is missing (bash scripts/install-display.sh)")
    work = Path(tempfile.mkdtemp(prefix="bodyscene-screens-"))
    cli = [sys.executable, "-m", "bodyscene.cli"]
    (work / "lab.json").write_text(json.dumps(LAB))
    xvfb = subprocess.Popen(["Xvfb", args.display, "-screen", "0", "1920x1080x24",
                             "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        for k, size in RUNS:
            name = f"k{k}_{size[0]}x{size[1]}"
            shots = work / name
            run_one(cli, work, k, size, args.display, shots)
            missing = WANTED - {p.stem for p in shots.glob("*.png")}
            if missing:
                print(f"{name}: no screenshot of {', '.join(sorted(missing))}", file=sys.stderr)
            out = args.out / name
            out.mkdir(parents=True, exist_ok=True)
            for png in sorted(shots.glob("*.png")):
                shutil.copy(png, out / png.name)
            shutil.copy(shots / "screens.json", out / "screens.json")
            print(out)
    finally:
        xvfb.terminate()
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
