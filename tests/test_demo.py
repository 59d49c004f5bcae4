"""The demo and the studies: the effect checks on known summaries (fast) and the quick demo end to
end through the CLI (slow)."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
from bodyscene.benchmark.studies.demo import effect_checks

from bodyscene.cli import main


def _summary(base_body: float, dn_body: float, base_orig: float, dn_orig: float,
             bg: float = 0.6, chance: float = 0.125) -> dict:
    def cell(acc):
        return {"accuracy": acc, "ci_low": acc - 0.05, "ci_high": acc + 0.05, "chance": chance}

    return {"groups": {
        "baseline": {"original": cell(base_orig), "body": cell(base_body),
                     "background": cell(bg)},
        "domainnet": {"original": cell(dn_orig), "body": cell(dn_body),
                      "background": cell(bg)}}}


def test_effect_checks_hold_on_the_papers_pattern():
    checks = effect_checks(_summary(base_body=0.20, dn_body=0.62, base_orig=0.52, dn_orig=0.66))
    assert [c["holds"] for c in checks] == [True, True, True, True]


@pytest.mark.parametrize("kwargs, failing", [
    (dict(base_body=0.45, dn_body=0.90, base_orig=0.8, dn_orig=0.8), 0),   # baseline not near chance
    (dict(base_body=0.20, dn_body=0.40, base_orig=0.8, dn_orig=0.8), 1),   # gap < 30 points
    (dict(base_body=0.20, dn_body=0.70, base_orig=0.8, dn_orig=0.75), 2),  # DomainNet worse on original
    (dict(base_body=0.20, dn_body=0.70, base_orig=0.8, dn_orig=0.8, bg=0.2), 3),
])
def test_effect_checks_fail_when_a_criterion_fails(kwargs, failing):
    checks = effect_checks(_summary(**kwargs))
    assert [i for i, c in enumerate(checks) if not c["holds"]] == [failing]


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    summary = json.loads((out / "report" / "summary.json").read_text())
    groups = summary["groups"]
    human = [g for g in groups if "simulated" in g]
    assert human, f"simulated humans must be labelled as such, got {list(groups)}"
    for g in (*human, "baseline", "domainnet"):
        for cond in ("original", "body", "background", "conflict"):
            s = groups[g][cond]
            assert 0.0 <= s["ci_low"] <= s["accuracy"] <= s["ci_high"] <= 1.0
            assert 0.0 < s["chance"] < 1.0
    demo = json.loads((out / "demo.json").read_text())
    assert set(demo["timings"]["stages_s"]) >= {"stimuli", "train baseline", "train domainnet",
                                                "evaluate baseline", "evaluate domainnet",
                                                "simulated observers", "report"}
    assert (out / "report" / "report.html").stat().st_size > 10_000
    assert (out / "demo_run.json").exists()
    # nothing is overwritten: a second run into the same folder is refused
    assert main(["demo", "--quick", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_loss_ablation_study(tmp_path):
    out = tmp_path / "study"
    assert main(["study", "loss-ablation", "--quick", "--out", str(out)]) == 0
    table = pd.read_csv(out / "loss_terms.csv")
    assert set(table["loss_terms"]) == {"all", "combined-only"}
    assert set(table["condition"]) >= {"original", "body", "background"}
    assert (out / "loss_terms.png").exists() and (out / "loss_terms.svg").exists()


@pytest.mark.slow
def test_quick_seeds_study(tmp_path):
    out = tmp_path / "seeds"
    assert main(["study", "seeds", "--quick", "--seeds", "0,1", "--threads", "1,2", "--out",
                 str(out)]) == 0
    per_seed = pd.read_csv(out / "seeds.csv")
    assert set(per_seed["seed"]) == {0, 1} and set(per_seed["threads"]) == {1, 2}
    # each seed's world is rendered once and shared by its thread counts
    assert (out / "seed-0-threads-1" / "stimuli").is_dir()
    assert not (out / "seed-0-threads-2" / "stimuli").exists()
    summary = pd.read_csv(out / "seeds_summary.csv")
    assert {"baseline", "domainnet"} <= set(summary["group"])
    row = summary[(summary["group"] == "domainnet") & (summary["condition"] == "body")].iloc[0]
    accs = per_seed[(per_seed["group"] == "domainnet") & (per_seed["condition"] == "body")]
    assert row["mean"] == pytest.approx(accs["accuracy"].mean())
    assert row["min"] == pytest.approx(accs["accuracy"].min())
    assert (out / "seeds.png").exists() and (out / "study_run.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["mask-noise", "--levels", "0,abc"], "--levels: expected comma-separated numbers"),
    (["mask-noise", "--levels", "0,2"], "--levels: fractions in [0, 1]"),
    (["mask-noise", "--kinds", "blur"], "--kinds: expected erode, dilate or flip"),
    (["seeds", "--seeds", "0,0.5"], "--seeds: expected comma-separated integers"),
    (["seeds", "--seeds", ","], "--seeds: expected at least one value"),
    (["seeds", "--threads", "0"], "--threads: thread counts of at least 1"),
    (["fusion", "--threads", "0"], "--threads: at least 1, got 0"),
])
def test_study_arguments_refused_in_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "study"
    assert main(["study", *argv, "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_world_frames_counts_each_split_before_rendering():
    from bodyscene.benchmark.studies.demo import DemoConfig
    from bodyscene.benchmark.studies.pipeline import world_frames

    # 8 actions x 40 clips split 24/8/8, 3 four-frame trials per clip
    assert world_frames(DemoConfig()) == {"train": 2304, "val": 768, "test": 768}


def test_probe_only_estimates_and_never_changes_threads():
    """The probe measures at the configured count and may suggest another, but leaves torch's
    thread count (and so every number trained afterwards) as it found it."""
    import torch
    from bodyscene.benchmark.studies.demo import DemoConfig
    from bodyscene.benchmark.studies.pipeline import probe_throughput

    before = torch.get_num_threads()
    try:
        for configured, found in ((1, 2), (2, 1)):
            torch.set_num_threads(found)
            cfg = DemoConfig.quick_config()
            cfg = replace(cfg, train=replace(cfg.train, threads=configured))
            probe = probe_throughput(cfg, seconds=0.1)
            assert torch.get_num_threads() == found
            assert probe["threads"] == configured
            assert probe["suggested_threads"] in (1, 2, configured)
    finally:
        torch.set_num_threads(before)
    assert set(probe["expected_s"]) == {"train baseline", "evaluate baseline",
                                        "train domainnet", "evaluate domainnet"}
    assert probe["expected_s"]["train domainnet"] > 0
    assert all(v > 0 for v in probe["rates"].values())


def test_demo_config_composes_the_stages_and_owns_one_seed():
    from bodyscene.benchmark.studies.demo import DemoConfig

    cfg = DemoConfig(seed=7)
    assert cfg.world.seed == cfg.world.trials.seed == cfg.train.seed == 7
    assert cfg.plan.seed == cfg.report.seed == 7
    moved = replace(cfg, seed=3, progress=False)
    assert moved.train.seed == moved.world.seed == 3 and not moved.train.progress
    assert cfg.train.seed == 7  # the original is untouched
    assert cfg.threads == cfg.train.threads == 2


@pytest.mark.slow
def test_quick_demo_same_seed_same_threads_same_predictions(tmp_path):
    """Two quick demos, each with torch's thread count disturbed before it starts (as a busy
    machine's probe once did): byte-identical weights and predictions (every column but the
    time a row was written and the checkpoint's path)."""
    import torch

    def digest(root):
        preds = [pd.read_csv(f, dtype=str).drop(columns=["timestamp", "checkpoint"])
                 .to_csv(index=False) for f in sorted(root.glob("predictions/*.csv"))]
        weights = [{k: v.numpy().tobytes() for k, v in
                    torch.load(f, weights_only=False)["state_dict"].items()}
                   for f in sorted(root.glob("runs/*/last.pt"))]
        return preds, weights

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path / "a")]) == 0
        torch.set_num_threads(3)
        assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path / "b")]) == 0
    finally:
        torch.set_num_threads(before)
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert len(a[0]) == 2 and a == b
    record = json.loads((tmp_path / "a" / "runs" / "domainnet" / "run.json").read_text())
    assert record["config"]["threads"] == 2
