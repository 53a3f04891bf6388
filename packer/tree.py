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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from packer.elf.reader import BytesSource, FileSource, Source
from packer.errors import InputError
from packer.quotas import UNZIPPED_LIMIT
from packer.zipread import DEFLATED, STORED, UNIX, Member, ZipIndex, normalise

FILE, DIR, SYMLINK, SPECIAL = "file", "dir", "symlink", "special"
# A member larger than this is not read into memory for ELF analysis (the whole unzipped layer may
# be at most 262,144,000 bytes, so a real member cannot legitimately exceed it).
MAX_MEMBER_READ = UNZIPPED_LIMIT
MAX_LINK_HOPS = 40  # glibc and the kernel give up after 40 symlinks (ELOOP)
SUPPORTED_METHODS = (STORED, DEFLATED)  # what Lambda's unzip is known to take


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Entry(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass (88 bytes)
    path: str  # posix, relative to the tree root, no leading "./"
    kind: str  # file | dir | symlink | special
    size: int
    mode: int  # permission bits (0o7777 mask)
    link: str | None = None  # symlink target as stored
    ref: int = -1  # a zip member's reference in its ZipIndex


class Problem(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    """An entry that cannot be part of a layer at all (bad zip name, unreadable file)."""

    path: str
    reason: str  # "parent-ref" | "absolute" | "unreadable" | "duplicate" | "conflict" | "unsupported"
    detail: str


@dataclass
class Tree:
    """The inventory plus a way to read file bytes. Build with `open_tree`."""

    origin: str  # what the user passed
    kind: str  # "dir" | "zip" | "file"
    entries: dict[str, Entry]
    problems: list[Problem] = field(default_factory=list)
    _root: Path | None = None
    _zip: ZipIndex | None = None
    _single: Path | None = None

    @property
    def zip_index(self) -> ZipIndex | None:
        """The open zip of a zip tree (its directory can be streamed again, its members read)."""
        return self._zip

    # -- reading -------------------------------------------------------------------------------
    def host_path(self, rel: str) -> Path | None:
        """Where the entry's bytes live on this machine (None for zip members)."""
        if self._single is not None:
            return self._single if rel == "bootstrap" else None
        if self._root is not None:
            return self._root / rel
        return None

    def open(self, rel: str) -> BinaryIO:
        """A stream of the entry's bytes. Never blocks (a FIFO swapped in is refused) and never
        follows a link in the last component; zip decoding errors surface as InputError on read."""
        if self._zip is not None:
            entry = self.entries.get(rel)
            if entry is None or entry.ref < 0:
                raise InputError(f"{self.origin}: cannot read {rel}: not a member of the zip")
            return self._zip.open(entry.ref, rel)  # type: ignore[return-value]
        fd, _st = self._open_fd(rel)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def _open_fd(self, rel: str) -> tuple[int, os.stat_result]:
        """A descriptor of a regular file of a directory tree (no link followed in the last
        component, a FIFO never waited on), and its stat."""
        # the path as a str when the tree is a directory: Path / rel cost ~12 us per file of `analyze`
        path = os.path.join(self._root, rel) if self._root is not None else self.host_path(rel)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # type: ignore[arg-type]
        except OSError as exc:
            raise InputError(f"{self.origin}: cannot read {rel}: {_why(exc)}") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise InputError(f"{self.origin}: cannot read {rel}: not a regular file")
        return fd, st

    def read_head(self, rel: str, n: int = 4) -> bytes:
        with self.open(rel) as fh:
            return fh.read(n)

    def read_bytes(self, rel: str, limit: int = MAX_MEMBER_READ) -> bytes:
        entry = self.entries[rel]
        if entry.size > limit:
            raise InputError(f"{self.origin}: {rel} is larger than {limit} bytes")
        with self.open(rel) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise InputError(f"{self.origin}: {rel} inflates past {limit} bytes")
        return data

    def mapped_bytes(self, rel: str):
        """A file's bytes for a reader that looks at a few tables of it: an mmap for a file on disk
        (a 200 MB libLLVM costs page faults for what is read, not 200 MB of RSS), the bytes of a
        zip member. Raises OSError, ValueError (an empty file) or InputError."""
        host = self.host_path(rel)
        if host is None:
            return self.read_bytes(rel)
        import mmap  # only the symbol readers need it

        with open(host, "rb") as fh:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    @contextlib.contextmanager
    def source(self, rel: str) -> Iterator[Source]:
        """Random access to a file's bytes, for the ELF reader."""
        if self._zip is not None:
            yield BytesSource(self.read_bytes(rel))
            return
        fd, st = self._open_fd(rel)  # no file object: analyze opens every file of a tree this way
        try:
            yield FileSource(fd, st.st_size, st)
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


_MODES: dict[int, int] = {}  # one int object per distinct mode, not one per entry


def _zip_kind_mode(m: Member) -> tuple[str, int]:
    unix = m.system == UNIX
    mode_full = (m.attr >> 16) if unix else 0
    if stat.S_ISLNK(mode_full):
        kind = SYMLINK
    elif m.name.endswith("/") or stat.S_ISDIR(mode_full):
        kind = DIR
    elif unix and stat.S_IFMT(mode_full) in (stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK):
        kind = SPECIAL  # (no type bits at all, as Python's writestr leaves them, means a file)
    else:
        kind = FILE
    mode = stat.S_IMODE(mode_full) if unix and mode_full else (0o755 if kind == DIR else 0o644)  # DOS: no mode
    return kind, _MODES.setdefault(mode, mode)


def _zip_name_problem(name: str) -> Problem | None:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return Problem(name, "absolute", "zip entry has an absolute path")
    if ".." not in name:
        return None
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{name}/":
        return Problem(name, "parent-ref", "zip entry climbs out of the layer with '..'")
    return None


def _zip_member_problem(m: Member, norm: str, kind: str) -> Problem | None:
    if m.flags & 0x1:
        return Problem(norm, "unsupported", "the member is encrypted; Lambda cannot unzip it")
    if kind != DIR and m.method not in SUPPORTED_METHODS:
        return Problem(norm, "unsupported", f"compression method {m.method} (only store and deflate unzip everywhere)")
    if kind == SYMLINK and m.size > 4096:
        return Problem(norm, "unreadable", "symlink target longer than 4096 bytes")
    return None


def _zip_conflict(entries: dict[str, Entry], norm: str, kind: str) -> Problem | None:
    """A name that is both a file (or link) and a directory, or a member under a link: unzipping
    it writes through the link (anywhere on the machine) or fails half-way.

    The walk up stops at the first directory: every ancestor of an entry already in the tree is a
    directory (a non-directory is only ever added where no directory was), so the usual member
    costs one lookup, not one per path component (this was ~20 % of `check` on 52,000 entries)."""
    old = entries.get(norm)
    if old is not None and (old.kind == DIR) != (kind == DIR):
        return Problem(norm, "conflict", f"the zip holds {norm} both as a directory and as a {kind if old.kind == DIR else old.kind}")
    parent = norm.rpartition("/")[0]
    while parent:
        above = entries.get(parent)
        if above is not None:
            if above.kind == DIR:
                return None
            via = "through the symlink" if above.kind == SYMLINK else "under the file"
            return Problem(norm, "conflict", f"{norm} would be written {via} {parent}")
        parent = parent.rpartition("/")[0]
    return None


def _zip_link(index: ZipIndex, ref: int, norm: str) -> str:
    with index.open(ref, norm) as fh:
        return fh.read(4097).decode("utf-8", "surrogateescape")


def _read_zip(index: ZipIndex, watch: Callable[[Member, ZipIndex], None] | None) -> tuple[dict[str, Entry], list[Problem]]:
    """The entries of a zip, its directory streamed: what stays per member is its Entry and 32
    bytes in the index (for reading it back). `watch` sees every record first."""
    entries: dict[str, Entry] = {}
    problems: list[Problem] = []
    for m in index.scan():
        if watch is not None:
            watch(m, index)
        bad = _zip_name_problem(m.name)
        if bad is not None:
            problems.append(bad)
            continue
        norm = normalise(m.name)
        if norm in (".", ""):
            continue
        kind, mode = _zip_kind_mode(m)
        bad = _zip_member_problem(m, norm, kind) or _zip_conflict(entries, norm, kind)
        if bad is not None:
            problems.append(bad)
            continue
        ref, link = (-1 if kind == DIR else index.keep(m)), None
        if kind == SYMLINK:
            try:
                link = _zip_link(index, ref, norm)
            except InputError as exc:
                why = str(exc).removeprefix(f"{index.origin}: cannot read {norm}: ")
                problems.append(Problem(norm, "unreadable", f"cannot read the link target: {why}"))
                continue
        if norm in entries and entries[norm].kind != DIR:
            problems.append(Problem(norm, "duplicate", "the zip holds this name twice; unzip keeps the last"))
        size = m.size if kind == FILE else (len(link.encode("utf-8", "surrogateescape")) if link else 0)
        entries[norm] = Entry(norm, kind, size, mode, link, ref)
        # implicit parent directories (zips need not list them)
        parent = norm.rpartition("/")[0]
        while parent and parent not in entries:
            entries[parent] = Entry(parent, DIR, 0, 0o755)
            parent = parent.rpartition("/")[0]
    return entries, problems


def open_tree(path: str | os.PathLike, *, progress: Callable[[int], None] | None = None,
              watch: Callable[[Member, ZipIndex], None] | None = None) -> Tree:
    """Inventory a directory, a zip (read in place) or a single file (seen as the tree's bootstrap).
    `watch` is shown every central directory record of a zip as it streams past (a second reader
    of the same pass, e.g. `budget.ZipInspection`)."""
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
    if head[:2] == b"PK":
        index = ZipIndex(p, origin)
        try:
            entries, problems = _read_zip(index, watch)
        except BaseException:
            index.close()
            raise
        return Tree(origin, "zip", entries, problems, _zip=index)
    if p.suffix.lower() == ".zip":
        # a truncated download or a renamed file: analysing it as a one-file layer would report
        # "exec format error" on a bootstrap the user never meant to ship
        raise InputError(f"{origin}: not a readable zip file (no central directory: truncated or not a zip)")
    entry = Entry("bootstrap", FILE, st.st_size, stat.S_IMODE(st.st_mode))
    return Tree(origin, "file", {"bootstrap": entry}, [], _single=p.resolve())
