"""The content-addressed image cache: blobs by digest, unpacked roots by image digest, refs by name.

Layout under `cache_dir("images")`:
    blobs/sha256/HEX            verified blobs (configs and layers), written via a temp file + rename
    roots/HEX/rootfs/           the unpacked root of the platform image whose manifest digest is HEX
    roots/HEX/image.json        its metadata (refs, arch, environment, layers, size)
    refs/KEY.json               "this reference for this arch is image HEX" (what `lookup` reads)
    locks/HEX.lock              flock held while one process unpacks HEX

A root only ever appears by `rename` of a finished temp directory, so a reader sees a complete
root or none: an interrupted pull leaves a `roots/.tmp-*` directory that the next pull of the same
image (under its lock) or `image prune` removes. Two concurrent pulls of one image serialise on the
lock; the second finds the root done and does no work.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packer.cachedir import cache_dir
from packer.errors import ImageError
from packer.images.registry import check_digest


@dataclass(frozen=True)
class CachedImage:
    digest: str  # manifest digest of the platform image (or sha256 of a --rootfs tar)
    root: Path  # the unpacked root file system
    arch: str
    env: dict[str, str] = field(default_factory=dict)
    refs: tuple[str, ...] = ()
    size: int = 0  # bytes of the unpacked root
    layers: tuple[str, ...] = ()
    pulled: str = ""

    def to_json(self) -> dict:
        return {"digest": self.digest, "refs": list(self.refs), "arch": self.arch, "root": str(self.root),
                "sizeBytes": self.size, "layers": list(self.layers), "pulled": self.pulled}


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def force_rmtree(path: Path) -> None:
    """Remove a tree even where an image made directories read-only (0555 /usr/bin…)."""
    def fix(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        for dirpath, dirnames, _ in os.walk(path):
            for d in dirnames:
                sub = os.path.join(dirpath, d)
                if not os.path.islink(sub):
                    with contextlib.suppress(OSError):
                        os.chmod(sub, 0o700)
        shutil.rmtree(path, onerror=fix)


class Store:
    def __init__(self, base: Path | None = None) -> None:
        self.base = base or cache_dir("images")
        self.blobs = self.base / "blobs" / "sha256"
        self.roots = self.base / "roots"
        self.refs = self.base / "refs"
        self.locks = self.base / "locks"

    # -- blobs -------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / check_digest(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    # -- images ------------------------------------------------------------------------------------
    def image(self, digest: str) -> CachedImage | None:
        """The cached image `digest`, or None (no network, ever)."""
        d = self.roots / check_digest(digest)
        try:
            meta = json.loads((d / "image.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (d / "rootfs").is_dir():
            return None
        return CachedImage(digest=meta["digest"], root=d / "rootfs", arch=meta.get("arch", ""),
                           env=dict(meta.get("env", {})), refs=tuple(self._refs_of(digest)),
                           size=int(meta.get("sizeBytes", 0)), layers=tuple(meta.get("layers", [])),
                           pulled=meta.get("pulled", ""))

    def images(self) -> list[CachedImage]:
        out = []
        if self.roots.is_dir():
            for d in sorted(self.roots.iterdir()):
                if d.name.startswith("."):
                    continue
                img = self.image("sha256:" + d.name)
                if img is not None:
                    out.append(img)
        return out

    @contextlib.contextmanager
    def _lock(self, digest: str) -> Iterator[None]:
        self.locks.mkdir(parents=True, exist_ok=True)
        with open(self.locks / f"{check_digest(digest)}.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def build_root(self, digest: str, meta: dict, fill: Callable[[Path], None]) -> CachedImage:
        """Make roots/HEX once: `fill(rootfs_dir)` into a temp dir, then one rename. Concurrent
        callers wait on the image's lock; leftovers of interrupted builds of HEX are removed."""
        hexd = check_digest(digest)
        with self._lock(digest):
            done = self.image(digest)
            if done is not None:
                return done
            self.roots.mkdir(parents=True, exist_ok=True)
            for stale in self.roots.glob(f".tmp-{hexd}-*"):
                force_rmtree(stale)
            work = Path(tempfile.mkdtemp(prefix=f".tmp-{hexd}-", dir=self.roots))
            try:
                os.chmod(work, 0o755)
                (work / "rootfs").mkdir(mode=0o755)
                fill(work / "rootfs")
                meta = {**meta, "digest": digest, "sizeBytes": tree_size(work / "rootfs"),
                        "pulled": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                (work / "image.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
                target = self.roots / hexd
                if target.exists():  # a broken leftover (no image.json): replace it
                    force_rmtree(target)
                os.rename(work, target)
            except BaseException:
                force_rmtree(work)
                raise
        img = self.image(digest)
        if img is None:
            raise ImageError(f"image {digest}: the cache at {self.base} lost it while it was being written")
        return img

    # -- references -------------------------------------------------------------------------------
    def _ref_file(self, ref: str, arch: str) -> Path:
        return self.refs / (hashlib.sha256(f"{ref}|{arch}".encode()).hexdigest()[:32] + ".json")

    def remember(self, ref: str, arch: str, digest: str) -> None:
        self.refs.mkdir(parents=True, exist_ok=True)
        path = self._ref_file(ref, arch)
        fd, tmp = tempfile.mkstemp(prefix=".ref-", dir=self.refs)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"ref": ref, "arch": arch, "digest": digest}, out)
        os.replace(tmp, path)

    def _all_refs(self) -> list[dict]:
        out = []
        if self.refs.is_dir():
            for f in sorted(self.refs.glob("*.json")):
                try:
                    out.append(json.loads(f.read_text(encoding="utf-8")))
                except (OSError, ValueError):
                    continue
        return out

    def _refs_of(self, digest: str) -> list[str]:
        return sorted({r["ref"] for r in self._all_refs() if r.get("digest") == digest})

    def lookup(self, ref: str, arch: str) -> CachedImage | None:
        """The image `ref` named when it was pulled for `arch`, from the cache only."""
        try:
            data = json.loads(self._ref_file(ref, arch).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return self.image(data["digest"])

    # -- pruning ---------------------------------------------------------------------------------
    def prune(self, everything: bool = False) -> dict[str, int]:
        """Remove interrupted pulls and blobs no cached image uses; `everything`: the whole cache."""
        removed = {"roots": 0, "blobs": 0, "leftovers": 0, "bytes": 0}
        if everything:
            for img in self.images():
                removed["roots"] += 1
                removed["bytes"] += img.size
            if self.base.exists():
                force_rmtree(self.base)
            return removed
        used: set[str] = set()
        for img in self.images():
            used.update(check_digest(d) for d in img.layers)
            meta = json.loads((img.root.parent / "image.json").read_text(encoding="utf-8"))
            if meta.get("config"):
                used.add(check_digest(meta["config"]))
        for stale in [*self.roots.glob(".tmp-*"), *self.blobs.glob(".part-*")] if self.roots.is_dir() else []:
            removed["leftovers"] += 1
            force_rmtree(stale)
        if self.blobs.is_dir():
            for blob in self.blobs.iterdir():
                if blob.name not in used and not blob.name.startswith("."):
                    removed["blobs"] += 1
                    removed["bytes"] += blob.stat().st_size
                    blob.unlink()
        return removed
