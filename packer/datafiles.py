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
from importlib import resources
from importlib.resources.abc import Traversable

from packer.errors import PolicyError


@functools.lru_cache(maxsize=1)
def rules() -> Traversable:
    """The root of the shipped `rules/` data; a PolicyError (reinstall) when the install lacks it."""
    root = resources.files("packer").joinpath("rules")
    if not root.joinpath("runtimes", "runtimes.toml").is_file():
        raise PolicyError("layerpack's rules/ data is missing from the installed package",
                          hint="reinstall layerpack: pip install --force-reinstall lambda-layerpack")
    return root


def rule_file(*parts: str) -> Traversable:
    """One file under `rules/`, e.g. `rule_file("profiles", "erlang.toml")`."""
    return rules().joinpath(*parts)
