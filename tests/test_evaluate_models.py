"""Evaluating models with no training run: --model/--weights, label maps, misbehaving models,
garbage weights, clip models and their sampling, zero-shot factories, the linear probe, strict
predictions validation and the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from bodyscene.benchmark.harness.evaluate import EvalConfig, evaluate, evaluate_callable
from bodyscene.benchmark.harness.inputs import InputSpec, clip_positions
from bodyscene.benchmark.harness.labelmap import read_label_map
from bodyscene.benchmark.harness.predictions import (
    predictions_writer,
    read_predictions,
    validate_predictions,
)
from bodyscene.benchmark.harness.train import TrainConfig, train
from bodyscene.cli import main
from conftest import write_toy_manifest
from torch import nn

from bodyscene.errors import BadInput, ModelError

ACTIONS = ["clap", "kick", "wave"]


class Fixed(nn.Module):
    """Ignores the image: fixed logits over `n` classes (with an optional misbehaviour)."""

    def __init__(self, n: int, mode: str = "ok"):
        super().__init__()
        self.mode = mode
        self.logits = nn.Parameter(torch.arange(n, 0, -1).float())

    def forward(self, original):
        out = self.logits.expand(original.shape[0], -1) + 0 * original.mean()
        if self.mode == "tuple":
            return out, out
        if self.mode == "shape":
            return out[:, :2]
        if self.mode == "nan":
            return out * float("nan")
        return out


def fixed(num_classes: int, mode: str = "ok", class_names: list | None = None):
    model = Fixed(num_classes, mode)
    if class_names:
        model.class_names = class_names
    return model


def broken(num_classes: int):
    raise RuntimeError("cuda kernel missing\nsecond line")


def zero_shot(num_classes: int, actions: list[str]):
    model = Fixed(num_classes)
    model.got_actions = actions
    with torch.no_grad():  # prefer the last action, by name
        model.logits.copy_(torch.tensor([5.0 if a == actions[-1] else 0.0 for a in actions]))
    return model


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_manifest(tmp_path_factory.mktemp("evm") / "toy", size=16)


def _eval(toy, out, **kw):
    return evaluate(EvalConfig(trials=str(toy), out=str(out), progress=False, image_size=16,
                               **kw))


def test_model_with_weights_and_run_record(toy, tmp_path):
    model = Fixed(3)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.0, 0.0, 9.0]))  # the weights make it say "wave"
    torch.save({"state_dict": model.state_dict()}, tmp_path / "w.pt")
    out = _eval(toy, tmp_path / "p" / "fixed.csv", model=f"{__name__}:fixed",
                weights=str(tmp_path / "w.pt"))[0]
    df = read_predictions(out)
    assert set(df["response_open"]) == {"wave"}
    record = json.loads((out.parent / "fixed.run.json").read_text())
    assert record["source"] == "model" and record["weights"] == str(tmp_path / "w.pt")
    assert len(record["weights_sha256"]) == 64 and record["input"]["resize"] == "pad"
    assert validate_predictions(out, toy) == []


@pytest.mark.parametrize("mode,expected", [
    ("tuple", "returned a tuple of 2; expected a tensor of \\(N, num_classes\\)"),
    ("shape", r"returned shape \(\d+, 2\); expected"),
    ("nan", "returned NaN logits"),
])
def test_misbehaving_forward_is_one_line(toy, tmp_path, capsys, mode, expected):
    code = main(["evaluate", "--model", f"{__name__}:fixed", "--option", f"mode={mode}",
                 "--image-size", "16", "--trials", str(toy), "--out",
                 str(tmp_path / "p.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"model '{__name__}:fixed'" in err
    import re
    assert re.search(expected, err), err


def test_factory_raising_and_garbage_weights_are_one_line(toy, tmp_path, capsys):
    code = main(["evaluate", "--model", f"{__name__}:broken", "--trials", str(toy), "--out",
                 str(tmp_path / "a.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "factory raised RuntimeError" in err
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 10)
    code = main(["evaluate", "--model", f"{__name__}:fixed", "--weights",
                 str(tmp_path / "junk.pt"), "--trials", str(toy), "--out",
                 str(tmp_path / "b.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a readable torch weights" in err
    assert "unsafe" not in err


def test_label_map_sum_and_mean(toy, tmp_path):
    names = ["c0", "c1", "c2", "c3", "c4"]
    probs = np.array([[0.1, 0.2, 0.3, 0.15, 0.25]])
    (tmp_path / "map.csv").write_text("model_class,action\nc0,clap\n1,clap\nc2,kick\n"
                                      "c4,wave\nc3,jump\n")
    summed = read_label_map(tmp_path / "map.csv", ACTIONS, 5, names, "sum")
    assert summed.ignored_actions == ["jump"]  # class 3 is dropped with its unknown action
    assert np.allclose(summed.apply(probs), np.array([[0.3, 0.3, 0.25]]) / 0.85)
    mean = read_label_map(tmp_path / "map.csv", ACTIONS, 5, names, "mean")
    assert np.allclose(mean.apply(probs), np.array([[0.15, 0.3, 0.25]]) / 0.7)
    (tmp_path / "gap.csv").write_text("model_class,action\n0,clap\n1,kick\n")
    with pytest.raises(BadInput, match="action 'wave' has no model class"):
        read_label_map(tmp_path / "gap.csv", ACTIONS, 5)
    (tmp_path / "bad.csv").write_text("model_class,action\n0,clap\n9,kick\n")
    with pytest.raises(BadInput, match="row 3, column 'model_class'.*out of range"):
        read_label_map(tmp_path / "bad.csv", ACTIONS, 5)
    # end to end: five model classes by name, read through the map
    out = _eval(toy, tmp_path / "p" / "mapped.csv", model=f"{__name__}:fixed",
                model_options={"class_names": names}, num_classes=5,
                label_map=str(tmp_path / "map.csv"), label_combine="mean")[0]
    df = read_predictions(out)
    logits = torch.arange(5, 0, -1).float().softmax(0).numpy()[None]
    want = mean.apply(logits)[0]
    assert np.allclose(df[["p_clap", "p_kick", "p_wave"]].to_numpy(), want, atol=1e-5)
    record = json.loads((out.parent / "mapped.run.json").read_text())
    assert record["label_combine"] == "mean" and record["mapped_model_classes"] == 4


def test_zero_shot_factory_gets_the_actions(toy, tmp_path):
    out = _eval(toy, tmp_path / "zs.csv", model=f"{__name__}:zero_shot")[0]
    assert set(read_predictions(out)["response_open"]) == {"wave"}


def test_clip_sampling_positions():
    uniform = InputSpec(input="clip", clip_frames=4)
    assert clip_positions(8, 8.0, uniform).tolist() == [1, 3, 5, 7]
    assert clip_positions(1, 8.0, uniform).tolist() == [0, 0, 0, 0]  # an image, repeated
    two = InputSpec(input="clip", clip_frames=2, num_clips=2)
    assert [clip_positions(8, 8, two, k).tolist() for k in (0, 1)] == [[1, 5], [3, 7]]
    fps = InputSpec(input="clip", clip_frames=3, clip_sampling="fps", clip_fps=4.0)
    assert clip_positions(12, 8.0, fps).tolist() == [3, 5, 7]  # every 2nd frame, centred
    assert clip_positions(5, 8.0, InputSpec(input="clip", clip_sampling="all")).tolist() == \
        list(range(5))


def test_clip_model_trains_evaluates_and_averages_crops(toy_clip_manifest, tmp_path):
    run = train(TrainConfig(trials=str(toy_clip_manifest), model="test_clip3d",
                            out=str(tmp_path / "run"), epochs=1, batch_size=4, image_size=16,
                            lr=0.01, progress=False, model_options={"frames": 2}))
    one = evaluate(EvalConfig(checkpoint=str(run / "best.pt"), trials=str(toy_clip_manifest),
                              out=str(tmp_path / "p" / "one.csv"), progress=False))[0]
    two = evaluate(EvalConfig(checkpoint=str(run / "best.pt"), trials=str(toy_clip_manifest),
                              out=str(tmp_path / "p" / "two.csv"), clips=2,
                              progress=False))[0]
    assert validate_predictions(one, toy_clip_manifest) == []
    a, b = read_predictions(one), read_predictions(two)
    assert not np.allclose(a["p_clap"], b["p_clap"])  # other frames were sampled
    record = json.loads((tmp_path / "p" / "two.run.json").read_text())
    assert record["input"]["clip_frames"] == 2 and record["clips_per_trial"] == 2
    assert record["source"] == "checkpoint"


def test_torchvision_video_adapter_loads_local_weights(toy_clip_manifest, tmp_path):
    import torchvision

    torch.save(torchvision.models.video.mc3_18(weights=None).state_dict(), tmp_path / "m.pth")
    out = evaluate(EvalConfig(model="mc3_18", weights=str(tmp_path / "m.pth"),
                              model_options={"frames": 2}, image_size=16,
                              label_map=str(Path(__file__).parents[1] / "benchmark/harness/"
                                            "label_maps/kinetics400_demo.csv"),
                              trials=str(write_toy_manifest(tmp_path / "demo", size=16,
                                         actions=("kick", "squat", "wave"))),
                              out=str(tmp_path / "p" / "mc3.csv"), progress=False))[0]
    assert len(read_predictions(out)) > 0


@pytest.mark.slow
@pytest.mark.parametrize("arch,frames,size", [("r3d_18", 2, 32), ("r2plus1d_18", 2, 32),
                                              ("s3d", 14, 224), ("mvit_v2_s", 16, 224)])
def test_every_video_adapter_round_trips_weights(arch, frames, size, tmp_path):
    import torchvision

    from bodyscene.models.registry import create_model

    net = getattr(torchvision.models.video, arch)(weights=None)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    model = create_model(arch, 3, weights=str(tmp_path / "w.pth"), frames=frames, size=size)
    assert model(torch.zeros(1, 3, frames, size, size)).shape == (1, 3)  # head re-initialised
    first = next(iter(net.state_dict()))
    assert torch.equal(model.net.state_dict()[first], net.state_dict()[first])


@pytest.mark.parametrize("model,options", [("baseline", {"backbone": "tiny"}),
                                           ("domainnet", {"backbone": "tiny"}),
                                           ("test_clip3d", {})])
def test_freeze_backbone_trains_only_heads(toy_manifest, tmp_path, model, options):
    from bodyscene.benchmark.harness.checkpoint import load_model
    from bodyscene.models.registry import create_model

    torch.manual_seed(0)
    init = create_model(model, 3, **options)
    torch.save(init.state_dict(), tmp_path / "init.pt")
    factory_opts = {k: v for k, v in options.items()}
    run = train(TrainConfig(trials=str(toy_manifest), model=model, out=str(tmp_path / "r"),
                            epochs=1, batch_size=4, image_size=16, lr=0.1, progress=False,
                            freeze_backbone=True, model_options=factory_opts,
                            backbone=options.get("backbone", "resnet18")))
    trained, _ = load_model(run / "last.pt")
    before = torch.load(tmp_path / "init.pt")
    from bodyscene.models.probe import head_parameters
    heads = {id(p) for p in head_parameters(trained)}
    for (name, p) in trained.named_parameters():
        same = torch.equal(p, before[name])
        assert same != (id(p) in heads), name  # heads moved, everything else did not


def test_validate_names_every_defect(toy, tmp_path, capsys):
    good = _eval(toy, tmp_path / "p" / "m.csv", model=f"{__name__}:fixed")[0]
    df = pd.read_csv(good, dtype=str, keep_default_na=False)
    bad = df.copy()
    bad.loc[0, "p_clap"] = "0.9"                       # row 2: no longer sums to 1
    bad.loc[1, "response"] = bad.loc[1, "choice_order"].split(";")[-1]
    bad.loc[2, "response_open"] = "jump"
    bad.loc[3, "choice_order"] = "clap;kick"
    bad = bad.drop(index=5)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    problems = validate_predictions(tmp_path / "bad.csv", toy)
    text = "\n".join(problems)
    assert "row 2, column 'p_*'" in text and "sum to" in text
    assert "row 4, column 'response_open'" in text and "row 5, column 'choice_order'" in text
    assert "1 test trial(s) missing" in text
    assert validate_predictions(tmp_path / "bad.csv", toy, allow_missing=True) != []
    df.drop(columns="p_wave").to_csv(tmp_path / "cols.csv", index=False)
    assert "column 'p_wave'" in validate_predictions(tmp_path / "cols.csv", toy)[0]
    people = tmp_path / "responses"
    people.mkdir()
    pd.DataFrame({"agent": ["m"], "agent_kind": ["human"]}).to_csv(people / "m.csv",
                                                                  index=False)
    assert "participant" in validate_predictions(good, toy, responses=people)[0]
    code = main(["predictions", "validate", str(tmp_path / "bad.csv"), "--trials", str(toy)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == len(problems)
    assert main(["predictions", "validate", str(good), "--trials", str(toy)]) == 0


def test_evaluate_callable_and_writer(toy, tmp_path):
    seen = []

    def fn(x):
        seen.append(tuple(x.shape))
        return torch.tensor([[0.2, 0.5, 0.3]]).expand(len(x), -1)

    out = evaluate_callable(fn, toy, tmp_path / "fn.csv", image_size=16)
    assert seen[0][1:] == (3, 16, 16) and validate_predictions(out, toy) == []
    assert set(read_predictions(out)["response_open"]) == {"kick"}
    with pytest.raises(ModelError, match=r"returned \(\d+, 2\); expected probabilities"):
        evaluate_callable(lambda x: torch.ones(len(x), 2) / 2, toy, tmp_path / "bad.csv",
                          image_size=16)
    test = pd.read_csv(toy).query("split == 'test'")
    with predictions_writer(tmp_path / "w.csv", toy) as w:
        for tid in test["trial_id"]:
            w.add(tid, {"clap": 0.7, "kick": 0.2, "wave": 0.1})
    assert validate_predictions(tmp_path / "w.csv", toy) == []
    with pytest.raises(BadInput, match="missing"):
        with predictions_writer(tmp_path / "w2.csv", toy) as w:
            w.add(test["trial_id"].iloc[0], [0.7, 0.2, 0.1])
    assert not (tmp_path / "w2.csv").exists()
