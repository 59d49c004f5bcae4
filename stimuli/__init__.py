"""Stimulus generation: the synthetic action world, real-video reading and segmentation,
composition of original/body/background/conflict versions, and the trial manifest.

Imports nothing from the other bodyscene packages (see DESIGN.md)."""
