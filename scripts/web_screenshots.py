"""Screenshots of every screen of the online experiment for the docs (docs/screens/web/).

Renders a small synthetic trial set with k = 4 and k = 8 choices, exports the site, serves it
on 127.0.0.1 and answers it in headless Chromium (Debian's, through Playwright), saving each
kind of screen the first time it appears: the whole session with k = 4 in a 1280x800 window,
the response and stimulus screens with k = 4, and consent, instructions, the response screen
and the end page with k = 8, in a small (800x600) and a large (1920x1080) window. Durations
are stretched (lab config below) so the fixation and stimulus screens can be caught. Needs Chromium, npm and the web extra (bash scripts/install-web.sh).

    python scripts/web_screenshots.py --out docs/screens/web
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import web_browser as wb  # noqa: E402

LAB = {"timing": {"fixation_s": 1.5, "iti_s": 0.3, "feedback_s": 1.5, "stimulus_deg": 10.0},
       "procedure": {"consent": True, "completion_code": "DEMO1234"}}
# what is on screen, beyond jsPsych's current trial (see web_browser.STATE_JS)
VISIBLE_JS = """() => ({fixation: !!document.querySelector('.bs-fix:not(.bs-hidden)'),
                        stimulus: !!document.querySelector('.bs-stim:not(.bs-hidden)')})"""


def make_study(work: Path, actions: int, k: int) -> tuple[Path, Path]:
    cli = [sys.executable, "-m", "bodyscene.cli"]
    stim = work / f"stim{k}"
    subprocess.run(cli + ["stimuli", "synth", "--out", str(stim), "--actions", str(actions),
                          "--clips-per-action", "5", "--frames-per-video", "4",
                          "--samples-per-video", "1", "--size", "128", "--seed", "3",
                          "--k", str(k), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    plan = work / f"plan{k}"
    subprocess.run(cli + ["experiment", "plan", "--trials", str(stim / "trials.csv"),
                          "--participants", "1", "--out", str(plan), "--practice", "1",
                          "--break-every", "2", "--duration", "1.5"], check=True,
                   stdout=subprocess.DEVNULL)
    lab = work / "lab.json"
    lab.write_text(json.dumps(LAB))
    subprocess.run(cli + ["experiment", "export-web", "--plan", str(plan), "--out",
                          str(work / f"site{k}"), "--config", str(lab), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    return plan, work / f"site{k}"


def shoot(browser, server, size, out: Path, prefix: str, wanted: set[str]) -> list[Path]:
    """Answer the session, saving `prefix-<screen>.png` once per wanted screen."""
    page = wb.open_page(browser, server, "P01", size=size)
    saved: dict[str, Path] = {}

    def grab(name: str) -> None:
        if name in wanted and name not in saved:
            page.wait_for_timeout(150)   # let the fonts and the layout settle
            saved[name] = out / f"{prefix}-{name}.png"
            page.screenshot(path=str(saved[name]))

    deadline = time.time() + 180
    while set(saved) < wanted and time.time() < deadline:
        s = wb.state(page)
        if s["screen"] == "end":
            grab("end")
            break
        if s["screen"] == "trial":
            vis = page.evaluate(VISIBLE_JS)
            if vis["fixation"]:
                grab("fixation")
            elif vis["stimulus"]:
                grab("stimulus")
            elif s["labels"]:
                grab("response")
            if not s["labels"]:
                page.wait_for_timeout(20)
                continue
        elif s["screen"] in ("consent", "instructions", "practice", "main", "break",
                             "feedback", "fullscreen"):
            grab(s["screen"])
        wb.drive(page, lambda st, seen=s: st != seen, timeout=60)
    page.context.close()
    return sorted(saved.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/screens/web"))
    args = ap.parse_args()
    reason = wb.missing()
    if reason:
        sys.exit(f"web_screenshots: {reason}")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bodyscene-web-screens-"))
    args.out.mkdir(parents=True, exist_ok=True)
    everything = {"consent", "instructions", "fullscreen", "practice", "fixation", "stimulus", "response",
                  "feedback", "main", "break", "end"}
    with sync_playwright() as p:
        browser = wb.launch(p)
        for actions, k in ((4, 4), (8, 8)):
            plan, site = make_study(work, actions, k)
            data = work / f"data{k}"
            data.mkdir()
            server = wb.Server(plan, data, site)
            try:
                if k == 4:
                    for path in shoot(browser, server, (1280, 800), args.out, "k4", everything):
                        print(path)
                for name, size in (("small", (800, 600)), ("large", (1920, 1080))):
                    # a fresh data folder each time: the participant starts again
                    server.stop()
                    shutil.rmtree(data)
                    data.mkdir()
                    server = wb.Server(plan, data, site)
                    wanted = ({"consent", "instructions", "response", "end"} if k == 8
                              else {"response", "stimulus"})
                    for path in shoot(browser, server, size, args.out, f"k{k}-{name}",
                                      wanted):
                        print(path)
            finally:
                server.stop()
        browser.close()
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
