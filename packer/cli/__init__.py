"""The `layerpack` command line: a thin shell around the library.

Each command lives in its own module in this package and registers itself on `main` when imported;
`main` imports them all, so adding a command never means editing a shared list.
"""

from __future__ import annotations

import importlib
import pkgutil

from packer.cli.base import main

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["main"]
