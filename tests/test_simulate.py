"""Simulated observers: accuracy pattern recovered, files valid and flagged, nothing overwritten."""

from __future__ import annotations

import numpy as np
import pytest
from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan
from bodyscene.human_study.responses import read_responses
from bodyscene.human_study.simulate import (
    ObserverModel,
    draw_correct,
    draw_rt,
    simulate_participants,
)
from conftest import write_toy_manifest

from bodyscene.errors import BadInput

ACC = {"original": 0.8, "body": 0.9, "background": 0.6, "conflict": 0.7}


def test_draw_correct_recovers_accuracy_without_random_effects():
    model = ObserverModel(accuracy={"body": 0.9, "background": 0.6}, participant_sd=0.0,
                          item_sd=0.0)
    n = 40_000
    cond = np.array(["body", "background"] * (n // 2), dtype=object)
    correct = draw_correct(model, cond, np.arange(n) % 50, np.arange(n) % 97,
                           np.random.default_rng(0))
    assert correct.dtype == bool and correct.shape == (n,)
    assert abs(correct[cond == "body"].mean() - 0.9) < 0.01
    assert abs(correct[cond == "background"].mean() - 0.6) < 0.01


def test_random_effects_spread_participants():
    model = ObserverModel(accuracy={"body": 0.75}, participant_sd=1.0, item_sd=0.0)
    part = np.repeat(np.arange(40), 500)
    correct = draw_correct(model, np.full(len(part), "body"), part, np.zeros(len(part)),
                           np.random.default_rng(1))
    per = np.bincount(part, correct) / 500
    flat = draw_correct(ObserverModel(accuracy={"body": 0.75}, participant_sd=0.0, item_sd=0.0),
                        np.full(len(part), "body"), part, np.zeros(len(part)),
                        np.random.default_rng(1))
    assert per.std() > 2 * (np.bincount(part, flat) / 500).std()


def test_rt_mean_and_positive():
    rts = draw_rt(ObserverModel(accuracy={"body": 0.8}, rt_mean_s=0.7), 50_000,
                  np.random.default_rng(2))
    assert (rts > 0).all() and abs(rts.mean() - 0.7) < 0.01


def test_unknown_condition_and_bad_accuracy_are_one_line():
    with pytest.raises(BadInput, match="no accuracy for condition"):
        draw_correct(ObserverModel(accuracy={"body": 0.8}), np.array(["body", "conflict"]),
                     np.array([0, 0]), np.array([0, 1]), np.random.default_rng(0))
    with pytest.raises(BadInput, match="strictly between"):
        ObserverModel(accuracy={"body": 1.2})


@pytest.fixture
def plan_dir(tmp_path):
    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"train": 3, "val": 2,
                                                                     "test": 16})
    return make_plan(manifest, tmp_path / "plan",
                     PlanConfig(n_participants=8, practice_items=2, catch_trials=2, max_run=4))


def test_files_validate_flagged_and_accuracy_recovered(plan_dir, tmp_path):
    model = ObserverModel(accuracy=ACC, participant_sd=0.0, item_sd=0.0)
    paths = simulate_participants(plan_dir, model, tmp_path / "resp", seed=3)
    plan = read_plan(plan_dir)
    assert [p.name for p in paths] == [f"{p}_s1_bodyscene.csv" for p in plan.participants]
    frames = []
    for pid, path in zip(plan.participants, paths):
        df = read_responses(path)
        trials = plan.trials(pid)
        assert df["trial_id"].tolist() == trials["trial_id"].tolist()
        assert df["simulated"].all() and (df["agent_kind"] == "human").all()
        assert (df["agent"] == pid).all() and (df["plan_sha256"] == plan.sha256).all()
        for row, t in zip(df.itertuples(), trials.itertuples()):
            assert sorted(row.choice_order.split(";")) == sorted(t.choices.split(";"))
            assert row.response in t.choices.split(";")
            assert row.correct == (row.response == t.action)
        frames.append(df.assign(condition=trials["condition"].to_numpy()))
    allrows = np.concatenate([f[f["phase"] == "main"][["condition", "correct"]].to_numpy()
                              for f in frames])
    for cond, p in ACC.items():
        got = allrows[allrows[:, 0] == cond, 1].astype(float)
        # 8 participants x 48 items / 4 conditions = 96 trials per condition: 4 SE ~ 0.18
        assert abs(got.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(got)), cond


def test_choice_orders_are_shuffled(plan_dir, tmp_path):
    paths = simulate_participants(plan_dir, ObserverModel(accuracy=ACC), tmp_path / "r", seed=0)
    orders = set(read_responses(paths[0])["choice_order"])
    assert len(orders) > 1


def test_never_overwrites_and_names_participants(plan_dir, tmp_path):
    model = ObserverModel(accuracy=ACC)
    out = tmp_path / "resp"
    first = simulate_participants(plan_dir, model, out, seed=0, participants=["P02"])
    before = first[0].read_bytes()
    with pytest.raises(BadInput, match="already exists"):
        simulate_participants(plan_dir, model, out, seed=1, participants=["P02"])
    assert first[0].read_bytes() == before
    with pytest.raises(BadInput, match="no participant 'P99'"):
        simulate_participants(plan_dir, model, out, seed=0, participants=["P99"])


def test_cli_plan_simulate_and_config(tmp_path, capsys):
    from bodyscene.human_study.labconfig import load_lab_config

    from bodyscene.cli import main

    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"val": 2, "test": 4})
    plan = tmp_path / "plan"
    assert main(["experiment", "plan", "--trials", str(manifest), "--participants", "4",
                 "--out", str(plan), "--practice", "2", "--conditions",
                 "original,body,background,conflict"]) == 0
    out = tmp_path / "sim"
    assert main(["experiment", "simulate", "--plan", str(plan), "--accuracy",
                 "original=0.8,body=0.85,background=0.6,conflict=0.7", "--out", str(out),
                 "--participants", "2", "--seed", "4"]) == 0
    files = sorted(out.glob("*_bodyscene.csv"))
    assert [f.name for f in files] == ["P01_s1_bodyscene.csv", "P02_s1_bodyscene.csv"]
    assert all(read_responses(f)["simulated"].all() for f in files)
    assert (out / "simulate_run.json").is_file()
    capsys.readouterr()
    assert main(["experiment", "simulate", "--plan", str(plan), "--accuracy", "body:0.8",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "condition=probability" in err[0]
    assert main(["experiment", "simulate", "--plan", str(plan), "--accuracy", "body=0.8",
                 "--out", str(tmp_path / "y")]) == 2
    assert "no accuracy for condition" in capsys.readouterr().err
    cfg = tmp_path / "lab.json"
    assert main(["experiment", "config", "--out", str(cfg)]) == 0
    assert main(["experiment", "config", "--out", str(cfg)]) == 2   # never overwritten
    text = cfg.read_text().replace('"Correct"', '"Richtig"')
    cfg.write_text(text)
    assert load_lab_config(cfg).texts.correct == "Richtig"


@pytest.mark.parametrize("content, message", [
    ('{"monitor": {"width_cm": "wide"}}', "monitor.width_cm expects"),
    ('{"timing": {"flash_s": 1}}', "unknown key timing.flash_s"),
    ('{"colours": {}}', "unknown section"),
    ('{"timing": {"mask_s": -1}}', "timing.mask_s must be >= 0"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_lab_config_is_one_line(tmp_path, content, message):
    from bodyscene.human_study.labconfig import load_lab_config

    path = tmp_path / "lab.json"
    path.write_text(content)
    with pytest.raises(BadInput, match=message) as exc:
        load_lab_config(path)
    assert "\n" not in str(exc.value)


def test_run_refuses_before_opening_a_window(tmp_path):
    """Everything that can go wrong with the inputs is reported before PsychoPy is imported."""
    from bodyscene.human_study.experiment import RunConfig, prepare

    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"val": 1, "test": 2})
    plan = make_plan(manifest, tmp_path / "plan", PlanConfig(n_participants=1, practice_items=1))
    with pytest.raises(BadInput, match="no participant 'P09'"):
        prepare(RunConfig(plan=plan, participant="P09"))
    trials = read_plan(plan).trials("P01")
    stim = manifest.parent / trials["stimulus"].iloc[-1]
    stim.write_bytes(stim.read_bytes() + b"\0")
    with pytest.raises(BadInput, match="does not match the sha256 in the plan"):
        prepare(RunConfig(plan=plan, participant="P01"))
