"""An inventory of what would land on Lambda: a directory, a `.zip`, or a single binary.

Every command starts from a `Tree`. It records each entry's kind, size, mode and symlink target
without following links or extracting anything, so a zip is read in place and a hostile entry
(`../x`, `/etc/passwd`) becomes a recorded problem instead of a write outside the tree.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packer.elf.reader import BytesSource, FileSource, Source
from packer.errors import InputError

FILE, DIR, SYMLINK, SPECIAL = "file", "dir", "symlink", "special"
# A member larger than this is not read into memory for ELF analysis (the whole unzipped layer may
# be at most 262,144,000 bytes, so a real member cannot legitimately exceed it).
MAX_MEMBER_READ = 262_144_000
MAX_LINK_HOPS = 40  # glibc and the kernel give up after 40 symlinks (ELOOP)


@dataclass(frozen=True)
class Entry:
    path: str  # posix, relative to the tree root, no leading "./"
    kind: str  # file | dir | symlink | special
    size: int
    mode: int  # permission bits (0o7777 mask)
    link: str | None = None  # symlink target as stored


@dataclass(frozen=True)
class Problem:
    """An entry that cannot be part of a layer at all (bad zip name, unreadable file)."""

    path: str
    reason: str  # "parent-ref" | "absolute" | "unreadable" | "duplicate"
    detail: str


@dataclass
class Tree:
    """The inventory plus a way to read file bytes. Build with `open_tree`."""

    origin: str  # what the user passed
    kind: str  # "dir" | "zip" | "file"
    entries: dict[str, Entry]
    problems: list[Problem] = field(default_factory=list)
    _root: Path | None = None
    _zip: zipfile.ZipFile | None = None
    _single: Path | None = None

    # -- reading -------------------------------------------------------------------------------
    def host_path(self, rel: str) -> Path | None:
        """Where the entry's bytes live on this machine (None for zip members)."""
        if self._single is not None:
            return self._single if rel == "bootstrap" else None
        if self._root is not None:
            return self._root / rel
        return None

    def read_head(self, rel: str, n: int = 4) -> bytes:
        try:
            if self._zip is not None:
                with self._zip.open(rel) as fh:
                    return fh.read(n)
            p = self.host_path(rel)
            with open(p, "rb") as fh:  # type: ignore[arg-type]
                return fh.read(n)
        except (OSError, KeyError, zipfile.BadZipFile, RuntimeError) as exc:
            raise InputError(f"{self.origin}: cannot read {rel}: {exc}") from exc

    def read_bytes(self, rel: str, limit: int = MAX_MEMBER_READ) -> bytes:
        entry = self.entries[rel]
        if entry.size > limit:
            raise InputError(f"{self.origin}: {rel} is larger than {limit} bytes")
        try:
            if self._zip is not None:
                with self._zip.open(rel) as fh:
                    data = fh.read(limit + 1)
            else:
                data = self.host_path(rel).read_bytes()  # type: ignore[union-attr]
        except (OSError, zipfile.BadZipFile, RuntimeError, EOFError) as exc:
            raise InputError(f"{self.origin}: cannot read {rel}: {exc}") from exc
        if len(data) > limit:
            raise InputError(f"{self.origin}: {rel} inflates past {limit} bytes")
        return data

    @contextlib.contextmanager
    def source(self, rel: str) -> Iterator[Source]:
        """Random access to a file's bytes, for the ELF reader."""
        if self._zip is not None:
            yield BytesSource(self.read_bytes(rel))
            return
        p = self.host_path(rel)
        try:
            fd = os.open(p, os.O_RDONLY)  # type: ignore[arg-type]
        except OSError as exc:
            raise InputError(f"{self.origin}: cannot read {rel}: {exc.strerror}") from exc
        try:
            yield FileSource(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def files(self) -> Iterator[Entry]:
        for e in self.entries.values():
            if e.kind == FILE:
                yield e

    # -- links inside the tree -----------------------------------------------------------------
    def resolve(self, rel: str) -> tuple[str | None, str]:
        """Follow symlinks inside the tree. Returns (final path, status) where status is
        "ok", "dangling", "loop", "escapes" (relative link leaving the root) or "absolute:<target>"
        (the caller decides what an absolute target means at the mount point)."""
        current = rel
        for _ in range(MAX_LINK_HOPS):
            parts = current.split("/")
            # resolve links in parent directories first
            prefix = ""
            for i, part in enumerate(parts):
                candidate = posixpath.join(prefix, part) if prefix else part
                entry = self.entries.get(candidate)
                if entry is not None and entry.kind == SYMLINK:
                    target = entry.link or ""
                    rest = "/".join(parts[i + 1 :])
                    if target.startswith("/"):
                        joined = posixpath.join(target, rest) if rest else target
                        return None, f"absolute:{posixpath.normpath(joined)}"
                    joined = posixpath.normpath(posixpath.join(posixpath.dirname(candidate), target, rest))
                    if joined == ".." or joined.startswith("../"):
                        return None, "escapes"
                    current = "" if joined == "." else joined
                    break
                prefix = candidate
            else:
                if current in self.entries or current == "":
                    return current, "ok"
                return None, "dangling"
        return None, "loop"

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mode_kind(st_mode: int) -> str:
    if stat.S_ISREG(st_mode):
        return FILE
    if stat.S_ISDIR(st_mode):
        return DIR
    if stat.S_ISLNK(st_mode):
        return SYMLINK
    return SPECIAL


def _walk_dir(root: Path, progress: Callable[[int], None] | None) -> tuple[dict[str, Entry], list[Problem]]:
    entries: dict[str, Entry] = {}
    problems: list[Problem] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            it = os.scandir(root / rel_dir if rel_dir else root)
        except OSError as exc:
            problems.append(Problem(rel_dir or ".", "unreadable", exc.strerror or str(exc)))
            continue
        with it:
            for de in it:
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                try:
                    st = de.stat(follow_symlinks=False)
                except OSError as exc:
                    problems.append(Problem(rel, "unreadable", exc.strerror or str(exc)))
                    continue
                kind = _mode_kind(st.st_mode)
                link = os.readlink(de.path) if kind == SYMLINK else None
                size = st.st_size if kind == FILE else (len(os.fsencode(link)) if link is not None else 0)
                entries[rel] = Entry(rel, kind, size, stat.S_IMODE(st.st_mode), link)
                if kind == DIR:
                    stack.append(rel)
                if progress:
                    progress(1)
    return entries, problems


def _read_zip(zf: zipfile.ZipFile, origin: str) -> tuple[dict[str, Entry], list[Problem]]:
    entries: dict[str, Entry] = {}
    problems: list[Problem] = []
    for info in zf.infolist():
        name = info.filename
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            problems.append(Problem(name, "absolute", "zip entry has an absolute path"))
            continue
        norm = posixpath.normpath(name)
        if norm == ".." or norm.startswith("../") or "/../" in f"/{name}/":
            problems.append(Problem(name, "parent-ref", "zip entry climbs out of the layer with '..'"))
            continue
        if norm == ".":
            continue
        unix = info.create_system == 3
        mode_full = (info.external_attr >> 16) if unix else 0
        is_dir = name.endswith("/") or stat.S_ISDIR(mode_full)
        if stat.S_ISLNK(mode_full):
            kind = SYMLINK
        elif is_dir:
            kind = DIR
        elif unix and stat.S_IFMT(mode_full) in (stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK):
            kind = SPECIAL  # (no type bits at all, as Python's writestr leaves them, means a file)
        else:
            kind = FILE
        if unix and mode_full:
            mode = stat.S_IMODE(mode_full)
        else:  # DOS/Windows zips carry no Unix mode; Lambda then sees no exec bit
            mode = 0o755 if kind == DIR else 0o644
        link = None
        if kind == SYMLINK:
            if info.file_size > 4096:
                problems.append(Problem(norm, "unreadable", "symlink target longer than 4096 bytes"))
                continue
            link = zf.read(info).decode("utf-8", "surrogateescape")
        if norm in entries and entries[norm].kind != DIR:
            problems.append(Problem(norm, "duplicate", "the zip holds this name twice; unzip keeps the last"))
        entries[norm] = Entry(norm, kind, info.file_size if kind == FILE else (len(link.encode()) if link else 0), mode, link)
        # implicit parent directories (zips need not list them)
        parent = posixpath.dirname(norm)
        while parent and parent not in entries:
            entries[parent] = Entry(parent, DIR, 0, 0o755)
            parent = posixpath.dirname(parent)
    return entries, problems


def open_tree(path: str | os.PathLike, *, progress: Callable[[int], None] | None = None) -> Tree:
    """Inventory a directory, a zip (read in place) or a single file (seen as the tree's bootstrap)."""
    p = Path(path)
    origin = str(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{origin}: no such file or directory") from None
    except OSError as exc:
        raise InputError(f"{origin}: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        entries, problems = _walk_dir(p, progress)
        return Tree(origin, "dir", entries, problems, _root=p)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{origin}: not a regular file or directory")
    if not os.access(p, os.R_OK):
        raise InputError(f"{origin}: permission denied")
    with open(p, "rb") as fh:
        head = fh.read(4)
    if head[:2] == b"PK" and zipfile.is_zipfile(p):
        try:
            zf = zipfile.ZipFile(p)
            entries, problems = _read_zip(zf, origin)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputError(f"{origin}: not a readable zip file ({exc})") from exc
        return Tree(origin, "zip", entries, problems, _zip=zf)
    entry = Entry("bootstrap", FILE, st.st_size, stat.S_IMODE(st.st_mode))
    return Tree(origin, "file", {"bootstrap": entry}, [], _single=p.resolve())
