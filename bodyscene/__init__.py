"""bodyscene: a human-vs-model psychophysics benchmark for action recognition from bodies and
backgrounds. This package is the small core every part uses (errors, tables, provenance, the
command line); the parts install beside it as bodyscene.stimuli, bodyscene.human_study,
bodyscene.models and bodyscene.benchmark."""

__version__ = "0.2.0"

# The four conditions a trial can show, and the three views a model stream can consume: one
# definition each, used by every part.
CONDITIONS = ("original", "body", "background", "conflict")
VIEWS = ("original", "body", "background")
