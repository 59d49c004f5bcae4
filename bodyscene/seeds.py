"""One way to turn a run's seed into independent random streams: `derive_rng(seed, *labels)`.

A stream depends only on the seed and its labels (say "video/jump/3", or a table cell's
condition and group), never on the order in which work is done, so adding a clip, a group or a
worker changes no other stream. Labels are joined with "|" and hashed with CRC-32; the stream is
numpy's default generator seeded with [seed, hash]."""

from __future__ import annotations

import zlib

import numpy as np


def label_key(*labels: object) -> int:
    """The 32-bit key of a label path (strings and integers alike, as text)."""
    return zlib.crc32("|".join(str(x) for x in labels).encode("utf-8"))


def derive_rng(seed: int, *labels: object) -> np.random.Generator:
    """A generator for the part of a run that `labels` name, from the run's one seed."""
    return np.random.default_rng([int(seed), label_key(*labels)])


def derive_seed(seed: int, *labels: object) -> int:
    """A 63-bit integer seed for libraries with their own generators (torch.Generator)."""
    return int(derive_rng(seed, *labels).integers(2**63 - 1))
