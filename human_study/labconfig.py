"""A lab's settings for the experiment: monitor profile, timing, and every text on screen.

One JSON file a lab edits and translates (`bodyscene experiment config --out lab.json` writes
the defaults); keys it leaves out keep their defaults. Plain data, no PsychoPy, so a bad file is
reported in one line before any window opens."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from bodyscene.errors import BadInput
from bodyscene.tables import write_json_atomic


@dataclass
class MonitorProfile:
    """The stimulus computer's screen, so sizes can be set in degrees of visual angle."""

    width_cm: float = 53.0
    distance_cm: float = 60.0
    resolution: tuple[int, int] = (1920, 1080)
    refresh_hz: float = 60.0


@dataclass
class Timing:
    """Durations in seconds; each is shown for the nearest whole number of refreshes."""

    fixation_s: float = 0.5
    mask_s: float = 0.0          # 0: no mask
    iti_s: float = 0.3           # blank screen between trials
    feedback_s: float = 0.8      # practice only
    stimulus_deg: float = 8.0    # stimulus width in degrees of visual angle
    interpolate: bool = True     # smooth the image when it is enlarged (as model resizing does)


@dataclass
class Texts:
    """Everything a participant reads. `{k}` is the number of choices, `{n}`/`{total}` the
    block counts."""

    instructions: str = ("In each trial a picture of a person doing an action appears "
                         "briefly after a cross.\nSometimes you will see only the person, only "
                         "the background, or both.\n\nChoose the action with the number keys or "
                         "by clicking on its name.\nAnswer as accurately as you can.\n\n"
                         "Press space to start.")
    resume: str = "Welcome back. The session continues where it stopped.\n\nPress space."
    practice: str = "First some practice trials, with feedback.\n\nPress space."
    main: str = ("Practice is over. From now on there is no feedback.\n\nPress space to "
                 "begin.")
    break_: str = "Take a short break. Block {n} of {total} is next.\n\nPress space to go on."
    prompt: str = "Which action? Press 1-{k} or click."
    correct: str = "Correct"
    wrong: str = "Wrong: it was {answer}"
    end: str = "Thank you! The session is complete.\n\nPress space to close."
    continue_key: str = "space"


@dataclass
class LabConfig:
    monitor: MonitorProfile = field(default_factory=MonitorProfile)
    timing: Timing = field(default_factory=Timing)
    texts: Texts = field(default_factory=Texts)
    labels: dict[str, str] = field(default_factory=dict)  # action -> label shown (translation)

    def label(self, action: str) -> str:
        return self.labels.get(action, action)


def load_lab_config(path: str | Path | None) -> LabConfig:
    """Defaults, overridden by the sections of `path` (if given)."""
    cfg = LabConfig()
    if path is None:
        return cfg
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: lab config not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid JSON ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a JSON object with monitor, timing, texts, labels")
    for key in data:
        if key not in ("monitor", "timing", "texts", "labels"):
            raise BadInput(f"{path}: unknown section {key!r} (expected monitor, timing, texts, "
                           f"labels)")
    for section in ("monitor", "timing", "texts"):
        target = getattr(cfg, section)
        given = data.get(section, {})
        if not isinstance(given, dict):
            raise BadInput(f"{path}: section {section!r} must be an object")
        known = {f.name: f for f in fields(target)}
        for key, value in given.items():
            if key not in known:
                raise BadInput(f"{path}: unknown key {section}.{key} (expected one of "
                               f"{', '.join(known)})")
            setattr(target, key, _coerce(path, f"{section}.{key}", getattr(target, key), value))
    labels = data.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise BadInput(f"{path}: labels must map action names to the text shown")
    cfg.labels = dict(labels)
    _check(path, cfg)
    return cfg


def _coerce(path: Path, key: str, default, value):
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, tuple):
            if len(value) != len(default):
                raise TypeError
            return tuple(int(v) for v in value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise BadInput(f"{path}: {key} expects a value like {json.dumps(default)}, got "
                   f"{json.dumps(value)}")


def _check(path: Path, cfg: LabConfig) -> None:
    m, t = cfg.monitor, cfg.timing
    if m.width_cm <= 0 or m.distance_cm <= 0 or m.refresh_hz <= 0 or min(m.resolution) <= 0:
        raise BadInput(f"{path}: monitor width_cm, distance_cm, refresh_hz and resolution must "
                       f"be positive")
    for name in ("fixation_s", "mask_s", "iti_s", "feedback_s"):
        if getattr(t, name) < 0:
            raise BadInput(f"{path}: timing.{name} must be >= 0")
    if t.stimulus_deg <= 0:
        raise BadInput(f"{path}: timing.stimulus_deg must be > 0")


def write_default_config(path: str | Path) -> Path:
    """The defaults as a JSON file for a lab to edit and translate; never overwrites."""
    path = Path(path)
    if path.exists():
        raise BadInput(f"{path}: already exists (nothing is overwritten)")
    data = asdict(LabConfig())
    data["labels"] = {"example_action": "label shown for it"}
    write_json_atomic(path, data)
    return path


def frames_for(seconds: float, refresh_hz: float) -> int:
    """Whole refreshes nearest to `seconds` (at least one for a positive duration)."""
    if seconds <= 0:
        return 0
    return max(1, int(round(seconds * refresh_hz)))
