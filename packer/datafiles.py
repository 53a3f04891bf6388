"""The one way layerpack finds its shipped data (`rules/`).

Why one locator: the first release found `rules/` by path arithmetic on `__file__`, which worked in the
editable checkout and failed in every installed wheel (`layerpack slim --profile erlang` said "choose one
of " — an empty list). The data now lives at `packer/rules` as far as Python is concerned (in the
repository that is a link to the top-level `rules/`; in the wheel and sdist it is a real directory), and
everything reads it through `importlib.resources`, which is what an installed package is guaranteed to
support.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from packer.errors import PolicyError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


@functools.lru_cache(maxsize=1)
def rules() -> Traversable:
    """The root of the shipped `rules/` data; a PolicyError (reinstall) when the install lacks it.
    A package imported from a directory (a wheel or an editable install) gets the Path that
    `importlib.resources.files` would return for it, without importing importlib.resources
    (6.5 ms of every command's start-up); any other loader (a zip) goes through it."""
    import packer

    origin = packer.__spec__.origin if packer.__spec__ else None
    if origin and os.path.isfile(origin):
        root: Traversable = Path(origin).parent / "rules"
    else:
        from importlib import resources

        root = resources.files("packer").joinpath("rules")
    if not root.joinpath("runtimes", "runtimes.toml").is_file():
        raise PolicyError("layerpack's rules/ data is missing from the installed package",
                          hint="reinstall layerpack: pip install --force-reinstall lambda-layerpack")
    return root


def rule_file(*parts: str) -> Traversable:
    """One file under `rules/`, e.g. `rule_file("profiles", "erlang.toml")`."""
    return rules().joinpath(*parts)
