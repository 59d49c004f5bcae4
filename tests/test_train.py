"""bodyscene.benchmark.harness.train: a run's files, exact resume, divergence, never-overwrite, mismatches."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from bodyscene.benchmark.harness import train as train_mod
from bodyscene.benchmark.harness.checkpoint import load_model
from bodyscene.benchmark.harness.train import TrainConfig, train
from conftest import write_toy_manifest
from torch import nn

from bodyscene.errors import BadInput


class NanNet(nn.Module):
    """A model whose loss is NaN from the first step."""

    views = ("original",)

    def __init__(self, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)

    def forward(self, original):
        return self.fc(original.mean((2, 3))) * float("nan")


def nan_net(num_classes: int) -> NanNet:
    return NanNet(num_classes)


@pytest.fixture(scope="module")
def trials(tmp_path_factory) -> Path:
    return write_toy_manifest(tmp_path_factory.mktemp("train") / "toy", size=32)


def _cfg(trials: Path, out: Path, **kw) -> TrainConfig:
    base = dict(trials=str(trials), model="domainnet", backbone="tiny", out=str(out), epochs=2,
                lr=0.05, batch_size=4, image_size=32, seed=3, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_a_run_writes_checkpoints_metrics_and_record(trials, tmp_path):
    run = train(_cfg(trials, tmp_path / "run", epochs=2))
    assert {"best.pt", "last.pt", "metrics.csv", "run.json"} <= {p.name for p in run.iterdir()}
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2]
    assert metrics["val_acc"].between(0, 1).all() and (metrics["images_per_s"] > 0).all()
    record = json.loads((run / "run.json").read_text())
    from bodyscene.stimuli.manifest import manifest_sha256
    assert record["manifest_sha256"] == manifest_sha256(trials)
    assert record["config"]["model"] == "domainnet" and record["seed"] == 3
    assert record["actions"] == ["clap", "kick", "wave"]
    model, ckpt = load_model(run / "last.pt")
    assert ckpt["epoch"] == 2 and model.views == ("body", "background")
    assert not any(p.name.startswith(".") for p in run.iterdir())  # no temporary files left


def test_killed_and_resumed_run_ends_with_the_same_weights(trials, tmp_path, monkeypatch):
    opts = dict(epochs=3, view_dropout=0.3, fusion="learned-weighted", lr_schedule="onecycle")
    whole = train(_cfg(trials, tmp_path / "whole", **opts))

    real_step, calls = train_mod.train_step, {"n": 0}

    def dies_in_epoch_two(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 5:  # 12 training frames / batch 4 = 3 steps per epoch
            raise KeyboardInterrupt
        return real_step(*args, **kw)

    monkeypatch.setattr(train_mod, "train_step", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(trials, tmp_path / "killed", **opts))
    monkeypatch.setattr(train_mod, "train_step", real_step)
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["epoch"] == 1
    resumed = train(_cfg(trials, tmp_path / "killed", resume=True, **opts))
    a = torch.load(whole / "last.pt", weights_only=True)
    b = torch.load(resumed / "last.pt", weights_only=True)
    assert b["epoch"] == 3
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert pd.read_csv(resumed / "metrics.csv")["epoch"].tolist() == [1, 2, 3]
    assert (resumed / "run.1.json").exists()  # the first record is kept, not overwritten


def test_nan_loss_stops_with_a_clear_message(trials, tmp_path, capsys):
    from bodyscene.cli import main

    rc = main(["train", "--trials", str(trials), "--model", f"{__name__}:nan_net",
               "--out", str(tmp_path / "nan"), "--epochs", "2", "--image-size", "32",
               "--batch-size", "4", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bodyscene: error: training diverged: the loss became nan at epoch 1")
    assert "lower --lr" in err and "\n" not in err


def test_refuses_to_overwrite_and_checks_what_it_resumes(trials, tmp_path):
    run = train(_cfg(trials, tmp_path / "run", epochs=1, model="baseline"))
    with pytest.raises(BadInput, match="already holds a run"):
        train(_cfg(trials, run, epochs=1, model="baseline"))
    with pytest.raises(BadInput, match="cannot resume with lr=0.1"):
        train(_cfg(trials, run, epochs=2, model="baseline", lr=0.1, resume=True))
    other = write_toy_manifest(tmp_path / "other", size=32, seed=5)
    with pytest.raises(BadInput, match="different manifest"):
        train(_cfg(other, run, epochs=2, model="baseline", resume=True))
    with pytest.raises(BadInput, match="nothing to resume"):
        train(_cfg(trials, tmp_path / "empty", resume=True))


def test_view_dropout_needs_two_views(trials, tmp_path):
    with pytest.raises(BadInput, match="view dropout needs a model with two or more views"):
        train(_cfg(trials, tmp_path / "run", model="baseline", view_dropout=0.5))


def test_mmap_cache_gives_the_same_run(trials, tmp_path):
    a = train(_cfg(trials, tmp_path / "mem", epochs=1, model="baseline"))
    b = train(_cfg(trials, tmp_path / "map", epochs=1, model="baseline",
                   cache=str(tmp_path / "cache")))
    sa = torch.load(a / "last.pt", weights_only=True)["state_dict"]
    sb = torch.load(b / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert list((tmp_path / "cache").iterdir()) == []  # the memory-mapped file is removed


def test_paired_views_share_one_geometry_and_blank_stays_black():
    from bodyscene.benchmark.harness.data import MEAN, STD, Augment, to_input

    gen = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (6, 1, 16, 16, 3), dtype=torch.uint8, generator=gen)
    pixels = torch.cat([image, image, torch.zeros_like(image)], dim=1)
    params = Augment(blur_p=0.5).draw(6, gen)
    first, second, blank = to_input(pixels, "cpu", params)
    plain = to_input(pixels, "cpu")[0]
    assert not torch.allclose(first, plain)  # it did augment
    assert torch.equal(first, second)
    black = (-torch.tensor(MEAN) / torch.tensor(STD)).view(1, 3, 1, 1).expand_as(blank)
    assert torch.allclose(blank, black)


def test_worker_processes_gather_the_same_batches(trials, tmp_path):
    a = train(_cfg(trials, tmp_path / "inline", epochs=1, model="baseline"))
    b = train(_cfg(trials, tmp_path / "workers", epochs=1, model="baseline", workers=1))
    sa = torch.load(a / "last.pt", weights_only=True)["state_dict"]
    sb = torch.load(b / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_missing_manifest_is_one_line_and_creates_nothing(tmp_path, capsys):
    from bodyscene.cli import main

    out = tmp_path / "run"
    assert main(["train", "--trials", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.csv: trial manifest file not found" in err and "\n" not in err
    assert not out.exists()


def test_lr_schedules_and_the_papers_constant_default():
    assert TrainConfig(trials="t.csv").lr_schedule == "constant"  # `bodyscene train` = paper
    const = TrainConfig(trials="t.csv", lr=0.1)
    assert [train_mod.lr_at(const, s, 100) for s in (0, 50, 99)] == [0.1, 0.1, 0.1]
    one = TrainConfig(trials="t.csv", lr=0.1, lr_schedule="onecycle")
    curve = [train_mod.lr_at(one, s, 101) for s in range(101)]
    assert curve[0] == pytest.approx(0.1 / 25)
    assert max(curve) == pytest.approx(0.1) and curve.index(max(curve)) == 25
    assert curve[-1] == pytest.approx(1e-4)
    assert all(a <= b for a, b in zip(curve[:25], curve[1:26]))      # warms up
    assert all(a >= b for a, b in zip(curve[25:], curve[26:]))       # then anneals
    cos = TrainConfig(trials="t.csv", lr=0.1, lr_schedule="cosine")
    assert train_mod.lr_at(cos, 0, 11) == pytest.approx(0.1)
    assert train_mod.lr_at(cos, 10, 11) == pytest.approx(0.0)


def test_a_scheduled_run_records_its_learning_rates(trials, tmp_path):
    run = train(_cfg(trials, tmp_path / "one", epochs=3, lr_schedule="onecycle"))
    lrs = pd.read_csv(run / "metrics.csv")["lr"].tolist()
    assert lrs[-1] == pytest.approx(0.05e-3) and lrs[0] != lrs[1]
    with pytest.raises(BadInput, match="lr_schedule: expected one of .* got 'step'"):
        train(_cfg(trials, tmp_path / "bad", lr_schedule="step"))


def test_threads_are_part_of_the_run_and_fix_its_numbers(trials, tmp_path):
    """Same seed + same threads: byte-identical weights, whatever torch's count was before."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = train(_cfg(trials, tmp_path / "a", epochs=1, threads=1))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)   # as a timing probe or a busy machine might leave it
        b = train(_cfg(trials, tmp_path / "b", epochs=1, threads=1))
    finally:
        torch.set_num_threads(before)
    assert json.loads((a / "run.json").read_text())["config"]["threads"] == 1
    wa, wb = (torch.load(r / "last.pt", weights_only=False)["state_dict"] for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_another_thread_count(trials, tmp_path):
    train(_cfg(trials, tmp_path / "run", epochs=1, threads=1))
    with pytest.raises(BadInput, match="cannot resume with threads=2"):
        train(_cfg(trials, tmp_path / "run", epochs=2, threads=2, resume=True))


def test_cli_options_come_from_the_config_and_errors_name_flags(trials, tmp_path, capsys):
    """Every TrainConfig field has its option (help from the field); a library error on a
    field comes back naming the flag."""
    import dataclasses

    from bodyscene.cli import main
    from bodyscene.configs import flags

    mapping = flags(TrainConfig)
    assert set(mapping) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert mapping["progress"] == "--quiet" and mapping["model_options"] == "--option"
    argv = ["train", "--trials", str(trials), "--out", str(tmp_path / "r"), "--model",
            "domainnet", "--backbone", "tiny", "--image-size", "32"]
    assert main(argv + ["--batch-size", "0"]) == 2
    assert "--batch-size: at least 1, got 0" in capsys.readouterr().err
    assert main(argv + ["--threads", "0"]) == 2
    assert "--threads: at least 1, got 0" in capsys.readouterr().err
    assert main(argv + ["--option", "oops"]) == 2
    assert "--option: expected KEY=VALUE" in capsys.readouterr().err
