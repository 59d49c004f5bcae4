"""Configurations declared once: a dataclass whose fields carry their help, from which the
command line is built and to which its flags map back.

A field's metadata (`opt(default, "help", flag=..., choices=...)`) is all argparse needs: the
flag is the field name with dashes unless given, a True boolean becomes `--no-<name>`, and
`required=True` makes the flag mandatory though the library keeps a default. Library code checks
a configuration by field name (`ConfigError("batch_size", "...")`); `flag_errors` turns that
into the flag a user typed, so the library never needs to know about the command line."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from typing import Any, Callable, Iterator

from .errors import BadInput


class ConfigError(BadInput):
    """A configuration value that cannot be used, named by its dataclass field."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field, self.detail = field, detail


def opt(default: Any = dataclasses.MISSING, help: str = "", *,
        factory: Callable[[], Any] | None = None, **meta: Any) -> Any:
    """A dataclass field with its command-line help (and optionally flag, choices, metavar,
    required, parse: text -> value, cli=False to keep it off the command line)."""
    meta = {"help": help, **meta}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_SCALARS = {"int": int, "float": float, "bool": bool}


def _nested(field: dataclasses.Field) -> bool:
    """A field that holds another config (its default is a dataclass instance)."""
    if field.default_factory is not dataclasses.MISSING:
        return dataclasses.is_dataclass(field.default_factory())
    return dataclasses.is_dataclass(field.default)


def _base_type(field: dataclasses.Field) -> tuple[type, bool]:
    """(int | float | bool | str, optional) read from the annotation's text, so that listing a
    config's options imports nothing its module would not (typing.get_type_hints would)."""
    text = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    parts = [p.strip() for p in text.split("|")]
    rest = [p for p in parts if p != "None"]
    base = rest[0].split("[")[0] if len(rest) == 1 else "str"
    return _SCALARS.get(base, str), len(rest) < len(parts)


def flag_of(field: dataclasses.Field) -> str:
    """The command-line flag of a field."""
    meta = field.metadata
    if "flag" in meta:
        return meta["flag"]
    hints_bool = field.default is True
    return ("--no-" if hints_bool else "--") + field.name.replace("_", "-")


def cli_fields(cls: type) -> Iterator[tuple[dataclasses.Field, type, bool]]:
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli", True) and not _nested(f):
            yield (f, *_base_type(f))


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                skip: tuple[str, ...] = (), defaults: dict[str, Any] | None = None) -> None:
    """One argparse option per field of dataclass `cls` (but `skip`); `defaults` replaces a
    field's default on this command line only (the help still says which default applies)."""
    defaults = defaults or {}
    for f, kind, optional in cli_fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        default = defaults.get(f.name, f.default if f.default is not dataclasses.MISSING
                               else None)
        kw: dict[str, Any] = {"dest": f.name, "help": meta.get("help") or None}
        if kind is bool and not optional:
            flag = flag_of(f)
            inverted = flag.startswith("--no-") or meta.get("inverted", False)
            kw.update(action="store_false" if inverted else "store_true", default=default)
        elif "parse" in meta:  # parsed in from_args, where a BadInput is one line
            flag = flag_of(f)
            kw.update(type=str, default=default)
            if meta.get("append"):
                kw.update(action="append", default=[])
        else:
            flag = flag_of(f)
            kw.update(type=kind if kind in (int, float) else str, default=default)
            if default is not None and kw["help"] and "default" not in kw["help"]:
                kw["help"] += f" (default: {default})"
        if "action" not in kw and "choices" not in meta:  # --actions N, not N_ACTIONS
            kw["metavar"] = flag.lstrip("-").replace("-", "_").upper()
        for key in ("choices", "metavar", "required"):
            if key in meta:
                kw[key] = meta[key]
        if meta.get("required"):
            kw.pop("default", None)
        parser.add_argument(flag, **kw)


def from_args(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """An instance of `cls` from the parsed options `add_options` made, plus `fixed` values
    (nested configs, fields kept off the command line)."""
    values = {}
    for f, _, _ in cli_fields(cls):
        if f.name in fixed or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        if "parse" in f.metadata and (isinstance(value, str) or f.metadata.get("append")):
            value = f.metadata["parse"](value)
        values[f.name] = value
    return cls(**values, **fixed)


def flags(*classes: type, prefix: str = "") -> dict[str, str]:
    """field name -> flag for the fields of `classes` (nested dataclass fields as
    `outer.inner`)."""
    out: dict[str, str] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if _nested(f):
                inner = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                         else f.default)
                out.update(flags(type(inner), prefix=f"{prefix}{f.name}."))
            elif f.metadata.get("cli", True):
                out[prefix + f.name] = flag_of(f)
    return out


@contextlib.contextmanager
def flag_errors(mapping: dict[str, str]) -> Iterator[None]:
    """Re-raise a `ConfigError` on a mapped field as a BadInput that names the flag."""
    try:
        yield
    except ConfigError as exc:
        flag = mapping.get(exc.field) or next(
            (v for k, v in mapping.items() if k.rsplit(".", 1)[-1] == exc.field), None)
        if flag is None:
            raise
        raise BadInput(f"{flag}: {exc.detail}") from None


class LazyParser(argparse.ArgumentParser):
    """An ArgumentParser that adds some options only when it is used (parsing its own
    arguments or printing its help), so `bodyscene --help` does not import every config's
    module. Subparsers made from it are LazyParsers too."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pending: list[Callable[[], None]] = []

    def defer(self, fill: Callable[[], None]) -> None:
        self._pending.append(fill)

    def _fill(self) -> None:
        while self._pending:
            self._pending.pop(0)()

    def parse_known_args(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        self._fill()
        return super().parse_known_args(*args, **kwargs)

    def format_help(self) -> str:
        self._fill()
        return super().format_help()


def deferred(parser: argparse.ArgumentParser, fill: Callable[[], None]) -> None:
    """Run `fill` (which adds options to `parser`) when the parser is used, or now if it is a
    plain ArgumentParser."""
    if isinstance(parser, LazyParser):
        parser.defer(fill)
    else:
        fill()
