"""The Python API (bodyscene.evaluate / compare / report), no silent random weights, the device
choice, and each stimulus hashed once per evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from bodyscene.benchmark.harness import runtime
from bodyscene.benchmark.harness.evaluate import EvalConfig, evaluate
from bodyscene.benchmark.harness.predictions import predictions_writer, validate_predictions
from bodyscene.human_study.responses import ResponseWriter
from bodyscene.stimuli import manifest as manifest_module
from bodyscene.stimuli.manifest import Manifest
from conftest import write_toy_manifest
from torch import nn

from bodyscene.cli import main
from bodyscene.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
HUMAN_ACC = {"original": 0.9, "body": 0.85, "background": 0.6, "conflict": 0.7}
REPORT = {"bootstrap": 20, "split_halves": 10, "regression": False, "progress": False}


def colour_net(num_classes: int = 3) -> nn.Module:
    """A fixed, deterministic model: the mean colour through a seeded linear layer."""
    torch.manual_seed(0)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, num_classes))


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, Path]:
    """A trial set and the responses of four people with known accuracies."""
    root = tmp_path_factory.mktemp("api")
    trials = write_toy_manifest(root / "stim", actions=("kick", "punch", "wave"),
                                items_per_split={"train": 1, "test": 4})
    responses = root / "responses"
    responses.mkdir()
    rng = np.random.default_rng(0)
    test = Manifest.read(trials, check_hashes=False).split("test")
    for p in range(4):
        with ResponseWriter(responses / f"p{p}_bodyscene.csv") as w:
            for order, t in enumerate(test.itertuples()):
                ok = bool(rng.random() < HUMAN_ACC[t.condition])
                wrong = [c for c in t.choice_list if c != t.action]
                w.write(dict(agent=f"p{p}", agent_kind="human", session="1",
                             trial_id=t.trial_id, sha256=t.sha256,
                             response=t.action if ok else wrong[order % len(wrong)],
                             correct=ok, rt_s=0.6, order=order, block=0,
                             choice_order=t.choices, timestamp="2026-01-01T00:00:00",
                             simulated=False, phase="main"))
    return trials, responses


def test_three_lines_equal_the_report(study, tmp_path):
    trials, responses = study
    import bodyscene

    preds = bodyscene.evaluate(colour_net(), trials, image_size=16,
                               out=tmp_path / "predictions" / "colournet.csv")
    board = bodyscene.compare(preds, responses, trials, **REPORT)

    assert validate_predictions(tmp_path / "predictions" / "colournet.csv", trials) == []
    assert list(preds["agent"].unique()) == ["colournet"] and preds.attrs["run"]["device"] == "cpu"
    # the same inputs through the report's files
    html = bodyscene.report(trials, tmp_path / "report", responses=responses,
                            predictions=tmp_path / "predictions", **REPORT)
    assert html.is_file()
    written = pd.read_csv(tmp_path / "report" / "leaderboard.csv").set_index("observer")
    ours = board.board.set_index("observer")
    assert list(ours.index) == list(written.index) == ["humans", "colournet"]
    for col in [c for c in written.columns if c.startswith("accuracy_")] + \
            ["error_consistency", "observed_consistency", "accuracy_difference"]:
        np.testing.assert_allclose(ours.loc["colournet", col], written.loc["colournet", col],
                                   rtol=1e-5, err_msg=col)
    by_condition = board.by_condition("colournet")
    accuracy = pd.read_csv(tmp_path / "report" / "accuracy.csv")
    for cond, value in by_condition.items():
        row = accuracy[(accuracy["group"] == "colournet") & (accuracy["condition"] == cond)]
        assert value == pytest.approx(float(row["accuracy"].iloc[0]), rel=1e-5)
    # the weights' sha256 travels from the run record to both leaderboards
    sha = preds.attrs["run"]["weights_sha256"]
    assert len(sha) == 64 and ours.loc["colournet", "weights"] == sha
    assert written.loc["colournet", "weights"] == sha
    assert sha in (tmp_path / "report" / "report.html").read_text(encoding="utf-8")


def test_evaluate_without_a_file_leaves_nothing(study, tmp_path, monkeypatch):
    trials, _ = study
    import bodyscene

    monkeypatch.chdir(tmp_path)
    preds = bodyscene.evaluate(lambda x: torch.full((len(x), 3), 1 / 3), trials,
                               image_size=16, name="flat")
    assert list(tmp_path.iterdir()) == []
    assert set(preds["agent"]) == {"flat"}
    assert len(preds) == len(Manifest.read(trials, check_hashes=False).split("test"))
    with pytest.raises(BadInput, match="setting 'clips' does not apply to a function"):
        bodyscene.evaluate(lambda x: x, trials, clips=2)
    with pytest.raises(BadInput, match="best.pt: checkpoint not found"):
        bodyscene.evaluate("runs/x/best.pt", trials)


@pytest.mark.parametrize("model", ["torchvision", "r3d_18"])
def test_pretrained_architecture_without_weights_is_refused(study, tmp_path, capsys, model):
    trials, _ = study
    code = main(["evaluate", "--model", model, "--trials", str(trials), "--out",
                 str(tmp_path / "x.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--weights FILE" in err and "--random-init" in err
    assert not (tmp_path / "x.csv").exists()


def test_random_init_is_named_everywhere(study, tmp_path, capsys):
    trials, responses = study
    preds = tmp_path / "predictions"
    code = main(["evaluate", "--model", "torchvision", "--option", "arch=resnet18",
                 "--option", "size=32", "--random-init", "--trials", str(trials), "--out",
                 str(preds / "resnet18.csv"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "random weights" in capsys.readouterr().out
    df = pd.read_csv(preds / "resnet18.csv")
    assert set(df["agent"]) == {"resnet18 (random init)"}
    record = json.loads((preds / "resnet18.run.json").read_text())
    assert record["random_init"] is True and record["weights_sha256"] is None
    assert record["agent"] == "resnet18 (random init)" and record["device"] == "cpu"
    import bodyscene

    board = bodyscene.compare(preds, responses, trials, **REPORT).board.set_index("observer")
    assert board.loc["resnet18 (random init)", "weights"] == "random init"
    code = main(["evaluate", "--model", "torchvision", "--random-init", "--weights", "w.pt",
                 "--trials", str(trials), "--out", str(tmp_path / "y.csv"), "--quiet"])
    assert code == 2 and "contradict" in capsys.readouterr().err


def _counting(monkeypatch) -> Counter:
    seen: Counter = Counter()
    real = manifest_module.stimulus_sha256

    def counted(stimulus):
        seen[str(stimulus)] += 1
        return real(stimulus)
    monkeypatch.setattr(manifest_module, "stimulus_sha256", counted)
    return seen


def test_each_stimulus_is_hashed_once(study, tmp_path, monkeypatch):
    trials, _ = study
    n = len(pd.read_csv(trials))
    seen = _counting(monkeypatch)
    evaluate(EvalConfig(model="baseline", model_options={"backbone": "tiny"}, image_size=16,
                        trials=str(trials), out=str(tmp_path / "a.csv"), device="cpu",
                        progress=False))
    assert len(seen) == n and set(seen.values()) == {1}

    seen.clear()
    manifest = Manifest.read(trials)
    with predictions_writer(tmp_path / "w.csv", manifest) as w:
        for tid in manifest.split("test")["trial_id"]:
            w.add(tid, [0.2, 0.3, 0.5])
    assert len(seen) == n and set(seen.values()) == {1}  # read once; closing re-hashes nothing


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    for cuda, mps, expected in ((True, True, "cuda:0"), (False, True, "mps"),
                                (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(runtime, "_mps_available", lambda mps=mps: mps)
        assert str(runtime.select_device("auto")) == expected
    local = runtime.Dist(world=2, rank=1, local_rank=1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert str(runtime.select_device("auto", local)) == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    with pytest.raises(BadInput, match="'mps'.*not available"):
        runtime.select_device("mps")
    with pytest.raises(BadInput, match="CUDA is not available"):
        runtime.select_device("cuda")


def test_amp_off_cuda_is_one_line(study, tmp_path, capsys, monkeypatch):
    trials, _ = study
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    code = main(["evaluate", "--model", "baseline", "--option", "backbone=tiny", "--amp",
                 "--image-size", "16", "--trials", str(trials), "--out",
                 str(tmp_path / "a.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "needs a CUDA device" in err


def test_import_bodyscene_stays_light():
    code = ("import sys, bodyscene\n"
            "light = sorted(m for m in ('torch', 'pandas', 'cv2') if m in sys.modules)\n"
            "print(light, callable(bodyscene.evaluate), callable(bodyscene.compare), "
            "callable(bodyscene.report))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True", "True", "True"]
    import bodyscene

    with pytest.raises(AttributeError):
        bodyscene.no_such_thing  # noqa: B018
