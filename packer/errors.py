"""One exception hierarchy for the whole tool.

The CLI catches `LayerpackError` at its boundary and prints `str(error)` as one line; anything else
is a bug and shows a traceback only with `--debug`. Each layer raises its own subclass so callers can
tell "your ELF file is broken" from "your AWS credentials are missing" without parsing messages.
"""

from __future__ import annotations


class LayerpackError(Exception):
    """Base class: a problem the user can act on. `exit_code` follows the CLI convention."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:  # one line, with the fix when we know it
        base = super().__str__()
        return f"{base}; {self.hint}" if self.hint else base


class UsageError(LayerpackError):
    """Options that do not make sense together, an unknown runtime, a bad value."""


class InputError(LayerpackError):
    """The input tree, zip or binary cannot be read."""


class ElfError(LayerpackError):
    """A file that claims to be ELF is malformed (truncated, offsets out of range, loops)."""


class PolicyError(LayerpackError):
    """The shipped or user-given rules (runtimes, profiles) are malformed."""


class VendorError(LayerpackError):
    """Vendoring could not be planned or applied."""


class SlimError(LayerpackError):
    """Slimming could not be planned or applied."""


class PackageError(LayerpackError):
    """Building or checking a layer zip failed."""


class PublishError(LayerpackError):
    """Publishing to AWS failed or was refused locally."""


class EmulatorError(LayerpackError):
    """The local Runtime API emulator or its sandbox could not run."""


class ImageError(LayerpackError):
    """A base image could not be pulled, verified, unpacked or found in the cache."""
