"""Optional dependencies: which extra installs which module, and one line that says so.

The core install is the analysis stack; torch, OpenCV, Ultralytics (AGPL), PsychoPy, the web
server and LiteRT come with extras (pyproject.toml). A module that imports one at its top guards
the import with `missing_extra` (plain imports, so type checkers still see the module); a lazy
import calls `require` first; and the CLI turns any ModuleNotFoundError for a known module into
the same line. A user never reads a traceback to learn which `pip install` to run."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import BodysceneError

# import name -> the smallest extra that installs it (pyproject.toml's optional-dependencies)
EXTRA_OF = {
    "torch": "models",
    "torchvision": "models",
    "cv2": "stimuli",
    "ultralytics": "yolo",
    "psychopy": "experiment",
    "ai_edge_litert": "realseg",
    "starlette": "web",
    "anyio": "web",         # starlette's own dependency, imported first by the server
    "uvicorn": "web",
    "httpx": "web",
    "skimage": "dev",
    "playwright": "dev",
    "pytest": "dev",
}


class MissingExtra(BodysceneError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the pip command. Also a
    ModuleNotFoundError, so code (and pytest.importorskip) that expects one still works."""


def install_command(extra: str) -> str:
    """The pip command that installs one extra."""
    return f"pip install 'bodyscene[{extra}]'"


def message(module: str, extra: str, purpose: str | None = None) -> str:
    """One line: what needs which module, and the pip command for a release or a checkout."""
    what = f"{purpose} needs {module}" if purpose else f"{module} is not installed"
    return (f"{what}, which the {extra!r} extra installs: {install_command(extra)} "
            f"(in a checkout: pip install -e '.[{extra}]')")


def require(module: str, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import `module` or raise MissingExtra naming the extra to install. `extra` defaults to
    EXTRA_OF's entry for the module's top-level name. A module that is installed but fails to
    import for another reason (a missing dependency of its own) raises as it would anyway."""
    top = module.split(".")[0]
    extra = extra or EXTRA_OF.get(top)
    if extra is None:
        raise ValueError(f"require: no extra is known for {module!r}; pass extra=")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != top:
            raise
        raise MissingExtra(message(top, extra, purpose), name=top) from exc


def missing_extra(exc: BaseException, purpose: str | None = None) -> MissingExtra | None:
    """The MissingExtra for a ModuleNotFoundError of a module that an extra installs (None for
    any other error, which the caller re-raises)."""
    if isinstance(exc, MissingExtra):
        return exc
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return MissingExtra(message(top, extra, purpose), name=top)
