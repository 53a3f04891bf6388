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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple, TYPE_CHECKING

from packer.elf.reader import BytesSource, FileSource, Source
from packer.errors import InputError

if TYPE_CHECKING:
    import zipfile

FILE, DIR, SYMLINK, SPECIAL = "file", "dir", "symlink", "special"
# A member larger than this is not read into memory for ELF analysis (the whole unzipped layer may
# be at most 262,144,000 bytes, so a real member cannot legitimately exceed it).
MAX_MEMBER_READ = 262_144_000
MAX_LINK_HOPS = 40  # glibc and the kernel give up after 40 symlinks (ELOOP)
SUPPORTED_METHODS = (0, 8)  # zipfile.ZIP_STORED, ZIP_DEFLATED: what Lambda's unzip is known to take


def _zip_read_errors() -> tuple[type[BaseException], ...]:
    """Everything zipfile raises on a member it cannot decode: corrupt deflate data (zlib.error), an
    unsupported method (NotImplementedError), encryption (RuntimeError), a bad CRC (BadZipFile),
    truncation (EOFError), and a name missing from the directory (KeyError). A function, evaluated
    only when something was raised: zipfile is imported for zips only (6.5 ms of start-up)."""
    import zipfile

    return (OSError, KeyError, zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error, ValueError)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _GuardedZipStream:
    """A zip member stream whose decoding errors are InputError (one line), not tracebacks."""

    def __init__(self, fh: BinaryIO, origin: str, rel: str) -> None:
        self._fh, self._origin, self._rel = fh, origin, rel

    def read(self, n: int = -1) -> bytes:
        try:
            return self._fh.read(n)
        except _zip_read_errors() as exc:
            raise InputError(f"{self._origin}: cannot read {self._rel}: {_why(exc)}") from exc

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _GuardedZipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Entry(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    path: str  # posix, relative to the tree root, no leading "./"
    kind: str  # file | dir | symlink | special
    size: int
    mode: int  # permission bits (0o7777 mask)
    link: str | None = None  # symlink target as stored


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
    _zip: zipfile.ZipFile | None = None
    _members: dict[str, zipfile.ZipInfo] = field(default_factory=dict)  # normalised name -> member
    _single: Path | None = None

    @property
    def zip_file(self) -> zipfile.ZipFile | None:
        """The open archive of a zip tree, so a command parses its central directory once."""
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
        try:
            if self._zip is not None:
                return _GuardedZipStream(self._zip.open(self._members.get(rel, rel)), self.origin, rel)
        except _zip_read_errors() as exc:
            raise InputError(f"{self.origin}: cannot read {rel}: {_why(exc)}") from exc
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


def _zip_kind_mode(info: zipfile.ZipInfo) -> tuple[str, int]:
    unix = info.create_system == 3
    mode_full = (info.external_attr >> 16) if unix else 0
    if stat.S_ISLNK(mode_full):
        kind = SYMLINK
    elif info.filename.endswith("/") or stat.S_ISDIR(mode_full):
        kind = DIR
    elif unix and stat.S_IFMT(mode_full) in (stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK):
        kind = SPECIAL  # (no type bits at all, as Python's writestr leaves them, means a file)
    else:
        kind = FILE
    if unix and mode_full:
        return kind, stat.S_IMODE(mode_full)
    return kind, (0o755 if kind == DIR else 0o644)  # DOS/Windows zips carry no Unix mode


def _zip_name_problem(name: str) -> Problem | None:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return Problem(name, "absolute", "zip entry has an absolute path")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{name}/":
        return Problem(name, "parent-ref", "zip entry climbs out of the layer with '..'")
    return None


def _zip_member_problem(info: zipfile.ZipInfo, norm: str, kind: str) -> Problem | None:
    if info.flag_bits & 0x1:
        return Problem(norm, "unsupported", "the member is encrypted; Lambda cannot unzip it")
    if kind != DIR and info.compress_type not in SUPPORTED_METHODS:
        return Problem(norm, "unsupported", f"compression method {info.compress_type} (only store and deflate unzip everywhere)")
    if kind == SYMLINK and info.file_size > 4096:
        return Problem(norm, "unreadable", "symlink target longer than 4096 bytes")
    return None


def _zip_conflict(entries: dict[str, Entry], norm: str, kind: str) -> Problem | None:
    """A name that is both a file (or link) and a directory, or a member under a link: unzipping
    it writes through the link (anywhere on the machine) or fails half-way."""
    old = entries.get(norm)
    if old is not None and (old.kind == DIR) != (kind == DIR):
        return Problem(norm, "conflict", f"the zip holds {norm} both as a directory and as a {kind if old.kind == DIR else old.kind}")
    parent = posixpath.dirname(norm)
    while parent:
        above = entries.get(parent)
        if above is not None and above.kind != DIR:
            via = "through the symlink" if above.kind == SYMLINK else "under the file"
            return Problem(norm, "conflict", f"{norm} would be written {via} {parent}")
        parent = posixpath.dirname(parent)
    return None


def _read_zip(zf: zipfile.ZipFile, origin: str) -> tuple[dict[str, Entry], list[Problem], dict[str, zipfile.ZipInfo]]:
    entries: dict[str, Entry] = {}
    members: dict[str, zipfile.ZipInfo] = {}
    problems: list[Problem] = []
    for info in zf.infolist():
        name = info.filename
        bad = _zip_name_problem(name)
        if bad is not None:
            problems.append(bad)
            continue
        norm = posixpath.normpath(name).lstrip("/")
        if norm in (".", ""):
            continue
        kind, mode = _zip_kind_mode(info)
        bad = _zip_member_problem(info, norm, kind) or _zip_conflict(entries, norm, kind)
        if bad is not None:
            problems.append(bad)
            continue
        link = None
        if kind == SYMLINK:
            try:
                link = zf.read(info).decode("utf-8", "surrogateescape")
            except _zip_read_errors() as exc:
                problems.append(Problem(norm, "unreadable", f"cannot read the link target: {_why(exc)}"))
                continue
        if norm in entries and entries[norm].kind != DIR:
            problems.append(Problem(norm, "duplicate", "the zip holds this name twice; unzip keeps the last"))
        size = info.file_size if kind == FILE else (len(link.encode("utf-8", "surrogateescape")) if link else 0)
        entries[norm] = Entry(norm, kind, size, mode, link)
        if kind != DIR:
            members[norm] = info
        # implicit parent directories (zips need not list them)
        parent = posixpath.dirname(norm)
        while parent and parent not in entries:
            entries[parent] = Entry(parent, DIR, 0, 0o755)
            parent = posixpath.dirname(parent)
    return entries, problems, members


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
    if head[:2] == b"PK":
        import zipfile

        if zipfile.is_zipfile(p):
            try:
                zf = zipfile.ZipFile(p)
                entries, problems, members = _read_zip(zf, origin)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise InputError(f"{origin}: not a readable zip file ({_why(exc)})") from exc
            return Tree(origin, "zip", entries, problems, _zip=zf, _members=members)
    if head[:2] == b"PK" or p.suffix.lower() == ".zip":
        # a truncated download or a renamed file: analysing it as a one-file layer would report
        # "exec format error" on a bootstrap the user never meant to ship
        raise InputError(f"{origin}: not a readable zip file (no central directory: truncated or not a zip)")
    entry = Entry("bootstrap", FILE, st.st_size, stat.S_IMODE(st.st_mode))
    return Tree(origin, "file", {"bootstrap": entry}, [], _single=p.resolve())
