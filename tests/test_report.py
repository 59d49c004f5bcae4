"""The report end to end on a toy study, and every way the inputs can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bodyscene.benchmark.analysis.observations import (
    SIMULATED_HUMANS,
    load_observations,
)
from bodyscene.benchmark.analysis.report import ReportConfig, make_report
from bodyscene.benchmark.harness.predictions import COLUMNS as PRED_COLUMNS
from bodyscene.human_study.responses import ResponseWriter
from bodyscene.stimuli.manifest import read_manifest
from conftest import write_toy_manifest

from bodyscene.cli import main
from bodyscene.errors import BadInput
from bodyscene.tables import write_csv_atomic

HUMAN_ACC = {"original": 0.9, "body": 0.85, "background": 0.6, "conflict": 0.7}
MODELS = {"baseline": {"original": 0.95, "body": 0.4, "background": 0.9, "conflict": 0.3},
          "domainnet": {"original": 0.95, "body": 0.9, "background": 0.8, "conflict": 0.85}}


def _answer(row, ok: bool, rng: np.random.Generator, follow_background: bool = False) -> str:
    if ok:
        return row.action
    if follow_background and row.condition == "conflict":
        return row.background_action
    wrong = [c for c in row.choice_list if c != row.action]
    return wrong[int(rng.integers(len(wrong)))]


def model_probabilities(answer: str, actions) -> dict[str, float]:
    """p_<action> columns that make `answer` the model's most probable action (as the strict
    predictions check requires)."""
    rest = 0.4 / (len(actions) - 1)
    return {f"p_{a}": 0.6 if a == answer else rest for a in actions}


def write_study(root: Path, n_participants: int = 6, models: dict | None = None,
                human_acc: dict | None = None, simulated: bool = True, seed: int = 0,
                actions=("clap", "kick", "wave"), test_items: int = 4) -> tuple[Path, Path, Path]:
    """A manifest, responses of observers with known accuracies, and predictions of models
    with known accuracies: (trials.csv, responses/, predictions/)."""
    trials = write_toy_manifest(root, actions=actions,
                                items_per_split={"train": 1, "test": test_items}, seed=seed)
    test = read_manifest(trials, check_files=False).query("split == 'test'")
    rng = np.random.default_rng(seed)
    human_acc = human_acc or HUMAN_ACC
    responses, predictions = root / "responses", root / "predictions"
    responses.mkdir()
    predictions.mkdir()
    for p in range(n_participants):
        agent = f"p{p:02d}"
        with ResponseWriter(responses / f"{agent}_bodyscene.csv") as w:
            for order, row in enumerate(test.itertuples()):
                ok = bool(rng.random() < human_acc[row.condition])
                w.write(dict(agent=agent, agent_kind="human", session="1",
                             trial_id=row.trial_id, sha256=row.sha256,
                             response=_answer(row, ok, rng), correct=ok, rt_s=0.6, order=order,
                             block=0, choice_order=row.choices, timestamp="2026-01-01T00:00:00",
                             simulated=simulated, phase="main", stim_duration_s=0.2))
    prob_cols = [f"p_{a}" for a in actions]
    for name, acc in (models if models is not None else MODELS).items():
        rows = []
        for order, row in enumerate(test.itertuples()):
            ok = bool(rng.random() < acc[row.condition])
            answer = _answer(row, ok, rng, follow_background=True)
            rows.append(dict(agent=name, agent_kind="model", session="eval", trial_id=row.trial_id,
                             sha256=row.sha256, response=answer, correct=ok, rt_s="",
                             order=order, block=0, choice_order=row.choices, timestamp="t",
                             simulated=False, response_open=answer, readout="sum",
                             aggregation="mean", **model_probabilities(answer, actions)))
        write_csv_atomic(predictions / f"{name}.csv", rows, list(PRED_COLUMNS) + prob_cols)
    return trials, responses, predictions


@pytest.fixture
def study(tmp_path):
    return write_study(tmp_path / "study")


def test_report_end_to_end(study, tmp_path):
    trials, responses, predictions = study
    out = tmp_path / "report"
    summary = make_report(trials, responses, predictions, out,
                          ReportConfig(bootstrap=200, split_halves=50, seed=3))
    assert set(summary) >= {"groups", "contrasts", "error_consistency", "human_likeness",
                            "conflict"}
    assert list(summary["groups"]) == [SIMULATED_HUMANS, "baseline", "domainnet"]
    cell = summary["groups"]["baseline"]["body"]
    assert set(cell) >= {"accuracy", "ci_low", "ci_high", "chance", "n_trials", "n_agents",
                         "simulated"}
    assert cell["ci_low"] <= cell["accuracy"] <= cell["ci_high"]
    assert cell["chance"] == pytest.approx(1 / 3)
    assert summary["groups"][SIMULATED_HUMANS]["body"]["simulated"] is True
    assert summary["groups"][SIMULATED_HUMANS]["body"]["n_agents"] == 6
    # The models were built with opposite cue reliance: the summary must show it.
    assert (summary["conflict"]["baseline"]["background"]["share"]
            > summary["conflict"]["domainnet"]["background"]["share"])
    assert json.loads((out / "summary.json").read_text())["groups"]["baseline"]["body"] == cell

    html = (out / "report.html").read_text()
    # the first screen is the leaderboard and the pattern figure; everything else collapses
    assert html.index("Leaderboard") < html.index("patterns.svg") < html.index("<details>")
    board = pd.read_csv(out / "leaderboard.csv")
    assert board["observer"].iloc[0] == SIMULATED_HUMANS
    assert sorted(board["rank"].dropna()) == [1, 2]
    assert [r["observer"] for r in summary["leaderboard"]] == board["observer"].tolist()
    assert html.count("data:image/png;base64,") >= 8
    assert "SIMULATED" in html and "humans (simulated)" in html
    assert "6 SIMULATED observers" in html and "200 hierarchical bootstrap" in html
    assert "200 ms" in html  # the measured stimulus duration reached the methods paragraph
    for name in ("accuracy_by_condition", "regression_effects", "contrasts",
                 "error_consistency", "human_likeness", "conflict", "confusions", "patterns"):
        assert (out / f"{name}.png").stat().st_size > 1000
        assert (out / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    for name in ("accuracy", "regression", "contrasts_body_background", "contrasts_model_model",
                 "error_consistency", "error_consistency_pairs", "human_likeness", "conflict",
                 "confusion", "observations"):
        table = pd.read_csv(out / f"{name}.csv")
        assert len(table) > 0
        assert "simulated" in table.columns, name
    acc = pd.read_csv(out / "accuracy.csv")
    assert acc.loc[acc["group"] == SIMULATED_HUMANS, "simulated"].all()
    assert not acc.loc[acc["group"] == "baseline", "simulated"].any()
    record = json.loads((out / "report_run.json").read_text())
    assert record["seed"] == 3 and record["config"]["bootstrap"] == 200
    # Reproducible: the same seed gives the same intervals.
    again = make_report(trials, responses, predictions, tmp_path / "again",
                        ReportConfig(bootstrap=200, split_halves=50, seed=3))
    assert again["groups"] == summary["groups"]


def test_report_refuses_non_empty_out(study, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(BadInput, match="not empty"):
        make_report(*study, out, ReportConfig(bootstrap=10, regression=False))
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_report_and_exit_codes(study, tmp_path, capsys):
    trials, responses, predictions = study
    out = tmp_path / "cli"
    rc = main(["report", "--trials", str(trials), "--responses", str(responses),
               "--predictions", str(predictions), "--out", str(out), "--bootstrap", "50",
               "--no-regression"])
    assert rc == 0 and (out / "report.html").exists()
    assert "baseline:" in capsys.readouterr().out
    assert main(["report", "--trials", str(trials), "--responses", str(responses),
                 "--out", str(out)]) == 2


def test_real_and_simulated_humans_stay_apart(tmp_path):
    trials, responses, predictions = write_study(tmp_path / "s", n_participants=3, models={})
    real = write_study(tmp_path / "r", n_participants=3, models={}, simulated=False)[1]
    for f in real.glob("*.csv"):  # same manifest content (same seed): rename the people
        text = f.read_text().replace("\np0", "\nreal0")
        (responses / f"real_{f.name}").write_text(text)
    obs = load_observations(trials, responses, None)
    assert set(obs["group"]) == {"humans", SIMULATED_HUMANS}
    assert set(obs.loc[obs["group"] == "humans", "agent"]) == {"real00", "real01", "real02"}


def test_readouts_folder_is_opt_in(study):
    trials, responses, predictions = study
    (predictions / "readouts").mkdir()
    text = (predictions / "domainnet.csv").read_text().replace(",sum,", ",body,")
    (predictions / "readouts" / "domainnet-body.csv").write_text(text)
    assert "domainnet:body" not in set(load_observations(trials, responses, predictions)["agent"])
    (predictions / "readouts" / "domainnet.background.csv").write_text(
        text.replace(",body,", ",background,").replace("\ndomainnet,", "\ndomainnet.background,"))
    with_readouts = load_observations(trials, responses, predictions, include_readouts=True)
    assert {"domainnet:body", "domainnet.background"} <= set(with_readouts["group"])
    assert set(with_readouts.loc[with_readouts["agent"] == "domainnet", "readout"]) == {"sum"}



def test_anticipations_are_excludable(study):
    """Answers the runner flagged as anticipations stay in the files; the report can leave them
    out, and only them."""
    trials, responses, predictions = study
    path = sorted(responses.glob("*.csv"))[0]
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df["anticipation"] = ["true" if i < 3 else "false" for i in range(len(df))]
    df.to_csv(path, index=False)
    agent = df["agent"].iloc[0]
    every = load_observations(trials, responses, predictions)
    kept = load_observations(trials, responses, predictions, exclude_anticipations=True)
    assert len(every) - len(kept) == 3
    dropped = set(every.loc[every.agent == agent, "trial_id"]) - set(
        kept.loc[kept.agent == agent, "trial_id"])
    assert dropped == set(df["trial_id"].iloc[:3])


# ------------------------------------------------------------------------- bad input

def _rewrite(path: Path, edit) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(df)
    df.to_csv(path, index=False)


def _expect_bad(study, capsys, tmp_path, pattern: str) -> None:
    trials, responses, predictions = study
    with pytest.raises(BadInput, match=pattern) as info:
        load_observations(trials, responses, predictions)
    assert "\n" not in str(info.value)
    rc = main(["report", "--trials", str(trials), "--responses", str(responses),
               "--predictions", str(predictions), "--out", str(tmp_path / "bad_out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("bodyscene: error:")
    assert not (tmp_path / "bad_out").exists()  # nothing written for bad input


def test_unknown_trial(study, capsys, tmp_path):
    f = study[1] / "p02_bodyscene.csv"
    _rewrite(f, lambda df: df.__setitem__("trial_id", df["trial_id"].where(df.index != 4,
                                                                          "nosuch-body")))
    _expect_bad(study, capsys, tmp_path, r"p02_bodyscene\.csv: row 6, column 'trial_id'.*"
                                         r"'nosuch-body' is not in the manifest")


def test_hash_mismatch(study, capsys, tmp_path):
    f = study[2] / "baseline.csv"
    _rewrite(f, lambda df: df.__setitem__("sha256", df["sha256"].where(df.index != 2, "0" * 64)))
    _expect_bad(study, capsys, tmp_path, r"baseline\.csv: row 4, column 'sha256'.*other pixels")


def test_duplicate_trial(study, capsys, tmp_path):
    def repeat_first_answer(df):
        for column in ("trial_id", "sha256", "response", "correct"):
            df.loc[3, column] = df.loc[0, column]

    _rewrite(study[1] / "p01_bodyscene.csv", repeat_first_answer)
    _expect_bad(study, capsys, tmp_path, r"p01_bodyscene\.csv: row 5, column 'trial_id'.*"
                                         r"answered trial .* twice \(first in .* row 2\)")


def test_duplicate_across_files(study, capsys, tmp_path):
    src = study[1] / "p00_bodyscene.csv"
    (study[1] / "p99_copy.csv").write_text(src.read_text())
    _expect_bad(study, capsys, tmp_path, r"p99_copy\.csv: row 2, column 'trial_id'.*twice")


def test_wrong_columns(study, capsys, tmp_path):
    f = study[2] / "domainnet.csv"
    _rewrite(f, lambda df: df.pop("response_open"))
    _expect_bad(study, capsys, tmp_path, r"domainnet\.csv: row 1: missing column\(s\) "
                                         r"response_open")


def test_unexpected_column(study, capsys, tmp_path):
    f = study[1] / "p03_bodyscene.csv"
    _rewrite(f, lambda df: df.insert(3, "mood", "happy"))
    _expect_bad(study, capsys, tmp_path, r"p03_bodyscene\.csv: row 1: unexpected column")


def test_response_not_offered_and_contradicting_correct(study, capsys, tmp_path):
    f = study[1] / "p04_bodyscene.csv"
    _rewrite(f, lambda df: df.__setitem__("response", df["response"].where(df.index != 0,
                                                                          "dance")))
    _expect_bad(study, capsys, tmp_path, r"p04_bodyscene\.csv: row 2, column 'response'")


def test_correct_flag_must_match_response(study, capsys, tmp_path):
    f = study[1] / "p05_bodyscene.csv"
    _rewrite(f, lambda df: df.__setitem__("correct", df["correct"].where(
        df.index != 1, df["correct"].map({"true": "false", "false": "true"}))))
    _expect_bad(study, capsys, tmp_path, r"p05_bodyscene\.csv: row 3, column 'correct'")


def test_model_file_in_responses_folder(study, capsys, tmp_path):
    trials, responses, predictions = study
    text = (predictions / "baseline.csv").read_text()
    (predictions / "baseline.csv").unlink()
    head, *rows = text.splitlines()
    cols = head.split(",")
    keep = [i for i, c in enumerate(cols) if c not in ("response_open", "readout",
                                                        "aggregation", "checkpoint", "model") and not c.startswith("p_")]
    lines = [",".join(line.split(",")[i] for i in keep) for line in [head] + rows]
    (responses / "baseline.csv").write_text("\n".join(lines) + "\n")
    _expect_bad(study, capsys, tmp_path, r"baseline\.csv: row 2, column 'agent_kind'")


def test_cli_power_rejects_bad_plans(capsys):
    assert main(["power", "--accuracy", "body=0.85"]) == 2
    assert "needs a background=" in capsys.readouterr().err
    assert main(["power", "--accuracy", "body=1.5,background=0.8"]) == 2
    assert main(["power", "--participant-range", "1:4:1"]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_cli_power_writes_curve(tmp_path, capsys):
    import bodyscene.human_study.simulate  # noqa: F401
    out = tmp_path / "power"
    rc = main(["power", "--accuracy", "body=0.9,background=0.7", "--participant-range", "4,16",
               "--items", "20", "--sims", "60", "--out", str(out)])
    assert rc == 0
    assert "participants reach 80% power" in capsys.readouterr().out
    curve = pd.read_csv(out / "power.csv")
    assert list(curve["n_participants"]) == [4, 16] and curve["simulated"].all()
    assert (out / "power.png").exists() and (out / "power.svg").exists()
    assert (out / "power_run.json").exists()


def test_results_tables_keep_significant_digits(tmp_path):
    """A p-value of 2.95e-07 was written as 0.0 when results were rounded to 6 decimals."""
    from bodyscene.tables import write_frame_atomic
    write_frame_atomic(tmp_path / "t.csv", pd.DataFrame({"p": [2.95e-07, 0.123456789, np.nan],
                                                        "ok": [True, False, True]}))
    assert (tmp_path / "t.csv").read_text().splitlines() == [
        "p,ok", "2.95e-07,true", "0.123457,false", ",true"]


@pytest.mark.parametrize("true_text,false_text", [("True", "False"), ("TRUE", "FALSE"),
                                                  ("1", "0")])
def test_responses_accept_pandas_r_and_psychopy_booleans(study, true_text, false_text):
    """pandas writes True/False, R TRUE/FALSE, PsychoPy 1/0: all read as the same answers."""
    trials, responses, predictions = study
    before = load_observations(trials, responses, predictions)
    for f in responses.glob("*.csv"):
        _rewrite(f, lambda df: [df.__setitem__(c, df[c].map({"true": true_text,
                                                             "false": false_text}))
                                for c in ("correct", "simulated")])
    after = load_observations(trials, responses, predictions)
    pd.testing.assert_frame_equal(before.drop(columns="source_file"),
                                  after.drop(columns="source_file"))


def test_responses_refuse_other_booleans(study, capsys, tmp_path):
    f = study[1] / "p01_bodyscene.csv"
    _rewrite(f, lambda df: df.__setitem__("correct", df["correct"].where(df.index != 0, "yes")))
    _expect_bad(study, capsys, tmp_path, r"p01_bodyscene\.csv: row 2, column 'correct': "
                                         r"expected true or false")


# ------------------------------------------------- undefined tests, failed reports (issue 25)

def test_undefined_mcnemar_is_empty_and_left_out_of_holm(tmp_path):
    """Each item shown in one condition only: no model has an item in both body and
    background, so its McNemar test is undefined (no statistic, no p, a note), and the Holm
    family holds the people's test alone."""
    from bodyscene.benchmark.analysis.stats.contrasts import condition_contrasts
    from report_inputs import Shape, write_inputs

    inputs = write_inputs(tmp_path, Shape(people=4, models=("a", "b"), test_items=4,
                                          one_condition_per_item=True))
    obs = load_observations(inputs.trials, inputs.responses, inputs.predictions)
    table = condition_contrasts(obs).set_index("group")
    for model in ("a", "b"):
        row = table.loc[model]
        assert row["n"] == 0 and np.isnan(row["statistic"]) and np.isnan(row["p"])
        assert np.isnan(row["p_holm"]) and "McNemar undefined" in row["note"]
    people = table.loc["humans"]
    assert np.isfinite(people["p"]) and people["p_holm"] == people["p"]
    out = tmp_path / "report"
    make_report(inputs.trials, inputs.responses, inputs.predictions, out,
                ReportConfig(bootstrap=20, split_halves=10, regression=False, progress=False))
    written = pd.read_csv(out / "contrasts_body_background.csv").set_index("group")
    assert written.loc["a", ["statistic", "p", "p_holm"]].isna().all()
    assert written.loc["humans", "p_holm"] == pytest.approx(written.loc["humans", "p"])


def test_all_agreeing_table_keeps_p_one(tmp_path):
    """A model right on body and background of the same items alike: b = c = 0 over n > 0
    pairs, no evidence of a difference, p = 1 (hand-computed)."""
    from bodyscene.benchmark.analysis.stats.contrasts import condition_contrasts, mcnemar

    assert mcnemar(0, 0, n_pairs=7) == (0.0, 1.0, "exact")
    assert mcnemar(0, 0, n_pairs=0)[2] == "undefined"
    rows = [dict(agent="m", agent_kind="model", group="m", simulated=False, item_id=f"i{i}",
                 condition=c, correct=i < 3) for i in range(5) for c in ("body", "background")]
    table = condition_contrasts(pd.DataFrame(rows))
    assert table.loc[0, "n"] == 5 and table.loc[0, "b"] == 0 and table.loc[0, "c"] == 0
    assert table.loc[0, "p"] == 1.0 and table.loc[0, "p_holm"] == 1.0
    assert table.loc[0, "statistic"] == 0.0 and table.loc[0, "note"] == ""


@pytest.mark.parametrize("existed", [False, True])
def test_failed_report_leaves_nothing_and_rerun_works(study, tmp_path, monkeypatch, existed):
    """A figure that raises: the target folder is absent (or the empty folder it was), no
    temporary folder is left beside it, and the rerun into it works."""
    from bodyscene.benchmark.analysis.report import figures

    trials, responses, predictions = study
    out = tmp_path / "runs" / "report"
    if existed:
        out.mkdir(parents=True)

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(figures, "conflict", broken)
    cfg = ReportConfig(bootstrap=20, split_halves=10, regression=False, progress=False)
    with pytest.raises(RuntimeError, match="figure failed"):
        make_report(trials, responses, predictions, out, cfg)
    assert (out.exists() and not any(out.iterdir())) if existed else not out.exists()
    assert [p.name for p in out.parent.iterdir()] == (["report"] if existed else [])
    monkeypatch.undo()
    make_report(trials, responses, predictions, out, cfg)
    assert (out / "report.html").exists() and (out / "conflict.png").exists()
    assert [p.name for p in out.parent.iterdir()] == ["report"]
    (tmp_path / "plain").mkdir()   # the report folder is as readable as any new folder
    assert out.stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_report_reads_predictions_through_the_strict_check(study, capsys, tmp_path):
    """What only `predictions validate` checks (probabilities summing to 1, the response the
    most probable offered choice) refuses a report too, in the validator's own words."""
    from bodyscene.benchmark.harness.predictions import validate_predictions

    f = study[2] / "domainnet.csv"
    _rewrite(f, lambda df: df.__setitem__("p_clap", df["p_clap"].where(df.index != 2, "0.9")))
    problem = validate_predictions(f, study[0], split="all", allow_missing=True)[0]
    assert "row 4, column 'p_*': probabilities sum to" in problem
    _expect_bad(study, capsys, tmp_path, r"domainnet\.csv: row 4, column 'p_\*': probabilities "
                                         r"sum to")
