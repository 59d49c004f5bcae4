"""Stimulus generation: the synthetic action world, real-video reading and segmentation,
composition of original/body/background/conflict stimuli, and the trial manifest.

Imports only the bodyscene core (README.md, Layout; tests/test_package.py checks it)."""

if __name__.split(".")[0] != "bodyscene":  # the folder is on sys.path, e.g. run from the repo root
    raise ImportError(f"import bodyscene.{__name__}, not {__name__}: the parts install inside "
                      f"the bodyscene namespace (pip install -e .)")
