"""bodyscene.configs and bodyscene.seeds: options built from dataclass fields, errors mapped to
flags, and the one rule that turns a seed into random streams."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np
import pytest

from bodyscene.configs import (
    ConfigError,
    LazyParser,
    add_options,
    deferred,
    flag_errors,
    flags,
    from_args,
    opt,
)
from bodyscene.errors import BadInput
from bodyscene.seeds import derive_rng, derive_seed


@dataclass
class Inner:
    k: int | None = opt(None, "choices per trial")
    seed: int = opt(0, "the seed")


@dataclass
class Outer:
    n_actions: int = opt(8, "how many actions", flag="--actions")
    rate: float = opt(0.5, "a rate")
    name: str = opt("x", "a name", choices=("x", "y"))
    shout: bool = opt(False, "say it loudly")
    augment: bool = opt(True, "no augmentation")
    progress: bool = opt(True, "no progress bars", flag="--quiet", inverted=True)
    pair: tuple[int, int] = opt((1, 2), "A,B", parse=lambda t: tuple(int(v) for v in t.split(",")))
    inner: Inner = field(default_factory=Inner)


def test_options_come_from_the_fields_and_map_back():
    p = argparse.ArgumentParser()
    add_options(p, Outer)
    assert from_args(Outer, p.parse_args([])) == Outer()
    args = p.parse_args(["--actions", "3", "--rate", "0.1", "--name", "y", "--shout",
                         "--no-augment", "--quiet", "--pair", "4,5"])
    got = from_args(Outer, args, inner=Inner(k=2))
    assert got == Outer(3, 0.1, "y", True, False, False, (4, 5), Inner(k=2))
    assert "how many actions (default: 8)" in p.format_help()
    with pytest.raises(SystemExit):
        p.parse_args(["--name", "z"])


def test_a_field_error_names_the_flag_and_nested_fields_are_found():
    mapping = flags(Outer)
    assert mapping["n_actions"] == "--actions" and mapping["inner.k"] == "--k"
    with pytest.raises(BadInput, match=r"^--actions: at least 2, got 1$"):
        with flag_errors(mapping):
            raise ConfigError("n_actions", "at least 2, got 1")
    with pytest.raises(BadInput, match=r"^--k: too few$"):
        with flag_errors(mapping):
            raise ConfigError("k", "too few")
    with pytest.raises(ConfigError, match=r"^other: kept$"):  # not an option: left as it is
        with flag_errors(mapping):
            raise ConfigError("other", "kept")


def test_lazy_parser_adds_options_only_when_used():
    calls = []
    top = LazyParser(prog="t")
    sub = top.add_subparsers(dest="cmd")
    p = sub.add_parser("run")
    deferred(p, lambda: (calls.append(1), p.add_argument("--rate", type=float)))
    top.format_help()
    assert calls == []
    assert top.parse_args(["run", "--rate", "2"]).rate == 2.0 and calls == [1]
    plain = argparse.ArgumentParser()
    deferred(plain, lambda: plain.add_argument("--now"))
    assert plain.parse_args(["--now", "a"]).now == "a"


def test_derive_rng_depends_only_on_seed_and_labels():
    a = derive_rng(3, "video", "jump", 2).random(4)
    assert np.array_equal(a, derive_rng(3, "video", "jump", 2).random(4))
    assert not np.array_equal(a, derive_rng(4, "video", "jump", 2).random(4))
    assert not np.array_equal(a, derive_rng(3, "video", "jump", 3).random(4))
    # the rule the stimuli were made with: numpy's generator seeded with [seed, crc32(labels)]
    import zlib

    legacy = np.random.default_rng([3, zlib.crc32(b"video/jump/2")]).random(4)
    assert np.array_equal(derive_rng(3, "video/jump/2").random(4), legacy)
    assert 0 <= derive_seed(3, "augment", 0) < 2**63
