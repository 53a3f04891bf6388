"""Putting layers at `/opt` and the function at `/var/task`, as Lambda unpacks them.

Lambda extracts the layers in order and "if the same file appears in multiple layers, the function
uses the version in the last extracted layer" (lambda-facts.md §4). A single directory is bound as
it is (nothing copied); several layers, or zips, are merged into a scratch directory, later ones
winning. Zips keep their Unix modes and symlinks, so a bootstrap that lost its exec bit in the zip
fails here as it fails on Lambda. `find_bootstrap` applies Lambda's search order on the host side,
following links across the mounts, so the classic "Couldn't find valid bootstrap(s)" is reported
with the reason instead of an opaque exec error.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packer.emulator.sandbox import BOOTSTRAP_SEARCH, OPT, TASK_ROOT
from packer.errors import InputError

MAX_LINK_HOPS = 40


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _merge_dir(src: Path, dst: Path) -> None:
    """Copy `src` over `dst` (later wins; a file replaces a directory and the other way round)."""
    dst.mkdir(parents=True, exist_ok=True)
    with os.scandir(src) as it:
        for entry in it:
            target = dst / entry.name
            if entry.is_symlink():
                _remove(target)
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                if target.is_symlink() or (target.exists() and not target.is_dir()):
                    _remove(target)
                _merge_dir(Path(entry.path), target)
            elif entry.is_file():
                _remove(target)
                _link_or_copy(entry.path, str(target))


def _extract_zip(zpath: Path, dst: Path) -> list[str]:
    """Extract with Unix modes and symlinks; hostile names are skipped and returned."""
    skipped: list[str] = []
    try:
        zf = zipfile.ZipFile(zpath)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{zpath}: not a readable zip ({exc})") from exc
    with zf:
        for info in zf.infolist():
            name = info.filename
            norm = posixpath.normpath(name)
            if name.startswith("/") or norm == ".." or norm.startswith("../"):
                skipped.append(name)
                continue
            target = dst / norm
            mode = info.external_attr >> 16
            _remove(target) if not info.is_dir() else None
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                os.symlink(zf.read(info).decode("utf-8", "surrogateescape"), target)
                continue
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            os.chmod(target, (mode & 0o7777) or 0o644)
    return skipped


def _add(layer: Path, dst: Path) -> list[str]:
    if layer.is_dir():
        _merge_dir(layer, dst)
        return []
    if zipfile.is_zipfile(layer):
        return _extract_zip(layer, dst)
    # a single file stands for `bootstrap` (packer.tree's convention)
    dst.mkdir(parents=True, exist_ok=True)
    _remove(dst / "bootstrap")
    shutil.copy2(layer, dst / "bootstrap")
    return []


def stage(paths: list[Path], scratch: Path) -> tuple[Path | None, list[str]]:
    """The directory to bind (at /opt or /var/task) for `paths`, merged in order."""
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
    if not paths:
        return None, []
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0].resolve(), []
    skipped: list[str] = []
    for p in paths:
        skipped += _add(p, scratch)
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
