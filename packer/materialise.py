"""Writing a tree (a directory, a zip or a single binary) to disk without ever writing outside.

Every command that unpacks or copies the user's input (`invoke` staging layers, `vendor` copying
its input, `vendor` adding libraries to the copy) goes through here, because the obvious way —
`open(root / name, "w")` — follows links: a zip holding `lib -> /elsewhere` and then `lib/file`
writes `/elsewhere/file`, and a tree whose `lib` links out of it receives the vendored libraries
wherever the link points. So:

* every path is walked one component at a time from an open directory descriptor with
  `O_NOFOLLOW | O_DIRECTORY`; a component that is a link or a file is never entered (it is
  replaced when a later layer overrides it, refused otherwise);
* files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` after removing what was there;
* links from the input are created last, so nothing of the same input is written through them;
* the size and entry budget is checked on the inventory before the first byte is written, and the
  bytes actually inflated are counted too (a member cannot inflate past what it declared);
* inputs that cannot be unpacked faithfully (names with `..`, absolute names, encrypted members,
  unsupported methods, a name that is both a file and a directory) are refused, or returned as
  skipped when the caller wants Lambda's lenient reading.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from packer.errors import InputError
from packer.quotas import UNZIPPED_LIMIT
from packer.tree import DIR, FILE, SPECIAL, SYMLINK, Entry, Tree

# Lambda's quota for a function plus all its layers, unzipped ("Deployment package (.zip file
# archive) size ... 250 MB unzipped", docs.aws.amazon.com/lambda/latest/dg/gteh-limits.html).
LAMBDA_UNZIPPED_MAX = UNZIPPED_LIMIT
# No Lambda quota on entries; a bound so a zip of empty files cannot exhaust inodes.
MAX_ENTRIES = 1_000_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass
class Budget:
    """Bytes and entries still allowed; shared by the layers of one `invoke` (Lambda counts the
    function and all its layers together)."""

    max_bytes: int = LAMBDA_UNZIPPED_MAX
    max_entries: int = MAX_ENTRIES
    used_bytes: int = 0
    used_entries: int = 0

    def reserve(self, nbytes: int, nentries: int, origin: str) -> None:
        if self.used_bytes + nbytes > self.max_bytes:
            raise InputError(f"{origin}: unpacks to {self.used_bytes + nbytes:,} bytes, over the "
                             f"{self.max_bytes:,}-byte budget (Lambda's unzipped limit); nothing was written")
        if self.used_entries + nentries > self.max_entries:
            raise InputError(f"{origin}: holds {self.used_entries + nentries:,} entries, over the "
                             f"{self.max_entries:,}-entry budget; nothing was written")
        self.used_bytes += nbytes
        self.used_entries += nentries


@dataclass
class Plan:
    """What `apply` will write: directories, then files, then links (links last: nothing of this
    input is ever written through a link it created)."""

    dirs: list[Entry] = field(default_factory=list)
    files: list[Entry] = field(default_factory=list)
    links: list[Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why) left out

    @property
    def nbytes(self) -> int:
        return sum(e.size for e in self.files) + sum(e.size for e in self.links)


def plan(tree: Tree, *, strict: bool = True) -> Plan:
    """Order the tree's entries for writing. `strict` refuses a tree with any entry that cannot be
    written faithfully (InputError naming the first); otherwise such entries are skipped and listed."""
    out = Plan()
    bad = [(p.path, p.detail) for p in tree.problems]
    bad += [(e.path, "a device, fifo or socket cannot be unpacked") for e in tree.entries.values() if e.kind == SPECIAL]
    if strict and bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(f"{tree.origin}: refused: {bad[0][0]}: {bad[0][1]}{more}; nothing was written")
    out.skipped = bad
    for e in sorted(tree.entries.values(), key=lambda e: e.path):
        {DIR: out.dirs, FILE: out.files, SYMLINK: out.links}.get(e.kind, []).append(e)
    return out


def _remove_at(name: str, dir_fd: int) -> None:
    """Remove whatever `name` is inside `dir_fd` (a directory recursively, never following links)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


class Writer:
    """Writes below one root directory through descriptors; `replace` lets a later layer override
    what an earlier one put there (Lambda: the last extracted layer wins), otherwise an existing
    link or file in the way is an error."""

    def __init__(self, root: Path, *, replace: bool = False) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.replace = replace
        self._fd = os.open(root, _DIR_FLAGS)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _enter(self, fd: int, part: str, rel: str, mode: int = 0o755) -> int:
        """The descriptor of directory `part` in `fd`, created when missing, never a link."""
        for _ in range(3):  # (remove what is in the way,) create, open
            try:
                return os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise InputError(f"{self.root}/{rel}: {exc.strerror}") from exc
                if not self.replace:
                    raise InputError(f"{self.root}/{rel}: is a link or a file; refusing to write through it",
                                     hint="make it a real directory inside the tree") from None
                _remove_at(part, fd)
        raise InputError(f"{self.root}/{rel}: changed while being written")

    @contextlib.contextmanager
    def parent(self, rel: str) -> Iterator[tuple[int, str]]:
        """(descriptor of rel's directory, rel's last component), every directory on the way entered
        without following links."""
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise InputError(f"{rel!r}: not a path inside {self.root}")
        fd = os.dup(self._fd)
        try:
            done = []
            for part in parts[:-1]:
                done.append(part)
                nfd = self._enter(fd, part, "/".join(done))
                os.close(fd)
                fd = nfd
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def mkdir(self, rel: str, mode: int = 0o755) -> None:
        with self.parent(rel) as (fd, name):
            os.close(self._enter(fd, name, rel, mode))

    def chmod_dir(self, rel: str, mode: int) -> None:
        with self.parent(rel) as (fd, name):
            dfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                os.fchmod(dfd, mode)
            finally:
                os.close(dfd)

    def _clear(self, fd: int, name: str, rel: str) -> None:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if not self.replace and stat.S_ISDIR(st.st_mode):
            raise InputError(f"{self.root}/{rel}: is a directory; refusing to replace it")
        _remove_at(name, fd)

    def write(self, rel: str, src: BinaryIO, mode: int, budget: Budget | None = None, origin: str = "") -> int:
        """Create file `rel` from the stream (what was there is replaced; a link there is removed,
        never followed). Returns the bytes written."""
        with self.parent(rel) as (fd, name):
            self._clear(fd, name, rel)
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
            written = 0
            try:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if budget is not None and written > budget.max_bytes:
                        raise InputError(f"{origin}: {rel} inflates past the {budget.max_bytes:,}-byte budget")
                    _write_all(out, chunk)
                os.fchmod(out, mode & 0o7777)
            finally:
                os.close(out)
            return written

    def copy_file(self, rel: str, host: str | Path, mode: int | None = None) -> None:
        """Copy a host file (a vendored library) to `rel`."""
        with open(host, "rb") as src:
            self.write(rel, src, stat.S_IMODE(os.fstat(src.fileno()).st_mode) if mode is None else mode)

    def write_bytes(self, rel: str, data: bytes, mode: int = 0o644) -> None:
        import io

        self.write(rel, io.BytesIO(data), mode)

    def symlink(self, rel: str, target: str) -> None:
        with self.parent(rel) as (fd, name):
            self._clear(fd, name, rel)
            os.symlink(target, name, dir_fd=fd)

    def rename(self, src_rel: str, dst_rel: str) -> None:
        """Move an entry inside the root (never through a link)."""
        with self.parent(src_rel) as (sfd, sname), self.parent(dst_rel) as (dfd, dname):
            self._clear(dfd, dname, dst_rel)
            os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

    def unlink(self, rel: str) -> None:
        with self.parent(rel) as (fd, name):
            _remove_at(name, fd)

    def is_real_file(self, rel: str) -> bool:
        """True when `rel` is a regular file reached without crossing any link."""
        try:
            with self.parent(rel) as (fd, name):
                return stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
        except (InputError, OSError):
            return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def apply(p: Plan, tree: Tree, writer: Writer, budget: Budget | None = None) -> None:
    """Write the plan. The budget is reserved in full before the first byte is written."""
    budget = budget if budget is not None else Budget()
    budget.reserve(p.nbytes, len(p.dirs) + len(p.files) + len(p.links), tree.origin)
    for e in p.dirs:
        writer.mkdir(e.path, 0o755)
    for e in p.files:
        with tree.open(e.path) as src:
            got = writer.write(e.path, src, e.mode, budget, tree.origin)
        if got != e.size and tree.kind == "zip":
            raise InputError(f"{tree.origin}: {e.path} inflates to {got:,} bytes, not the {e.size:,} it declares")
    for e in p.links:
        writer.symlink(e.path, e.link or "")
    for e in p.dirs:  # modes last: a read-only directory must not stop its own files being written
        if e.mode & 0o7777 != 0o755:
            writer.chmod_dir(e.path, (e.mode & 0o7777) | 0o700)


def unpack(tree: Tree, dst: Path, *, replace: bool = False, strict: bool = True,
           budget: Budget | None = None) -> list[tuple[str, str]]:
    """Write `tree` below `dst`; the entries left out (only when not strict) are returned."""
    p = plan(tree, strict=strict)
    with Writer(dst, replace=replace) as w:
        apply(p, tree, w, budget)
    return p.skipped
