"""Plans: Latin-square balance, one condition per item per participant, run limits, practice
and catch items kept off the test, hashes that catch edits, one-line errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from bodyscene.human_study.plan import (
    PlanConfig,
    latin_square_condition,
    make_plan,
    order_with_run_limit,
    read_plan,
)
from bodyscene.human_study.session import remaining_trials, responses_path
from bodyscene.stimuli.manifest import read_manifest
from conftest import write_toy_manifest

from bodyscene.errors import BadInput

SPLITS = {"train": 3, "val": 2, "test": 8}


@pytest.fixture
def manifest(tmp_path):
    return write_toy_manifest(tmp_path / "toy", items_per_split=SPLITS)


def _plan(manifest, tmp_path, **kw):
    cfg = PlanConfig(**{"n_participants": 8, "practice_items": 3, "catch_trials": 2,
                        "break_every": 7, "max_run": 2, **kw})
    return read_plan(make_plan(manifest, tmp_path / "plan", cfg))


def test_latin_square_balance_and_each_item_once(manifest, tmp_path):
    plan = _plan(manifest, tmp_path)
    assert plan.conditions == ("original", "body", "background", "conflict")
    test = read_manifest(manifest, check_hashes=False)
    test_items = set(test[test["split"] == "test"]["item_id"])
    per_item = {i: Counter() for i in test_items}
    for pid in plan.participants:
        main = plan.trials(pid).query("phase == 'main'")
        assert sorted(main["item_id"]) == sorted(test_items)      # each item exactly once
        counts = Counter(main["condition"])
        assert max(counts.values()) - min(counts.values()) <= 1   # conditions balanced within
        for r in main.itertuples():
            per_item[r.item_id][r.condition] += 1
            assert r.trial_id == f"{r.item_id}-{r.condition}"
    # 8 participants = two full squares: every item twice in every condition
    for item, counts in per_item.items():
        assert counts == Counter({c: 2 for c in plan.conditions}), item


def test_square_rotation():
    conds = ("a", "b", "c")
    rows = [[latin_square_condition(g, r, conds) for g in range(3)] for r in range(3)]
    for r in rows:
        assert sorted(r) == list(conds)
    for g in range(3):
        assert sorted(row[g] for row in rows) == list(conds)


def test_run_limits_blocks_practice_and_catch(manifest, tmp_path):
    plan = _plan(manifest, tmp_path)
    test = read_manifest(manifest, check_hashes=False)
    test_items = set(test[test["split"] == "test"]["item_id"])
    lists = [plan.trials(p) for p in plan.participants]
    for trials in lists:
        assert trials["order"].tolist() == list(range(len(trials)))
        practice = trials[trials["phase"] == "practice"]
        assert len(practice) == 3 and practice["feedback"].all()
        assert (practice["block"] == 0).all()
        assert trials.index[trials["phase"] == "practice"].max() < len(practice)  # first
        catch = trials[trials["phase"] == "catch"]
        assert len(catch) == 2 and (catch["condition"] == "original").all()
        assert (catch["duration_s"] >= 1.0).all()
        assert not (set(practice["item_id"]) | set(catch["item_id"])) & test_items
        assert not set(practice["item_id"]) & set(catch["item_id"])
        rest = trials[trials["phase"] != "practice"]
        assert not rest["feedback"].any()
        n_main = (rest["phase"] == "main").cumsum() - (rest["phase"] == "main")
        expected = [1 + max(0, n - (ph == "catch")) // 7
                    for n, ph in zip(n_main, rest["phase"])]
        assert rest["block"].tolist() == expected  # catch trials do not count
        for col in ("action", "condition"):
            values = rest[col].tolist()
            runs = [len(list(g)) for _, g in __import__("itertools").groupby(values)]
            assert max(runs) <= 2, (col, values)
    # orders differ between participants
    assert len({tuple(t["trial_id"]) for t in lists}) == len(lists)


def test_same_seed_same_plan_other_seed_differs(manifest, tmp_path):
    a = make_plan(manifest, tmp_path / "a", PlanConfig(n_participants=3, seed=5))
    b = make_plan(manifest, tmp_path / "b", PlanConfig(n_participants=3, seed=5))
    c = make_plan(manifest, tmp_path / "c", PlanConfig(n_participants=3, seed=6))
    assert (a / "P01.csv").read_bytes() == (b / "P01.csv").read_bytes()
    assert read_plan(a).sha256 == read_plan(b).sha256 != read_plan(c).sha256


def test_conditions_subset_excludes_conflict(manifest, tmp_path):
    plan = _plan(manifest, tmp_path, conditions=("original", "body", "background"),
                 n_participants=3)
    for pid in plan.participants:
        assert "conflict" not in set(plan.trials(pid)["condition"])


def test_order_with_run_limit_impossible_is_one_line():
    with pytest.raises(BadInput, match="max_run=1 cannot be met"):
        order_with_run_limit(["a", "a", "a", "b"], ["x", "y", "x", "y"], 1,
                             np.random.default_rng(0))
    order = order_with_run_limit(["a", "a", "b", "b"], ["x", "x", "y", "y"], 1,
                                 np.random.default_rng(0))
    assert sorted(order) == [0, 1, 2, 3]


def test_edits_are_caught(manifest, tmp_path):
    plan = _plan(manifest, tmp_path, n_participants=2)
    p01 = plan.participants["P01"]
    text = p01.read_text()
    p01.write_text(text.replace("true", "false", 1))
    with pytest.raises(BadInput, match="P01.csv: does not match its sha256"):
        read_plan(plan.dir)
    p01.write_text(text)
    meta = plan.dir / "plan.json"
    body = json.loads(meta.read_text())
    body["config"]["seed"] = 99
    meta.write_text(json.dumps(body))
    with pytest.raises(BadInput, match="plan.json was edited"):
        read_plan(plan.dir)


def test_changed_manifest_is_caught(manifest, tmp_path):
    plan = _plan(manifest, tmp_path, n_participants=2)
    with open(manifest, "a") as fh:
        fh.write("\n")
    with pytest.raises(BadInput, match="trials changed after the plan was made"):
        read_plan(plan.dir)
    assert read_plan(plan.dir, check_manifest=False).sha256 == plan.sha256


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    ('{"format": "other"}', "not a bodyscene plan"),
    ('{"format": "bodyscene-plan/1"}', "missing key"),
])
def test_bad_plan_json(tmp_path, content, message):
    d = tmp_path / "p"
    d.mkdir()
    if content is not None:
        (d / "plan.json").write_text(content)
    with pytest.raises(BadInput, match=message) as exc:
        read_plan(d)
    assert "\n" not in str(exc.value)


def test_bad_configs_and_refusals(manifest, tmp_path):
    with pytest.raises(BadInput, match="practice items asked for"):
        make_plan(manifest, tmp_path / "x", PlanConfig(practice_items=50))
    with pytest.raises(BadInput, match="catch trials asked for"):
        make_plan(manifest, tmp_path / "x", PlanConfig(practice_items=0, catch_trials=50))
    with pytest.raises(BadInput, match="other than the test split"):
        make_plan(manifest, tmp_path / "x", PlanConfig(practice_split="test"))
    with pytest.raises(BadInput, match="conditions must be distinct"):
        make_plan(manifest, tmp_path / "x", PlanConfig(conditions=("body", "bogus")))
    make_plan(manifest, tmp_path / "ok", PlanConfig(n_participants=1))
    with pytest.raises(BadInput, match="a plan already exists"):
        make_plan(manifest, tmp_path / "ok", PlanConfig(n_participants=1))


def test_item_missing_a_condition_is_named(tmp_path):
    manifest = write_toy_manifest(tmp_path / "t", items_per_split={"val": 1, "test": 2})
    lines = manifest.read_text().splitlines()
    kept = [l for l in lines if not l.startswith("clap_test00-body,")]
    manifest.write_text("\n".join(kept) + "\n")
    with pytest.raises(BadInput, match="test item 'clap_test00' has no 'body' trial"):
        make_plan(manifest, tmp_path / "p", PlanConfig(practice_items=0))


def test_trial_list_schema_checked(manifest, tmp_path):
    plan = _plan(manifest, tmp_path, n_participants=1)
    path = plan.participants["P01"]
    path.write_text(path.read_text().replace(",practice,", ",warmup,", 1))
    from bodyscene.human_study.plan import _read_trial_list
    with pytest.raises(BadInput, match="row 2, column 'phase'"):
        _read_trial_list(path)


def test_resume_bookkeeping(manifest, tmp_path):
    from bodyscene.human_study.responses import ResponseWriter
    from bodyscene.human_study.session import response_columns, response_row

    plan = _plan(manifest, tmp_path, n_participants=1)
    trials = plan.trials("P01")
    path = responses_path(tmp_path / "data", "P01", 1)
    assert len(remaining_trials(trials, path, False, plan.sha256)) == len(trials)
    with ResponseWriter(path, columns=response_columns()) as w:
        for t in trials.head(4).itertuples():
            w.write(response_row(t, "P01", 1, t.action, 0.5, t.choices.split(";"), t.sha256,
                                 plan.sha256, plan.manifest_sha256, "x"))
    with pytest.raises(BadInput, match="--resume"):
        remaining_trials(trials, path, False, plan.sha256)
    left = remaining_trials(trials, path, True, plan.sha256)
    assert left["order"].tolist() == list(range(4, len(trials)))
    with pytest.raises(BadInput, match="another plan"):
        remaining_trials(trials, path, True, "0" * 64)
    with pytest.raises(BadInput, match="cannot name a data file"):
        responses_path(tmp_path, "../P01", 1)
    with ResponseWriter(path, columns=response_columns(), mode="append") as w:
        for t in trials.iloc[4:].itertuples():
            w.write(response_row(t, "P01", 1, t.action, 0.5, t.choices.split(";"), t.sha256,
                                 plan.sha256, plan.manifest_sha256, "x"))
    with pytest.raises(BadInput, match="complete; give a new participant id, or --session 2"):
        remaining_trials(trials, path, False, plan.sha256)   # not --resume: it is complete
    assert remaining_trials(trials, path, True, plan.sha256).empty


def test_default_practice_takes_what_the_split_offers(tmp_path):
    manifest = write_toy_manifest(tmp_path / "t", items_per_split={"val": 1, "test": 2})
    plan = read_plan(make_plan(manifest, tmp_path / "p", PlanConfig(n_participants=1)))
    assert (plan.trials("P01")["phase"] == "practice").sum() == 3   # 3 actions x 1 val item
    with pytest.raises(BadInput, match="4 practice items asked for"):
        make_plan(manifest, tmp_path / "q", PlanConfig(n_participants=1, practice_items=4))


def test_catch_trials_on_by_default_and_not_counted_in_blocks(tmp_path):
    from bodyscene.human_study.plan import default_catch_trials

    assert default_catch_trials(10, 50) == 0 and default_catch_trials(20, 50) == 2
    assert default_catch_trials(100, 50) == 5 and default_catch_trials(100, 3) == 3
    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"train": 4, "val": 1,
                                                                    "test": 7})
    plan = read_plan(make_plan(manifest, tmp_path / "p", PlanConfig(
        n_participants=1, practice_items=0, break_every=5, max_run=30,
        conditions=("original",))))
    trials = plan.trials("P01")
    assert (trials["phase"] == "catch").sum() == 2          # 21 main trials: on by default
    for block, rows in trials.groupby("block"):
        assert (rows["phase"] == "main").sum() <= 5          # every 5 *main* trials
    assert [(r["phase"] == "main").sum() for _, r in trials.groupby("block")][:-1] == [5] * 4


def test_the_runners_measured_timing_overrides_the_planned_duration(manifest, tmp_path):
    from bodyscene.human_study.session import response_row

    plan = _plan(manifest, tmp_path, n_participants=1)
    t = next(plan.trials("P01").itertuples())
    planned = response_row(t, "P01", 1, t.action, 0.5, t.choices.split(";"), t.sha256,
                           plan.sha256, plan.manifest_sha256, "x")
    measured = response_row(t, "P01", 1, "", None, t.choices.split(";"), t.sha256, plan.sha256,
                            plan.manifest_sha256, "x",
                            timing={"stim_intended_s": 0.1167, "timed_out": True})
    assert planned["stim_intended_s"] == float(t.duration_s) and planned["correct"]
    assert measured["stim_intended_s"] == 0.1167 and measured["timed_out"] is True
    assert measured["response"] == "" and measured["correct"] is False
    with pytest.raises(ValueError, match="unknown response column"):
        response_row(t, "P01", 1, t.action, 0.5, [], t.sha256, plan.sha256,
                     plan.manifest_sha256, "x", timing={"stim_intended": 1})
