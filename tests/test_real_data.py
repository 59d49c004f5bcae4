"""A real human-vs-model dataset no one here simulated: three people and a ResNet-50 on the same
64 images of model-vs-human's "edge" experiment (tests/data/model_vs_human_edge/README.md for the
source, commit and licence). The rows are converted to the responses contract, read through the
report's loader like any study, and every pair's error consistency must equal the value
computed independently, with exact fractions, by the published definition."""

from __future__ import annotations

import csv
import hashlib
import json
from fractions import Fraction
from pathlib import Path

import pytest
from bodyscene.benchmark.analysis.observations import load_observations
from bodyscene.benchmark.analysis.stats.consistency import pair_summary, pairwise_consistency
from bodyscene.benchmark.harness.predictions import COLUMNS as PRED_COLUMNS
from bodyscene.human_study.responses import ResponseWriter
from bodyscene.stimuli.manifest import write_manifest

from bodyscene.tables import write_csv_atomic

DATA = Path(__file__).parent / "data" / "model_vs_human_edge"
MODEL = "resnet50"


def _convert(root: Path) -> tuple[Path, Path, Path]:
    """(trials.csv, responses/, predictions/) in bodyscene's contracts. The images are not
    vendored, so each trial's sha256 is that of its image name: answers and manifest still have
    to agree on it. Edge images are shown whole, so their condition is `original`."""
    with open(DATA / "edge_subset.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    categories = sorted({r["category"] for r in rows})
    choices = ";".join(categories)
    images = {r["image_id"]: r["category"] for r in rows}
    sha = {i: hashlib.sha256(i.encode()).hexdigest() for i in images}
    trials = write_manifest(root / "trials.csv", [
        dict(trial_id=i.removesuffix(".png"), item_id=i.removesuffix(".png"), action=c,
             condition="original", split="test", stimulus=f"edge/{i}", n_frames=1, fps=1.0,
             sha256=sha[i], choices=choices, source="model-vs-human edge", frame=0,
             mask_fraction=0.0, segmenter="none")
        for i, c in images.items()])
    responses, predictions = root / "responses", root / "predictions"
    predictions.mkdir(parents=True)
    model_rows = []
    for n, r in enumerate(rows):
        answer = dict(agent=r["subj"], session="1", trial_id=r["image_id"].removesuffix(".png"),
                      sha256=sha[r["image_id"]], response=r["object_response"],
                      correct=r["object_response"] == r["category"], rt_s="",
                      order=int(r["trial"]), block=0, choice_order="", timestamp="",
                      simulated=False)
        assert answer["correct"] == (r["correct"] == "1")
        if r["subj"] == MODEL:
            # the source keeps the model's choice, not its probabilities: the answer made the
            # most probable, as the predictions contract requires
            model_rows.append(dict(answer, agent_kind="model", response_open=r["object_response"],
                                   readout="logits", aggregation="single frame",
                                   choice_order=choices,
                                   **{f"p_{c}": 0.25 if c == r["object_response"] else 0.05
                                      for c in categories}))
        else:
            with ResponseWriter(responses / f"{r['subj']}.csv", mode="append") as w:
                w.write(dict(answer, agent_kind="human", phase="main"))
    write_csv_atomic(predictions / f"{MODEL}.csv", model_rows,
                     list(PRED_COLUMNS) + [f"p_{c}" for c in categories])
    return trials, responses, predictions


def test_error_consistency_on_real_human_and_model_data(tmp_path):
    obs = load_observations(*_convert(tmp_path))
    assert len(obs) == 256 and obs["agent"].nunique() == 4
    pairs = pairwise_consistency(obs).set_index(["agent1", "agent2"])
    headline = pair_summary(pairwise_consistency(obs), obs).set_index(["agent1", "agent2"])
    expected = json.loads((DATA / "expected_kappa.json").read_text())["pairs"]
    assert len(expected) == len(pairs) == 6
    for e in expected:
        key = (e["a"], e["b"]) if (e["a"], e["b"]) in pairs.index else (e["b"], e["a"])
        got = pairs.loc[key]
        assert got["n_shared"] == e["n"] == 64
        assert got["c_obs"] == pytest.approx(float(Fraction(e["c_obs"])), abs=1e-12)
        assert got["c_exp"] == pytest.approx(float(Fraction(e["c_exp"])), abs=1e-12)
        assert got["kappa"] == pytest.approx(float(Fraction(e["kappa"])), abs=1e-12)
        # one condition: the per-condition mean is that condition's kappa
        assert headline.loc[key, "kappa"] == pytest.approx(float(Fraction(e["kappa"])),
                                                           abs=1e-12)
    accuracy = obs.groupby("agent")["correct"].sum()
    for e in expected:
        assert accuracy[e["a"]] == e["correct_a"] and accuracy[e["b"]] == e["correct_b"]
