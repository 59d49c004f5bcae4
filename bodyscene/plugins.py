"""Finding a user's plugin (a model, a segmenter) by name: `package.module:factory` or an
installed package's entry point. One mechanism for every registry, so both parts refuse the
same things in the same words."""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable, Collection

from .errors import BodysceneError


def import_callable(spec: str, label: str, error: type[BodysceneError]) -> Callable[..., Any]:
    """The callable that 'package.module:attr.path' names; `label` starts each error line
    (e.g. "model 'x:y'")."""
    module_name, _, attr = spec.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"{label}: cannot import module {module_name!r} ({exc})") from None
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise error(f"{label}: module {module_name!r} has no {attr!r}")
    if not callable(found):
        raise error(f"{label}: {attr!r} is not callable")
    return found


def entry_points(group: str, builtins: Collection[str], what: str,
                 error: type[BodysceneError]) -> dict[str, metadata.EntryPoint]:
    """Installed plugins of `group`; one that takes a built-in's name is refused, not silently
    hidden behind it."""
    eps = {ep.name: ep for ep in metadata.entry_points(group=group)}
    clash = sorted(set(eps) & set(builtins))
    if clash:
        raise error(f"the installed plugin {eps[clash[0]].value!r} registers the {what} name "
                    f"{clash[0]!r}, which is built in; rename it in its entry-point group "
                    f"{group!r}")
    return eps


def load_entry_point(ep: metadata.EntryPoint, label: str,
                     error: type[BodysceneError]) -> Callable[..., Any]:
    try:
        return ep.load()
    except Exception as exc:  # a broken third-party package: say which one
        raise error(f"{label}: entry point {ep.value!r} failed to load ({exc})") from None
