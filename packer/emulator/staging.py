"""Putting layers at `/opt` and the function at `/var/task`, as Lambda unpacks them.

Lambda extracts the layers in order and "if the same file appears in multiple layers, the function
uses the version in the last extracted layer" (AWS Lambda Developer Guide, "Working with layers"; docs/lambda.md). A single directory is bound as
it is (nothing copied); several layers, or zips, are merged into a scratch directory, later ones
winning. Zips keep their Unix modes and symlinks, so a bootstrap that lost its exec bit in the zip
fails here as it fails on Lambda. `find_bootstrap` applies Lambda's search order on the host side,
following links across the mounts, so the classic "Couldn't find valid bootstrap(s)" is reported
with the reason instead of an opaque exec error.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from packer.emulator.sandbox import BOOTSTRAP_SEARCH, OPT, TASK_ROOT
from packer.errors import InputError
from packer.materialise import Budget, unpack
from packer.tree import open_tree

MAX_LINK_HOPS = 40


def stage(paths: list[Path], scratch: Path, budget: Budget | None = None) -> tuple[Path | None, list[str]]:
    """The directory to bind (at /opt or /var/task) for `paths`, merged in order.

    Unpacking goes through `packer.materialise`: nothing is written through a link, hostile members
    are skipped (and returned, "name: why"), and the function plus its layers must fit Lambda's
    unzipped budget before anything is written."""
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
    if not paths:
        return None, []
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0].resolve(), []
    budget = budget if budget is not None else Budget()
    skipped: list[str] = []
    for p in paths:
        with open_tree(p) as tree:
            left_out = unpack(tree, scratch, replace=True, strict=False, budget=budget)
        skipped += [f"{name}: {why}" for name, why in left_out]
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch, skipped


@dataclass(frozen=True)
class Bootstrap:
    path: str | None  # sandbox path to execute, None when no valid bootstrap
    detail: str  # why each candidate was rejected (for the error message)


def _to_host(path: str, mounts: dict[str, Path | None], root: Path) -> Path | None:
    for point, host in mounts.items():
        if path == point or path.startswith(point + "/"):
            return None if host is None else host / path[len(point):].lstrip("/")
    return root / path.lstrip("/")


def _resolve(path: str, mounts: dict[str, Path | None], root: Path) -> tuple[Path | None, str]:
    """Follow symlinks with sandbox semantics; (host path of the final file, sandbox path)."""
    for _ in range(MAX_LINK_HOPS):
        parent, _, _ = path.rpartition("/")
        host = _to_host(path, mounts, root)
        if host is None or not host.is_symlink():
            return host, path
        target = os.readlink(host)
        path = posixpath.normpath(target if target.startswith("/") else posixpath.join(parent or "/", target))
    return None, path


def find_bootstrap(opt: Path | None, task: Path | None, root: Path) -> Bootstrap:
    """Lambda's order: /var/task/bootstrap, then /opt/bootstrap; it must be an executable file."""
    mounts = {TASK_ROOT: task, OPT: opt}
    reasons = []
    for candidate in BOOTSTRAP_SEARCH:
        host, final = _resolve(candidate, mounts, root)
        if host is None or not (host.exists() or host.is_symlink()):
            reasons.append(f"{candidate}: not found" if final == candidate
                           else f"{candidate}: link to {final}, which does not exist")
            continue
        if host.is_symlink():
            reasons.append(f"{candidate}: too many levels of symbolic links")
            continue
        if host.is_dir():
            reasons.append(f"{candidate}: is a directory")
            continue
        mode = host.stat().st_mode
        if not mode & 0o111:
            reasons.append(f"{candidate}: not executable (mode {stat.S_IMODE(mode):04o})")
            continue
        # Lambda runs the bootstrap as an unprivileged user that owns none of the files.
        if not mode & 0o001:
            reasons.append(f"{candidate}: not executable by others (mode {stat.S_IMODE(mode):04o});"
                           " Lambda runs it as an unprivileged user")
            continue
        try:
            is_script = host.open("rb").read(2) == b"#!"
        except OSError:
            is_script = False
        if is_script and not mode & 0o004:
            reasons.append(f"{candidate}: script not readable by others (mode {stat.S_IMODE(mode):04o})")
            continue
        return Bootstrap(candidate, "")
    return Bootstrap(None, "; ".join(reasons))
