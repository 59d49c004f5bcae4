"""The PsychoPy session: consent, fixation, stimulus, optional mask, k-alternative forced
choice, debrief.

The only module that imports PsychoPy (inside functions). Bookkeeping lives in
`bodyscene.human_study.session`, label placement in `layout`; this file is the screen.

Timing. The refresh rate is measured once per session, in a bounded time, with PsychoPy's
`getActualFrameRate`. It is trusted only when it matches the monitor profile's `refresh_hz`
(then flips wait for the display's vertical blank: `timing_mode=vsync`). When it cannot be
measured or does not match (no vsync: a virtual display, a driver setting) the session is
refused, unless `--assume-refresh HZ` is given: flips are then paced in software on a grid of
virtual refreshes at HZ (`timing_mode=software`). Either way every screen is held by time on
that grid (a late frame does not stretch the stimulus), the logged duration is the difference
between the flip that showed the stimulus and the flip that replaced it, and dropped frames
are counted from PsychoPy's own recorded frame intervals over the stimulus."""

from __future__ import annotations

import csv
import json
import math
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bodyscene.errors import BadInput
from bodyscene.provenance import write_run_record
from bodyscene.seeds import derive_rng
from bodyscene.stimuli.manifest import stimulus_frames, stimulus_sha256
from bodyscene.tables import write_json_atomic

from .labconfig import LabConfig, check_keys, check_labels, frames_for, load_lab_config
from .layout import layout_labels
from .plan import read_plan
from .responses import ResponseWriter
from .session import (
    remaining_trials,
    response_columns,
    response_row,
    responses_path,
    shuffled_choices,
    software_string,
)

SCREENS = ("consent", "instructions", "fixation", "stimulus", "mask", "response", "feedback",
           "break", "end")
EXIT_FINISHED, EXIT_QUIT, EXIT_TERMINATED = 0, 3, 143  # 143 = 128 + SIGTERM, as shells report
REFRESH_TOLERANCE = 0.05  # a measured rate within 5% of the profile's counts as vsync


@dataclass
class RunConfig:
    """One session of one participant."""

    plan: Path
    participant: str
    session: int = 1
    data: Path | None = None          # default: data/ inside the plan folder (one per plan)
    resume: bool = False
    lab_config: Path | None = None
    fullscr: bool = True
    window_size: tuple[int, int] | None = None  # windowed size; default: monitor resolution
    screenshots: Path | None = None   # save each kind of screen once (back buffer) here
    title: str = ""                   # window title (default "bodyscene <participant>")
    assume_refresh: float | None = None  # pace flips in software at this rate (no vsync)
    info: dict[str, str] = field(default_factory=dict)  # the lab's participant fields
    stall: tuple[int, float] | None = None  # tests: stall trial `order`'s 3rd frame by seconds

    def data_dir(self) -> Path:
        return Path(self.data) if self.data else Path(self.plan).resolve() / "data"


class QuitSession(Exception):
    """Escape was pressed (or consent declined): stop after saving what has been answered."""


class Terminated(QuitSession):
    """SIGTERM arrived: stop at the next safe point, after saving."""


@dataclass
class SessionResult:
    path: Path
    answered: int
    total: int
    quit_early: bool
    timing: dict = field(default_factory=dict)
    exit_code: int = EXIT_FINISHED
    summary: dict = field(default_factory=dict)


def prepare(cfg: RunConfig):
    """Everything that can fail before a window opens: session number, plan, lab config and its
    labels against the manifest's actions, data file, stimuli present and identical to the
    plan's hashes. Returns (plan, lab, trials, trials left, path, hashes)."""
    if isinstance(cfg.session, bool) or int(cfg.session) < 1:
        raise BadInput(f"--session must be 1 or more, got {cfg.session}")
    if cfg.assume_refresh is not None and not 20 <= cfg.assume_refresh <= 500:
        raise BadInput(f"--assume-refresh expects a refresh rate in Hz (20-500), got "
                       f"{cfg.assume_refresh}")
    plan = read_plan(cfg.plan)
    lab = load_lab_config(cfg.lab_config)
    check_labels(lab, manifest_actions(plan.manifest), cfg.lab_config or "lab config")
    trials = plan.trials(cfg.participant)
    path = responses_path(cfg.data_dir(), cfg.participant, cfg.session)
    left = remaining_trials(trials, path, cfg.resume, plan.sha256)
    hashes = {}
    for row in left.itertuples(index=False):
        stim = plan.stimulus_path(row.stimulus)
        if not stim.exists():
            raise BadInput(f"{plan.participants[cfg.participant]}: stimulus {str(stim)!r} of "
                           f"trial {row.trial_id!r} is missing")
        digest = stimulus_sha256(stim)
        if digest != row.sha256:
            raise BadInput(f"{stim}: does not match the sha256 in the plan (trial "
                           f"{row.trial_id!r}); the image changed after the plan was made")
        hashes[row.trial_id] = digest
    return plan, lab, trials, left, path, hashes


def manifest_actions(manifest: Path) -> set[str]:
    """Every action the manifest names (its `action` and `choices` columns)."""
    import pandas as pd

    df = pd.read_csv(manifest, usecols=["action", "choices"], dtype=str, keep_default_na=False)
    found = set(df["action"])
    for choices in df["choices"].unique():
        found.update(c for c in choices.split(";") if c)
    return found


def participant_info(cfg: RunConfig, lab: LabConfig, ask=None) -> dict[str, str]:
    """Participant id, session and the lab's own fields (`procedure.participant_fields`): from
    --info, and asked on the terminal for those missing (refused where nobody can answer)."""
    wanted = lab.procedure.participant_fields
    unknown = sorted(set(cfg.info) - set(wanted))
    if unknown:
        raise BadInput(f"--info {unknown[0]}=...: not a participant field of the lab config "
                       f"(procedure.participant_fields: {', '.join(wanted) or 'none'})")
    info = {"participant": cfg.participant, "session": str(cfg.session)}
    for name in wanted:
        value = cfg.info.get(name, "")
        if not value and ask is None and not sys.stdin.isatty():
            raise BadInput(f"participant field {name!r} is missing: give it with --info "
                           f"{name}=VALUE")
        while not value.strip():
            value = (ask or input)(f"{name}: ")
        info[name] = value.strip()
    return info


def require_display() -> tuple[int, int]:
    """The real screen's size in pixels, or one line saying there is no display to open."""
    try:
        import pyglet

        screen = pyglet.canvas.get_display().get_default_screen()
    except Exception as exc:  # pyglet raises its own NoSuchDisplayException, among others
        raise BadInput(f"no display to open a window on ({type(exc).__name__}: {exc}); run on "
                       f"the lab computer's desktop (for a test: xvfb-run)") from None
    return int(screen.width), int(screen.height)


def check_screen(lab: LabConfig, real: tuple[int, int], where_: str | Path) -> str:
    """Compare the monitor profile with the real screen; refuse or warn per the profile."""
    profile = tuple(lab.monitor.resolution)
    if profile == tuple(real):
        return ""
    note = (f"{where_}: monitor.resolution is {profile[0]}x{profile[1]} but the screen is "
            f"{real[0]}x{real[1]}, so sizes in degrees would be wrong")
    if lab.monitor.screen_check == "refuse":
        raise BadInput(note + "; correct the profile (or set monitor.screen_check to \"warn\")")
    print(f"bodyscene: warning: {note} (screen_check=warn: going on, recorded)", file=sys.stderr)
    return note


def backend_key_names() -> set[str]:
    """The key names PsychoPy's keyboard backend reports on this platform."""
    from psychopy.hardware import keyboard

    return set(keyboard.keyNames.values())


def run_session(cfg: RunConfig) -> SessionResult:
    """Run (or resume) one participant's session; every answer is on disk before the next
    trial starts. Nothing is written before the window is open and its timing accepted."""
    plan, lab, trials, left, path, hashes = prepare(cfg)
    if left.empty:
        print(f"{path}: the session is already complete ({len(trials)} trials)")
        return SessionResult(path, 0, len(trials), False)
    where_ = cfg.lab_config or "lab config"
    check_keys(lab, backend_key_names(), where_)
    info = participant_info(cfg, lab)
    real = require_display()
    screen_note = check_screen(lab, real, where_)
    screen = Screen(cfg, lab)
    try:
        screen.start_timing(cfg.assume_refresh)
    except BadInput:
        screen.close()
        raise
    return _run(cfg, plan, lab, trials, left, path, hashes, info, screen,
                {"screen_px": list(real), "screen_check": screen_note})


def _run(cfg, plan, lab, trials, left, path, hashes, info, screen, display) -> SessionResult:
    resuming = len(left) < len(trials)
    software = software_string()
    code = lab.procedure.completion_code or secrets.token_hex(4).upper()
    display.update(screen.display_info())
    record = write_run_record(cfg.data_dir(), cfg, None,
                              name=f"{path.stem}.run.json", plan_sha256=plan.sha256,
                              manifest_sha256=plan.manifest_sha256, resumed=resuming,
                              first_order=int(left["order"].iloc[0]), display=display)
    info_path = path.with_name(f"{path.stem}.info.json")
    if not info_path.exists():
        write_json_atomic(info_path, {**info, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                      "completion_code": code})
    else:
        code = json.loads(info_path.read_text(encoding="utf-8")).get("completion_code", code)
    frames_log = FrameLog(path.with_name(f"{path.stem}.frames.csv"))
    writer = None
    status, rows = "finished", []
    previous_sigterm = signal.signal(signal.SIGTERM, screen.on_sigterm)
    try:
        if lab.procedure.consent and not resuming:
            screen.text_screen(lab.texts.consent, "consent")
        writer = ResponseWriter(path, columns=response_columns(),
                                mode="append" if resuming else "new")

        def run_trial(trial, practice_round=None):
            row = screen.trial(trial, plan.stimulus_path(trial.stimulus), plan.sha256,
                               cfg.participant, frames_log)
            timing = dict(row["timing"])
            if practice_round is not None:
                timing["practice_round"] = practice_round
            out = response_row(trial, cfg.participant, cfg.session, row["response"],
                               row["rt_s"], row["choice_order"], hashes[trial.trial_id],
                               plan.sha256, plan.manifest_sha256, software, timing=timing)
            writer.write(out)
            rows.append(out)
            if trial.feedback:
                screen.feedback(out["correct"], lab.label(trial.action), timing["timed_out"])
            screen.check_signals()
            return out

        screen.text_screen(lab.texts.resume if resuming else lab.texts.instructions,
                           "instructions")
        _trials(cfg, lab, trials, left, screen, run_trial)
        screen.text_screen(lab.texts.end.format(code=code), "end")
    except Terminated:
        status = "terminated"
    except QuitSession:
        status = "quit"
    finally:
        if writer is not None:
            writer.close()
        frames_log.close()
        screen.close()
        signal.signal(signal.SIGTERM, previous_sigterm)
    total = len(trials)
    done = total - len(left) + len({r["order"] for r in rows})
    summary = _summary(rows, status, done, total, code)
    _note(record, summary)
    exit_code = {"finished": EXIT_FINISHED, "quit": EXIT_QUIT,
                 "terminated": EXIT_TERMINATED}[status]
    why = {"quit": "stopped by Escape", "terminated": "stopped by SIGTERM (saved)"}
    note = (f"{why[status]} after {done} of {total} trials; continue with --resume"
            if status != "finished" else f"{done} of {total} trials, completion code {code}")
    print(f"{path}: {note}")
    if summary["catch_trials"]:
        print(f"attention checks: {summary['catch_correct']} of {summary['catch_trials']} "
              f"correct ({summary['catch_accuracy']:.0%})")
    return SessionResult(path, len(rows), total, status != "finished", screen.display_info(),
                         exit_code, summary)


def _trials(cfg, lab, trials, left, screen, run_trial) -> None:
    """The trials still to run, with the practice, main and break screens between them and
    practice repeated (at most practice_max_rounds times) until its criterion is met."""
    first = int(left["order"].iloc[0])
    previous = trials[trials["order"] < first]
    last_phase = previous["phase"].iloc[-1] if len(previous) else None
    last_block = int(previous["block"].iloc[-1]) if len(previous) else None
    n_blocks = int(trials["block"].max())
    practice_all = trials[trials["phase"] == "practice"]
    proc = lab.procedure
    practice_round, practice_rows = 1, []
    for trial in left.itertuples(index=False):
        if trial.phase == "practice" and last_phase is None:
            screen.text_screen(lab.texts.practice, "instructions")
        elif trial.phase != "practice" and last_phase == "practice":
            while (practice_rows and proc.practice_criterion > 0
                   and practice_round < proc.practice_max_rounds):
                score = sum(r["correct"] for r in practice_rows) / len(practice_rows)
                if score >= proc.practice_criterion:
                    break
                screen.text_screen(lab.texts.practice_again.format(
                    percent=round(100 * score), criterion=round(100 * proc.practice_criterion)),
                    "instructions")
                practice_round += 1
                practice_rows = [run_trial(t, practice_round)
                                 for t in practice_all.itertuples(index=False)]
            screen.text_screen(lab.texts.main, "instructions")
        elif last_block is not None and last_block >= 1 and trial.block != last_block:
            screen.text_screen(lab.texts.break_.format(n=trial.block, total=n_blocks), "break")
        last_phase, last_block = trial.phase, int(trial.block)
        out = run_trial(trial, practice_round if trial.phase == "practice" else None)
        if trial.phase == "practice":
            practice_rows.append(out)


def _summary(rows: list[dict], status: str, done: int, total: int, code: str) -> dict:
    catch = [r for r in rows if r["phase"] == "catch"]
    n_right = sum(bool(r["correct"]) for r in catch)
    return {"status": status, "trials_done": done, "trials_total": total,
            "answered_this_run": len(rows), "completion_code": code,
            "catch_trials": len(catch), "catch_correct": n_right,
            "catch_accuracy": n_right / len(catch) if catch else None,
            "timeouts": sum(bool(r.get("timed_out")) for r in rows),
            "anticipations": sum(bool(r.get("anticipation")) for r in rows),
            "practice_rounds": max([int(r.get("practice_round") or 1) for r in rows
                                    if r["phase"] == "practice"] or [0]),
            "dropped_frames": sum(int(r.get("dropped_frames") or 0) for r in rows)}


def _note(record: Path, summary: dict) -> None:
    """Add the session's outcome (attention-check accuracy and the rest) to its run record."""
    data = json.loads(record.read_text(encoding="utf-8"))
    data["session"] = summary
    write_json_atomic(record, data, sort_keys=True)


class FrameLog:
    """`<stem>.frames.csv`: PsychoPy's recorded frame intervals over each stimulus, appended
    trial by trial, so the logged durations and dropped frames can be checked independently."""

    COLUMNS = ("order", "trial_id", "interval", "interval_s", "psychopy_dropped")

    def __init__(self, path: Path):
        new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", newline="", encoding="utf-8")
        self._w = csv.writer(self._fh, lineterminator="\n")
        if new:
            self._w.writerow(self.COLUMNS)

    def write(self, order: int, trial_id: str, intervals: list[float], dropped: int) -> None:
        for i, v in enumerate(intervals):
            self._w.writerow([order, trial_id, i, f"{v:.6f}", dropped])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class Screen:
    """The window and what is drawn on it; PsychoPy is imported here and nowhere else."""

    def __init__(self, cfg: RunConfig, lab: LabConfig):
        from psychopy import core, event, logging, monitors, visual
        from psychopy.hardware import keyboard
        from psychopy.tools.monitorunittools import deg2pix

        logging.console.setLevel(logging.ERROR)
        self.core, self.event, self.visual = core, event, visual
        self.lab, self.cfg = lab, cfg
        m = lab.monitor
        self.monitor = monitors.Monitor("bodyscene", width=m.width_cm, distance=m.distance_cm)
        self.monitor.setSizePix(list(m.resolution))
        size = cfg.window_size or m.resolution
        # checkTiming=False: the refresh is measured once, bounded, by start_timing
        self.win = visual.Window(size=list(size), fullscr=cfg.fullscr, monitor=self.monitor,
                                 units="pix", color=(0, 0, 0), colorSpace="rgb",
                                 allowGUI=not cfg.fullscr, waitBlanking=True, checkTiming=False,
                                 title=cfg.title or f"bodyscene {cfg.participant}")
        self.win.mouseVisible = True
        self.kb = keyboard.Keyboard()
        self.mouse = event.Mouse(win=self.win)
        self.px_per_deg = float(deg2pix(1.0, self.monitor))
        self.width, self.height = (int(v) for v in self.win.size)
        # Text in pixels, sized in degrees but never so large that a line cannot fit
        self.text_px = min(max(14.0, 0.7 * self.px_per_deg), self.height / 24)
        self.label_px = min(max(14.0, 0.8 * self.px_per_deg), self.height / 20)
        self.text = visual.TextStim(self.win, text="", height=self.text_px, units="pix",
                                    wrapWidth=0.9 * self.width, color=(1, 1, 1))
        self.prompt = visual.TextStim(self.win, text="", height=self.text_px, units="pix",
                                      wrapWidth=0.9 * self.width, color=(1, 1, 1))
        self.fix = visual.ShapeStim(self.win, vertices="cross", size=0.6 * self.px_per_deg,
                                    lineColor=None, fillColor=(1, 1, 1), units="pix")
        self.screenshots = Path(cfg.screenshots) if cfg.screenshots else None
        self._shot_done: dict[str, str] = {}
        self._mask = None
        self._sigterm = False
        self.mode, self.hz, self.measured_hz, self.measure_s = "vsync", m.refresh_hz, None, 0.0
        self.period = 1.0 / self.hz
        self._grid0, self._tick, self._last_flip = None, 0, 0.0
        self.first_index = self.first_tick = self._tick_at_offset = 0

    # --- timing -----------------------------------------------------------------------------
    def start_timing(self, assume_refresh: float | None) -> None:
        """Measure the refresh once, within `timing.refresh_measure_s`, and decide how flips are
        timed; refuse (BadInput) when the display cannot be trusted and no rate is assumed."""
        budget = self.lab.timing.refresh_measure_s
        msg = f"Measuring the display's refresh rate (at most {budget:g} s) ..."
        self.text.text = msg
        t0 = self.core.getTime()
        for _ in range(5):  # time a few flips to know how many fit the budget
            self.text.draw()
            self.win.flip()
        per_flip = max(1e-4, (self.core.getTime() - t0) / 5)
        n_max = int(min(2000, max(12, (budget - (self.core.getTime() - t0)) / per_flip)))
        rate = self.win.getActualFrameRate(nIdentical=min(20, n_max), nMaxFrames=n_max,
                                           nWarmUpFrames=0, threshold=1, infoMsg=msg)
        self.measure_s = self.core.getTime() - t0
        self.measured_hz = float(rate) if rate else None
        profile = self.lab.monitor.refresh_hz
        if assume_refresh is not None:
            self.mode, self.hz = "software", float(assume_refresh)
        elif self.measured_hz and abs(self.measured_hz - profile) <= REFRESH_TOLERANCE * profile:
            self.mode, self.hz = "vsync", self.measured_hz
        else:
            seen = (f"measured {self.measured_hz:.1f} Hz" if self.measured_hz else
                    f"could not be measured in {self.measure_s:.1f} s")
            raise BadInput(f"the display's refresh rate {seen}, but the monitor profile says "
                           f"{profile:g} Hz: flips do not wait for the vertical blank (vsync "
                           f"off, or a virtual display), so durations cannot be trusted; fix the "
                           f"display or monitor.refresh_hz, or rerun with --assume-refresh "
                           f"{profile:g} to pace flips in software (recorded as such)")
        self.period = 1.0 / self.hz
        self.win.refreshThreshold = 1.5 * self.period  # PsychoPy's own dropped-frame count
        self.win.recordFrameIntervals = False

    def flip(self) -> float:
        """Flip and return its time. In software mode the flip waits for the next tick of a
        virtual refresh grid at `hz`, so a late frame lands a whole refresh later, as on a real
        display."""
        if self.mode == "software":
            now = self.core.getTime()
            if self._grid0 is None:
                self._grid0, self._tick = now, 0
            else:
                tick = max(self._tick + 1, math.ceil((now - self._grid0) / self.period))
                delay = self._grid0 + tick * self.period - now
                if delay > 0:
                    self.core.wait(delay, hogCPUperiod=min(delay, 0.002))
                self._tick = tick
        t = self.win.flip()
        self._last_flip = t if t else self.core.getTime()
        return self._last_flip

    def present(self, draws: list, kind: str, info: str = "", stall: float = 0.0) -> float:
        """Show draws[i] on refresh i counted by time from the first flip (so a late frame
        is not added on), returning the first flip's time. The caller's next flip ends it."""
        draws[0]()
        self.shoot(kind, info)
        t0, tick0 = self.flip(), self._tick
        self.first_index = len(self.win.frameIntervals)  # intervals after this flip follow it
        self.first_tick = tick0
        self.check_signals()
        while True:
            # refreshes since the first flip: the virtual grid's count when paced in software
            # (exact), else from the flip times (vsync timestamps)
            elapsed = (self._tick - tick0 if self.mode == "software"
                       else int(round((self._last_flip - t0) / self.period)))
            nxt = elapsed + 1
            if nxt >= len(draws):
                return t0
            if stall and nxt == 2:
                time.sleep(stall)  # tests: a deliberately stalled frame
                stall = 0.0
            draws[nxt]()
            self.flip()
            self.check_signals()

    def display_info(self) -> dict:
        t = self.lab.timing
        return {"measured_hz": round(self.measured_hz, 3) if self.measured_hz else None,
                "measure_s": round(self.measure_s, 3), "used_hz": round(self.hz, 3),
                "timing_mode": self.mode, "paced_in_software": self.mode == "software",
                "window_px": [self.width, self.height], "px_per_deg": round(self.px_per_deg, 3),
                "stimulus_deg": t.stimulus_deg, "stimulus_px": round(self.stimulus_px(), 2),
                "psychopy_dropped_frames": int(self.win.nDroppedFrames)}

    timing_info = display_info

    def stimulus_px(self) -> float:
        return self.lab.timing.stimulus_deg * self.px_per_deg

    # --- signals and keys ---------------------------------------------------------------------
    def on_sigterm(self, signum, frame) -> None:
        self._sigterm = True  # acted on at the next safe point, never inside a write

    def check_signals(self) -> None:
        if self._sigterm:
            raise Terminated
        if self._keys(["escape"], clear=False):
            raise QuitSession

    def _keys(self, key_list: list[str] | None = None, clear: bool = True) -> list:
        """Keys pressed since the last call, whether or not already released (PsychoPy files a
        quick press-and-release under released keys only, so ask for both kinds)."""
        return (self.kb.getKeys(keyList=key_list, waitRelease=False, clear=clear)
                + self.kb.getKeys(keyList=key_list, waitRelease=True, clear=clear))

    def _drain(self) -> None:
        """Forget keys pressed before a screen appeared (they answer nothing), but honour an
        Escape among them."""
        if any(k.name == "escape" for k in self._keys()):
            raise QuitSession

    def _idle(self, seconds: float = 0.02) -> None:
        """Wait a little between polls without flipping: an idle screen costs almost no CPU
        (key times come from the keyboard backend's own timestamps, not from the poll)."""
        self.win.backend.dispatchEvents()
        time.sleep(seconds)

    def shoot(self, kind: str, info: str = "") -> None:
        """Save the back buffer as <kind>.png the first time each kind of screen is drawn."""
        if self.screenshots is None or kind in self._shot_done:
            return
        self.screenshots.mkdir(parents=True, exist_ok=True)
        image = self.win.getMovieFrame(buffer="back")
        self.win.movieFrames = []
        image.save(self.screenshots / f"{kind}.png")
        self._shot_done[kind] = info
        meta = {"screens": self._shot_done, **self.display_info()}
        (self.screenshots / "screens.json").write_text(json.dumps(meta, indent=2) + "\n")

    # --- screens ----------------------------------------------------------------------------
    def text_screen(self, message: str, kind: str) -> None:
        """A text wrapped to the window, shown until the continue key (Escape quits)."""
        key = self.lab.texts.continue_key
        self.text.text = message
        self.text.height = self.text_px
        while self.text.boundingBox[1] > 0.9 * self.height and self.text.height > 8:
            self.text.height = self.text.height * 0.9  # a long text shrinks to fit
        self.text.draw()
        self.shoot(kind)
        self.flip()
        self._drain()
        while True:
            keys = self._keys([key, "escape"])
            if any(k.name == "escape" for k in keys):
                raise QuitSession
            if keys:
                break
            if self._sigterm:
                raise Terminated
            self._idle()
        self.flip()

    def trial(self, trial, stimulus: Path, plan_sha256: str, participant: str,
              frames_log: FrameLog | None = None) -> dict:
        """One trial. Textures and the response labels are made before the blank screen so
        that nothing slow happens between the flips that time the stimulus."""
        t = self.lab.timing
        # reproducible from the plan, the participant and the position (a resumed session
        # shows the same order it would have)
        order = shuffled_choices(trial.choices, derive_rng(
            int(plan_sha256[:16] or "0", 16), "choice-order", participant, int(trial.order)))
        labels = self._labels(order)
        images = self._load(stimulus)
        if len(images) == 1:
            seq = [images[0].draw] * frames_for(float(trial.duration_s), self.hz)
        else:
            per = frames_for(1.0 / float(trial.fps), self.hz)
            seq = [img.draw for img in images for _ in range(per)]
        for img in images:  # upload the textures now, not on the flip that shows them
            img.draw()
        self.win.clearBuffer()
        stall = (self.cfg.stall[1] if self.cfg.stall and self.cfg.stall[0] == int(trial.order)
                 else 0.0)
        self.win.recordFrameIntervals = True
        blank = frames_for(t.iti_s, self.hz)
        if blank:
            self.present([lambda: None] * blank, "blank")
        n_fix = frames_for(t.fixation_s, self.hz)
        if n_fix:
            self.present([self.fix.draw] * n_fix, "fixation")
        tick_before = self._tick  # the virtual refresh of the screen before the stimulus
        onset = self.present(seq, "stimulus", trial.trial_id, stall)
        first = self.first_index
        n_mask = frames_for(t.mask_s, self.hz)
        if n_mask:
            offset = self.present([self._mask_stim().draw] * n_mask, "mask")
            end, self._tick_at_offset = self.first_index, self.first_tick
        response, rt, on_screen, timed_out = self._respond(order, labels)
        if not n_mask:
            offset, end = on_screen
        intervals = list(self.win.frameIntervals[first:end])
        # Refreshes lost from the one before the stimulus to its offset: a late onset flip
        # shortens the stimulus as surely as a late frame within it. Paced in software, a flip
        # that missed its virtual refresh counts too (its timestamp may hide it).
        around = self.win.frameIntervals[max(0, first - 1):end]
        dropped = sum(max(0, int(round(v / self.period)) - 1) for v in around)
        if self.mode == "software":
            dropped = max(dropped, self._tick_at_offset - tick_before - (end - first + 1))
        self.win.recordFrameIntervals = False
        self.win.frameIntervals = []
        # PsychoPy's own criterion (an interval above its refreshThreshold), for comparison
        psychopy_dropped = sum(v > self.win.refreshThreshold for v in intervals)
        if frames_log is not None:
            frames_log.write(int(trial.order), trial.trial_id, intervals, psychopy_dropped)
        anticipation = rt is not None and rt < t.min_rt_s
        return {"response": response, "rt_s": rt, "choice_order": order,
                "timing": {"stim_onset_s": round(onset, 6), "stim_offset_s": round(offset, 6),
                           "stim_duration_s": round(offset - onset, 6),
                           "stim_intended_s": round(len(seq) * self.period, 6),
                           "stim_frames": len(intervals), "dropped_frames": dropped,
                           "refresh_hz": round(self.hz, 3), "timing_mode": self.mode,
                           "timed_out": timed_out, "anticipation": anticipation}}

    def _load(self, stimulus: Path) -> list:
        """Textures made before the first frame is shown (clips: every frame). The file path
        goes to ImageStim so PsychoPy reads it right way up with its own colours."""
        t = self.lab.timing
        stims = []
        side = self.stimulus_px()
        for p in stimulus_frames(stimulus):
            img = self.visual.ImageStim(self.win, image=str(p), units="pix",
                                        interpolate=t.interpolate)
            w, h = img.size
            img.size = (side, side * h / w)
            stims.append(img)
        return stims

    def _mask_stim(self):
        if self._mask is None:
            import numpy as np

            noise = np.random.default_rng(0).uniform(-1, 1, (64, 64, 3))
            side = self.stimulus_px()
            self._mask = self.visual.ImageStim(self.win, image=noise, units="pix",
                                               size=(side, side), interpolate=False)
        return self._mask

    def _labels(self, order: list[str]) -> list:
        """Labels numbered 1..k in `order` with the actions' display names, placed from their
        measured sizes (layout_labels) below the prompt."""
        k = len(order)
        self.prompt.text = self.lab.texts.prompt.format(k=k)
        def make(height: float) -> list:
            return [self.visual.TextStim(self.win, text=f"{i + 1}\n{self.lab.label(action)}",
                                         height=height, units="pix", color=(1, 1, 1),
                                         wrapWidth=0.9 * self.width)
                    for i, action in enumerate(order)]

        prompt_h = self.prompt.boundingBox[1]
        height = self.label_px
        stims = make(height)
        for _ in range(12):  # shrink the labels until every row fits the window
            pad = 0.4 * height
            sizes = [(s.boundingBox[0] + 2 * pad, s.boundingBox[1] + pad) for s in stims]
            top = min(self.height / 2 - 0.12 * self.height - prompt_h - height,
                      0.25 * self.height)
            boxes = layout_labels(sizes, (self.width, self.height), margin=0.03 * self.width,
                                  gap=1.5 * height, top=top)
            if all(b.inside(self.width, 0.98 * self.height) for b in boxes):
                break
            height *= 0.85
            stims = make(height)
        self.prompt.pos = (0, boxes[0].y + boxes[0].h / 2 + 0.6 * height + prompt_h / 2)
        for s, b in zip(stims, boxes):
            s.pos = (b.x, b.y)
        self.label_boxes = boxes
        return stims

    def _respond(self, order: list[str], labels: list
                 ) -> tuple[str, float | None, tuple[float, int], bool]:
        """A number key or a click on a label answers, within the deadline if there is one.
        Returns (response, rt from the response screen's onset, (that onset, its index in the
        recorded intervals), timed out)."""
        k = len(order)
        keys = [str(i + 1) for i in range(k)] + [f"num_{i + 1}" for i in range(k)]
        deadline = self.lab.timing.response_deadline_s
        self.prompt.draw()
        for lab in labels:
            lab.draw()
        self.shoot("response")
        self.win.callOnFlip(self.kb.clock.reset)
        onset = self.flip()
        index = len(self.win.frameIntervals)
        if not frames_for(self.lab.timing.mask_s, self.hz):
            self._tick_at_offset = self._tick
        self.win.recordFrameIntervals = False
        self._drain()
        self.mouse.clickReset()
        was_pressed = True  # ignore a button already down at onset
        while True:
            for key in self._keys(keys + ["escape"]):
                if key.name == "escape":
                    raise QuitSession
                if key.rt < 0:
                    continue  # pressed before the labels appeared: answers nothing
                return order[int(key.name.split("_")[-1]) - 1], float(key.rt), (onset, index), \
                    False
            pressed = self.mouse.getPressed()[0]
            if pressed and not was_pressed:
                for action, lab in zip(order, labels):
                    if lab.contains(self.mouse):
                        return action, float(self.core.getTime() - onset), (onset, index), False
            was_pressed = pressed
            if deadline and self.core.getTime() - onset >= deadline:
                return "", None, (onset, index), True
            if self._sigterm:
                raise Terminated
            self._idle(0.005)

    def feedback(self, correct: bool, answer: str, timed_out: bool = False) -> None:
        texts = self.lab.texts
        self.text.text = (texts.timeout if timed_out else texts.correct if correct
                          else texts.wrong.format(answer=answer))
        self.text.height = self.text_px
        n = frames_for(self.lab.timing.feedback_s, self.hz)
        if n:
            self.present([self.text.draw] * n, "feedback")
        self.flip()

    def close(self) -> None:
        self.win.close()
