"""One registry, one factory: `create_model(name, num_classes, **options)`.

A name is looked up in three places, in this order: models registered in this package with
`@register_model`, a `"package.module:factory"` string (any importable callable), and the
entry-point group `bodyscene.models` of installed distributions, so a user's model plugs in
without editing this code."""

from __future__ import annotations

import fnmatch
import inspect
from importlib import metadata
from typing import Any, Callable

from bodyscene import VIEWS
from bodyscene.errors import ModelError
from bodyscene.plugins import entry_points, import_callable, load_entry_point

ENTRY_POINT_GROUP = "bodyscene.models"

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_model(name: str | None = None, pretrained: bool = False):
    """Decorator: record a factory `f(num_classes, **options) -> nn.Module` under `name`
    (default: the function's name). `pretrained=True` marks an architecture that is only
    meaningful with weights trained elsewhere: evaluating it without weights is refused
    (needs_weights) unless random weights are asked for explicitly."""
    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = name or factory.__name__
        if pretrained:
            factory.pretrained_architecture = True
        if key in _REGISTRY and _REGISTRY[key] is not factory:
            raise ModelError(f"model name {key!r} is registered twice")
        _REGISTRY[key] = factory
        return factory
    return wrap


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """Installed plugins; one that takes a built-in's name is refused, not silently hidden."""
    return entry_points(ENTRY_POINT_GROUP, _REGISTRY, "model", ModelError)


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
        return import_callable(name, f"model {name!r}", ModelError)
    eps = _entry_points()
    if name in eps:
        return load_entry_point(eps[name], f"model {name!r}", ModelError)
    known = ", ".join(list_models()) or "none"
    raise ModelError(f"unknown model {name!r}: known models are {known}; a model of your own "
                     f"is named 'package.module:factory' or registered in the entry-point "
                     f"group {ENTRY_POINT_GROUP!r}")


def takes(factory: Callable[..., Any], name: str) -> bool:
    """Whether `factory` names a parameter `name` explicitly (not through **kwargs)."""
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def needs_weights(factory: Callable[..., Any]) -> bool:
    """Whether scoring `factory`'s model without a weights file would silently score random
    weights: built-in adapters registered with `pretrained=True`, or any factory (a plugin's
    too) that sets `pretrained_architecture = True`."""
    return bool(getattr(factory, "pretrained_architecture", False))


def default_num_classes(name: str) -> int | None:
    """The class count a factory defaults to (1000 for an ImageNet classifier, 400 for a
    Kinetics one), or None when it has no default."""
    try:
        param = inspect.signature(resolve_factory(name)).parameters.get("num_classes")
    except (TypeError, ValueError):
        return None
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return int(param.default)


def create_model(name: str, num_classes: int, actions: list[str] | None = None,
                 **options) -> Any:
    """Build model `name` for `num_classes` classes. Options go to its factory unchanged; a
    factory with an `actions` parameter also gets the action names in class-index order (so a
    zero-shot model can build its text prompts). The model gets a `views` attribute (default
    ("original",)) if its factory set none. A factory that raises is one line naming it."""
    factory = resolve_factory(name)
    if actions is not None and takes(factory, "actions"):
        options = {**options, "actions": list(actions)}
    try:
        inspect.signature(factory).bind(num_classes=num_classes, **options)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: bad options {sorted(options)} ({exc})") from None
    except ValueError:
        pass  # no introspectable signature (a C callable): let the call speak for itself
    from torch import nn

    try:
        model = factory(num_classes=num_classes, **options)
    except ModelError:
        raise
    except Exception as exc:  # a user's factory: name it and what it said, no traceback
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelError(f"model {name!r}: its factory raised {type(exc).__name__}"
                         f"{': ' + text if text else ''}") from None
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
