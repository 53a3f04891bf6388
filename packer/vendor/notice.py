"""THIRD-PARTY.txt: which Debian package each vendored library came from, so the layer's owner
knows whose licence terms travel with it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from packer.vendor.model import Copy


def _dpkg_owner(path: str, cache: dict[str, str | None]) -> str | None:
    """The Debian package owning a file, when dpkg can tell (usr-merge: try both spellings)."""
    if path in cache:
        return cache[path]
    owner = None
    if shutil.which("dpkg"):
        candidates = [path, os.path.realpath(path)]
        for c in list(candidates):
            if c.startswith("/usr/"):
                candidates.append(c[4:])
            else:
                candidates.append("/usr" + c)
        for c in candidates:
            proc = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if proc.returncode == 0 and ":" in proc.stdout:
                owner = proc.stdout.split(": ", 1)[0].strip()
                break
    cache[path] = owner
    return owner


def write_third_party(path: Path, copies: list[Copy]) -> None:
    cache: dict[str, str | None] = {}
    lines = ["Libraries vendored into this layer by `layerpack vendor`.",
             "Each keeps the licence of the package it came from; ship their licence texts with your layer.", ""]
    for c in sorted(copies, key=lambda c: c.dest):
        pkg = _dpkg_owner(c.source, cache)
        lines.append(f"{c.dest}\tfrom {c.source}" + (f" ({c.real})" if c.real != c.source else "")
                     + f"\tpackage: {pkg or 'unknown (not installed by dpkg)'}")
    path.write_text("\n".join(lines) + "\n")
