"""The real PsychoPy experiment on a virtual display, answered by xdotool key presses.

Each test starts its own Xvfb, runs `bodyscene experiment run` in a subprocess, focuses its
window and presses keys as a participant would, then checks the responses file row by row
against the plan. Skips with a reason where PsychoPy, Xvfb or xdotool is missing."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan
from bodyscene.human_study.responses import read_responses
from bodyscene.human_study.session import responses_path
from conftest import check_plan_rows, write_toy_manifest

pytestmark = pytest.mark.display

LAB = {"monitor": {"resolution": [1920, 1080], "width_cm": 40.0, "distance_cm": 57.0},
       "timing": {"fixation_s": 0.1, "iti_s": 0.05, "feedback_s": 0.1, "stimulus_deg": 8.0,
                  "interpolate": False}}


def _missing() -> str | None:
    if importlib.util.find_spec("psychopy") is None:
        return "PsychoPy is not installed (pip install -e '.[experiment]')"
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash scripts/install-display.sh)"
    return None


@pytest.fixture(scope="module")
def display():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    for n in range(140, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while subprocess.run(["xdotool", "getdisplaygeometry"], env={**os.environ, "DISPLAY": f":{n}"},
                         capture_output=True).returncode != 0:  # accepting connections
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.skip(f"Xvfb could not start on :{n}")
        time.sleep(0.1)
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def sessions():
    """Every experiment process a test starts; any still running at teardown is killed."""
    started: list[Session] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.kill()


@pytest.fixture
def study(tmp_path):
    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"val": 1, "test": 2},
                                  size=16)
    plan_dir = make_plan(manifest, tmp_path / "plan",
                         PlanConfig(n_participants=4, practice_items=2, break_every=3,
                                    max_run=3, stimulus_s=0.1))
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps(LAB))
    return read_plan(plan_dir), lab, tmp_path / "data"


class Session:
    """A running experiment process and the keys sent to it."""

    def __init__(self, registry: list, display: str, plan, lab: Path, data: Path,
                 participant: str, *extra: str):
        self.display, self.plan, self.participant = display, plan, participant
        self.path = responses_path(data, participant, 1)
        self.trials = plan.trials(participant)
        self.log = data.parent / f"{participant}.log"
        data.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "DISPLAY": display}
        cmd = [sys.executable, "-m", "bodyscene.cli", "experiment", "run", "--plan",
               str(plan.dir), "--participant", participant, "--data", str(data), "--config",
               str(lab), "--windowed", "--window-size", "640x480", "--assume-refresh", "60",
               *extra]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        registry.append(self)
        self.window = self._find_window()

    def _xdo(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True,
                              text=True, timeout=10).stdout.strip()

    def _find_window(self) -> str:
        deadline = time.time() + 40
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"experiment exited early:\n{self.log.read_text()}")
            found = self._xdo("search", "--name", f"bodyscene {self.participant}")
            if found:
                window = found.split()[0]
                self._xdo("windowfocus", "--sync", window)
                return window
            time.sleep(0.2)
        raise AssertionError(f"no experiment window appeared:\n{self.log.read_text()}")

    def rows(self) -> int:
        if not self.path.exists():
            return 0
        return max(0, len(self.path.read_text().splitlines()) - 1)

    def answer(self, until: int, timeout: float = 45) -> None:
        """Press the key for each next trial (1 + order mod k: every key is used) until
        `until` rows are on disk; space moves past instruction and break screens."""
        deadline = time.time() + timeout
        while self.rows() < until:
            if time.time() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"stuck at row {self.rows()}:\n{self.log.read_text()}")
            trial = self.trials.iloc[self.rows()]
            k = len(trial["choices"].split(";"))
            self._xdo("key", "space")
            self._xdo("key", str(1 + int(trial["order"]) % k))
            time.sleep(0.08)

    def finish(self, timeout: float = 20) -> int:
        deadline = time.time() + timeout
        while self.proc.poll() is None and time.time() < deadline:
            self._xdo("key", "space")
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            raise AssertionError(f"experiment did not close:\n{self.log.read_text()}")
        return self.proc.returncode

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def _check_rows(df, plan, participant: str) -> None:
    for row, t in check_plan_rows(df, plan, participant):
        assert row.rt_s > 0 and "psychopy=" in row.software
        intended = float(row.stim_intended_s)
        assert intended == pytest.approx(t.duration_s, abs=0.5 / float(row.refresh_hz))
        _check_timing(row)
        assert float(row.stim_offset_s) > float(row.stim_onset_s) > 0


def _check_timing(row) -> None:
    """Paced in software on the virtual display: the logged duration is within one refresh of
    the intended one, or the log owns up to the refreshes that were lost (a busy machine)."""
    period = 1.0 / float(row.refresh_hz)
    late = abs(float(row.stim_duration_s) - float(row.stim_intended_s))
    assert row.timing_mode == "software" and int(row.dropped_frames) >= 0
    assert late <= period * (int(row.dropped_frames) + 1), row


def test_session_answered_by_keys_matches_plan(display, study, sessions):
    plan, lab, data = study
    s = Session(sessions, display, plan, lab, data, "P01")
    s.answer(len(s.trials))
    assert s.finish() == 0
    _check_rows(read_responses(s.path), plan, "P01")
    again = subprocess.run([sys.executable, "-m", "bodyscene.cli", "experiment", "run",
                            "--plan", str(plan.dir), "--participant", "P01", "--data",
                            str(data), "--windowed"], env=s.env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 2 and "give a new participant id, or --session 2" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    record = json.loads((data / "P01_s1_bodyscene.run.json").read_text())
    assert record["plan_sha256"] == plan.sha256 and "display" in record


def test_killed_session_resumes_after_last_trial(display, study, sessions):
    plan, lab, data = study
    s = Session(sessions, display, plan, lab, data, "P02")
    s.answer(3)
    s.kill()
    kept = read_responses(s.path)
    assert 3 <= len(kept) < len(s.trials)
    before = s.path.read_bytes()
    r = Session(sessions, display, plan, lab, data, "P02", "--resume")
    r.answer(len(r.trials))
    assert r.finish() == 0
    assert r.path.read_bytes().startswith(before)  # appended, never rewritten
    _check_rows(read_responses(r.path), plan, "P02")


def test_escape_quits_after_saving(display, study, sessions):
    plan, lab, data = study
    s = Session(sessions, display, plan, lab, data, "P03")
    s.answer(2)
    s._xdo("key", "Escape")
    s.proc.wait(timeout=20)
    assert s.proc.returncode == 3  # 0 only for a finished session
    assert "--resume" in s.log.read_text()
    assert 2 <= len(read_responses(s.path)) < len(s.trials)


def test_stimulus_screenshot_matches_manifest_image(display, study, sessions, tmp_path):
    import cv2

    plan, lab, data = study
    shots = tmp_path / "shots"
    s = Session(sessions, display, plan, lab, data, "P04", "--screenshots", str(shots))
    s.answer(1)
    s._xdo("key", "Escape")
    s.proc.wait(timeout=20)
    meta = json.loads((shots / "screens.json").read_text())
    trial = s.trials[s.trials["trial_id"] == meta["screens"]["stimulus"]].iloc[0]
    shown = cv2.imread(str(shots / "stimulus.png"))[..., ::-1].astype(float)
    source = cv2.imread(str(plan.stimulus_path(trial["stimulus"])))[..., ::-1]
    h, w = shown.shape[:2]
    side = int(round(meta["stimulus_px"]))
    crop = shown[h // 2 - side // 2 + 2: h // 2 + side // 2 - 2,
                 w // 2 - side // 2 + 2: w // 2 + side // 2 - 2]
    # the file enlarged without smoothing (interpolate=false), sampled at the crop's pixels
    ys = ((np.arange(crop.shape[0]) + 2) * source.shape[0] / side).astype(int)
    xs = ((np.arange(crop.shape[1]) + 2) * source.shape[1] / side).astype(int)
    expected = source[np.clip(ys, 0, source.shape[0] - 1)][:, np.clip(xs, 0,
                                                                       source.shape[1] - 1)]
    err = np.abs(crop - expected).mean()
    flipped = np.abs(crop - expected[::-1]).mean()
    swapped = np.abs(crop - expected[..., ::-1]).mean()
    assert err < 6, err                       # same pixels (edge samples may differ)
    assert flipped > 3 * err + 5 and swapped > 3 * err + 5, (err, flipped, swapped)


def test_clip_frames_held_whole_refreshes(display, sessions, tmp_path):
    manifest = write_toy_manifest(tmp_path / "clip", clip_frames=3,
                                  items_per_split={"val": 1, "test": 1})
    plan = read_plan(make_plan(manifest, tmp_path / "cplan",
                               PlanConfig(n_participants=1, practice_items=1)))
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps(LAB))
    s = Session(sessions, display, plan, lab, tmp_path / "cdata", "P01")
    s.answer(len(s.trials))
    assert s.finish() == 0
    df = read_responses(s.path)
    assert df["trial_id"].tolist() == s.trials["trial_id"].tolist()
    for row, t in zip(df.itertuples(), s.trials.itertuples()):
        hz = float(row.refresh_hz)
        per_frame = max(1, round(hz / t.fps))            # 8 fps at 60 Hz: 8 refreshes a frame
        assert float(row.stim_intended_s) == pytest.approx(t.n_frames * per_frame / hz,
                                                           abs=1e-5)
        _check_timing(row)


def test_stalled_frame_is_logged_as_dropped(display, study, sessions):
    """A frame deliberately stalled for 5 refreshes in trial 1 shows up in the log (and in
    PsychoPy's recorded intervals), while the stimulus is still ended on time."""
    plan, lab, data = study
    s = Session(sessions, display, plan, lab, data, "P01", "--debug-stall", "1:0.085")
    s.answer(len(s.trials))
    assert s.finish() == 0
    df = read_responses(s.path)
    stalled = df[df["order"] == 1].iloc[0]
    assert int(stalled["dropped_frames"]) >= 4
    frames = pd.read_csv(s.path.with_name(f"{s.path.stem}.frames.csv"))
    mine = frames[frames["order"] == 1]
    assert mine["interval_s"].max() >= 4.5 / 60
    assert mine["interval_s"].sum() == pytest.approx(float(stalled["stim_duration_s"]), abs=2e-6)
    for row in df.itertuples():
        _check_timing(row)


def test_untimed_display_is_refused_without_assume_refresh(display, study, tmp_path):
    """Xvfb has no vertical blank: without --assume-refresh the session is refused in one
    line, and no data file is created."""
    plan, lab, data = study
    r = subprocess.run([sys.executable, "-m", "bodyscene.cli", "experiment", "run", "--plan",
                        str(plan.dir), "--participant", "P01", "--data", str(data), "--config",
                        str(lab), "--windowed", "--window-size", "640x480"],
                       env={**os.environ, "DISPLAY": display}, capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--assume-refresh" in r.stderr
    assert not data.exists() or not any(data.iterdir())


def test_sigterm_saves_and_says_so(display, study, sessions):
    plan, lab, data = study
    s = Session(sessions, display, plan, lab, data, "P02")
    s.answer(2)
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(timeout=20)
    assert s.proc.returncode == 143
    assert "SIGTERM" in s.log.read_text() and "--resume" in s.log.read_text()
    assert len(read_responses(s.path)) >= 2


def test_deadline_records_timeouts(display, study, sessions, tmp_path):
    plan, _, data = study
    lab = tmp_path / "deadline.json"
    lab.write_text(json.dumps({**LAB, "timing": {**LAB["timing"], "response_deadline_s": 0.3}}))
    s = Session(sessions, display, plan, lab, data, "P03")
    deadline = time.time() + 60
    while s.rows() < 3 and time.time() < deadline:  # only space: every trial times out
        s._xdo("key", "space")
        time.sleep(0.1)
    s._xdo("key", "Escape")
    s.proc.wait(timeout=20)
    df = read_responses(s.path)
    assert len(df) >= 3 and (df["timed_out"] == "true").all()
    assert (df["response"] == "").all() and not df["correct"].any() and df["rt_s"].isna().all()


LAYOUT_PROBE = """
import json, sys
from bodyscene.human_study.experiment import RunConfig, Screen
from bodyscene.human_study.labconfig import LabConfig
w, h = (int(v) for v in sys.argv[1].split("x"))
lab = LabConfig()
lab.monitor.resolution = (1920, 1080)
names = ["jumping_jack", "kick", "wave", "pick_up_from_floor", "throw_overhand",
         "clap_hands_twice", "run_in_place", "sit_down_slowly", "stand_up", "bow_deeply",
         "turn_around_fast", "point_far_away"]
screen = Screen(RunConfig(plan=".", participant="probe", fullscr=False, window_size=(w, h)), lab)
out = {}
for k in range(2, 13):
    stims = screen._labels(names[:k])
    out[k] = {"boxes": [[b.x, b.y, b.w, b.h] for b in screen.label_boxes],
              "measured": [list(s.boundingBox) for s in stims],
              "texts": [s.text for s in stims], "prompt_y": float(screen.prompt.pos[1])}
screen.close()
print(json.dumps(out))
"""


@pytest.mark.parametrize("size", ["800x600", "1920x1080"])
def test_labels_never_overlap(display, size):
    """Long names at k = 2..12, measured by PsychoPy in a real window: no two label boxes
    intersect, each box holds its measured text and lies inside the window, display names
    replace identifiers."""
    from bodyscene.human_study.layout import Box

    r = subprocess.run([sys.executable, "-c", LAYOUT_PROBE, size], capture_output=True,
                       text=True, env={**os.environ, "DISPLAY": display}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    w, h = (int(v) for v in size.split("x"))
    for k, got in json.loads(r.stdout.strip().splitlines()[-1]).items():
        boxes = [Box(*b) for b in got["boxes"]]
        assert len(boxes) == int(k)
        for i, a in enumerate(boxes):
            assert a.inside(w, h), (k, a)
            assert a.w >= got["measured"][i][0] and a.h >= got["measured"][i][1]
            assert all(not a.intersects(b) for b in boxes[i + 1:]), (k, a)
        assert got["prompt_y"] > max(b.y + b.h / 2 for b in boxes)
        assert "jumping jack" in got["texts"][0] and "_" not in "".join(got["texts"])


def test_no_display_is_one_line(study):
    plan, lab, data = study
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, "-m", "bodyscene.cli", "experiment", "run", "--plan",
                        str(plan.dir), "--participant", "P01", "--data", str(data), "--config",
                        str(lab), "--windowed"], env=env, capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == 2 and "no display" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not data.exists() or not any(data.iterdir())


def test_a_tap_on_a_label_answers(display, study, sessions, tmp_path):
    """Press and release together (a touchpad tap) on the second label: the runner listens for
    clicks, so a tap shorter than its polling interval still answers."""
    plan, lab, data = study
    shots = tmp_path / "shots"
    s = Session(sessions, display, plan, lab, data, "P04", "--screenshots", str(shots))
    meta_path = shots / "screens.json"
    deadline = time.time() + 45
    meta = {}
    while "response" not in meta.get("screens", {}):
        assert time.time() < deadline and s.proc.poll() is None, s.log.read_text()
        s._xdo("key", "space")
        time.sleep(0.2)
        try:
            meta = json.loads(meta_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):   # not yet, or being written
            meta = {}
    time.sleep(0.5)                                          # the labels are up
    x, y, _, _ = meta["screens"]["response"][1]
    w, h = meta["window_px"]
    s._xdo("mousemove", "--window", s.window, str(int(w / 2 + x)), str(int(h / 2 - y)))
    s._xdo("click", "1")
    while s.rows() < 1:
        assert time.time() < deadline + 15 and s.proc.poll() is None, s.log.read_text()
        time.sleep(0.1)
    s._xdo("key", "Escape")
    s.proc.wait(timeout=20)
    row = read_responses(s.path).iloc[0]
    assert row["response"] == row["choice_order"].split(";")[1] and row["rt_s"] > 0.3
