"""Plain torch nn.Modules: the registry, backbones, the baseline and DomainNet. No file I/O
beyond loading weights a user names; imports only the bodyscene core.

Importing the package registers the built-in families (timm's way): the registry itself imports
no family, so there is no import circle."""

if __name__.split(".")[0] != "bodyscene":  # the folder is on sys.path, e.g. run from the repo root
    raise ImportError(f"import bodyscene.{__name__}, not {__name__}: the parts install inside "
                      f"the bodyscene namespace (pip install -e .)")

from . import zoo  # noqa: E402,F401  (registers the built-in models)
