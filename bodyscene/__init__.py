"""bodyscene: a human-vs-model psychophysics benchmark for action recognition from bodies and
backgrounds. This package is the small core every part uses (errors, tables, provenance, the
command line); the parts install beside it as bodyscene.stimuli, bodyscene.human_study,
bodyscene.models and bodyscene.benchmark.

The Python API, loaded on first use so `import bodyscene` stays light (no torch, no pandas):
    bodyscene.evaluate(model, trials, ...) -> DataFrame     (the predictions contract)
    bodyscene.compare(predictions, responses, trials) -> Leaderboard
    bodyscene.report(trials, out, responses=..., predictions=...) -> Path to report.html"""

import importlib

__version__ = "0.2.0"

# The four conditions a trial can show, and the three views a model stream can consume: one
# definition each, used by every part.
CONDITIONS = ("original", "body", "background", "conflict")
VIEWS = ("original", "body", "background")

__all__ = ["CONDITIONS", "VIEWS", "compare", "evaluate", "report"]
_API = ("evaluate", "compare", "report", "Leaderboard")


def __getattr__(name: str):
    # Loaded by name (the core imports no part statically: see tests/test_package.py).
    if name in _API:
        return getattr(importlib.import_module("bodyscene.benchmark.api"), name)
    raise AttributeError(f"module 'bodyscene' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
