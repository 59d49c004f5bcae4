"""Trial lists per participant: who sees which item in which condition, in what order.

Design (written into every plan.json so a reader of the data knows it):
- Each participant sees each test item exactly once, in one condition. Conditions rotate by a
  Latin square: test items are split into k groups (k = number of conditions; balanced within
  each action), and participant row r shows group g in condition (g + r) mod k. Over every k
  consecutive participants each item appears in each condition exactly once.
- Conflict trials, when the manifest has them, are the square's fourth condition: a participant
  then sees a quarter of the items as body-on-another-background composites. A conflict trial
  shows item A's body on item B's background, so a participant may meet B's background twice
  (once in the composite, once on its own); the square balances this across participants.
  Pass `conditions=("original", "body", "background")` to leave conflict out.
- Order is shuffled per participant from the plan seed, with at most `max_run` consecutive
  trials of the same action and of the same condition. Catch trials (original frames of
  non-test items, shown longer: an obvious answer) are mixed into the main trials and scored
  separately; a practice block with feedback on non-test items comes first; a break screen
  follows every `break_every` main trials (the `block` column counts them; practice is block 0).

A plan is a folder: one CSV per participant and plan.json holding the config, the manifest's
hash, every list's hash and the plan's own hash; `read_plan` checks all of them."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from bodyscene.stimuli.manifest import (
    CONDITIONS,
    SPLITS,
    manifest_sha256,
    read_manifest,
)

from bodyscene.errors import BadInput, where
from bodyscene.provenance import write_run_record
from bodyscene.seeds import derive_rng
from bodyscene.tables import (
    Schema,
    file_sha256,
    is_bool,
    is_float,
    is_int,
    is_sha256,
    non_empty,
    one_of,
    parse_bool,
    read_csv,
    write_csv_atomic,
    write_json_atomic,
)

PLAN_FORMAT = "bodyscene-plan/1"
DEFAULT_PRACTICE = 6
PLAN_PHASES = ("practice", "main", "catch")
CATCH_EVERY = 20  # default attention checks: one per 20 main trials, when there are >= 20

TRIAL_LIST_SCHEMA = Schema(
    name="participant trial list",
    required=("order", "phase", "block", "trial_id", "item_id", "action", "condition",
              "stimulus", "n_frames", "fps", "sha256", "choices", "duration_s", "feedback"),
    checks={
        "order": is_int(0),
        "phase": one_of(PLAN_PHASES),
        "block": is_int(0),
        "trial_id": non_empty,
        "item_id": non_empty,
        "action": non_empty,
        "condition": one_of(CONDITIONS),
        "stimulus": non_empty,
        "n_frames": is_int(1),
        "fps": is_float(0.0, 1000.0),
        "sha256": is_sha256,
        "choices": non_empty,
        "duration_s": is_float(0.0, 60.0),
        "feedback": is_bool,
    },
    unique=("order",),
)


@dataclass
class PlanConfig:
    """How trial lists are drawn. Durations are in seconds; a clip's duration is its own
    (n_frames / fps), `stimulus_s` applies to single images."""

    n_participants: int = 12
    seed: int = 0
    conditions: tuple[str, ...] | None = None  # None: every condition of the test split
    test_split: str = "test"
    practice_items: int | None = None  # None: up to DEFAULT_PRACTICE, as many as the split has
    practice_split: str = "val"
    catch_trials: int | None = None  # None: one per CATCH_EVERY main trials (at least 2)
    catch_split: str = "train"
    catch_duration_s: float = 1.0
    break_every: int = 60
    max_run: int = 3
    stimulus_s: float = 0.2
    participant_prefix: str = "P"

    def check(self) -> None:
        if self.n_participants < 1:
            raise BadInput(f"n_participants must be >= 1, got {self.n_participants}")
        for name in ("practice_items", "catch_trials"):
            if (getattr(self, name) or 0) < 0:
                raise BadInput(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.break_every < 1:
            raise BadInput(f"break_every must be >= 1, got {self.break_every}")
        if self.max_run < 1:
            raise BadInput(f"max_run must be >= 1, got {self.max_run}")
        if not 0.0 < self.stimulus_s <= 60.0 or not 0.0 < self.catch_duration_s <= 60.0:
            raise BadInput("stimulus and catch durations must lie in (0, 60] seconds")
        for name in ("test_split", "practice_split", "catch_split"):
            if getattr(self, name) not in SPLITS:
                raise BadInput(f"{name} must be one of {', '.join(SPLITS)}, "
                               f"got {getattr(self, name)!r}")
        if self.practice_split == self.test_split or self.catch_split == self.test_split:
            raise BadInput("practice and catch items must come from a split other than the "
                           "test split (people must not meet test items before the test)")
        if self.conditions is not None:
            bad = [c for c in self.conditions if c not in CONDITIONS]
            if bad or not self.conditions or len(set(self.conditions)) != len(self.conditions):
                raise BadInput(f"conditions must be distinct names among "
                               f"{', '.join(CONDITIONS)}, got {','.join(self.conditions)}")


@dataclass
class Plan:
    """A validated plan folder."""

    dir: Path
    manifest: Path
    manifest_sha256: str
    sha256: str
    conditions: tuple[str, ...]
    config: dict
    participants: dict[str, Path] = field(default_factory=dict)

    def trials(self, participant: str) -> pd.DataFrame:
        """The participant's trial list in presentation order, with typed columns."""
        if participant not in self.participants:
            raise BadInput(f"{self.dir / 'plan.json'}: no participant {participant!r} in the "
                           f"plan (it has {', '.join(self.participants)})")
        return _read_trial_list(self.participants[participant])

    def stimulus_path(self, stimulus: str) -> Path:
        return self.manifest.parent / stimulus


def participant_ids(n: int, prefix: str = "P") -> list[str]:
    width = max(2, len(str(n)))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]


def latin_square_condition(group: int, row: int, conditions: tuple[str, ...]) -> str:
    """The condition in which participant row `row` sees item group `group`."""
    return conditions[(group + row) % len(conditions)]


def order_with_run_limit(actions: list[str], conditions: list[str], max_run: int,
                         rng: np.random.Generator, attempts: int = 500) -> list[int]:
    """A random order of the trials with no more than `max_run` consecutive trials sharing an
    action or a condition. Builds the order trial by trial among the allowed ones and restarts
    on a dead end; raises BadInput when the limit cannot be met."""
    n = len(actions)
    for values, what in ((actions, "action"), (conditions, "condition")):
        if n:
            most = max(pd.Series(values).value_counts())
            if most > max_run * (n - most + 1):
                raise BadInput(f"max_run={max_run} cannot be met: {most} of {n} trials share "
                               f"one {what}; raise max_run")
    act = np.asarray(actions, dtype=object)
    cond = np.asarray(conditions, dtype=object)
    for _ in range(attempts):
        remaining = list(rng.permutation(n))
        order: list[int] = []
        while remaining:
            chosen = None
            for pos, idx in enumerate(remaining):
                if _breaks_run(order, idx, act, max_run) or _breaks_run(order, idx, cond, max_run):
                    continue
                chosen = pos
                break
            if chosen is None:
                break
            order.append(remaining.pop(chosen))
        if not remaining:
            return order
    raise BadInput(f"could not order {n} trials with max_run={max_run} after {attempts} "
                   f"attempts; raise max_run")


def _breaks_run(order: list[int], idx: int, values: np.ndarray, max_run: int) -> bool:
    if len(order) < max_run:
        return False
    return all(values[j] == values[idx] for j in order[-max_run:])


def make_plan(trials_csv: str | Path, out_dir: str | Path, cfg: PlanConfig) -> Path:
    """Write a plan folder for `cfg.n_participants` participants; returns the folder. An
    existing plan is refused (participants may already have been run on it)."""
    cfg.check()
    trials_csv = Path(trials_csv)
    out_dir = Path(out_dir)
    if (out_dir / "plan.json").exists():
        raise BadInput(f"{out_dir / 'plan.json'}: a plan already exists here (participants may "
                       f"have been run on it); choose another --out")
    manifest = read_manifest(trials_csv, check_files=True, check_hashes=False)
    conditions, test_items = square_items(trials_csv, manifest, cfg)
    groups = assign_groups(test_items, len(conditions), cfg.seed)
    by_key = {(r.item_id, r.condition): r for r in manifest.itertuples(index=False)}
    test_ids = set(test_items["item_id"])
    practice_pool = _pool(manifest, cfg.practice_split, test_ids)
    practice_conds = [c for c in conditions if c != "conflict"] or ["original"]
    n_practice = (min(DEFAULT_PRACTICE, len(practice_pool)) if cfg.practice_items is None
                  else cfg.practice_items)
    if n_practice > len(practice_pool):
        raise BadInput(f"{trials_csv}: {cfg.practice_items} practice items asked for but the "
                       f"{cfg.practice_split!r} split has {len(practice_pool)} non-test items; "
                       f"lower --practice")
    root_rng = np.random.default_rng(cfg.seed)
    practice_items = [practice_pool[i] for i in
                      root_rng.permutation(len(practice_pool))[:n_practice]]
    catch_pool = [i for i in _pool(manifest, cfg.catch_split, test_ids)
                  if i not in set(practice_items)]
    if cfg.catch_trials is None:
        cfg.catch_trials = default_catch_trials(len(test_items), len(catch_pool))
    if cfg.catch_trials > len(catch_pool):
        raise BadInput(f"{trials_csv}: {cfg.catch_trials} catch trials asked for but the "
                       f"{cfg.catch_split!r} split has {len(catch_pool)} unused non-test items; "
                       f"lower --catch")
    ids = participant_ids(cfg.n_participants, cfg.participant_prefix)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for row_idx, pid in enumerate(ids):
        rng = np.random.default_rng([cfg.seed, row_idx])
        rows = _participant_rows(row_idx, rng, cfg, conditions, groups, by_key, practice_items,
                                 practice_conds, catch_pool)
        path = out_dir / f"{pid}.csv"
        write_csv_atomic(path, rows, TRIAL_LIST_SCHEMA.columns)
        entries[pid] = {"file": path.name, "sha256": file_sha256(path), "square_row":
                        row_idx % len(conditions)}
    body = {
        "format": PLAN_FORMAT,
        "config": _config_dict(cfg),
        "manifest": os.path.relpath(trials_csv.resolve(), out_dir.resolve()),
        "manifest_sha256": manifest_sha256(trials_csv),
        "conditions": list(conditions),
        "n_test_items": int(len(test_items)),
        "complete_square": cfg.n_participants % len(conditions) == 0,
        "design": __doc__.split("Design (written into every plan.json so a reader of the data "
                                "knows it):\n", 1)[1].split("\n\nA plan is a folder", 1)[0],
        "participants": entries,
    }
    body["plan_sha256"] = _plan_hash(body)
    write_json_atomic(out_dir / "plan.json", body, sort_keys=True)
    write_run_record(out_dir, cfg, cfg.seed, name="plan_run.json",
                     manifest=str(trials_csv), manifest_sha256=body["manifest_sha256"],
                     plan_sha256=body["plan_sha256"])
    return out_dir


def _config_dict(cfg: PlanConfig) -> dict:
    d = asdict(cfg)
    if d["conditions"] is not None:
        d["conditions"] = list(d["conditions"])
    return d


def square_items(path: Path, manifest: pd.DataFrame,
                  cfg: PlanConfig) -> tuple[tuple[str, ...], pd.DataFrame]:
    """The square's conditions and one row per test item (item_id, action)."""
    test = manifest[manifest["split"] == cfg.test_split]
    if test.empty:
        raise BadInput(f"{path}: no trials in the {cfg.test_split!r} split to plan")
    present = set(test["condition"])
    conditions = tuple(cfg.conditions) if cfg.conditions else tuple(
        c for c in CONDITIONS if c in present)
    have = test.groupby("item_id")["condition"].agg(set)
    for item, conds in have.items():
        lacking = [c for c in conditions if c not in conds]
        if lacking:
            raise BadInput(f"{path}: test item {item!r} has no {lacking[0]!r} trial, so it "
                           f"cannot rotate through the Latin square of "
                           f"{', '.join(conditions)}; choose the conditions every item has "
                           f"(--conditions)")
    items = (test.drop_duplicates("item_id")[["item_id", "action"]]
             .sort_values("item_id").reset_index(drop=True))
    return conditions, items


def assign_groups(items: pd.DataFrame, k: int, seed: int) -> dict[str, int]:
    """Square group per item: items of each action shuffled and dealt round-robin so each
    group holds (within one) the same number of items of every action, and of all."""
    rng = derive_rng(seed, "square-groups")
    groups: dict[str, int] = {}
    counter = 0
    for _, block in items.groupby("action", sort=True):
        ids = list(block["item_id"])
        for j in rng.permutation(len(ids)):
            groups[ids[j]] = counter % k
            counter += 1
    return groups


def _pool(manifest: pd.DataFrame, split: str, test_ids: set[str]) -> list[str]:
    rows = manifest[(manifest["split"] == split) & (manifest["condition"] == "original")]
    return sorted(i for i in set(rows["item_id"]) if i not in test_ids)


def _trial_row(r, phase: str, duration: float, feedback: bool) -> dict:
    return {"phase": phase, "trial_id": r.trial_id, "item_id": r.item_id, "action": r.action,
            "condition": r.condition, "stimulus": r.stimulus, "n_frames": int(r.n_frames),
            "fps": float(r.fps), "sha256": r.sha256, "choices": r.choices,
            "duration_s": duration, "feedback": feedback}


def _duration(r, cfg: PlanConfig) -> float:
    return float(int(r.n_frames) / float(r.fps)) if int(r.n_frames) > 1 else cfg.stimulus_s


def _participant_rows(row_idx: int, rng: np.random.Generator, cfg: PlanConfig,
                      conditions: tuple[str, ...], groups: dict[str, int], by_key: dict,
                      practice_items: list[str], practice_conds: list[str],
                      catch_pool: list[str]) -> list[dict]:
    practice = []
    for j, item in enumerate(practice_items):
        cond = practice_conds[(j + row_idx) % len(practice_conds)]
        r = by_key.get((item, cond)) or by_key[(item, "original")]
        practice.append(_trial_row(r, "practice", _duration(r, cfg), True))
    practice = [practice[i] for i in rng.permutation(len(practice))]
    main = []
    for item in sorted(groups):
        cond = latin_square_condition(groups[item], row_idx, conditions)
        r = by_key[(item, cond)]
        main.append(_trial_row(r, "main", _duration(r, cfg), False))
    for j in rng.permutation(len(catch_pool))[:cfg.catch_trials]:
        r = by_key[(catch_pool[j], "original")]
        main.append(_trial_row(r, "catch", max(cfg.catch_duration_s, _duration(r, cfg)), False))
    order = order_with_run_limit([t["action"] for t in main], [t["condition"] for t in main],
                                 cfg.max_run, rng)
    rows = []
    for t in practice:
        rows.append({"order": len(rows), "block": 0, **t})
    n_main = 0  # catch trials do not count towards a break: blocks hold break_every main trials
    for i in order:
        block = 1 + max(0, n_main - (main[i]["phase"] == "catch")) // cfg.break_every
        rows.append({"order": len(rows), "block": block, **main[i]})
        n_main += main[i]["phase"] == "main"
    return rows


def default_catch_trials(n_main: int, pool: int) -> int:
    """Attention checks are on by default: one per CATCH_EVERY main trials (at least 2) when
    the plan has at least CATCH_EVERY main trials, as many as the catch split allows."""
    if n_main < CATCH_EVERY:
        return 0
    return min(pool, max(2, n_main // CATCH_EVERY))


def _plan_hash(body: dict) -> str:
    payload = {k: v for k, v in body.items() if k != "plan_sha256"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def read_plan(plan_dir: str | Path, check_manifest: bool = True) -> Plan:
    """Read and verify a plan folder: plan.json's own hash, every trial list's hash, and (with
    check_manifest) that the manifest it was made from is unchanged."""
    plan_dir = Path(plan_dir)
    meta = plan_dir / "plan.json"
    if not meta.is_file():
        raise BadInput(f"{meta}: not found; make a plan with `bodyscene experiment plan`")
    try:
        body = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{meta}: not valid JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != PLAN_FORMAT:
        raise BadInput(f"{meta}: not a bodyscene plan (expected format {PLAN_FORMAT!r})")
    for key in ("manifest", "manifest_sha256", "conditions", "participants", "plan_sha256",
                "config"):
        if key not in body:
            raise BadInput(f"{meta}: missing key {key!r}")
    if _plan_hash(body) != body["plan_sha256"]:
        raise BadInput(f"{meta}: plan_sha256 does not match the plan's content (plan.json was "
                       f"edited after it was made)")
    participants = {}
    for pid, entry in body["participants"].items():
        path = plan_dir / entry["file"]
        if not path.is_file():
            raise BadInput(f"{path}: trial list of participant {pid!r} is missing")
        if file_sha256(path) != entry["sha256"]:
            raise BadInput(f"{path}: does not match its sha256 in plan.json (the trial list "
                           f"was edited after the plan was made)")
        participants[pid] = path
    manifest = (plan_dir / body["manifest"]).resolve()
    if check_manifest:
        if not manifest.is_file():
            raise BadInput(f"{meta}: its manifest {str(manifest)!r} is missing")
        if manifest_sha256(manifest) != body["manifest_sha256"]:
            raise BadInput(f"{manifest}: does not match the manifest_sha256 in {meta} (the "
                           f"trials changed after the plan was made; make a new plan)")
    return Plan(dir=plan_dir, manifest=manifest, manifest_sha256=body["manifest_sha256"],
                sha256=body["plan_sha256"], conditions=tuple(body["conditions"]),
                config=body["config"], participants=participants)


def _read_trial_list(path: Path) -> pd.DataFrame:
    df = read_csv(path, TRIAL_LIST_SCHEMA)
    for col in ("order", "block", "n_frames"):
        df[col] = df[col].astype(int)
    for col in ("fps", "duration_s"):
        df[col] = df[col].astype(float)
    df["feedback"] = df["feedback"].map(parse_bool).astype(bool)
    expected = list(range(len(df)))
    if df["order"].tolist() != expected:
        bad = next(i for i, (a, b) in enumerate(zip(df["order"], expected)) if a != b)
        raise BadInput(f"{where(path, bad + 2, 'order')}: expected {expected[bad]} (orders run "
                       f"0, 1, 2, ... in file order)")
    return df
