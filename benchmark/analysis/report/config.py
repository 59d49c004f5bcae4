"""The report's settings, in one dataclass recorded in the report's run record."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportConfig:
    bootstrap: int = 2000          # hierarchical bootstrap resamples per interval
    seed: int = 0                  # seeds the bootstrap and the split halves
    ci: float = 0.95
    split_halves: int = 200        # random participant splits for the noise ceiling
    regression: bool = True        # mixed-effects model (+ GEE) — the slowest part
    gee: bool = True
    exclude_anticipations: bool = False  # drop answers flagged faster than the lab's min RT
    include_readouts: bool = False  # also read predictions/readouts/*.csv as extra observers
    min_shared_trials: int = 10    # error consistency needs this many shared trials per pair
    dpi: int = 150
    progress: bool = True
