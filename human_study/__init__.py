"""The human experiment: per-participant trial lists, the PsychoPy runner, crash-safe response
files and simulated observers. Imports only `stimuli` and the core; PsychoPy is imported only
inside the runner so planning, simulation and analysis work where PsychoPy is not installed."""

if __name__.split(".")[0] != "bodyscene":  # the folder is on sys.path, e.g. run from the repo root
    raise ImportError(f"import bodyscene.{__name__}, not {__name__}: the parts install inside "
                      f"the bodyscene namespace (pip install -e .)")
