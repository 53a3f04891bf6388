"""Image references: a Lambda runtime name, or `HOST[:PORT]/REPO[:TAG|@sha256:HEX]`.

A runtime name maps (in `rules/images.toml`) to AWS's public base image for it, so users type
`provided.al2023` instead of remembering `public.ecr.aws/lambda/provided:al2023`. Every reference
names its registry host explicitly: there is no implicit Docker Hub, so a typo never turns into a
download from a registry the user did not mean.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from packer._compat import tomllib
from packer.errors import ImageError, UsageError
from packer.datafiles import rule_file

_REPO = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?")


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port]
    repository: str  # e.g. lambda/provided
    tag: str | None
    digest: str | None  # sha256:… when pinned
    runtime: str | None = None  # the runtime name the user typed, if any

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def loopback(self) -> bool:
        return is_loopback(self.registry)


def is_loopback(registry: str) -> bool:
    """Plain HTTP is allowed only for these (as Docker does for localhost): nothing leaves the machine."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def runtime_images() -> dict[str, str]:
    """Runtime name -> AWS base image reference (rules/images.toml)."""
    path = rule_file("images.toml")
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8"))["image"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ImageError(f"{path}: unreadable ({exc})", hint="reinstall layerpack") from exc


def parse(text: str) -> Reference:
    """A runtime name or an explicit reference; a one-line UsageError for anything else."""
    text = text.strip()
    images = runtime_images()
    if text in images:
        return _parse_explicit(images[text], runtime=text)
    if "/" not in text:
        known = ", ".join(sorted(images))
        raise UsageError(f"image {text!r}: not a runtime with a base image, nor HOST/REPO[:TAG]",
                         hint=f"runtimes: {known}; or e.g. 127.0.0.1:5000/lambda/x:1")
    return _parse_explicit(text)


def _parse_explicit(text: str, runtime: str | None = None) -> Reference:
    host, _, rest = text.partition("/")
    if not _HOST.fullmatch(host) or not ("." in host or ":" in host or host == "localhost"):
        raise UsageError(f"image {text!r}: the first part must be a registry host (with a dot or a port)",
                         hint="layerpack has no default registry: write e.g. public.ecr.aws/lambda/provided:al2023")
    digest = None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise UsageError(f"image {text!r}: digest must be sha256: and 64 lower-case hex digits")
    tag = None
    name, sep, maybe_tag = rest.rpartition(":")
    if sep:
        rest, tag = name, maybe_tag
        if not _TAG.fullmatch(tag):
            raise UsageError(f"image {text!r}: bad tag {tag!r}")
    if not _REPO.fullmatch(rest):
        raise UsageError(f"image {text!r}: bad repository name {rest!r} (lower-case, digits, . _ - /)")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(host, rest, tag, digest, runtime)
