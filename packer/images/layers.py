"""Applying image layers (tar, gzip, zstd) in order onto one directory, as a container runtime does.

Whiteouts follow the OCI image spec: `.wh.NAME` deletes NAME from the layers below, and
`.wh..wh..opq` in a directory hides everything the lower layers put there. A layer is hostile
input: every path is resolved *inside* the root (a symlink in the tree, absolute or with `..`,
is followed as if the root were `/`), so nothing is ever written outside it; device nodes are
not created (bubblewrap gives the sandbox its own /dev). The compressed bytes are hashed while
they are read, so a layer that does not match its digest is refused even from the cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from packer.errors import ImageError
from packer.images.store import force_rmtree

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_HOPS = 40
IS_ROOT = os.geteuid() == 0
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _HashingReader(io.RawIOBase):
    """Reads through to `raw` and hashes what passed, so the digest is checked in the same pass."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.raw.readinto(b)
        if n:
            self.sha.update(memoryview(b)[:n])
        return n or 0

    def drain(self) -> None:
        while self.raw.read(1 << 20):
            pass


@dataclass
class RootBuilder:
    """The directory being built, plus what must happen after the last layer (directory modes)."""

    root: Path
    dir_modes: dict[str, int] = field(default_factory=dict)

    def finish(self) -> None:
        """Directory modes last, deepest first: a 0555 directory must still take its children first."""
        for rel, mode in sorted(self.dir_modes.items(), key=lambda kv: -kv[0].count("/")):
            try:
                os.chmod(self.root / rel, mode)
            except OSError:
                pass


def resolve_inside(root: Path, rel: str, follow_last: bool = False) -> str:
    """`rel` as a path relative to `root`, with symlinks met on the way resolved *within* root.

    Like openat2(RESOLVE_IN_ROOT): `..` stops at the root, absolute link targets start at the root.
    Returns the clean relative path ('' is the root itself)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if (parts or follow_last) and candidate.is_symlink():
            hops += 1
            if hops > MAX_HOPS:
                raise ImageError(f"layer path {rel!r}: too many symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return "/".join(done)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        if path.exists() or path.is_symlink():
            path.unlink()
        return
    force_rmtree(path)  # a 0555 directory of a lower layer must be emptied too


def _open_layer(path: Path, media_type: str):
    raw = open(path, "rb")
    head = raw.read(4)
    raw.seek(0)
    hashing = _HashingReader(raw)
    buffered = io.BufferedReader(hashing, 1 << 20)
    if head.startswith(ZSTD_MAGIC) or media_type.endswith("+zstd"):
        try:
            import zstandard
        except ImportError as exc:
            raw.close()
            raise ImageError(f"layer {path.name} is zstd-compressed and the zstandard module is not installed",
                             hint="pip install zstandard") from exc
        stream = zstandard.ZstdDecompressor().stream_reader(buffered)
        return raw, hashing, tarfile.open(fileobj=stream, mode="r|")
    mode = "r|gz" if head.startswith(GZIP_MAGIC) else "r|"
    return raw, hashing, tarfile.open(fileobj=buffered, mode=mode)


def apply_layer(builder: RootBuilder, path: Path, digest: str, media_type: str = "") -> None:
    """Apply one layer blob; refused if its bytes do not hash to `digest` (the root is then unusable,
    and the caller throws the half-built directory away)."""
    raw, hashing, tar = _open_layer(path, media_type)
    written: set[str] = set()
    try:
        with tar:
            for member in tar:
                _apply_member(builder, tar, member, written)
        hashing.drain()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageError(f"layer {digest[:19]}: unreadable ({exc})") from exc
    finally:
        raw.close()
    got = "sha256:" + hashing.sha.hexdigest()
    if got != digest:
        raise ImageError(f"layer {digest}: bytes hash to {got}; refused",
                         hint="remove it with `layerpack image prune` and pull again")


def _apply_member(builder: RootBuilder, tar: tarfile.TarFile, m: tarfile.TarInfo, written: set[str]) -> None:
    root = builder.root
    name = posixpath.normpath("/" + m.name).lstrip("/")
    if not name:
        return
    parent_rel, base = posixpath.split(name)
    parent = resolve_inside(root, parent_rel, follow_last=True)
    if base == OPAQUE:
        _opaque(root, parent, written)
        return
    if base.startswith(WHITEOUT):
        victim = root / parent / base[len(WHITEOUT):] if parent else root / base[len(WHITEOUT):]
        if base[len(WHITEOUT):] not in ("", ".", ".."):
            _remove(victim)
        return
    rel = posixpath.join(parent, base) if parent else base
    (root / parent).mkdir(parents=True, exist_ok=True)
    target = root / rel
    written.add(rel)
    if m.isdir():
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            _remove(target)
        target.mkdir(exist_ok=True)
        os.chmod(target, 0o755 | (m.mode & 0o7777) | 0o700)
        builder.dir_modes[rel] = m.mode & 0o7777
        _owner(target, m)
        return
    if target.is_dir() and not target.is_symlink():
        _remove(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    builder.dir_modes.pop(rel, None)
    if m.issym():
        os.symlink(m.linkname, target)
        _owner(target, m)
    elif m.islnk():
        src = root / resolve_inside(root, posixpath.normpath("/" + m.linkname).lstrip("/"))
        if src.is_symlink() or not src.is_file():
            raise ImageError(f"layer hard link {m.name} -> {m.linkname}: target is not a file in the image")
        os.link(src, target, follow_symlinks=False)
    elif m.isreg():
        src = tar.extractfile(m)
        with open(target, "xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        _owner(target, m)
        os.chmod(target, m.mode & 0o7777 & ~(stat.S_ISUID | stat.S_ISGID))
    # fifos and device nodes are skipped: the sandbox's /dev comes from bubblewrap


def _owner(path: Path, m: tarfile.TarInfo) -> None:
    """Keep the image's owners when we can (root): a root-only file must stay root-only."""
    if IS_ROOT:
        try:
            os.lchown(path, m.uid, m.gid)
        except OSError:
            pass


def _opaque(root: Path, parent: str, written: set[str]) -> None:
    """Hide what lower layers put in `parent`, keeping what this layer already wrote there."""
    directory = root / parent
    if not directory.is_dir():
        return
    for entry in os.listdir(directory):
        rel = posixpath.join(parent, entry) if parent else entry
        if rel not in written:
            _remove(directory / entry)
