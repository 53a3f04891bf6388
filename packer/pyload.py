"""Which native files a Lambda python3.x runtime will ever import, by CPython's own rules.

CPython imports an extension module `name` from a directory on sys.path by trying, in order, the
file names `name` + each of `importlib.machinery.EXTENSION_SUFFIXES`: on Linux x86_64 for 3.12
that is `.cpython-312-x86_64-linux-gnu.so`, `.abi3.so`, `.so` (aarch64 for arm64). A module built
for another CPython (`.cpython-311-…`), another machine (`-aarch64-` on x86_64), musl
(`-linux-musl`) or another OS (`-darwin`) is therefore never opened: pip put it there for another
interpreter, and on Lambda the import fails with "No module named …" — the classic
`No module named 'pydantic_core._pydantic_core'` after a build with the wrong Python.

On Lambda sys.path holds, for layers, `/opt/python` and `/opt/python/lib/python3.X/site-packages`
of the runtime's own version only (docs/analyze.md cites AWS's page on layer paths); a function's
code is at `/var/task`. A `site-packages` of another version is not on sys.path at all.

This module is pure: it reads names from the tree, decides, and returns facts; analyze turns them
into findings and leaves the files CPython never opens out of the loader simulation.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from packer.tree import FILE, Tree

# `name.TAG.so`: the tag forms CPython and PyPy have used on POSIX systems
_TAGGED = re.compile(r"^(?P<mod>[A-Za-z_]\w*)\.(?P<tag>cpython-(?P<ver>3\d+)(?P<abiflags>[a-z]*)-(?P<plat>[\w-]+)"
                     r"|abi3|pypy\d*-pp\d+-[\w-]+|cpython-3\d+[a-z]*-darwin)\.so$")
# `name[.TAG].pyd`: a Windows extension module (pip on Windows, or --platform win_amd64)
_WINDOWS = re.compile(r"^(?P<mod>[A-Za-z_]\w*)(?:\.(?P<tag>[\w-]+))?\.pyd$")
_SITE = re.compile(r"^python/lib/python(?P<ver>3\.\d+)/site-packages(?:/|$)")
_ARCH_TRIPLET = {"x86_64": "x86_64", "arm64": "aarch64"}
_TRIPLET_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Unloaded:
    """A native file the runtime never loads; analyze leaves it out and says so once per group."""

    rel: str
    group: str  # the directory or package it belongs to (one info line per group)
    why: str


@dataclass(frozen=True)
class NoImport:
    """A package whose extension modules have no variant this runtime's CPython imports."""

    group: str  # the top-level package (path in the tree)
    built_for: str  # what the variants present were built for, e.g. "CPython 3.11 x86_64"
    files: tuple[str, ...]


@dataclass(frozen=True)
class PythonNative:
    unloaded: tuple[Unloaded, ...]
    missing: tuple[NoImport, ...]
    other_site_packages: tuple[str, ...]  # python/lib/python3.X/site-packages of other versions
    has_own_code: bool  # something importable outside those (python/…, or this version's site-packages)


def extension_suffixes(version: str, arch: str) -> tuple[str, ...]:
    """CPython's EXTENSION_SUFFIXES on glibc Linux for `version` ("3.12") and a Lambda arch."""
    return (f".cpython-{version.replace('.', '')}-{_ARCH_TRIPLET[arch]}-linux-gnu.so", ".abi3.so", ".so")


def import_root(rel: str, mount_kind: str) -> tuple[str, str] | None:
    """(sys.path entry in the tree, path below it) for a file the runtime's sys.path can reach;
    None for files outside every entry. `mount_kind`: "layer" or "function"."""
    if mount_kind == "function":
        return "", rel
    m = _SITE.match(rel)
    if m:
        root = m.group(0).rstrip("/")
        return root, rel[len(root) + 1:]
    if rel.startswith("python/"):
        return "python", rel[len("python/"):]
    return None


def describe_tag(tag: str) -> str:
    """A module tag in words: 'CPython 3.11 x86_64', 'CPython 3.12 aarch64 musl', 'PyPy', 'macOS'."""
    if tag.startswith("windows-"):
        return "Windows"
    m = re.fullmatch(r"cpython-3(\d+)([a-z]*)-([\w-]+)", tag)
    if not m:
        return "PyPy" if tag.startswith("pypy") else tag
    minor, flags, plat = m.groups()
    if plat == "darwin":
        return f"CPython 3.{minor} macOS"
    machine = plat.split("-", 1)[0]
    extra = " musl" if plat.endswith("-musl") else "" if plat.endswith("-linux-gnu") else f" ({plat})"
    threaded = " free-threaded" if "t" in flags else ""
    return f"CPython 3.{minor}{threaded} {machine}{extra}"


def python_native(tree: Tree, version: str, arch: str, mount_kind: str = "layer") -> PythonNative:
    """What `python{version}` on `arch` never imports from `tree`, and the packages left with no
    importable extension module at all."""
    wanted = extension_suffixes(version, arch)
    unloaded: list[Unloaded] = []
    variants: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}  # (dir, module) -> [(rel, tag, ok)]
    other_sites: set[str] = set()
    own_code = False
    for e in tree.files():
        rel = e.path
        site = _SITE.match(rel)
        if site and site.group("ver") != version:
            other_sites.add(site.group(0).rstrip("/"))
            if _is_native_name(rel):
                unloaded.append(Unloaded(rel, site.group(0).rstrip("/"),
                                         f"site-packages of Python {site.group('ver')}, not on python{version}'s sys.path"))
            continue
        found = import_root(rel, mount_kind)
        if found is None:
            continue
        own_code = own_code or rel.endswith((".py", ".so"))
        base = rel.rsplit("/", 1)[-1]
        m = _TAGGED.match(base) or _WINDOWS.match(base)
        if m is None:
            continue
        windows = base.endswith(".pyd")
        ok = not windows and any(base.endswith(s) for s in wanted[:2])
        key = (rel[: len(rel) - len(base)], m.group("mod"))
        variants.setdefault(key, []).append((rel, f"windows-{m.group('tag') or ''}" if windows else m.group("tag"), ok))
    missing: dict[str, list[tuple[str, str]]] = {}
    for (directory, _mod), vs in variants.items():
        importable = any(ok for _, _, ok in vs)
        for rel, tag, ok in vs:
            if ok:
                continue
            unloaded.append(Unloaded(rel, _package_of(rel, mount_kind),
                                     f"built for {describe_tag(tag)}, python{version} {arch} imports "
                                     f"{wanted[0].lstrip('.')} or abi3 modules"))
            if not importable:
                missing.setdefault(_package_of(rel, mount_kind), []).append((rel, tag))
    return PythonNative(tuple(unloaded), tuple(_no_import(g, fs) for g, fs in sorted(missing.items())),
                        tuple(sorted(other_sites)), own_code)


def _no_import(group: str, files: list[tuple[str, str]]) -> NoImport:
    kinds = Counter(describe_tag(tag) for _, tag in files)
    return NoImport(group, ", ".join(k for k, _ in kinds.most_common()), tuple(sorted(rel for rel, _ in files)))


def _is_native_name(rel: str) -> bool:
    base = rel.rsplit("/", 1)[-1]
    return base.endswith(".so") or ".so." in base


def _package_of(rel: str, mount_kind: str) -> str:
    """The top-level package directory a module belongs to (its first directory below the
    sys.path entry), or the module file itself at top level."""
    found = import_root(rel, mount_kind)
    if found is None:
        return rel.rsplit("/", 1)[0]
    root, below = found
    top = below.split("/", 1)[0]
    return f"{root}/{top}" if root else top


def python_arch_evidence(tree: Tree, mount_kind: str = "layer") -> list[tuple[str, str]]:
    """(Lambda arch, path) for each extension module a runtime's sys.path reaches whose name says
    the machine it was built for (pip chose those files for one platform); ("", path) for abi3
    modules, whose machine only their ELF header tells."""
    out = []
    for e in tree.files():
        if e.kind != FILE or import_root(e.path, mount_kind) is None:
            continue
        m = _TAGGED.match(e.path.rsplit("/", 1)[-1])
        if m and m.group("plat") and m.group("plat").endswith("-linux-gnu"):
            machine = m.group("plat").split("-", 1)[0]
            if machine in _TRIPLET_ARCH:
                out.append((_TRIPLET_ARCH[machine], e.path))
        elif m and m.group("tag") == "abi3":
            out.append(("", e.path))  # any machine: the caller reads it from the ELF header
    return out

