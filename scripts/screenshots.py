"""Screenshots of every screen of the experiment for the docs (docs/screens/*.png).

Renders a small synthetic trial set, plans one participant, runs the real experiment on a
private Xvfb display with `--screenshots` (each kind of screen saved once from the back buffer)
and answers it with xdotool key presses. Needs PsychoPy, Xvfb and xdotool.

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

LAB = {"monitor": {"resolution": [960, 600], "width_cm": 40.0, "distance_cm": 57.0},
       "timing": {"fixation_s": 0.3, "iti_s": 0.1, "feedback_s": 0.4, "mask_s": 0.1,
                  "stimulus_deg": 10.0}}


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
    subprocess.run(cli + ["stimuli", "synth", "--out", str(work / "stim"), "--actions", "4",
                          "--clips-per-action", "5", "--frames-per-video", "4",
                          "--samples-per-video", "1", "--size", "128", "--seed", "3"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(cli + ["experiment", "plan", "--trials", str(work / "stim" / "trials.csv"),
                          "--participants", "1", "--out", str(work / "plan"), "--practice", "1",
                          "--break-every", "2"], check=True)
    (work / "lab.json").write_text(json.dumps(LAB))
    xvfb = subprocess.Popen(["Xvfb", args.display, "-screen", "0", "1024x768x24",
                             "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": args.display}
    shots = work / "shots"
    try:
        time.sleep(1.0)
        run = subprocess.Popen(cli + ["experiment", "run", "--plan", str(work / "plan"),
                                      "--participant", "P01", "--config", str(work / "lab.json"),
                                      "--windowed", "--window-size", "960x600",
                                      "--screenshots", str(shots)], env=env)
        window = ""
        deadline = time.time() + 60
        while not window and time.time() < deadline:
            time.sleep(0.3)
            window = subprocess.run(["xdotool", "search", "--name", "bodyscene P01"], env=env,
                                    capture_output=True, text=True).stdout.split("\n")[0]
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env)
        wanted = {"instructions", "fixation", "stimulus", "mask", "response", "feedback",
                  "break"}
        while run.poll() is None and time.time() < deadline + 120:
            have = {p.stem for p in shots.glob("*.png")}
            keys = ["space", "1"] if not wanted <= have else ["Escape"]
            for key in keys:
                subprocess.run(["xdotool", "key", key], env=env)
            time.sleep(0.4)
        run.wait(timeout=30)
    finally:
        xvfb.terminate()
    args.out.mkdir(parents=True, exist_ok=True)
    for png in sorted(shots.glob("*.png")):
        shutil.copy(png, args.out / png.name)
        print(args.out / png.name)
    shutil.copy(shots / "screens.json", args.out / "screens.json")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
