"""Datasets over a manifest, training, evaluation, statistics, the report and the CLI.
The only package that imports the others (stimuli, models, human_study)."""
