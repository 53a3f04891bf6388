"""The dynamic loader's library search, as glibc's `_dl_map_object` does it, over any file system.

Rules (glibc elf/dl-load.c, elf/get-dynamic-info.h; libtree's conformance tests):
1. A DT_NEEDED name already loaded (by path, by an earlier NEEDED string, or by SONAME) is reused:
   no search. Dependencies are loaded breadth-first, so *which* object loads a library first
   decides whose paths were searched. The dynamic loader is on that list from the start under
   its soname (rtld.c), so a NEEDED `ld-linux-aarch64.so.1` is always met by the runtime's loader.
2. Unless the requesting object has DT_RUNPATH: the DT_RPATH of the requester, then of the object
   that loaded it, and so on up to the program (objects with DT_RUNPATH contribute no DT_RPATH:
   glibc drops DT_RPATH when both are present), then the program's own DT_RPATH.
3. LD_LIBRARY_PATH.
4. The requester's own DT_RUNPATH (never inherited).
5. ld.so.cache and the default directories, unless the requester has DF_1_NODEFLIB. (Lambda's
   /etc/ld.so.conf.d is empty, so the cache holds exactly the default directories' libraries.)
Only a candidate of the wrong ELF class or machine is skipped and the search goes on (glibc
`open_verify`); any other file that is not a loadable ELF object stops the loader with an error
("file too short", "invalid ELF header", "cannot read file data" for a directory or a truncated
file, or a SIGBUS when a truncated file's segments are touched).
`$ORIGIN` is the directory of the object as it was found (the program's: its real path), `$LIB`
and `$PLATFORM` are the target's values. Paths are not normalised as text: the kernel resolves
`..` after following the link before it. An empty RPATH/RUNPATH/LD_LIBRARY_PATH element is the
current directory (glibc `fillin_rpath`), `/var/task` on Lambda.
Hardware-capability subdirectories of each search directory are looked at first: `glibc-hwcaps/
x86-64-v4`, `-v3`, `-v2` (glibc 2.33 and later) and the legacy ones (`tls`, `x86_64`, `haswell`,
`avx512_1`…, until glibc 2.37). Which of them the loader uses depends on the CPU the function runs
on, so a library found there is reported with that caveat (`Edge.hwcaps`), never as certain.

The searcher is pure over a `FileSystem`, so the same code answers "what happens on Lambda"
(`LambdaFS`) and "what happens on this host" (`HostFS`, used to test against the real `ld.so`).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from packer.elf.reader import DF_1_PIE, ElfInfo
from packer.errors import ElfError

PROVIDED, BUNDLED, SHADOWED, VENDORABLE, MISSING = "provided", "bundled", "shadowed", "vendorable", "missing"
UNLOADABLE = "unloadable"  # the loader opened a file that is not a loadable object and stopped

# What ld.so prints for a file it cannot load, by the reader's complaint (glibc open_verify).
_LDSO_WORDS = {"not an ELF file": "invalid ELF header", "file too short for an ELF header": "file too short"}


@dataclass(frozen=True)
class Found:
    """A candidate file the file system holds at an absolute path."""

    path: str  # the path the loader opened (as searched, links not resolved)
    real: str  # after following links
    where: str  # "tree" | "runtime" | "host"
    label: str = ""  # which mount/layer, for reports
    ref: object = field(default=None, compare=False, hash=False)  # the file system's own handle
    is_dir: bool = False  # open() succeeds on a directory; the loader's read() then fails
    readable: bool = True  # by Lambda's user, who owns no file: open() fails with EACCES, the search goes on


class FileSystem(Protocol):
    cwd: str
    lib_token: str  # $LIB
    platform: str  # $PLATFORM

    def find(self, path: str) -> Found | None: ...

    def elf(self, found: Found) -> ElfInfo | None:
        """Header facts of a found file; None when the content is unknown (runtime files).
        Raises ElfError for a file that is not a valid ELF object."""
        ...


class Step(NamedTuple):
    """One directory the loader looks in (a tuple: hashed in every memo key of Loader.search)."""

    dir: str
    source: str  # "RPATH of /opt/bootstrap", "LD_LIBRARY_PATH", "RUNPATH of …", "default path"


@dataclass
class Obj:
    """One loaded object in a simulated process."""

    path: str
    real: str
    where: str
    info: ElfInfo | None
    loader: Obj | None = None
    label: str = ""


@dataclass
class Edge:
    """One DT_NEEDED entry of one object and what the loader does with it."""

    requester: str
    name: str
    status: str  # provided | bundled | shadowed | vendorable | missing | loaded (already loaded)
    path: str | None = None
    via: str | None = None  # Step.source that found it, or "already loaded"
    searched: list[Step] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) candidates rejected
    shadowed: str | None = None  # the tree copy that loses (status shadowed)
    host_path: str | None = None  # vendorable: where this host has it
    target: Obj | None = None
    found: Found | None = field(default=None, repr=False)  # the file the loader opened, to read it
    error: str | None = None  # status unloadable: what ld.so reports
    hwcaps: tuple[str, ...] = ()  # copies in hardware-capability subdirectories: used on some CPUs only


@dataclass
class Process:
    """The result of loading one root object: every object and every NEEDED edge, in load order."""

    root: Obj
    objects: list[Obj]
    edges: list[Edge]
    interp_ok: bool | None = None

    def children(self, obj_path: str) -> list[Edge]:
        return [e for e in self.edges if e.requester == obj_path]


def expand(entry: str, obj: Obj, fs: FileSystem) -> str | None:
    """Expand $ORIGIN/$LIB/$PLATFORM in one RPATH/RUNPATH entry; None if it cannot be used."""
    origin_base = obj.real if obj.loader is None else obj.path
    origin = posixpath.dirname(origin_base)

    def sub(m: re.Match[str]) -> str:
        token = m.group(1) or m.group(2)
        return {"ORIGIN": origin, "LIB": fs.lib_token, "PLATFORM": fs.platform}.get(token, m.group(0))

    out = re.sub(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)\b)", sub, entry)
    return search_dir(out, fs.cwd)


def search_dir(entry: str, cwd: str) -> str:
    """One search-path element as the loader opens it: empty is the current directory, relative
    is relative to it; `..` stays (it is resolved physically by the file system)."""
    if not entry:
        return cwd
    if not entry.startswith("/"):
        entry = posixpath.join(cwd, entry)
    entry = re.sub(r"/+", "/", entry)
    return entry.rstrip("/") or "/"


class Loader:
    """Simulates glibc loading a program (or dlopen of a library) on a FileSystem."""

    def __init__(self, fs: FileSystem, ld_library_path: tuple[str, ...], default_dirs: tuple[str, ...],
                 *, machine: int | None = None, bits: int | None = None, host_finder=None,
                 hwcap_subdirs: tuple[str, ...] = (), rtld: str | None = None) -> None:
        self.fs = fs
        # the system's dynamic loader (PT_INTERP path); by default the runtime's for `machine`
        self.rtld = rtld if rtld is not None else _RTLD.get(machine or 0)
        self.hwcap_subdirs = hwcap_subdirs  # in the loader's priority order (`hwcap_subdirs()`)
        self._hwcap_dirs: dict[str, tuple[str, ...]] = {}
        self.ld_library_path = tuple(search_dir(d, fs.cwd) for d in ld_library_path)
        self.default_dirs = default_dirs
        self.machine = machine
        self.bits = bits
        self.host_finder = host_finder  # callable(name) -> host path | None, for vendorable libs
        self._elf_cache: dict[str, ElfInfo | ElfError | None] = {}
        self._env_steps = tuple(Step(d, "LD_LIBRARY_PATH") for d in self.ld_library_path)
        self._default_steps = tuple(Step(d, "default path") for d in self.default_dirs)
        self._searched: dict[tuple[str, tuple[Step, ...]], Edge] = {}

    def cached(self) -> dict[str, ElfInfo]:
        return {k: v for k, v in self._elf_cache.items() if isinstance(v, ElfInfo)}

    def seed(self, infos: dict[str, ElfInfo]) -> None:
        """Reuse headers already read (keyed by real path) instead of reading them again."""
        self._elf_cache.update(infos)

    def elf(self, found: Found) -> ElfInfo | None:
        key = found.real
        if key not in self._elf_cache:
            try:
                self._elf_cache[key] = self.fs.elf(found)
            except ElfError as exc:
                self._elf_cache[key] = exc
        value = self._elf_cache[key]
        if isinstance(value, ElfError):
            raise value
        return value

    def steps_for(self, requester: Obj, main: Obj | None) -> list[Step]:
        steps: list[Step] = []
        info = requester.info
        if info is None or not info.runpath:
            did_main = False
            obj: Obj | None = requester
            while obj is not None:
                if obj.info is not None and obj.info.rpath and not obj.info.runpath:
                    for e in obj.info.rpath:
                        d = expand(e, obj, self.fs)
                        if d:
                            steps.append(Step(d, f"RPATH of {obj.path}"))
                if obj is main:
                    did_main = True
                obj = obj.loader
            if not did_main and main is not None and main.info is not None and main.info.rpath and not main.info.runpath:
                for e in main.info.rpath:
                    d = expand(e, main, self.fs)
                    if d:
                        steps.append(Step(d, f"RPATH of {main.path}"))
        steps.extend(self._env_steps)
        if info is not None and info.runpath:
            for e in info.runpath:
                d = expand(e, requester, self.fs)
                if d:
                    steps.append(Step(d, f"RUNPATH of {requester.path}"))
        if info is None or not info.nodeflib:
            steps.extend(self._default_steps)
        return steps

    def _compatible(self, info: ElfInfo | None) -> str | None:
        if info is None:
            return None
        if self.bits is not None and info.bits != self.bits:
            return f"wrong ELF class ({info.bits}-bit)"
        if self.machine is not None and info.machine != self.machine:
            return f"wrong machine ({info.machine_name})"
        return None

    def search(self, name: str, requester: Obj, main: Obj | None) -> Edge:
        """The edge for `requester` needing `name`. The outcome depends only on the name and the
        search steps (the file system does not change during a run), so it is memoised on them
        (measured: 4,849 searches for /usr/lib/x86_64-linux-gnu, ~600 distinct)."""
        if "/" in name:
            return self._search(name, requester, main)
        steps = self.steps_for(requester, main)
        key = (name, tuple(steps))
        done = self._searched.get(key)
        if done is None:
            done = self._searched[key] = self._search(name, requester, main, steps)
        target = done.target
        if target is not None:
            target = Obj(target.path, target.real, target.where, None, None, target.label)
        # a shallow copy for this requester, as dataclasses.replace made it (which cost ~18 us a
        # call through field introspection; 4,850 calls on /usr/lib/x86_64-linux-gnu)
        edge = Edge.__new__(Edge)
        edge.__dict__.update(done.__dict__)
        edge.requester = requester.path
        edge.target = target
        return edge

    def _search(self, name: str, requester: Obj, main: Obj | None, steps: list[Step] | None = None) -> Edge:
        edge = Edge(requester.path, name, MISSING)
        if "/" in name:  # a path dependency: opened as is, relative to the working directory
            path = name if name.startswith("/") else posixpath.join(self.fs.cwd, name)
            found = self.fs.find(path)
            edge.searched.append(Step(posixpath.dirname(path), "path in DT_NEEDED"))
            if found is not None:
                refusal = self._refusal(found) if found.where != "runtime" else None
                if refusal is not None:
                    edge.status, edge.path, edge.error, edge.found = UNLOADABLE, found.path, refusal, found
                else:
                    self._accept(edge, found, "path in DT_NEEDED")
            return edge
        steps = steps if steps is not None else self.steps_for(requester, main)
        seen_dirs: set[str] = set()
        for i, step in enumerate(steps):
            if step.dir in seen_dirs:
                continue
            seen_dirs.add(step.dir)
            edge.searched.append(step)
            found = self.fs.find(f"{step.dir}/{name}" if step.dir != "/" else f"/{name}")
            alternatives = self._hwcap_copies(step.dir, name)
            if alternatives:
                edge.hwcaps = alternatives
                if found is None:  # only there: loads on CPUs with that capability, missing elsewhere
                    found = self.fs.find(alternatives[0])
            if found is None:
                continue
            if not found.readable:
                edge.skipped.append((found.path, "not readable by Lambda's user (EACCES), so the loader searches on"))
                continue
            if found.where != "runtime":
                refusal = self._refusal(found)
                if refusal is not None:
                    edge.status, edge.path, edge.via, edge.error, edge.found = UNLOADABLE, found.path, step.source, refusal, found
                    return edge
                why = self._compatible(self.elf(found))
                if why:
                    edge.skipped.append((found.path, why))
                    continue
                refusal = _not_a_library(self.elf(found))
                if refusal is not None:
                    edge.status, edge.path, edge.via, edge.error, edge.found = UNLOADABLE, found.path, step.source, refusal, found
                    return edge
            self._accept(edge, found, step.source)
            if found.where == "runtime":
                # shadowing: does a later search directory hold the tree's own copy?
                for later in steps[i + 1 :]:
                    other = self.fs.find(f"{later.dir}/{name}" if later.dir != "/" else f"/{name}")
                    if other is not None and other.where == "tree":
                        edge.status = SHADOWED
                        edge.shadowed = other.path
                        break
            return edge
        if self.host_finder is not None:
            host = self.host_finder(name)
            if host is not None:
                edge.status = VENDORABLE
                edge.host_path = str(host)
        return edge

    def _hwcap_copies(self, directory: str, name: str) -> tuple[str, ...]:
        """Loadable copies of `name` in the hardware-capability subdirectories of `directory`."""
        if not self.hwcap_subdirs:
            return ()
        subs = self._hwcap_dirs.get(directory)
        if subs is None:
            subs = tuple(f"{directory}/{s}" for s in self.hwcap_subdirs
                         if (d := self.fs.find(f"{directory}/{s}")) is not None and d.is_dir)
            self._hwcap_dirs[directory] = subs
        out = []
        for sub in subs:
            found = self.fs.find(f"{sub}/{name}")
            if found is not None and found.where != "runtime" and found.readable and self._refusal(found) is None \
                    and self._compatible(self.elf(found)) is None:
                out.append(found.path)
        return tuple(out)

    def _refusal(self, found: Found) -> str | None:
        """What ld.so says when it stops at `found` (None: it is an ELF object it can judge)."""
        if found.is_dir:
            return "cannot read file data: Is a directory"
        try:
            self.elf(found)
        except ElfError as exc:
            return _LDSO_WORDS.get(str(exc), f"cannot read file data, or SIGBUS when mapped ({exc})")
        return None

    def _accept(self, edge: Edge, found: Found, via: str) -> None:
        edge.found = found
        edge.path = found.path
        edge.via = via
        edge.status = PROVIDED if found.where == "runtime" else BUNDLED
        edge.target = Obj(found.path, found.real, found.where, None, label=found.label)

    def _add_rtld(self, loaded: dict[str, Obj], interp_path: str | None) -> None:
        """The dynamic loader is on every namespace's list under its soname (glibc rtld.c adds it
        before anything is loaded), so a DT_NEEDED `ld-linux-aarch64.so.1` is met without a
        search — in a library dlopen'd by the runtime's interpreter as in a program. Not when the
        program names another interpreter (musl's): that one is the process's loader."""
        rtld = self.rtld
        if not rtld:
            return
        name = posixpath.basename(rtld)
        if name in loaded or (interp_path and posixpath.basename(interp_path) != name):
            return
        found = self.fs.find(rtld)
        loaded[name] = Obj(rtld, found.real if found is not None else rtld, "runtime", None, label="dynamic loader")

    def load(self, root: Found, *, as_program: bool, vendored_dir: str | None = None,
             host_elf=None, interp: str | None = None) -> Process:
        """Load `root` and its dependency closure breadth-first, as ld.so would.

        `vendored_dir`: where vendorable host libraries would be placed (their own NEEDED are then
        resolved as if they lived there), so a report shows the whole closure to vendor."""
        info = self.elf(root)
        main = Obj(root.path, root.real, root.where, info, None, root.label)
        process = Process(main, [main], [])
        loaded: dict[str, Obj] = {main.path: main, main.real: main}
        if info is not None and info.soname:
            loaded[info.soname] = main
        interp_path = interp or (info.interp if info is not None else None)
        if interp_path:
            found_interp = self.fs.find(interp_path)
            process.interp_ok = found_interp is not None
            if found_interp is not None:
                obj = Obj(found_interp.path, found_interp.real, found_interp.where, None)
                if found_interp.where != "runtime":
                    try:
                        obj.info = self.elf(found_interp)
                    except ElfError:
                        pass
                loaded[posixpath.basename(interp_path)] = obj
                if info is not None and info.interp:
                    loaded[posixpath.basename(info.interp)] = obj
                if obj.info is not None and obj.info.soname:  # rtld answers to its soname too (rtld.c)
                    loaded[obj.info.soname] = obj
        self._add_rtld(loaded, interp_path)
        queue: deque[Obj] = deque([main])
        program = main if as_program else None
        while queue:
            obj = queue.popleft()
            if obj.info is None:
                continue
            for name in obj.info.needed:
                hit = loaded.get(name)
                if hit is not None:
                    process.edges.append(Edge(obj.path, name, "loaded", hit.path, "already loaded", target=hit))
                    continue
                edge = self.search(name, obj, program)
                process.edges.append(edge)
                target = None
                if edge.status in (BUNDLED, PROVIDED, SHADOWED) and edge.target is not None:
                    target = edge.target
                    target.loader = obj
                    if target.where != "runtime":
                        try:
                            target.info = self.elf(edge.found)  # type: ignore[arg-type]
                        except ElfError:
                            target.info = None
                elif edge.status == VENDORABLE and host_elf is not None and edge.host_path:
                    placed = posixpath.join(vendored_dir, name) if vendored_dir else edge.host_path
                    target = Obj(placed, placed, "host", host_elf(edge.host_path), obj, label=edge.host_path)
                    edge.target = target
                if target is None:
                    continue
                loaded[name] = target
                loaded.setdefault(target.path, target)
                if target.info is not None and target.info.soname:
                    loaded.setdefault(target.info.soname, target)
                process.objects.append(target)
                queue.append(target)
        return process


def _rtld_by_machine() -> dict[int, str]:
    """e_machine -> the runtime's loader path (packer.runtime.LOADER, keyed as the Loader is)."""
    from packer.elf.reader import MACHINES
    from packer.runtime import ARCH_MACHINE, LOADER

    numbers = {name: num for num, name in MACHINES.items()}
    return {numbers[ARCH_MACHINE[arch]]: path for arch, path in LOADER.items()}


_RTLD = _rtld_by_machine()


def _not_a_library(info: ElfInfo | None) -> str | None:
    """A valid ELF object of the right class and machine that ld.so still refuses as a
    dependency (glibc _dl_map_object_from_fd): a program."""
    if info is None:
        return None
    if info.type == 2:  # ET_EXEC
        return "cannot dynamically load executable"
    if info.flags_1 & DF_1_PIE:
        return "cannot dynamically load position-independent executable"
    return None


def hwcap_subdirs(machine: str, glibc: tuple[int, ...] | None) -> tuple[str, ...]:
    """Hardware-capability subdirectories glibc `glibc` may search under every search directory on
    `machine`, in priority order (elf/dl-hwcaps.c, sysdeps/x86_64/dl-hwcaps-subdirs.c; legacy
    subdirectories until 2.37). Which of them a given CPU uses is not known statically."""
    out: list[str] = []
    if glibc is None:
        glibc = (2, 34)
    if machine == "x86_64" and glibc >= (2, 33):
        out += ["glibc-hwcaps/x86-64-v4", "glibc-hwcaps/x86-64-v3", "glibc-hwcaps/x86-64-v2"]
    if glibc < (2, 37):
        platforms = ("haswell", "xeon_phi", "x86_64", "avx512_1") if machine == "x86_64" else (machine,)
        for p in platforms:
            out += [f"tls/{p}", p]
        out.append("tls")
    return tuple(out)


class HostFS:
    """This machine's real file system, for comparing the searcher with the real ld.so."""

    where = "host"

    def __init__(self, cwd: str | None = None, lib_token: str = "lib", platform: str = "x86_64") -> None:
        self.cwd = cwd or os.getcwd()
        self.lib_token = lib_token
        self.platform = platform

    def find(self, path: str) -> Found | None:
        if not os.path.exists(path):
            return None
        return Found(path, os.path.realpath(path), "host", is_dir=os.path.isdir(path))

    def elf(self, found: Found) -> ElfInfo | None:
        from packer.elf.reader import read_path

        return read_path(found.real)
