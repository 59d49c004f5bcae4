"""One registry, one factory: `create_model(name, num_classes, **options)`.

A name is looked up in three places, in this order: models registered in this package with
`@register_model`, a `"package.module:factory"` string (any importable callable), and the
entry-point group `bodyscene.models` of installed distributions, so a user's model plugs in
without editing this code."""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from importlib import metadata
from typing import Any, Callable

from bodyscene import VIEWS
from bodyscene.errors import ModelError

ENTRY_POINT_GROUP = "bodyscene.models"

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_model(name: str | None = None):
    """Decorator: record a factory `f(num_classes, **options) -> nn.Module` under `name`
    (default: the function's name)."""
    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = name or factory.__name__
        if key in _REGISTRY and _REGISTRY[key] is not factory:
            raise ModelError(f"model name {key!r} is registered twice")
        _REGISTRY[key] = factory
        return factory
    return wrap


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """Installed plugins; one that takes a built-in's name is refused, not silently hidden."""
    eps = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    clash = sorted(set(eps) & set(_REGISTRY))
    if clash:
        ep = eps[clash[0]]
        raise ModelError(f"the installed plugin {ep.value!r} registers the model name "
                         f"{clash[0]!r}, which is built in; rename it in its entry-point group "
                         f"{ENTRY_POINT_GROUP!r}")
    return eps


def list_models(pattern: str = "*", include_tests: bool = False) -> list[str]:
    """Built-in and entry-point model names matching a shell-style `pattern`, sorted. Tiny
    `test_*` models exist for fast tests and are left out unless asked for."""
    names = set(_REGISTRY) | set(_entry_points())
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern)
                  and (include_tests or not n.startswith("test_")))


def resolve_factory(name: str) -> Callable[..., Any]:
    """The factory behind `name`: registered, `module:callable`, or an entry point."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelError(f"model {name!r}: cannot import module {module_name!r} ({exc})") \
                from None
        factory = module
        for part in attr.split("."):
            factory = getattr(factory, part, None)
            if factory is None:
                raise ModelError(f"model {name!r}: module {module_name!r} has no {attr!r}")
        if not callable(factory):
            raise ModelError(f"model {name!r}: {attr!r} is not callable")
        return factory
    eps = _entry_points()
    if name in eps:
        try:
            return eps[name].load()
        except Exception as exc:  # a broken third-party package: say which one
            raise ModelError(f"model {name!r}: entry point {eps[name].value!r} "
                             f"failed to load ({exc})") from None
    known = ", ".join(list_models()) or "none"
    raise ModelError(f"unknown model {name!r}: known models are {known}; a model of your own "
                     f"is named 'package.module:factory' or registered in the entry-point "
                     f"group {ENTRY_POINT_GROUP!r}")


def create_model(name: str, num_classes: int, **options) -> Any:
    """Build model `name` for `num_classes` actions. Options go to its factory unchanged.
    The model gets a `views` attribute (default ("original",)) if its factory set none."""
    factory = resolve_factory(name)
    try:
        inspect.signature(factory).bind(num_classes=num_classes, **options)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: bad options {sorted(options)} ({exc})") from None
    except ValueError:
        pass  # no introspectable signature (a C callable): let the call speak for itself
    from torch import nn

    model = factory(num_classes=num_classes, **options)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {name!r}: factory returned {type(model).__name__}, "
                         f"expected a torch nn.Module")
    views = tuple(getattr(model, "views", ("original",)))
    bad = [v for v in views if v not in VIEWS]
    if not views or bad:
        raise ModelError(f"model {name!r}: views must be among original, body, background, "
                         f"got {views}")
    model.views = views
    return model
