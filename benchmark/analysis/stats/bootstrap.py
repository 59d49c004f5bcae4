"""Hierarchical bootstrap of a proportion over observers and items.

Trials are nested in observers and in items; resampling trials as if independent gives intervals
that are far too narrow. Here each resample draws observers with replacement, then items with
replacement, and recomputes the pooled proportion over the drawn observer x item cells. With
observer x item tables of sums and counts the whole bootstrap is two matrix products.

When observers saw different items (a Latin square), a resample can draw observers and items
that share no trial; it has no proportion and is left out of the interval. Such resamples are
counted and reported (`n_boot_dropped`), never dropped silently."""

from __future__ import annotations

import numpy as np
import pandas as pd


def cell_tables(agents: np.ndarray, items: np.ndarray,
                values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observer x item tables of summed outcomes and trial counts."""
    a_codes, a_uniq = pd.factorize(agents)
    i_codes, i_uniq = pd.factorize(items)
    sums = np.zeros((len(a_uniq), len(i_uniq)))
    counts = np.zeros_like(sums)
    np.add.at(sums, (a_codes, i_codes), values.astype(float))
    np.add.at(counts, (a_codes, i_codes), 1.0)
    return sums, counts


def resample_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n units is drawn in each of n_boot resamples (n_boot x n)."""
    if n == 1:
        return np.ones((n_boot, 1))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def bootstrap_proportion(sums: np.ndarray, counts: np.ndarray, n_boot: int,
                         rng: np.random.Generator) -> np.ndarray:
    """n_boot resampled pooled proportions; observers (rows) then items (columns) resampled.

    A single observer (a model) is kept as is and only its items are resampled."""
    wa = resample_weights(sums.shape[0], n_boot, rng)
    wi = resample_weights(sums.shape[1], n_boot, rng)
    num = np.einsum("ba,ai,bi->b", wa, sums, wi, optimize=True)
    den = np.einsum("ba,ai,bi->b", wa, counts, wi, optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def percentile_interval(samples: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(samples, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def hierarchical_ci(agents: np.ndarray, items: np.ndarray, values: np.ndarray,
                    n_boot: int = 2000, seed: int | np.random.Generator = 0,
                    ci: float = 0.95) -> tuple[float, float, float, int]:
    """(proportion, low, high, resamples dropped) for a binary outcome with observers and items
    resampled; a resample that drew no trial is dropped and counted."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sums, counts = cell_tables(np.asarray(agents), np.asarray(items), np.asarray(values))
    point = float(sums.sum() / counts.sum())
    samples = bootstrap_proportion(sums, counts, n_boot, rng)
    lo, hi = percentile_interval(samples, ci)
    return point, lo, hi, int((~np.isfinite(samples)).sum())
