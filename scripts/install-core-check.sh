#!/usr/bin/env bash
# Checks the core install, the one a statistician gets from `pip install bodyscene`: a fresh
# virtual environment with `pip install -e .` (no extras) has no torch, OpenCV, Ultralytics,
# PsychoPy, web server or LiteRT, and still validates a trial set, checks predictions and writes
# the report on CSVs; `bodyscene train` there names the extra to install, in one line, exit 2.
# The CSVs come from the quick demo, run by a full environment's Python (argument 1, default
# .venv/bin/python, the one `make test` makes). CI runs this; so does a slow test.
set -euo pipefail
cd "$(dirname "$0")/.."
full=${1:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MPLBACKEND=Agg YOLO_OFFLINE=1

"$full" -m bodyscene.cli demo --quick --quiet --out "$work/demo" >/dev/null
trials="$work/demo/stimuli/trials.csv"

python3 -m venv "$work/core"
core="$work/core/bin/python"
"$core" -m pip install -q -e .

"$core" - <<'EOF'
import importlib.util
import sys

from bodyscene.extras import EXTRA_OF

present = [m for m in EXTRA_OF if importlib.util.find_spec(m) is not None]
if present:
    sys.exit(f"install-core-check: the core install brought extras' modules: {present}")
print("core install: none of", ", ".join(sorted(EXTRA_OF)))
EOF

"$core" -m bodyscene.cli stimuli validate --trials "$trials" >"$work/validate.out" 2>/dev/null
head -1 "$work/validate.out"
"$core" -m bodyscene.cli predictions validate --trials "$trials" \
    "$work/demo/predictions/baseline.csv"
"$core" -m bodyscene.cli report --trials "$trials" --responses "$work/demo/responses" \
    --predictions "$work/demo/predictions" --out "$work/report" --bootstrap 200 --quiet \
    >"$work/report.out" 2>/dev/null
tail -1 "$work/report.out"
test -s "$work/report/report.html"

rc=0
"$core" -m bodyscene.cli train --trials "$trials" --out "$work/run" 2>"$work/train.err" || rc=$?
if [ "$rc" != 2 ] || [ "$(wc -l <"$work/train.err")" != 1 ] \
    || ! grep -q "pip install 'bodyscene\[models\]'" "$work/train.err"; then
  echo "install-core-check: bodyscene train without torch exited $rc with:" >&2
  cat "$work/train.err" >&2
  exit 1
fi
echo "train without torch: $(cat "$work/train.err")"
echo "install-core-check: ok"
