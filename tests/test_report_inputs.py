"""The report on every shape of input a lab has (issue 19): each case opens report.html and
checks the numbers it shows against values computed here from the answers as written; a
property test feeds random valid contracts and wants a report, never a traceback, with every
number it prints finite or explained."""

from __future__ import annotations

import json
import math
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from bodyscene.benchmark.analysis.report import ReportConfig, make_report
from report_inputs import Shape, expected_accuracy, expected_people_kappa, write_inputs

from bodyscene.cli import main
from bodyscene.errors import BadInput

FAST = dict(bootstrap=30, split_halves=10, dpi=40, progress=False)


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts, and the page's visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "title"):
            self._skip += 1
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def read_page(path: Path) -> tuple[list[pd.DataFrame], str]:
    parser = _Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    tables = [pd.DataFrame(t[1:], columns=t[0]) for t in parser.tables if t and t[0]]
    return tables, " ".join(" ".join(parser.text).split())


def table_with(tables: list[pd.DataFrame], *headers: str) -> pd.DataFrame:
    found = [t for t in tables if set(headers) <= set(t.columns)]
    assert found, f"no table with columns {headers}"
    return found[0]


def check_numbers_explained(text: str, tables: list[pd.DataFrame]) -> None:
    """No NaN or infinity reaches the page; a dash (undefined) always comes with its reason."""
    assert not re.search(r"\b(nan|NaN|inf|Infinity)\b", text), \
        re.search(r".{60}\b(nan|NaN|inf|Infinity)\b.{60}", text).group(0)
    if any((t == "–").any().any() for t in tables):
        assert "– = undefined" in text


def check_accuracy(tables: list[pd.DataFrame], rows: pd.DataFrame, summary: dict) -> None:
    """Every group x condition cell of the page and of summary.json is the accuracy of the
    answers as written."""
    shown = table_with(tables, "group", "condition", "accuracy", "ci_low")
    for (group, condition), acc in expected_accuracy(rows).items():
        cell = shown[(shown["group"] == group) & (shown["condition"] == condition)]
        assert len(cell) == 1, (group, condition)
        assert cell["accuracy"].iloc[0] == f"{acc:.3g}", (group, condition)
        assert summary["groups"][group][condition]["accuracy"] == pytest.approx(acc)


def report(tmp_path: Path, shape: Shape, **cfg) -> tuple[dict, list[pd.DataFrame], str, object]:
    inputs = write_inputs(tmp_path / "in", shape)
    out = tmp_path / "report"
    summary = make_report(inputs.trials, inputs.responses, inputs.predictions, out,
                          ReportConfig(**{**FAST, "regression": False, **cfg}))
    assert json.loads((out / "summary.json").read_text())["groups"] == summary["groups"]
    for table in out.glob("*.csv"):   # every table keeps its header, even without rows
        assert len(pd.read_csv(table).columns) > 1, table.name
    tables, text = read_page(out / "report.html")
    check_numbers_explained(text, tables)
    check_accuracy(tables, inputs.rows, summary)
    return summary, tables, text, inputs


def _board(tables):
    return table_with(tables, "observer", "observed consist.")


# ------------------------------------------------------------------------- the matrix

def case_people_only(tmp_path):
    summary, tables, text, inputs = report(tmp_path, Shape(people=5, models=(), test_items=4),
                                           regression=True)
    kappa = expected_people_kappa(inputs.rows, "humans")
    assert math.isfinite(kappa)
    assert "No models yet" in text
    board = _board(tables)
    assert board["observer"].tolist() == ["humans"]
    assert board["error consist. κ"].iloc[0] == f"{kappa:.2f}"
    people = summary["error_consistency"]["people"]["humans"]
    assert people["kappa_mean"] == pytest.approx(kappa)
    assert 0 < people["observed_consistency"] < 1
    assert people["kappa_q25"] <= people["kappa_mean"] <= people["kappa_q75"] or \
        people["n_pairs"] < 4
    row = table_with(tables, "observer", "human_group", "kappa_with_humans")
    assert row["observer"].tolist() == ["humans"]
    assert row["human_human_kappa"].iloc[0] == f"{kappa:.3g}"
    assert summary["leaderboard"][0]["error_consistency"] == pytest.approx(kappa)
    assert table_with(tables, "human_group", "profile", "r_half")["n_participants"].iloc[0] == "5"
    assert len(table_with(tables, "group", "comparison", "p_holm")) == 1
    assert len(table_with(tables, "term", "estimate")) > 0   # the mixed model


def case_models_only(tmp_path):
    summary, tables, text, _ = report(tmp_path, Shape(people=0, models=("a", "b", "c"),
                                                      test_items=4))
    assert "No people in the data: no ceiling" in text
    assert summary["leaderboard"] == [] and summary["error_consistency"]["people"] == {}
    mm = [p for p in summary["error_consistency"]["by_pair_type"]
          if p["pair_type"] == "model-model"]
    assert mm and mm[0]["count"] == 3
    assert (tmp_path / "report" / "error_consistency.png").exists()


def case_one_participant(tmp_path):
    summary, tables, text, _ = report(tmp_path, Shape(people=1, models=("net",), test_items=4),
                                      regression=True)
    assert "One participant in humans: no people-people consistency" in text
    assert "Fewer than two participants" in text
    assert summary["error_consistency"]["people"]["humans"]["kappa_mean"] is None
    contrast = table_with(tables, "group", "comparison", "p_holm").set_index("group")
    assert contrast.loc["humans", "p"] == "–"


def case_one_participant_alone(tmp_path):
    summary, _, text, _ = report(tmp_path, Shape(people=1, models=()))
    assert "A single observer: no pair to compare" in text and "No models yet" in text
    assert summary["observers"] == {"people": {"humans": 1}, "models": 0}


def case_one_model(tmp_path):
    summary, tables, text, _ = report(tmp_path, Shape(people=3, models=("net",), test_items=4))
    assert "Fewer than two models: nothing to compare." in text
    board = _board(tables)
    assert board["observer"].tolist() == ["humans", "net"] and board["rank"].iloc[1] == "1"


def case_real_and_simulated(tmp_path):
    summary, tables, text, _ = report(tmp_path, Shape(people=3, simulated=3, test_items=4))
    assert set(summary["error_consistency"]["people"]) == {"humans", "humans (simulated)"}
    assert "SIMULATED" in text
    assert summary["leaderboard"][0]["observer"] == "humans"   # ranked against real people


def case_no_conflict(tmp_path):
    summary, _, text, _ = report(tmp_path, Shape(conflict=False))
    assert "No conflict trials in these data." in text and summary["conflict"] == {}


def case_condition_missing_for_one(tmp_path):
    summary, tables, _, _ = report(tmp_path, Shape(people=3, skip_condition={"p00": "body",
                                                                             "net": "original"}))
    assert summary["groups"]["humans"]["body"]["n_agents"] == 2
    assert "original" not in summary["groups"]["net"]


def case_action_nobody_answered(tmp_path):
    summary, _, _, _ = report(tmp_path, Shape(n_actions=4, skip_action="wave"))
    assert summary["n_trials"] > 0


def case_readouts(tmp_path):
    summary, tables, _, _ = report(tmp_path, Shape(readouts=True), include_readouts=True)
    board = _board(tables)
    assert "net:body" in "".join(board["observer"])
    assert "net:body" in summary["groups"]


def case_two_choices(tmp_path):
    summary, _, _, _ = report(tmp_path, Shape(n_actions=12, k=2, test_items=1))
    assert summary["groups"]["humans"]["original"]["chance"] == pytest.approx(0.5)


def case_twelve_choices(tmp_path):
    summary, _, _, _ = report(tmp_path, Shape(n_actions=12, test_items=1))
    assert summary["groups"]["humans"]["original"]["chance"] == pytest.approx(1 / 12)


def case_practice_and_catch(tmp_path):
    summary, _, _, inputs = report(tmp_path, Shape(practice_catch=True))
    assert summary["n_trials"] == len(inputs.rows)   # practice and catch are not data


def case_anticipations_remove_a_person(tmp_path):
    summary, _, text, _ = report(tmp_path, Shape(people=3, anticipate_all="p00"),
                                 exclude_anticipations=True)
    assert summary["groups"]["humans"]["body"]["n_agents"] == 2
    assert "nothing was left of p00" in text


CASES = {name[5:]: fn for name, fn in dict(globals()).items() if name.startswith("case_")}


@pytest.mark.parametrize("case", list(CASES))
def test_report_input_matrix(case, tmp_path):
    CASES[case](tmp_path)


# --------------------------------------------------------- the command line, real data

def test_cli_people_only_and_models_only_on_real_data(tmp_path, capsys):
    """model-vs-human's edge experiment: its three people alone, then its model alone."""
    from test_real_data import _convert

    trials, responses, predictions = _convert(tmp_path / "edge")
    common = ["report", "--trials", str(trials), "--bootstrap", "30", "--split-halves", "10",
              "--quiet"]
    assert main(common + ["--responses", str(responses), "--out", str(tmp_path / "p")]) == 0
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["groups"]["humans"]["original"]["accuracy"] == pytest.approx(
        (54 + 61 + 60) / 192)   # expected_kappa.json's counts
    people = summary["error_consistency"]["people"]["humans"]
    # the three people-people kappas of expected_kappa.json, computed independently
    assert people["kappa_mean"] == pytest.approx((49 / 193 + 11 / 51 + 29 / 53) / 3)
    assert people["n_pairs"] == 3
    board = pd.read_csv(tmp_path / "p" / "leaderboard.csv")
    assert board["error_consistency"].iloc[0] == pytest.approx(people["kappa_mean"], abs=1e-6)
    assert main(common + ["--predictions", str(predictions), "--out", str(tmp_path / "m")]) == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["groups"]["resnet50"]["original"]["accuracy"] == pytest.approx(10 / 64)
    assert "No people in the data" in (tmp_path / "m" / "report.html").read_text()
    printed = capsys.readouterr()
    # nothing but the result: no traceback, no library warning (--quiet: no progress either)
    assert "Traceback" not in printed.err and "Warning" not in printed.err + printed.out


# ------------------------------------------------------------------- the property test

@st.composite
def shapes(draw) -> Shape:
    """Random valid contracts: any mix of people, simulated people and models (at least one
    observer), 2-5 actions, any number of choices, with or without conflict trials, each
    observer answering a random share of the trials, accuracies up to 0 and 1."""
    n_actions = draw(st.integers(2, 5))
    people = draw(st.integers(0, 4))
    simulated = draw(st.integers(0, 2))
    models = tuple(f"m{i}" for i in range(draw(st.integers(0, 3))))
    assume(people + simulated + len(models) > 0)
    return Shape(
        people=people, simulated=simulated, models=models, n_actions=n_actions,
        k=draw(st.one_of(st.none(), st.integers(2, n_actions))),
        test_items=draw(st.integers(1, 4)), conflict=draw(st.booleans()),
        accuracy=draw(st.sampled_from([0.0, 0.5, 0.8, 1.0])),
        model_accuracy=draw(st.sampled_from([None, 0.0, 1.0])),
        practice_catch=draw(st.booleans()),
        keep=draw(st.sampled_from([1.0, 0.7, 0.3])),
        skip_condition=draw(st.sampled_from([{}, {"p00": "body"}, {"m0": "background"}])),
        seed=draw(st.integers(0, 10_000)))


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes())
def test_random_valid_contracts_never_end_in_a_traceback(shape):
    with tempfile.TemporaryDirectory() as tmp:
        inputs = write_inputs(Path(tmp) / "in", shape)
        out = Path(tmp) / "report"
        if inputs.rows.empty:   # nobody answered a main trial: refused in one line
            with pytest.raises(BadInput, match="no main-phase trials"):
                make_report(inputs.trials, inputs.responses, inputs.predictions, out,
                            ReportConfig(**FAST, regression=True))
            assert not out.exists()
            return
        summary = make_report(inputs.trials, inputs.responses, inputs.predictions, out,
                              ReportConfig(**FAST, regression=True))

        def refuse(constant):
            raise AssertionError(f"summary.json holds {constant}")

        json.loads((out / "summary.json").read_text(), parse_constant=refuse)
        tables, text = read_page(out / "report.html")
        check_numbers_explained(text, tables)
        check_accuracy(tables, inputs.rows, summary)
