"""`bodyscene experiment export-web`: a plan as a self-contained static jsPsych site.

The site holds everything a browser needs and nothing from a CDN: jsPsych and its official
plugins (pinned in this folder's package.json/package-lock.json, installed with `npm ci` into a
cache and copied in), the page (site/), config.json (the lab config's timing and texts, the
server's address, completion code), one plan/<participant>.json per participant, and the
stimuli. Stimulus frames are copied under their own sha256 (stim/<sha256>.png): file names
would give the answer away (they hold item ids), and the page hashes the bytes it shows so the
server can check them against the plan."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bodyscene.errors import BadInput
from bodyscene.provenance import write_run_record
from bodyscene.stimuli.manifest import split_choices, stimulus_frames, stimulus_sha256
from bodyscene.tables import file_sha256, fresh_output_dir, write_json_atomic

from ..labconfig import KEYS, LabConfig, load_lab_config
from ..plan import Plan, read_plan

HERE = Path(__file__).parent
SITE_TEMPLATE = HERE / "site"
# npm package -> the browser (IIFE) build copied into site/vendor/ under this name
VENDOR_FILES = {
    "jspsych": {"dist/index.browser.min.js": "jspsych.js", "css/jspsych.css": "jspsych.css"},
    **{f"@jspsych/plugin-{p}": {"dist/index.browser.min.js": f"plugin-{p}.js"}
       for p in ("preload", "html-keyboard-response", "image-keyboard-response", "instructions",
                 "fullscreen", "browser-check")},
}


@dataclass
class WebTexts:
    """Texts only the online version shows (the lab config's `texts` supply the rest).
    `{participant}` and `{code}` are filled in."""

    no_link: str = ("Please open this study through the participant link you were given (it "
                    "holds your access token).")
    end: str = "Thank you! The session is complete."   # replaces the lab's (no key to close)
    unknown_participant: str = "There is no participant {participant} in this study."
    loading: str = "Loading the pictures..."
    load_failed: str = "The pictures could not be loaded. Please reload the page."
    fullscreen: str = "The experiment runs in full screen.\n\nClick the button to start."
    fullscreen_button: str = "Full screen"
    excluded: str = "Please take part on a computer with a window of at least 640 x 480."
    saving: str = "Saving your answers..."
    not_saved: str = ("Your answers could not all be sent yet. Please keep this tab open and "
                      "check your connection; reload the page to try again.")
    completion_code: str = "Your completion code: {code}"
    declined: str = ("You chose not to take part. No answers were recorded; you may close this "
                     "page.")


@dataclass
class WebConfig:
    """What an export needs besides the plan; written into the run record beside the site."""

    plan: Path
    out: Path
    lab_config: Path | None = None
    web_texts: Path | None = None
    server: str = ""                 # "" = the API on the site's own origin (`serve`)
    completion_code: str | None = None  # default: derived from the plan's hash
    redirect_url: str = ""           # e.g. https://app.prolific.com/submissions/complete?cc={code}
    fullscreen: bool = True
    minimum_window: tuple[int, int] = (640, 480)
    npm_cache: Path | None = None
    quiet: bool = False
    texts: WebTexts = field(default_factory=WebTexts)


def export_site(cfg: WebConfig) -> Path:
    """Write the site for cfg.plan into cfg.out (a new or empty folder); returns cfg.out."""
    plan = read_plan(cfg.plan)
    lab = load_lab_config(cfg.lab_config)
    check_web_supported(lab, cfg.lab_config or "lab config")
    texts = load_web_texts(cfg.web_texts)
    modules = npm_modules(cfg.npm_cache)
    out = fresh_output_dir(cfg.out, "site folder")
    shutil.copytree(SITE_TEMPLATE, out, dirs_exist_ok=True)
    vendored = vendor(modules, out / "vendor")
    frames = copy_stimuli(plan, out / "stim", quiet=cfg.quiet)
    (out / "plan").mkdir()
    for pid in plan.participants:
        write_json_atomic(out / "plan" / f"{pid}.json", participant_json(plan, pid, frames))
    code = cfg.completion_code or lab.procedure.completion_code or plan.sha256[:8].upper()
    write_json_atomic(out / "config.json", site_config(cfg, plan, lab, texts, code))
    cfg.texts = texts
    write_run_record(out.parent, cfg, None, name=f"{out.name}.export.json",
                     plan_sha256=plan.sha256, manifest_sha256=plan.manifest_sha256,
                     vendored=vendored, participants=list(plan.participants))
    return out


# Lab-config settings the web page does not implement, with the value that means "not used":
# export-web refuses a config that sets one (docs/experiment.md, "Lab and web").
NOT_ON_THE_WEB = {
    "timing.mask_s": (0.0, "the page shows no mask"),
    "timing.response_deadline_s": (0.0, "the page waits for an answer without a deadline"),
    "procedure.practice_criterion": (0.0, "the page runs the practice block once"),
    "procedure.participant_fields": ([], "the page asks for no participant information"),
}


def check_web_supported(lab: LabConfig, where_: str | Path) -> None:
    """Refuse, in one line naming the setting, a lab config the web page would not honour (lab
    and online data would otherwise differ without anybody being told)."""
    for name, (unused, why) in NOT_ON_THE_WEB.items():
        section, key = name.split(".")
        value = getattr(getattr(lab, section), key)
        if value != unused:
            raise BadInput(f"{where_}: {name} {json.dumps(value)} is not implemented online "
                           f"({why}); set it to {json.dumps(unused)} for export-web or run "
                           f"this protocol in the lab (docs/experiment.md, Lab and web)")


def load_web_texts(path: Path | None) -> WebTexts:
    texts = WebTexts()
    if path is None:
        return texts
    path = Path(path)
    try:
        given = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: web texts file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid JSON ({exc})".replace("\n", " ")) from None
    if not isinstance(given, dict):
        raise BadInput(f"{path}: expected a JSON object of texts")
    for key, value in given.items():
        if not hasattr(texts, key):
            raise BadInput(f"{path}: unknown text {key!r} (expected one of "
                           f"{', '.join(asdict(texts))})")
        if not isinstance(value, str):
            raise BadInput(f"{path}: text {key!r} must be a string")
        setattr(texts, key, value)
    return texts


def stimulus_px(lab: LabConfig) -> int:
    """The stimulus width in CSS pixels that `stimulus_deg` spans on the lab's monitor profile
    (a browser cannot know the viewing distance; the page also caps it at 60% of the window)."""
    import math

    m, t = lab.monitor, lab.timing
    cm = 2 * m.distance_cm * math.tan(math.radians(t.stimulus_deg) / 2)
    return max(16, int(round(cm / m.width_cm * m.resolution[0])))


def site_config(cfg: WebConfig, plan: Plan, lab: LabConfig, texts: WebTexts,
                code: str) -> dict:
    lab_texts = asdict(lab.texts)
    return {
        "format": "bodyscene-site/1", "plan_sha256": plan.sha256, "server": cfg.server,
        "completion_code": code, "redirect_url": cfg.redirect_url,
        "fullscreen": cfg.fullscreen, "minimum_window": list(cfg.minimum_window),
        "stimulus_px": stimulus_px(lab), "timing": asdict(lab.timing),
        "procedure": {"consent": lab.procedure.consent,
                      "choice_order": lab.procedure.choice_order},
        "texts": {**lab_texts, **asdict(texts)},
        "labels": {a: lab.label(a) for a in plan_actions(plan)},   # display names, as the lab
        "keys": {"continue": KEYS[lab.texts.continue_key].browser},  # KeyboardEvent.key
    }


def plan_actions(plan: Plan) -> list[str]:
    """Every action offered in any participant's trials."""
    return sorted({c for pid in plan.participants
                   for choices in plan.trials(pid)["choices"] for c in split_choices(choices)})


def trial_key(plan_sha256: str, participant: str, trial_id: str) -> str:
    """The name a page knows a trial by. Trial ids name items, and item ids often name the
    action (`kick_test00`), so the page never sees them."""
    text = f"{plan_sha256}:{participant}:{trial_id}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def participant_json(plan: Plan, pid: str, frames: dict[str, list[str]]) -> dict:
    """The trial list the page runs. No answers, except on practice trials (their feedback
    needs it), and trials by key rather than id."""
    trials = []
    for t in plan.trials(pid).itertuples(index=False):
        row = {"order": int(t.order), "trial": trial_key(plan.sha256, pid, t.trial_id),
               "phase": t.phase,
               "block": int(t.block), "frames": frames[t.stimulus], "n_frames": int(t.n_frames),
               "fps": float(t.fps), "duration_s": float(t.duration_s),
               "choices": split_choices(t.choices), "feedback": bool(t.feedback)}
        if t.feedback:
            row["answer"] = t.action
        trials.append(row)
    return {"participant": pid, "plan_sha256": plan.sha256, "trials": trials}


def copy_stimuli(plan: Plan, dest: Path, quiet: bool = False) -> dict[str, list[str]]:
    """Copy every planned stimulus's frames to dest/<sha256>.png after checking the stimulus
    against the plan's hash; returns stimulus -> frame URLs relative to the site."""
    from tqdm import tqdm

    wanted: dict[str, str] = {}
    for pid in plan.participants:
        for t in plan.trials(pid).itertuples(index=False):
            wanted[t.stimulus] = t.sha256
    dest.mkdir(parents=True, exist_ok=True)
    urls: dict[str, list[str]] = {}
    for stim, sha in tqdm(sorted(wanted.items()), desc="stimuli", unit="stimulus",
                          disable=quiet):
        path = plan.stimulus_path(stim)
        if not path.exists():
            raise BadInput(f"{plan.dir}: stimulus {str(path)!r} is missing")
        if stimulus_sha256(path) != sha:
            raise BadInput(f"{path}: does not match the sha256 in the plan; the image changed "
                           f"after the plan was made")
        urls[stim] = []
        for frame in stimulus_frames(path):
            digest = file_sha256(frame)
            target = dest / f"{digest}.png"
            if not target.exists():
                shutil.copyfile(frame, target)
            urls[stim].append(f"stim/{digest}.png")
    return urls


# --- jsPsych from npm --------------------------------------------------------------------------

def npm_modules(cache: Path | None = None) -> Path:
    """node_modules holding exactly the versions in package-lock.json: `npm ci` into a cache
    folder named by the lock file's hash (so it runs once per lock, not per export)."""
    lock = HERE / "package-lock.json"
    key = file_sha256(lock)[:12]
    root = Path(cache or os.environ.get("BODYSCENE_NPM_CACHE")
                or Path.home() / ".cache" / "bodyscene") / f"npm-{key}"
    modules = root / "node_modules"
    if (root / ".complete").exists():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise BadInput("npm is not installed: export-web installs jsPsych from the npm registry "
                       "(install Node.js and npm, e.g. bash scripts/install-web.sh)")
    root.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / name, root / name)
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root,
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BadInput(f"npm ci in {root} failed: {last}")
    (root / ".complete").write_text(key + "\n")
    return modules


def vendor(modules: Path, dest: Path) -> dict[str, dict]:
    """Copy the browser builds into dest, without their `//# sourceMappingURL=` trailers (a
    browser's developer tools would fetch those from a CDN). Returns name -> version, sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    record = {}
    for package, files in VENDOR_FILES.items():
        meta = json.loads((modules / package / "package.json").read_text(encoding="utf-8"))
        for src, name in files.items():
            text = (modules / package / src).read_text(encoding="utf-8")
            text = "\n".join(line for line in text.splitlines()
                             if not line.startswith("//# sourceMappingURL="))
            (dest / name).write_text(text + "\n", encoding="utf-8")
            record[name] = {"package": package, "version": meta["version"],
                            "sha256": hashlib.sha256(text.encode("utf-8") + b"\n").hexdigest()}
    write_json_atomic(dest / "VERSIONS.json", record, sort_keys=True)
    return record
