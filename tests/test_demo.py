"""The demo and the studies: the effect checks on known summaries (fast) and the quick demo end to
end through the CLI (slow)."""

from __future__ import annotations

import json

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
    assert main(["study", "seeds", "--quick", "--seeds", "0,1", "--out", str(out)]) == 0
    per_seed = pd.read_csv(out / "seeds.csv")
    assert set(per_seed["seed"]) == {0, 1}
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


def test_probe_sets_threads_and_expects_every_model_stage():
    import torch
    from bodyscene.benchmark.studies.demo import DemoConfig
    from bodyscene.benchmark.studies.pipeline import probe_throughput

    before = torch.get_num_threads()
    try:
        probe = probe_throughput(DemoConfig.quick_config(threads=1), seconds=0.1)
        assert probe["threads"] == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert set(probe["expected_s"]) == {"train baseline", "evaluate baseline",
                                        "train domainnet", "evaluate domainnet"}
    assert probe["expected_s"]["train domainnet"] > 0
    assert all(v > 0 for v in probe["rates"].values())
