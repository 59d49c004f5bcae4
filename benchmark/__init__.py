"""The harness (data, checkpoints, prediction, training, evaluation, predictions files), the
analysis (observations, statistics, report) and the studies (demo, the paper's open checks).
The only part that imports the others (stimuli, models, human_study). Its Python API
(evaluate, compare, report) is bodyscene.benchmark.api, also reachable as bodyscene.evaluate etc."""

if __name__.split(".")[0] != "bodyscene":  # the folder is on sys.path, e.g. run from the repo root
    raise ImportError(f"import bodyscene.{__name__}, not {__name__}: the parts install inside "
                      f"the bodyscene namespace (pip install -e .)")


def __getattr__(name: str):
    if name in ("evaluate", "compare", "report", "Leaderboard"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
