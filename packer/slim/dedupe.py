"""`--dedupe`: identical files under several names in one directory become symlinks to the first.

Why: pip writes real copies of a library's versioned names (pyarrow ships `libarrow_python.so`,
`.so.1700` and `.so.1700.0.0` as three identical files: a wheel cannot hold symlinks), and each copy
counts against Lambda's unzipped budget. A zip keeps symlinks and Lambda restores them, so the later
names can be links. Why only within one directory: a link's target then lives in the same
directory, so `$ORIGIN`, `/proc/self/exe` and `__file__`-relative lookups find the same neighbours
whichever name was opened. Files with and without an exec bit are never merged (a link has its
target's mode). Planning is pure (reads bytes, writes nothing); `apply_dedupe` writes the links.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import posixpath
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packer.tree import FILE, Tree

MIN_SIZE = 1024  # smaller copies (empty __init__.py, licences) are not worth a link


@dataclass(frozen=True)
class Link:
    path: str  # the copy that becomes a link
    target: str  # relative link target: the first copy's name (same directory)
    size: int  # bytes the copy weighed

    @property
    def saved(self) -> int:
        """Lambda counts a link as the length of its target."""
        return self.size - len(os.fsencode(self.target))

    def to_json(self) -> dict:
        return {"path": self.path, "target": self.target, "bytes": self.size, "saved": self.saved}


@dataclass(frozen=True)
class DedupePlan:
    links: tuple[Link, ...]

    @property
    def saved(self) -> int:
        return sum(link.saved for link in self.links)

    def to_json(self) -> dict:
        return {"links": [link.to_json() for link in self.links], "saved": self.saved}


def _digest(tree: Tree, rel: str) -> str | None:
    try:
        h = hashlib.sha256()
        with tree.open(rel) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except Exception:  # unreadable entries are the layout checks' findings, never linked
        return None


def plan_dedupe(tree: Tree, paths: Iterable[str] | None = None, min_size: int = MIN_SIZE) -> DedupePlan:
    """Which files become links to which: among `paths` (default every file), regular files of
    at least `min_size` bytes with the same directory, size, exec bit and SHA-256; the first name in
    byte order stays a file."""
    groups: dict[tuple[str, int, bool], list[str]] = defaultdict(list)
    for rel in (tree.entries if paths is None else paths):
        e = tree.entries.get(rel)
        if e is None or e.kind != FILE or e.size < min_size:
            continue
        groups[(posixpath.dirname(rel), e.size, bool(e.mode & 0o111))].append(rel)
    links: list[Link] = []
    for (_d, size, _x), names in groups.items():
        if len(names) < 2:
            continue
        by_hash: dict[str, list[str]] = defaultdict(list)
        for rel in names:
            digest = _digest(tree, rel)
            if digest is not None:
                by_hash[digest].append(rel)
        for same in by_hash.values():
            same.sort(key=os.fsencode)
            first = posixpath.basename(same[0])
            links.extend(Link(rel, first, size) for rel in same[1:])
    links.sort(key=lambda link: os.fsencode(link.path))
    return DedupePlan(tuple(links))


def apply_dedupe(root: Path, plan: DedupePlan) -> int:
    """Replace each planned copy under `root` by its link, atomically (a link made beside it and
    renamed over it). A copy no longer identical to its target (changed since planning) is kept.
    Returns the bytes saved."""
    saved = 0
    for link in plan.links:
        path = root / link.path
        target = path.parent / link.target
        if path.is_symlink() or target.is_symlink() or not filecmp.cmp(path, target, shallow=False):
            continue
        tmp = tempfile.mktemp(prefix=".lp-dedupe-", dir=path.parent)  # noqa: S306 (symlink() refuses to overwrite)
        os.symlink(link.target, tmp)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        saved += link.saved
    return saved


__all__ = ["DedupePlan", "Link", "MIN_SIZE", "apply_dedupe", "plan_dedupe"]
