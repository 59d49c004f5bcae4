"""The one exception models/ raises for a configuration a user must fix.

models/ imports no other bodyscene package, so it cannot use `stimuli.errors.BadInput`; the CLI
turns a ModelError into the same single line on stderr."""

from __future__ import annotations


class ModelError(Exception):
    """A model name, option or weights file that cannot be used; the message says why."""
