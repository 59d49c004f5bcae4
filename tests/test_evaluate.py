"""bodyscene.benchmark.harness.evaluate and the protocol in bodyscene.benchmark.harness.data: which views each condition shows, every
readout file, restricted vs open choice, clip aggregation, mismatches, never-overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from bodyscene.benchmark.harness.checkpoint import load_model
from bodyscene.benchmark.harness.data import TrialFrames, view_sources
from bodyscene.benchmark.harness.evaluate import (
    EvalConfig,
    aggregate,
    evaluate,
    readout_path,
)
from bodyscene.benchmark.harness.predict import predict
from bodyscene.benchmark.harness.predictions import prob_column, read_predictions
from bodyscene.benchmark.harness.train import TrainConfig, train
from bodyscene.stimuli.manifest import actions_of, read_manifest
from conftest import write_toy_manifest
from torch import nn

from bodyscene.errors import BadInput


class Fixed(nn.Module):
    """Ignores the image: always prefers action 0, then 1, then 2 (an observer with a bias)."""

    views = ("original",)

    def __init__(self, num_classes: int):
        super().__init__()
        self.bias = nn.Parameter(torch.arange(num_classes, 0, -1).float() * 3)

    def forward(self, original):
        return self.bias.expand(original.shape[0], -1) + 0 * original.mean()


def fixed(num_classes: int) -> Fixed:
    return Fixed(num_classes)


def _train(trials: Path, out: Path, **kw) -> Path:
    cfg = dict(trials=str(trials), model="domainnet", backbone="tiny", out=str(out), epochs=1,
               lr=0.05, batch_size=4, image_size=32, seed=0, progress=False)
    cfg.update(kw)
    return train(TrainConfig(**cfg))


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_manifest(tmp_path_factory.mktemp("eval") / "toy", size=32)


@pytest.fixture(scope="module")
def domainnet_run(toy, tmp_path_factory) -> Path:
    return _train(toy, tmp_path_factory.mktemp("runs") / "dn")


def test_protocol_per_condition(toy):
    df = read_manifest(toy)
    test = df[(df["split"] == "test") & (df["item_id"] == "clap_test00")].set_index("condition")
    path = lambda tid: Path(df.loc[df["trial_id"] == tid, "path"].iloc[0])  # noqa: E731
    sources = view_sources(df, test.reset_index(), ("original", "body", "background"), toy)
    got = dict(zip(test.index, sources))
    own = {c: Path(test.loc[c, "path"]) for c in test.index}
    assert got["original"] == [own["original"], path("clap_test00-body"),
                               path("clap_test00-background")]
    assert got["body"] == [own["body"], own["body"], None]
    assert got["background"] == [own["background"], None, own["background"]]
    # conflict: the body of its own item on the background of the other action's item
    assert test.loc["conflict", "background_item"] == "kick_test00"
    assert got["conflict"] == [own["conflict"], path("clap_test00-body"),
                               path("kick_test00-background")]


def test_blank_views_are_zeros_and_marked_absent(toy):
    df = read_manifest(toy)
    frames = TrialFrames(df, ("body", "background"), 32, actions_of(df), split="test",
                         progress=False)
    pixels, labels, present = frames.batch(np.arange(len(frames)))
    cond = frames.trials["condition"].to_numpy()[frames.trial]
    assert present[cond == "body"].tolist() == [[True, False]] * int((cond == "body").sum())
    assert present[cond == "background"].tolist() == [[False, True]] * 6
    assert pixels[torch.from_numpy(cond == "body"), 1].eq(0).all()
    assert pixels[torch.from_numpy(cond == "background"), 0].eq(0).all()
    assert pixels[torch.from_numpy(cond == "original")].float().mean() > 0


def test_every_readout_file_validates(toy, domainnet_run, tmp_path):
    out = tmp_path / "predictions" / "domainnet.csv"
    paths = evaluate(EvalConfig(checkpoint=str(domainnet_run / "best.pt"), trials=str(toy),
                                out=str(out), progress=False))
    assert paths == [out, readout_path(out, "softmax-sum"), readout_path(out, "stream")]
    assert readout_path(out, "stream") == tmp_path / "predictions/readouts/domainnet.stream.csv"
    n_test = int((read_manifest(toy)["split"] == "test").sum())
    for path, readout in zip(paths, ["sum", "softmax-sum", "stream"]):
        df = read_predictions(path)
        assert len(df) == n_test and set(df["readout"]) == {readout}
        assert set(df["agent"]) == {path.stem} and set(df["agent_kind"]) == {"model"}
        probs = df[[prob_column(a) for a in ("clap", "kick", "wave")]].to_numpy()
        assert np.allclose(probs.sum(1), 1, atol=1e-4)
    # readouts differ exactly where a view is blank: identical on original trials
    sums, streams = read_predictions(paths[0]), read_predictions(paths[2])
    orig = sums["trial_id"].str.endswith("-original")
    assert np.allclose(sums.loc[orig, "p_clap"], streams.loc[orig, "p_clap"])
    with pytest.raises(BadInput, match="already exists"):
        evaluate(EvalConfig(checkpoint=str(domainnet_run / "best.pt"), trials=str(toy),
                            out=str(out), progress=False))
    chosen = evaluate(EvalConfig(checkpoint=str(domainnet_run / "best.pt"), trials=str(toy),
                                 out=str(tmp_path / "p2" / "dn.csv"), readout="stream",
                                 progress=False))
    assert set(read_predictions(chosen[0])["readout"]) == {"stream"}


def test_response_is_restricted_to_the_offered_choices(tmp_path):
    trials = write_toy_manifest(tmp_path / "k2", size=32, k=2)
    run = _train(trials, tmp_path / "fixed", model=f"{__name__}:fixed", lr=1e-9)
    out = evaluate(EvalConfig(checkpoint=str(run / "last.pt"), trials=str(trials),
                              out=str(tmp_path / "pred" / "fixed.csv"), progress=False))
    assert len(out) == 1  # a one-stream model has one readout
    df = read_predictions(out[0])
    assert set(df["response_open"]) == {"clap"}  # its favourite among all actions
    offered = df["choice_order"].str.split(";")
    for choices, response in zip(offered, df["response"]):
        assert response in choices
        assert response == min(choices, key=["clap", "kick", "wave"].index)
    assert (df["response"] != df["response_open"]).any()
    manifest = read_manifest(trials).set_index("trial_id")
    truth = manifest.loc[df["trial_id"], "action"].to_numpy()
    assert (df["correct"].to_numpy() == (df["response"].to_numpy() == truth)).all()


def test_clip_trials_average_their_frames(toy_clip_manifest, tmp_path):
    run = _train(toy_clip_manifest, tmp_path / "clip", model="baseline")
    out = evaluate(EvalConfig(checkpoint=str(run / "best.pt"), trials=str(toy_clip_manifest),
                              out=str(tmp_path / "pred" / "clip.csv"), progress=False))[0]
    df = read_predictions(out)
    assert set(df["aggregation"]) == {"mean"}
    model, _ = load_model(run / "best.pt")
    manifest = read_manifest(toy_clip_manifest)
    frames = TrialFrames(manifest, model.views, 32, actions_of(manifest), split="test",
                         progress=False)
    assert len(frames) == 4 * len(frames.trials) == 4 * len(df)
    per_frame = predict(model, frames)["softmax"]
    first = frames.trial == 0
    assert not np.allclose(per_frame[first][0], per_frame[first][1])  # frames do differ
    assert np.allclose(df.loc[0, ["p_clap", "p_kick", "p_wave"]].to_numpy(float),
                       per_frame[first].mean(0), atol=2e-6)


def test_aggregations():
    probs = np.array([[0.8, 0.2], [0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    trial = np.array([0, 0, 1, 1])
    assert np.allclose(aggregate(probs, trial, 2, "mean"), [[0.5, 0.5], [0.7, 0.3]])
    geo = aggregate(probs, trial, 2, "log-mean")
    assert np.allclose(geo[0], [0.5, 0.5])
    g = np.sqrt([0.45, 0.05])
    assert np.allclose(geo[1], g / g.sum())
    with pytest.raises(BadInput, match="aggregation 'vote'"):
        aggregate(probs, trial, 2, "vote")


def test_checkpoint_for_other_actions_is_a_clear_error(domainnet_run, tmp_path):
    other = write_toy_manifest(tmp_path / "four", actions=("clap", "jump", "kick", "wave"),
                               size=32)
    with pytest.raises(BadInput, match="trained for actions clap, kick, wave but .* has "
                                       "clap, jump, kick, wave"):
        evaluate(EvalConfig(checkpoint=str(domainnet_run / "best.pt"), trials=str(other),
                            out=str(tmp_path / "p.csv"), progress=False))
    assert not (tmp_path / "p.csv").exists()


def test_evaluate_command(toy, domainnet_run, tmp_path, capsys):
    from bodyscene.cli import main

    out = tmp_path / "cli" / "dn.csv"
    assert main(["evaluate", "--checkpoint", str(domainnet_run / "best.pt"), "--trials",
                 str(toy), "--out", str(out), "--readout", "softmax-sum",
                 "--aggregation", "log-mean", "--quiet"]) == 0
    df = read_predictions(out)
    assert set(df["readout"]) == {"softmax-sum"} and set(df["aggregation"]) == {"log-mean"}
    assert readout_path(out, "sum").exists()
    record = json.loads((tmp_path / "cli" / "dn.run.json").read_text())
    trained = torch.load(domainnet_run / "best.pt", map_location="cpu", weights_only=False)
    assert record["seed"] == trained["config"]["seed"] is not None
    assert main(["evaluate", "--checkpoint", str(domainnet_run / "best.pt"), "--trials",
                 str(toy), "--out", str(tmp_path / "x.csv"), "--readout", "vote"]) == 2
    assert "readout 'vote': model 'domainnet' offers sum, softmax-sum, stream" in \
        capsys.readouterr().err


def test_evaluate_pins_and_records_threads(toy, domainnet_run, tmp_path, capsys):
    """`--threads` fixes the count whatever torch was set to before (the same predictions to the
    byte), and the run record says the count and the CPU capability used (issue 20)."""
    from bodyscene.cli import main

    before = torch.get_num_threads()
    try:
        outs = []
        for disturb in (3, 1):
            torch.set_num_threads(disturb)
            out = tmp_path / f"after-{disturb}" / "dn.csv"
            assert main(["evaluate", "--checkpoint", str(domainnet_run / "last.pt"), "--trials",
                         str(toy), "--out", str(out), "--threads", "1", "--quiet"]) == 0
            assert torch.get_num_threads() == 1
            record = json.loads((out.parent / "dn.run.json").read_text())
            assert record["config"]["threads"] == 1 and record["threads_used"] == 1
            assert record["cpu_capability"] == str(torch.backends.cpu.get_cpu_capability())
            outs.append(read_predictions(out).drop(columns=["timestamp"]))
        pd.testing.assert_frame_equal(outs[0], outs[1], check_exact=True)
        assert main(["evaluate", "--checkpoint", str(domainnet_run / "last.pt"), "--trials",
                     str(toy), "--out", str(tmp_path / "z.csv"), "--threads", "0"]) == 2
        assert "--threads" in capsys.readouterr().err
        assert not (tmp_path / "z.csv").exists()
    finally:
        torch.set_num_threads(before)
