"""`bodyscene responses import` on files written by the real tools: tests/data/jspsych_data.csv
is jsPsych 8's own `jsPsych.data.get().csv()` from a plain image-keyboard-response experiment
run in Chromium (tests/web_browser.py: jspsych_data_file), tests/data/psychopy_P07_actions.csv
PsychoPy's own ExperimentHandler/TrialHandler output (tests/psychopy_data.py); both name
stimuli of the toy manifest below. Where PsychoPy is installed the file is also written live."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bodyscene.cli import main
from bodyscene.errors import BadInput
from bodyscene.human_study.importers import import_responses, parse_map
from bodyscene.human_study.responses import read_responses
from bodyscene.tables import file_sha256
from conftest import write_toy_manifest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def manifest(tmp_path):
    return write_toy_manifest(tmp_path / "toy", items_per_split={"val": 1, "test": 2})


def actions(manifest) -> dict[str, str]:
    df = pd.read_csv(manifest)
    return dict(zip(df["stimulus"], df["action"])), dict(zip(df["stimulus"], df["trial_id"]))


def test_jspsych_data_file(manifest, tmp_path):
    src = DATA / "jspsych_data.csv"
    out, n = import_responses(src, "jspsych", manifest, tmp_path / "resp")
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    trials = raw[raw["trial_type"] == "image-keyboard-response"]
    assert n == len(trials) == 4                     # instructions and fixations left out
    df = read_responses(out / "S01_s1_import-jspsych.csv")
    action, trial_id = actions(manifest)
    for row, (_, t) in zip(df.itertuples(), trials.iterrows()):
        shown = t["choice_order"].split(";")
        assert row.trial_id == trial_id[t["stimulus"]]
        assert row.response == shown[int(t["response"]) - 1]   # key n = n-th label shown
        assert row.correct == (row.response == action[t["stimulus"]])
        assert row.rt_s == pytest.approx(int(t["rt"]) / 1000)
        assert row.choice_order == t["choice_order"] and row.agent == "S01"
    assert df["order"].tolist() == [0, 1, 2, 3]
    assert set(df["software"]) == {f"import=jspsych;source=jspsych_data.csv;"
                                   f"source_sha256={file_sha256(src)}"}
    record = json.loads(next(out.glob("import-jspsych_*.json")).read_text())
    assert record["source_sha256"] == file_sha256(src)


def check_psychopy(path: Path, manifest: Path, out: Path) -> None:
    import_responses(path, "psychopy", manifest, out)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df = read_responses(out / "P07_s1_import-psychopy.csv")
    action, trial_id = actions(manifest)
    assert len(df) == len(raw) == 4
    for row, (_, t) in zip(df.itertuples(), raw.iterrows()):
        shown = t["choice_order"].split(";")
        key = t["key_resp.keys"].removeprefix("num_")           # keypad keys count too
        assert row.trial_id == trial_id[t["image"]]
        assert row.response == shown[int(key) - 1]
        assert row.correct == (row.response == action[t["image"]])
        assert row.rt_s == pytest.approx(float(t["key_resp.rt"]))
        assert row.session == "1" and row.agent == "P07"


def test_psychopy_builder_file(manifest, tmp_path):
    check_psychopy(DATA / "psychopy_P07_actions.csv", manifest, tmp_path / "resp")


@pytest.mark.skipif(importlib.util.find_spec("psychopy") is None,
                    reason="PsychoPy is not installed (pip install -e '.[experiment]')")
def test_psychopy_file_written_live_by_psychopy(manifest, tmp_path):
    from psychopy_data import builder_csv

    df = pd.read_csv(manifest)
    rows = df[df["split"] == "test"].head(4)
    trials = [{"image": r.stimulus, "choices": r.choices.split(";")[::-1]}
              for r in rows.itertuples()]
    path = builder_csv(tmp_path / "psychopy", trials,
                       [("2", 0.5), ("num_1", 0.61), ("3", 0.8), ("1", 1.5)])
    check_psychopy(path, manifest, tmp_path / "resp")


def test_tidy_csv_with_a_mapping_matches_by_hash_and_name(manifest, tmp_path):
    df = pd.read_csv(manifest)
    test = df[df["split"] == "test"].head(3)
    src = tmp_path / "tidy.csv"
    pd.DataFrame({
        "who": ["A", "A", "B"],
        "picture": [test.iloc[0]["sha256"] + ".png",            # named by its hash
                    Path(test.iloc[1]["stimulus"]).as_posix(),  # by its path
                    "x/" + test.iloc[2]["stimulus"]],           # a longer path that ends in it
        "answer": [test.iloc[0]["action"], test.iloc[1]["choices"].split(";")[0],
                   test.iloc[2]["action"]],
        "ms": ["500", "", "812"],
    }).to_csv(src, index=False)
    code = main(["responses", "import", str(src), "--from", "csv", "--trials", str(manifest),
                 "--out", str(tmp_path / "resp"), "--map", "agent=who", "--map",
                 "stimulus=picture", "--map", "response=answer", "--map", "rt_ms=ms"])
    assert code == 0
    a = read_responses(tmp_path / "resp" / "A_s1_import-csv.csv")
    b = read_responses(tmp_path / "resp" / "B_s1_import-csv.csv")
    assert a["trial_id"].tolist() == test["trial_id"].tolist()[:2]
    assert b["trial_id"].tolist() == [test.iloc[2]["trial_id"]]
    assert a["correct"].tolist() == [True, test.iloc[1]["choices"].split(";")[0] ==
                                     test.iloc[1]["action"]]
    assert a["rt_s"].iloc[0] == 0.5 and pd.isna(a["rt_s"].iloc[1])


def edited(src: Path, tmp_path: Path, column: str, row: int, value: str) -> Path:
    df = pd.read_csv(src, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    df.loc[row, column] = value
    out = tmp_path / src.name
    df.to_csv(out, index=False)
    return out


@pytest.mark.parametrize("column,value,message", [
    ("stimulus", "stimuli/original/nobody.png", "matches no manifest trial"),
    ("stimulus", "clap_test00.png", "matches 4 trials by name"),
    ("response", "9", "none of the offered actions"),
    ("choice_order", "wave;clap;run", "is not an order of the trial's offered choices"),
    ("rt", "soon", "expected a number"),
])
def test_rows_that_cannot_be_matched_are_refused(manifest, tmp_path, column, value, message,
                                                 capsys):
    src = edited(DATA / "jspsych_data.csv", tmp_path, column, 4, value)
    code = main(["responses", "import", str(src), "--from", "jspsych", "--trials",
                 str(manifest), "--out", str(tmp_path / "resp")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"row 6, column '{column}'" in err[0] and message in err[0]
    assert not (tmp_path / "resp").exists() or not list((tmp_path / "resp").glob("*.csv"))


def test_nothing_is_overwritten_and_maps_are_checked(manifest, tmp_path):
    import_responses(DATA / "jspsych_data.csv", "jspsych", manifest, tmp_path / "resp")
    with pytest.raises(BadInput, match="already exists"):
        import_responses(DATA / "jspsych_data.csv", "jspsych", manifest, tmp_path / "resp")
    with pytest.raises(BadInput, match="unknown field"):
        parse_map(["colour=x"])
    with pytest.raises(BadInput, match="no column 'nope'"):
        import_responses(DATA / "jspsych_data.csv", "jspsych", manifest, tmp_path / "r2",
                         mapping={"agent": "nope"})
    tidy = tmp_path / "t.csv"
    pd.read_csv(DATA / "jspsych_data.csv").drop(columns=["stimulus"]).to_csv(tidy, index=False)
    with pytest.raises(BadInput, match="no column names the stimulus"):
        import_responses(tidy, "csv", manifest, tmp_path / "r3")


def test_tidy_csv_in_the_contracts_names_needs_no_map_and_keeps_its_phase(manifest, tmp_path):
    df = pd.read_csv(manifest)
    test = df[df["split"] == "test"].head(3)
    src = tmp_path / "tidy.csv"
    pd.DataFrame({"agent": ["A"] * 3, "trial_id": test["trial_id"], "sha256": test["sha256"],
                  "response": test["action"], "rt_s": ["0.5", "0.6", "0.7"],
                  "phase": ["practice", "main", ""]}).to_csv(src, index=False)
    _, n = import_responses(src, "csv", manifest, tmp_path / "resp")
    a = read_responses(tmp_path / "resp" / "A_s1_import-csv.csv")
    assert n == 3 and a["phase"].tolist() == ["practice", "main", "main"]
    assert a["correct"].all()
    bad = tmp_path / "bad.csv"
    pd.read_csv(src).assign(phase=["warmup", "main", "main"]).to_csv(bad, index=False)
    with pytest.raises(BadInput, match="row 2, column 'phase'"):
        import_responses(bad, "csv", manifest, tmp_path / "r2")


def test_importing_10000_rows_hashes_the_manifest_once(manifest, tmp_path, monkeypatch):
    import bodyscene.stimuli.manifest as mf

    calls = []
    real = mf.manifest_sha256
    monkeypatch.setattr(mf, "manifest_sha256", lambda p: calls.append(p) or real(p))
    df = pd.read_csv(manifest)
    rows = df.sample(10_000, replace=True, random_state=0)
    src = tmp_path / "big.csv"
    pd.DataFrame({"agent": "A", "trial_id": rows["trial_id"].to_numpy(),
                  "response": rows["action"].to_numpy()}).to_csv(src, index=False)
    _, n = import_responses(src, "csv", manifest, tmp_path / "resp")
    assert n == 10_000 and len(calls) == 1
