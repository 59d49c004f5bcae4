"""docs/evaluate_your_model.md: every file, command and Python block of its worked examples,
and the README's Python API example, run as written on a tiny trial set, so the pages cannot
drift from the code."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import torch
import torchvision
from bodyscene.benchmark.harness.predictions import validate_predictions
from bodyscene.cli import main
from conftest import write_toy_manifest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evaluate_your_model.md"


def _blocks(kind: str, doc: Path = DOC) -> list[tuple[str, str]]:
    """(marker argument, block text) for every fenced block after `<!-- kind ... -->`."""
    text = doc.read_text(encoding="utf-8")
    pattern = rf"<!-- {kind}:? ?([^>]*?) -->\n```[a-z]*\n(.*?)```"
    return re.findall(pattern, text, flags=re.S)


def test_the_worked_examples_run(tmp_path, monkeypatch, capsys):
    write_toy_manifest(tmp_path / "stim", actions=("kick", "punch", "wave"), size=32,
                       clip_frames=3, items_per_split={"train": 1, "val": 1, "test": 1})
    for name, text in _blocks("file"):
        (tmp_path / name.strip()).write_text(text, encoding="utf-8")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    torch.save(torchvision.models.video.r3d_18(weights=None).state_dict(),
               tmp_path / "r3d_18.pth")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mylab_models

    torch.save(mylab_models.small_cnn(3, width=8).state_dict(), tmp_path / "mynet.pt")
    maps = tmp_path / "benchmark/harness/label_maps"
    maps.mkdir(parents=True)
    shutil.copy(ROOT / "benchmark/harness/label_maps/kinetics400_demo.csv", maps)
    monkeypatch.chdir(tmp_path)
    commands = [line for _, block in _blocks("run") for line in block.splitlines()
                if line.startswith("bodyscene ")]
    assert len(commands) == 6
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    for agent in ("resnet18", "mynet", "zeroshot", "r3d_18", "r3d_18_control"):
        assert validate_predictions(f"predictions/{agent}.csv", "stim/trials.csv") == []
    record = (tmp_path / "predictions/r3d_18.run.json").read_text()
    assert '"clips_per_trial": 2' in record and '"label_combine": "sum"' in record
    assert '"random_init": true' in (tmp_path / "predictions/r3d_18_control.run.json").read_text()

    _write_responses(tmp_path / "responses", tmp_path / "stim/trials.csv")
    python = [text for _, text in _blocks("python")] + \
        [text for _, text in _blocks("python", ROOT / "README.md")]
    assert len(python) == 2
    capsys.readouterr()
    for i, code in enumerate(python):
        exec(compile(code, f"python block {i + 1}", "exec"), {})
        shutil.rmtree("report", ignore_errors=True)
    out = capsys.readouterr().out
    assert "humans" in out and "mynet_py" in out and "random init" not in out


def _write_responses(folder: Path, trials: Path) -> None:
    """Four people who answer body and original trials right and the others by rote."""
    from bodyscene.human_study.responses import ResponseWriter
    from bodyscene.stimuli.manifest import Manifest

    folder.mkdir()
    test = Manifest.read(trials, check_hashes=False).split("test")
    for p in range(4):
        with ResponseWriter(folder / f"p{p}_bodyscene.csv") as w:
            for order, t in enumerate(test.itertuples()):
                answer = t.action if t.condition in ("original", "body") or (order + p) % 2 \
                    else t.choice_list[(order + p) % len(t.choice_list)]
                w.write(dict(agent=f"p{p}", agent_kind="human", session="1",
                             trial_id=t.trial_id, sha256=t.sha256, response=answer,
                             correct=answer == t.action, rt_s=0.6, order=order, block=0,
                             choice_order=t.choices, timestamp="2026-01-01T00:00:00",
                             simulated=False, phase="main"))
