"""THIRD-PARTY.txt: which Debian package each vendored library came from, so the layer's owner
knows whose licence terms travel with it."""

from __future__ import annotations

import os
import shutil
import subprocess

from packer.vendor.model import Copy


def _spellings(path: str) -> list[str]:
    """The names dpkg may know a file by, in order (usr-merge: /lib and /usr/lib are one)."""
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):
        candidates.append(c[4:] if c.startswith("/usr/") else "/usr" + c)
    return candidates


def dpkg_owners(paths: list[str]) -> dict[str, str | None]:
    """The Debian package owning each file, when dpkg can tell. One `dpkg -S` for all of them:
    measured for 12 libraries on a loaded machine 0.63 s instead of 5.78 s for one call per
    library and spelling."""
    spellings = {p: _spellings(p) for p in paths}
    owners: dict[str, str] = {}
    wanted = list(dict.fromkeys(c for cs in spellings.values() for c in cs))
    if wanted and shutil.which("dpkg"):
        # exit status 1 when some path is unowned; the owned ones are still printed
        proc = subprocess.run(["dpkg", "-S", *wanted], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            owner, sep, path = line.partition(": ")
            if sep and not owner.startswith("diversion by "):
                owners.setdefault(path.strip(), owner.strip())
    return {p: next((owners[c] for c in cs if c in owners), None) for p, cs in spellings.items()}


def third_party_text(copies: list[Copy]) -> str:
    owners = dpkg_owners(sorted({c.source for c in copies}))
    lines = ["Libraries vendored into this layer by `layerpack vendor`.",
             "Each keeps the licence of the package it came from; ship their licence texts with your layer.", ""]
    for c in sorted(copies, key=lambda c: c.dest):
        pkg = owners[c.source]
        lines.append(f"{c.dest}\tfrom {c.source}" + (f" ({c.real})" if c.real != c.source else "")
                     + f"\tpackage: {pkg or 'unknown (not installed by dpkg)'}")
    return "\n".join(lines) + "\n"
