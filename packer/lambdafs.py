"""The file system a Lambda function sees: the runtime's files plus the trees mounted on it.

Layers are unpacked at `/opt` in order (a later layer's file replaces an earlier one's), the
function at `/var/task`. Everything else is the runtime, known only by name from the live dumps.
Questions like "does /opt/lib/libfoo.so.1 exist?" or "which `curl` does PATH find?" are answered
here, following symlinks across mounts (an absolute link `/opt/lib/x` inside a layer works on
Lambda, so it works here), without touching the host file system.
"""

from __future__ import annotations

from typing import NamedTuple

import posixpath

from packer.elf.reader import ElfInfo, read_elf
from packer.errors import ElfError, InputError
from packer.elf.search import Found
from packer.runtime import Runtime
from packer.tree import DIR, FILE, MAX_LINK_HOPS, SYMLINK, Tree

LAYER_MOUNT = "/opt"
FUNCTION_MOUNT = "/var/task"


class Mount(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    point: str  # "/opt" or "/var/task"
    tree: Tree
    label: str  # how reports name it: "layer", "layer 2 (deps.zip)", "function"


class Node(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    """What a path lands on. `where` is "tree" (a file of a mounted tree) or "runtime"."""

    path: str  # the absolute path after following links
    where: str
    mount: Mount | None = None
    rel: str | None = None  # path inside the tree
    kind: str = FILE


class LambdaFS:
    def __init__(self, runtime: Runtime, mounts: list[Mount]) -> None:
        self.runtime = runtime
        # later mounts at the same point win; search the newest first
        self.mounts = list(mounts)
        # the model does not change during an analysis, and the loader asks the same paths for
        # every program (measured: 45k lookups for /usr/lib/x86_64-linux-gnu)
        self._cache: dict[str, Node | None] = {}
        self._found: dict[str, Found | None] = {}

    def _mount_for(self, path: str) -> list[tuple[Mount, str]]:
        out = []
        for m in reversed(self.mounts):
            if path == m.point:
                out.append((m, ""))
            elif path.startswith(m.point + "/"):
                out.append((m, path[len(m.point) + 1 :]))
        return out

    def lookup(self, path: str, *, hops: int = 0) -> Node | None:
        """Resolve an absolute path; None when nothing is there (or links dangle/loop)."""
        if hops == 0:
            if path in self._cache:
                return self._cache[path]
            node = self._lookup(path, 0)
            self._cache[path] = node
            return node
        return self._lookup(path, hops)

    def _lookup(self, path: str, hops: int) -> Node | None:
        if hops > MAX_LINK_HOPS:
            return None
        physical = self._physical(path, hops)
        if physical is None:
            return None
        path = physical
        for mount, rel in self._mount_for(path):
            if rel == "":
                return Node(path, "tree", mount, "", DIR)
            final, status = mount.tree.resolve(rel)
            if status == "ok" and final is not None:
                entry = mount.tree.entries.get(final)
                kind = entry.kind if entry else DIR
                abs_final = posixpath.join(mount.point, final) if final else mount.point
                return Node(abs_final, "tree", mount, final, kind)
            if status.startswith("absolute:"):
                return self._lookup(status.split(":", 1)[1], hops + 1)
            if status == "escapes":
                # a relative link leaving the mount lands in the runtime's tree on Lambda
                return None
            # "dangling": in a merged /opt, an earlier layer may still have the file
            continue
        if self.runtime.has_library(path) or self.runtime.has_executable(path):
            return Node(self.runtime.canonical(path), "runtime")
        return None

    def _physical(self, path: str, hops: int) -> str | None:
        """`path` without `.` and `..`, resolved as the kernel does: a `..` after a symlinked
        directory goes to the parent of the link's target, not back over the link's name."""
        parts = path.split("/")
        if ".." not in parts:
            out = posixpath.normpath(path)
            return out[1:] if out.startswith("//") else out
        resolved = "/"
        for i, comp in enumerate(parts):
            if comp in ("", "."):
                continue
            if comp == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, comp)
            if ".." not in parts[i + 1 :]:
                return posixpath.normpath(posixpath.join(candidate, *parts[i + 1 :]))
            if not self._mount_for(candidate):
                resolved = candidate  # the runtime's own directories have no links that matter here
                continue
            node = self._lookup(candidate, hops + 1)
            if node is None or node.kind != DIR:
                return None  # ENOENT or ENOTDIR before the `..`
            resolved = node.path
        return resolved

    def exists(self, path: str) -> bool:
        return self.lookup(path) is not None

    def runtime_dir(self, path: str) -> bool:
        """Is `path` a directory of the runtime (some listed library or command lies under it)?"""
        prefix = self.runtime.canonical(path).rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.runtime.lib_paths) or \
            any(p.startswith(prefix) for p in self.runtime.executables)

    def which(self, command: str, path_env: tuple[str, ...] | None = None) -> str | None:
        """Where the runtime's PATH finds `command` (layers' bin/ included via /opt/bin)."""
        if "/" in command:
            return command if self.exists(command) else None
        for d in path_env or self.runtime.path_env:
            candidate = posixpath.join(d, command)
            node = self.lookup(candidate)
            if node is not None and node.kind in (FILE, SYMLINK):
                return posixpath.normpath(candidate)
        return None

    # -- the FileSystem protocol of packer.elf.search ---------------------------------------------
    @property
    def cwd(self) -> str:
        return FUNCTION_MOUNT

    @property
    def lib_token(self) -> str:
        return "lib64"  # Amazon Linux's slibdir on x86_64 and aarch64

    @property
    def platform(self) -> str:
        return self.runtime.machine

    def find(self, path: str) -> Found | None:
        """A library candidate at `path` (the loader's search dirs are already normalised)."""
        if path in self._found:
            return self._found[path]
        found = self._find(path)
        self._found[path] = found
        return found

    def _find(self, path: str) -> Found | None:
        """The path is kept as the loader opened it (its `..` included): it is the `$ORIGIN` base
        of the library found there."""
        node = self.lookup(path)
        if node is None or (node.kind == DIR and node.where != "tree"):
            return None
        if node.where == "runtime":
            if not self.runtime.has_library(node.path):
                return None  # an executable, not a library
            return Found(path, node.path, "runtime", self.runtime.name)
        entry = node.mount.tree.entries.get(node.rel) if node.mount is not None and node.rel else None
        readable = entry is None or node.kind == DIR or bool(entry.mode & 0o004)
        return Found(path, node.path, "tree", node.mount.label if node.mount else "", ref=node, is_dir=node.kind == DIR,
                     readable=readable)

    def elf(self, found: Found) -> ElfInfo | None:
        node = found.ref
        if not isinstance(node, Node) or node.mount is None or node.rel is None:
            return None
        try:
            with node.mount.tree.source(node.rel) as src:
                return read_elf(src)
        except InputError as exc:  # a FIFO or device where a library is looked for: unloadable, never opened blocking
            raise ElfError(f"cannot read file data: {exc}") from exc
