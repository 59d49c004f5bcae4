"""A lab's settings for the experiment: monitor profile, timing, and every text on screen.

One JSON file a lab edits and translates (`bodyscene experiment config --out lab.json` writes
the defaults); keys it leaves out keep their defaults. Plain data, no PsychoPy, so a bad file is
reported in one line before any window opens."""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from bodyscene.errors import BadInput
from bodyscene.tables import write_json_atomic


@dataclass
class MonitorProfile:
    """The stimulus computer's screen, so sizes can be set in degrees of visual angle.
    `screen_check`: what to do when the real screen's size differs from `resolution` at start
    ("refuse", or "warn" and record both)."""

    width_cm: float = 53.0
    distance_cm: float = 60.0
    resolution: tuple[int, int] = (1920, 1080)
    refresh_hz: float = 60.0
    screen_check: str = "refuse"


@dataclass
class Timing:
    """Durations in seconds; each is shown for the nearest whole number of refreshes.
    `response_deadline_s` 0 waits for ever; an answer faster than `min_rt_s` is flagged as an
    anticipation (kept, excludable in the report)."""

    fixation_s: float = 0.5
    mask_s: float = 0.0          # 0: no mask
    iti_s: float = 0.3           # blank screen between trials
    feedback_s: float = 0.8      # practice only
    stimulus_deg: float = 8.0    # stimulus width in degrees of visual angle
    interpolate: bool = True     # smooth the image when it is enlarged (as model resizing does)
    response_deadline_s: float = 0.0
    min_rt_s: float = 0.1
    refresh_measure_s: float = 2.0  # most seconds spent measuring the refresh rate


@dataclass
class Procedure:
    """What happens around the trials: participant info asked for (besides id and session),
    a consent screen, the practice criterion, the completion code on the end screen, and
    whether the choices change places every trial or keep one order per participant (the
    instructions say which through `{choice_order}`)."""

    participant_fields: list[str] = field(default_factory=list)  # e.g. ["age", "handedness"]
    consent: bool = False
    practice_criterion: float = 0.0   # repeat practice until this fraction correct (0: once)
    practice_max_rounds: int = 3      # practice is shown at most this many times
    completion_code: str = ""         # "": a random code per session
    choice_order: str = "trial"       # "trial": shuffled every trial; "participant": one order


@dataclass
class Texts:
    """Everything a participant reads. Placeholders allowed in each text are listed in
    `PLACEHOLDERS`; any other is refused when the config is loaded."""

    instructions: str = ("In each trial a picture of a person doing an action appears "
                         "briefly after a cross.\nSometimes you will see only the person, only "
                         "the background, or both.\n\nChoose the action with the number keys or "
                         "by clicking on its name.\n{choice_order}\nAnswer as accurately as "
                         "you can.\n\n"
                         "Press {continue_key} to start.")
    consent: str = ("This study records your answers and response times, with no name "
                    "attached.\nYou may stop at any time with Escape.\n\nPress {continue_key} if "
                    "you agree to take part, Escape if not.")
    resume: str = ("Welcome back. The session continues where it stopped.\n\nPress "
                   "{continue_key}.")
    practice: str = "First some practice trials, with feedback.\n\nPress {continue_key}."
    practice_again: str = ("You answered {percent}% of the practice trials correctly; "
                           "{criterion}% are needed.\nLet us practise once more.\n\nPress "
                           "{continue_key}.")
    main: str = ("Practice is over. From now on there is no feedback.\n\nPress "
                 "{continue_key} to begin.")
    break_: str = ("Take a short break. Block {n} of {total} is next.\n\nPress "
                   "{continue_key} to go on.")
    prompt: str = "Which action? Press 1-{k} or click."
    correct: str = "Correct"
    wrong: str = "Wrong: it was {answer}"
    timeout: str = "Too slow"
    order_trial: str = "The order of the choices changes from trial to trial."
    order_participant: str = "The choices stay in the same order throughout."
    preparing: str = "Please wait a moment..."   # while the lab runner measures the display
    end: str = ("Thank you! The session is complete.\nYour completion code: {code}\n\n"
                "Press {continue_key} to close.")
    continue_key: str = "space"


# The placeholders each text may use (rendered once with sample values when the config loads).
PLACEHOLDERS = {"break_": {"n": 2, "total": 5}, "prompt": {"k": 8}, "wrong": {"answer": "kick"},
                "end": {"code": "AB12CD34"}, "practice_again": {"percent": 50, "criterion": 80}}
KEY_FIELDS = ("continue_key",)


@dataclass(frozen=True)
class Key:
    """One key of the config's vocabulary, as each venue names it: PsychoPy's key name, the
    browser's `KeyboardEvent.key`, and the words on screen (`{continue_key}` in any text)."""

    psychopy: str
    browser: str
    shown: str


_ARROWS = {d: Key(d, f"Arrow{d.title()}", f"the {d} arrow key")
           for d in ("left", "right", "up", "down")}
KEYS: dict[str, Key] = {
    "space": Key("space", " ", "space"), "return": Key("return", "Enter", "Enter"),
    "enter": Key("return", "Enter", "Enter"), "tab": Key("tab", "Tab", "Tab"), **_ARROWS,
    **{c: Key(c, c, c.upper()) for c in string.ascii_lowercase},
    **{d: Key(d, d, d) for d in string.digits},
}


def key(name: str) -> Key:
    """The vocabulary entry for a config key name (validated when the config loads)."""
    return KEYS[name]


@dataclass
class LabConfig:
    monitor: MonitorProfile = field(default_factory=MonitorProfile)
    timing: Timing = field(default_factory=Timing)
    procedure: Procedure = field(default_factory=Procedure)
    texts: Texts = field(default_factory=Texts)
    labels: dict[str, str] = field(default_factory=dict)  # action -> label shown (translation)

    def label(self, action: str) -> str:
        """The name shown for an action: the lab's translation, else the identifier with
        underscores as spaces (`jumping_jack` -> "jumping jack")."""
        return self.labels.get(action) or action.replace("_", " ")


SECTIONS = ("monitor", "timing", "procedure", "texts", "labels")


def load_lab_config(path: str | Path | None) -> LabConfig:
    """Defaults, overridden by the sections of `path` (if given). Types are strict (a number
    given as a string is refused) and every text is rendered once with its placeholders."""
    cfg = LabConfig()
    if path is None:
        return _fill_keys(cfg)
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: lab config not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid JSON ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a JSON object with {', '.join(SECTIONS)}")
    for key in data:
        if key not in SECTIONS:
            raise BadInput(f"{path}: unknown section {key!r} (expected {', '.join(SECTIONS)})")
    for section in SECTIONS[:-1]:
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
    if not isinstance(labels, dict) or not all(isinstance(v, str) and v.strip()
                                               for v in labels.values()):
        raise BadInput(f"{path}: labels must map action names to the (non-empty) text shown")
    cfg.labels = dict(labels)
    _check(path, cfg)
    return _fill_keys(cfg)


def _fill_keys(cfg: LabConfig) -> LabConfig:
    """Every text with `{continue_key}` replaced by the key's words and `{choice_order}` by
    the sentence for the configured order (other placeholders kept for the screen that fills
    them), so no screen can name a key that does not work or promise another order."""
    shown = KEYS[cfg.texts.continue_key].shown
    order = (cfg.texts.order_participant if cfg.procedure.choice_order == "participant"
             else cfg.texts.order_trial)
    for f in fields(cfg.texts):
        if f.name in KEY_FIELDS:
            continue
        out = []
        for literal, name, spec, conv in string.Formatter().parse(getattr(cfg.texts, f.name)):
            out.append(literal.replace("{", "{{").replace("}", "}}"))
            if name in ("continue_key", "choice_order"):
                said = shown if name == "continue_key" else order
                out.append(said.replace("{", "{{").replace("}", "}}"))
            elif name is not None:
                out.append("{" + name + (f"!{conv}" if conv else "") +
                           (f":{spec}" if spec else "") + "}")
        setattr(cfg.texts, f.name, "".join(out))
    return cfg


def _coerce(path: Path, key: str, default, value):
    """`value` if it has the default's JSON type (an int is a float; nothing else converts)."""
    ok = False
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = (isinstance(value, list) and len(value) == len(default)
              and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
        value = tuple(value) if ok else value
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    if ok:
        return value
    like = json.dumps(list(default) if isinstance(default, tuple) else default)
    raise BadInput(f"{path}: {key} expects a value like {like} ({type(default).__name__}), "
                   f"got {json.dumps(value)}")


def _check(path: Path, cfg: LabConfig) -> None:
    m, t, p = cfg.monitor, cfg.timing, cfg.procedure
    if m.width_cm <= 0 or m.distance_cm <= 0 or m.refresh_hz <= 0 or min(m.resolution) <= 0:
        raise BadInput(f"{path}: monitor width_cm, distance_cm, refresh_hz and resolution must "
                       f"be positive")
    if m.screen_check not in ("refuse", "warn"):
        raise BadInput(f"{path}: monitor.screen_check must be \"refuse\" or \"warn\", got "
                       f"{m.screen_check!r}")
    for name in ("fixation_s", "mask_s", "iti_s", "feedback_s", "response_deadline_s",
                 "min_rt_s"):
        if getattr(t, name) < 0:
            raise BadInput(f"{path}: timing.{name} must be >= 0")
    if t.stimulus_deg <= 0:
        raise BadInput(f"{path}: timing.stimulus_deg must be > 0")
    if not 0.2 <= t.refresh_measure_s <= 30:
        raise BadInput(f"{path}: timing.refresh_measure_s must lie in [0.2, 30] seconds")
    if 0 < t.response_deadline_s <= t.min_rt_s:
        raise BadInput(f"{path}: timing.response_deadline_s must exceed timing.min_rt_s")
    if not 0.0 <= p.practice_criterion <= 1.0:
        raise BadInput(f"{path}: procedure.practice_criterion is a fraction in [0, 1], got "
                       f"{p.practice_criterion}")
    if p.choice_order not in ("trial", "participant"):
        raise BadInput(f"{path}: procedure.choice_order must be \"trial\" or \"participant\", "
                       f"got {p.choice_order!r}")
    if p.practice_max_rounds < 1:
        raise BadInput(f"{path}: procedure.practice_max_rounds must be >= 1")
    bad = [f for f in p.participant_fields if f in ("participant", "session")
           or not f.replace("_", "").isalnum()]
    if bad or len(set(p.participant_fields)) != len(p.participant_fields):
        raise BadInput(f"{path}: procedure.participant_fields must be distinct names of "
                       f"letters, digits and _ (participant and session are always asked), "
                       f"got {bad or p.participant_fields}")
    for name in KEY_FIELDS:
        if getattr(cfg.texts, name) not in KEYS:
            raise BadInput(f"{path}: texts.{name} {getattr(cfg.texts, name)!r} is not a key "
                           f"name (expected space, return, enter, tab, left, right, up, down, "
                           f"a letter a-z or a digit 0-9)")
    for f in fields(cfg.texts):
        if f.name in KEY_FIELDS:
            continue
        _render(path, f.name, getattr(cfg.texts, f.name))


def _render(path: Path, name: str, template: str) -> str:
    """Render a text once with its allowed placeholders, so a mistake shows now, not at the
    first break of a session."""
    allowed = {**PLACEHOLDERS.get(name, {}), "continue_key": "space", "choice_order": "..."}
    try:
        used = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise BadInput(f"{path}: texts.{name} is not a valid template ({exc}; write {{{{ and "
                       f"}}}} for literal braces)") from None
    for f in used:
        if f not in allowed:
            raise BadInput(f"{path}: texts.{name} uses {{{f}}}, which is not available there "
                           f"(allowed: {', '.join('{%s}' % a for a in allowed) or 'none'})")
    try:
        return template.format(**allowed)
    except (ValueError, IndexError, KeyError, AttributeError) as exc:
        raise BadInput(f"{path}: texts.{name} cannot be rendered ({exc})") from None


def check_labels(cfg: LabConfig, actions: set[str], where_: str | Path) -> None:
    """Refuse translations for actions the manifest does not have (a typo would silently show
    the raw identifier)."""
    unknown = sorted(set(cfg.labels) - set(actions))
    if unknown:
        raise BadInput(f"{where_}: labels for {', '.join(map(repr, unknown))}, which the "
                       f"manifest does not have (its actions: {', '.join(sorted(actions))})")


def check_keys(cfg: LabConfig, key_names: set[str], where_: str | Path) -> None:
    """Refuse keys the keyboard backend cannot report (the participant would be stuck)."""
    for name in KEY_FIELDS:
        key = KEYS[getattr(cfg.texts, name)].psychopy
        if key not in key_names:
            near = sorted(k for k in key_names if k[:2] == key[:2])[:5]
            raise BadInput(f"{where_}: texts.{name} {key!r} is not a key name of the keyboard "
                           f"backend" + (f" (did you mean {', '.join(near)}?)" if near else ""))


def write_default_config(path: str | Path) -> Path:
    """The defaults as a JSON file for a lab to edit and translate; never overwrites."""
    path = Path(path)
    if path.exists():
        raise BadInput(f"{path}: already exists (nothing is overwritten)")
    data = asdict(LabConfig())
    write_json_atomic(path, data)
    return path


def frames_for(seconds: float, refresh_hz: float) -> int:
    """Whole refreshes nearest to `seconds` (at least one for a positive duration)."""
    if seconds <= 0:
        return 0
    return max(1, int(round(seconds * refresh_hz)))
