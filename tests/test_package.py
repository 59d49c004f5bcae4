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


# --- install: a light core, extras that name themselves ------------------------------------

def _run_without(modules: tuple[str, ...], argv: list[str]) -> subprocess.CompletedProcess:
    """`bodyscene argv` in a fresh interpreter where `modules` cannot be imported, as in an
    install without their extras."""
    block = "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return _run(f"import sys\n{block}from bodyscene.cli import main\nsys.exit(main({argv!r}))")


def test_train_without_torch_names_the_extra_in_one_line(toy_manifest, tmp_path):
    done = _run_without(("torch", "torchvision"),
                        ["train", "--trials", str(toy_manifest), "--out", str(tmp_path / "run")])
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("bodyscene: error: bodyscene train needs torch")
    assert "pip install 'bodyscene[models]'" in done.stderr


def test_synth_without_opencv_names_the_extra(tmp_path):
    done = _run_without(("cv2",), ["stimuli", "synth", "--out", str(tmp_path / "s")])
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'bodyscene[stimuli]'" in done.stderr


def test_library_imports_name_the_extra():
    for module, blocked, extra in (("bodyscene.models.baseline", "torch", "models"),
                                   ("bodyscene.stimuli.compose", "cv2", "stimuli")):
        done = _run(f"import sys\nsys.modules[{blocked!r}] = None\n"
                    f"from bodyscene.extras import MissingExtra\n"
                    f"try:\n    import {module}\nexcept MissingExtra as exc:\n    print(exc)\n")
        assert done.returncode == 0, done.stderr
        assert f"pip install 'bodyscene[{extra}]'" in done.stdout


def test_validate_needs_no_extra(toy_manifest):
    """It decodes the PNGs with Pillow, so a core install (no OpenCV, no torch) validates."""
    blocked = ("torch", "torchvision", "cv2", "ultralytics", "psychopy")
    done = _run_without(blocked, ["stimuli", "validate", str(toy_manifest)])
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


def test_require_names_the_extra_and_passes_other_failures_through(tmp_path, monkeypatch):
    from bodyscene.errors import BodysceneError
    from bodyscene.extras import MissingExtra, require

    monkeypatch.setitem(sys.modules, "psychopy", None)
    with pytest.raises(MissingExtra, match=r"pip install 'bodyscene\[experiment\]'") as info:
        require("psychopy", purpose="the lab runner")
    assert isinstance(info.value, BodysceneError) and isinstance(info.value, ImportError)
    assert str(info.value).startswith("the lab runner needs psychopy")
    # installed, but its own dependency is missing: that error, not a wrong pip hint
    (tmp_path / "half_installed_pkg.py").write_text("import not_a_dependency_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("half_installed_pkg", extra="models")
    assert not isinstance(info.value, MissingExtra)
    assert info.value.name == "not_a_dependency_anywhere"


def test_missing_extra_maps_only_known_modules():
    from bodyscene.extras import missing_extra

    found = missing_extra(ModuleNotFoundError("no", name="starlette.routing"), "bodyscene x")
    assert found is not None and "pip install 'bodyscene[web]'" in str(found)
    assert str(found).startswith("bodyscene x needs starlette")
    assert missing_extra(ModuleNotFoundError("no", name="mylab_models")) is None
    assert missing_extra(ValueError("torch")) is None


def test_extras_in_pyproject_match_the_helper():
    import tomllib

    from bodyscene.extras import EXTRA_OF

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    core = " ".join(project["dependencies"])

    def names(reqs):
        return {r.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0]
                .strip().lower() for r in reqs}

    assert set(EXTRA_OF.values()) <= set(extras)
    for heavy in ("torch", "torchvision", "ultralytics", "opencv", "psychopy", "litert"):
        assert heavy not in core, f"the core install must not pull {heavy}"
    assert "pillow" in names(project["dependencies"])   # stimuli validate decodes with it
    assert {"torch", "torchvision"} <= names(extras["models"])
    assert {"ultralytics", "opencv-python"} <= names(extras["yolo"])
    # one OpenCV wheel everywhere: -headless beside ultralytics' opencv-python clobbers cv2/
    assert not any("headless" in r for reqs in extras.values() for r in reqs)
    inner = extras["all"][0].split("[")[1].rstrip("]").split(",")
    assert extras["all"] == [f"bodyscene[{','.join(inner)}]"]
    assert set(inner) == set(extras) - {"all"}
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith(
        f"{project['license']['text']} License")
