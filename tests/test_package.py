"""The package's shape: one namespace, the core at the bottom, imports one way, a light CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# part -> the bodyscene parts it may import (the core, `bodyscene.<module>`, always allowed)
ALLOWED = {"stimuli": set(), "models": set(), "human_study": {"stimuli"},
           "benchmark": {"stimuli", "models", "human_study"}, "bodyscene": set()}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_run_one_way(part):
    parts = {"stimuli", "models", "human_study", "benchmark"}
    for path in (ROOT / part).rglob("*.py"):
        for name in _imports(path):
            head = name.split(".")
            assert head[0] not in parts, f"{path}: imports {name} (use bodyscene.{name})"
            if head[0] == "bodyscene" and len(head) > 1 and head[1] in parts:
                if part == "bodyscene":  # the core imports no part (its CLI loads them by name)
                    raise AssertionError(f"{path}: the core imports {name}")
                assert head[1] == part or head[1] in ALLOWED[part], \
                    f"{path}: {part} may not import {name}"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_old_top_level_names_do_not_import():
    for name in ("models", "benchmark", "stimuli", "human_study"):
        done = _run(f"import {name}")
        assert done.returncode != 0 and f"import bodyscene.{name}" in done.stderr


def test_help_and_model_listing_import_nothing_heavy():
    done = _run("import sys\nfrom bodyscene.cli import main\n"
                "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                "main(['models'])\n"
                "print(sorted(m for m in ('torch', 'pandas', 'cv2', 'psychopy') "
                "if m in sys.modules))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "domainnet" in done.stdout


def test_plugin_clashing_with_a_builtin_is_an_error(monkeypatch):
    from importlib import metadata

    from bodyscene.models import registry

    from bodyscene.errors import ModelError

    fake = [metadata.EntryPoint(name="baseline", value="mylab.models:net",
                                group=registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr("bodyscene.plugins.metadata.entry_points", lambda group: fake)
    with pytest.raises(ModelError, match="built in"):
        registry.list_models()


def test_segmenter_plugin_clashing_with_a_builtin_is_an_error(monkeypatch):
    from importlib import metadata

    from bodyscene.errors import BadInput
    from bodyscene.stimuli import segmenters

    fake = [metadata.EntryPoint(name="yolo", value="mylab.seg:net",
                                group=segmenters.ENTRY_POINT_GROUP)]
    monkeypatch.setattr("bodyscene.plugins.metadata.entry_points", lambda group: fake)
    with pytest.raises(BadInput, match="segmenter name 'yolo', which is built in"):
        segmenters.list_segmenters()
