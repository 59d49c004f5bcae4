"""The PsychoPy session: fixation, stimulus, optional mask, k-alternative forced choice.

The only module that imports PsychoPy (inside `run_session`). Bookkeeping lives in
`bodyscene.human_study.session` and is tested without a window; this file is the screen.

Timing: every duration is a whole number of refreshes. On a real display `win.flip()` waits for
the vertical blank; a virtual display (Xvfb) has none, so when the measured frame rate is far
above the monitor profile's the runner paces flips in software at the profile's rate and says
so in the run record. Each trial records the stimulus onset (time of the flip that showed it),
its measured duration (to the flip that removed it), and the refreshes it lost."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bodyscene.stimuli.manifest import stimulus_frames, stimulus_sha256

from bodyscene.errors import BadInput
from bodyscene.provenance import write_run_record
from bodyscene.tables import write_json_atomic

from .labconfig import LabConfig, frames_for, load_lab_config
from .plan import read_plan
from .responses import ResponseWriter
from .session import (
    remaining_trials,
    response_columns,
    response_row,
    responses_path,
    shuffled_choices,
    software_string,
    trial_rng,
)

SCREENS = ("instructions", "fixation", "stimulus", "mask", "response", "feedback", "break", "end")


@dataclass
class RunConfig:
    """One session of one participant."""

    plan: Path
    participant: str
    session: int = 1
    data: Path | None = None          # default: data/ beside the plan folder
    resume: bool = False
    lab_config: Path | None = None
    fullscr: bool = True
    window_size: tuple[int, int] | None = None  # windowed size; default: monitor resolution
    screenshots: Path | None = None   # save each kind of screen once (back buffer) here
    title: str = ""                   # window title (default "bodyscene <participant>")

    def data_dir(self) -> Path:
        return Path(self.data) if self.data else Path(self.plan).resolve().parent / "data"


class QuitSession(Exception):
    """Escape was pressed: stop after saving what has been answered."""


@dataclass
class SessionResult:
    path: Path
    answered: int
    total: int
    quit_early: bool
    timing: dict = field(default_factory=dict)


def prepare(cfg: RunConfig):
    """Everything that can fail before a window opens: plan, lab config, data file, stimuli
    present and identical to the plan's hashes. Returns (plan, lab, trials left, path)."""
    plan = read_plan(cfg.plan)
    lab = load_lab_config(cfg.lab_config)
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


def run_session(cfg: RunConfig) -> SessionResult:
    """Run (or resume) one participant's session; every answer is on disk before the next
    trial starts."""
    plan, lab, trials, left, path, hashes = prepare(cfg)
    if left.empty:
        print(f"{path}: the session is already complete ({len(trials)} trials)")
        return SessionResult(path, 0, len(trials), False)
    resuming = len(left) < len(trials)
    software = software_string()
    record = write_run_record(cfg.data_dir(), cfg, None,
                              name=f"{path.stem}.run.json", plan_sha256=plan.sha256,
                              manifest_sha256=plan.manifest_sha256, resumed=resuming,
                              first_order=int(left["order"].iloc[0]))
    screen = Screen(cfg, lab)
    answered, quit_early = 0, False
    writer = ResponseWriter(path, columns=response_columns(),
                            mode="append" if resuming else "new")
    try:
        screen.text_screen(lab.texts.resume if resuming else lab.texts.instructions,
                           "instructions")
        _note_timing(record, screen)
        previous = trials[trials["order"] < int(left["order"].iloc[0])]
        last_phase = previous["phase"].iloc[-1] if len(previous) else None
        last_block = int(previous["block"].iloc[-1]) if len(previous) else None
        n_blocks = int(trials["block"].max())
        for trial in left.itertuples(index=False):
            if trial.phase == "practice" and last_phase is None:
                screen.text_screen(lab.texts.practice, "instructions")
            elif trial.phase != "practice" and last_phase == "practice":
                screen.text_screen(lab.texts.main, "instructions")
            elif last_block is not None and last_block >= 1 and trial.block != last_block:
                screen.text_screen(lab.texts.break_.format(n=trial.block, total=n_blocks),
                                   "break")
            last_phase, last_block = trial.phase, int(trial.block)
            row = screen.trial(trial, plan.stimulus_path(trial.stimulus), plan.sha256,
                               cfg.participant)
            writer.write(response_row(trial, cfg.participant, cfg.session, row["response"],
                                      row["rt_s"], row["choice_order"], hashes[trial.trial_id],
                                      plan.sha256, plan.manifest_sha256, software,
                                      timing=row["timing"]))
            answered += 1
            if trial.feedback:
                screen.feedback(row["response"] == trial.action, lab.label(trial.action))
        screen.text_screen(lab.texts.end, "end")
    except QuitSession:
        quit_early = True
    finally:
        writer.close()
        screen.close()
    total = len(trials)
    done = total - len(left) + answered
    note = (f"stopped by Escape after {done} of {total} trials; continue with --resume"
            if quit_early else f"{done} of {total} trials")
    print(f"{path}: {note}")
    return SessionResult(path, answered, total, quit_early, screen.timing_info())


def _note_timing(record: Path, screen: "Screen") -> None:
    """Add the display's measured refresh and the pacing used to the session's run record."""
    data = json.loads(record.read_text(encoding="utf-8"))
    data["display"] = screen.timing_info()
    write_json_atomic(record, data, sort_keys=True)


class Screen:
    """The window and what is drawn on it; PsychoPy is imported here and nowhere else."""

    def __init__(self, cfg: RunConfig, lab: LabConfig):
        from psychopy import core, event, logging, monitors, visual
        from psychopy.hardware import keyboard

        logging.console.setLevel(logging.ERROR)
        self.core, self.event, self.visual = core, event, visual
        self.lab = lab
        m = lab.monitor
        self.monitor = monitors.Monitor("bodyscene", width=m.width_cm, distance=m.distance_cm)
        self.monitor.setSizePix(list(m.resolution))
        size = cfg.window_size or m.resolution
        self.win = visual.Window(size=list(size), fullscr=cfg.fullscr, monitor=self.monitor,
                                 units="deg", color=(0, 0, 0), colorSpace="rgb",
                                 allowGUI=not cfg.fullscr, waitBlanking=True,
                                 title=cfg.title or f"bodyscene {cfg.participant}")
        self.win.mouseVisible = True
        self.kb = keyboard.Keyboard()
        self.mouse = event.Mouse(win=self.win)
        measured = self.win.getActualFrameRate(nIdentical=10, nMaxFrames=120,
                                               nWarmUpFrames=10, threshold=1) or m.refresh_hz
        self.measured_hz = float(measured)
        # No vertical blank to wait for (virtual display): pace flips at the profile's rate.
        self.paced = self.measured_hz > 1.25 * m.refresh_hz
        self.hz = m.refresh_hz if self.paced else self.measured_hz
        self.period = 1.0 / self.hz
        self._last_flip = self.core.getTime()
        self.screenshots = Path(cfg.screenshots) if cfg.screenshots else None
        self._shot_done: dict[str, str] = {}
        self.fix = visual.ShapeStim(self.win, vertices="cross", size=0.6, lineColor=None,
                                    fillColor=(1, 1, 1), units="deg")
        self.text = visual.TextStim(self.win, text="", height=0.7, wrapWidth=30,
                                    color=(1, 1, 1), units="deg")
        self.prompt = visual.TextStim(self.win, text="", height=0.7, pos=(0, 4),
                                      color=(1, 1, 1), units="deg")
        self._mask = None

    # --- frames ---------------------------------------------------------------------------
    def flip(self) -> float:
        """Flip, returning the flip time; paced in software where the display has no vsync."""
        if self.paced:
            delay = self._last_flip + self.period - self.core.getTime()
            if delay > 0:
                self.core.wait(delay, hogCPUperiod=min(delay, 0.002))
        t = self.win.flip()
        self._last_flip = t if t else self.core.getTime()
        return self._last_flip

    def shoot(self, kind: str, info: str = "") -> None:
        """Save the back buffer as <kind>.png the first time each kind of screen is drawn."""
        if self.screenshots is None or kind in self._shot_done:
            return
        self.screenshots.mkdir(parents=True, exist_ok=True)
        image = self.win.getMovieFrame(buffer="back")
        self.win.movieFrames = []
        image.save(self.screenshots / f"{kind}.png")
        self._shot_done[kind] = info
        meta = {"screens": self._shot_done, "window_size": [int(v) for v in self.win.size],
                "stimulus_px": self.stimulus_px()}
        (self.screenshots / "screens.json").write_text(json.dumps(meta, indent=2) + "\n")

    def stimulus_px(self) -> float:
        from psychopy.tools.monitorunittools import deg2pix

        return float(deg2pix(self.lab.timing.stimulus_deg, self.monitor))

    def hold(self, draw, n_frames: int, kind: str, info: str = "") -> list[float]:
        """Show what `draw` draws for n_frames refreshes; returns the flip times."""
        times = []
        for i in range(n_frames):
            draw()
            if i == 0:
                self.shoot(kind, info)
            times.append(self.flip())
            self._check_escape()
        return times

    def _keys(self, key_list: list[str] | None = None, clear: bool = True) -> list:
        """Keys pressed since the last call, whether or not already released (PsychoPy files a
        quick press-and-release under released keys only, so ask for both kinds)."""
        return (self.kb.getKeys(keyList=key_list, waitRelease=False, clear=clear)
                + self.kb.getKeys(keyList=key_list, waitRelease=True, clear=clear))

    def _check_escape(self) -> None:
        if self._keys(["escape"], clear=False):
            raise QuitSession

    def _drain(self) -> None:
        """Forget keys pressed before a screen appeared (they answer nothing), but honour an
        Escape among them."""
        if any(k.name == "escape" for k in self._keys()):
            raise QuitSession

    # --- screens ----------------------------------------------------------------------------
    def text_screen(self, message: str, kind: str) -> None:
        key = self.lab.texts.continue_key
        self.text.text = message
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
            self.text.draw()
            self.flip()
        self.flip()

    def trial(self, trial, stimulus: Path, plan_sha256: str, participant: str) -> dict:
        """One trial. Textures and the response labels are made before the blank screen so
        that nothing slow happens between the flips that time the stimulus."""
        t = self.lab.timing
        order = shuffled_choices(trial.choices, trial_rng(plan_sha256 + participant,
                                                          trial.order))
        labels = self._labels(order)
        frames = self._load(stimulus)
        if len(frames) == 1:
            holds = [frames_for(float(trial.duration_s), self.hz)]
        else:
            holds = [frames_for(1.0 / float(trial.fps), self.hz)] * len(frames)
        intended = sum(holds) * self.period
        self.hold(lambda: None, frames_for(t.iti_s, self.hz), "blank")
        self.hold(self.fix.draw, frames_for(t.fixation_s, self.hz), "fixation")
        times: list[float] = []
        for img, n in zip(frames, holds):
            times += self.hold(img.draw, n, "stimulus", trial.trial_id)
        n_mask = frames_for(t.mask_s, self.hz)
        offset = self.hold(self._mask_stim().draw, n_mask, "mask")[0] if n_mask else None
        response, rt, on_screen = self._respond(order, labels)
        offset = on_screen if offset is None else offset
        intervals = [b - a for a, b in zip(times, times[1:] + [offset])]
        dropped = sum(max(0, int(round(d / self.period)) - 1) for d in intervals)
        return {"response": response, "rt_s": rt, "choice_order": order,
                "timing": {"stim_onset_s": round(times[0], 6),
                           "stim_duration_s": round(offset - times[0], 6),
                           "stim_intended_s": round(intended, 6),
                           "dropped_frames": dropped, "refresh_hz": round(self.hz, 3)}}

    def _load(self, stimulus: Path) -> list:
        """Textures made before the first frame is shown (clips: every frame). The file path
        goes to ImageStim so PsychoPy reads it right way up with its own colours."""
        t = self.lab.timing
        stims = []
        for p in stimulus_frames(stimulus):
            img = self.visual.ImageStim(self.win, image=str(p), units="deg",
                                        interpolate=t.interpolate)
            w, h = img.size
            img.size = (t.stimulus_deg, t.stimulus_deg * h / w)
            stims.append(img)
        return stims

    def _mask_stim(self):
        if self._mask is None:
            import numpy as np

            noise = np.random.default_rng(0).uniform(-1, 1, (64, 64, 3))
            t = self.lab.timing
            self._mask = self.visual.ImageStim(self.win, image=noise, units="deg",
                                               size=(t.stimulus_deg, t.stimulus_deg),
                                               interpolate=False)
        return self._mask

    def _labels(self, order: list[str]) -> list:
        """Labels numbered 1..k in `order`, spread across the screen."""
        k = len(order)
        prompt = self.lab.texts.prompt.format(k=k)
        if self.prompt.text != prompt:
            self.prompt.text = prompt
        span = min(24.0, 6.0 * k)
        return [self.visual.TextStim(self.win, text=f"{i + 1}\n{self.lab.label(action)}",
                                     pos=(-span / 2 + span * (i + 0.5) / k, 0), height=0.8,
                                     color=(1, 1, 1), units="deg")
                for i, action in enumerate(order)]

    def _respond(self, order: list[str], labels: list) -> tuple[str, float, float]:
        """A number key or a click on a label answers. Returns (response, rt from the
        response screen's onset, that onset)."""
        k = len(order)
        keys = [str(i + 1) for i in range(k)] + [f"num_{i + 1}" for i in range(k)]

        def draw():
            self.prompt.draw()
            for lab in labels:
                lab.draw()

        draw()
        self.shoot("response")
        self.win.callOnFlip(self.kb.clock.reset)
        onset = self.flip()
        self._drain()
        self.mouse.clickReset()
        was_pressed = True  # ignore a button already down at onset
        while True:
            for key in self._keys(keys + ["escape"]):
                if key.name == "escape":
                    raise QuitSession
                if key.rt < 0:
                    continue  # pressed before the labels appeared: answers nothing
                return order[int(key.name.split("_")[-1]) - 1], float(key.rt), onset
            pressed = self.mouse.getPressed()[0]
            if pressed and not was_pressed:
                for action, lab in zip(order, labels):
                    if lab.contains(self.mouse):
                        return action, float(self.core.getTime() - onset), onset
            was_pressed = pressed
            draw()
            self.flip()

    def feedback(self, correct: bool, answer: str) -> None:
        texts = self.lab.texts
        self.text.text = texts.correct if correct else texts.wrong.format(answer=answer)
        self.hold(self.text.draw, frames_for(self.lab.timing.feedback_s, self.hz), "feedback")
        self.flip()

    def close(self) -> None:
        self.win.close()

    def timing_info(self) -> dict:
        return {"measured_hz": round(self.measured_hz, 3), "used_hz": round(self.hz, 3),
                "paced_in_software": self.paced}
