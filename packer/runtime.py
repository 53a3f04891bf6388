"""A target Lambda runtime: which libraries and commands it has, which symbol versions it provides.

All facts are data under `rules/runtimes/` (live-Lambda dumps with their source headers); this module
only loads them. Keeping policy out of code is what lets a new dump be dropped in without a release
of logic, and lets a user see exactly where each "provided" verdict comes from.
"""

from __future__ import annotations

import datetime
import functools
import os
import posixpath
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, TYPE_CHECKING

from packer import datafiles, tomlcache
from packer.errors import PolicyError, UsageError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ARCHES = ("x86_64", "arm64")
# Lambda's architecture names -> the ELF e_machine name layerpack reports (see elf.reader.MACHINES).
ARCH_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
MACHINE_ARCH = {v: k for k, v in ARCH_MACHINE.items()}
# The program interpreter glibc binaries for each arch name in PT_INTERP (docs/lambda.md).
LOADER = {"x86_64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}

# Version-node prefixes checked against the runtime, and the sonames that define them. A need for
# GLIBC_2.38 "from libm.so.6" is a glibc need as much as one from libc.so.6.
VERSION_FAMILIES: dict[str, tuple[str, ...]] = {
    "GLIBC": (
        "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1",
        "libresolv.so.2", "libanl.so.1", "libnsl.so.1", "libBrokenLocale.so.1", "libmvec.so.1",
        "libc_malloc_debug.so.0", "libthread_db.so.1", "libnss_files.so.2", "libnss_dns.so.2",
        "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
    ),
    "GLIBCXX": ("libstdc++.so.6",),
    "CXXABI": ("libstdc++.so.6",),
    "GCC": ("libgcc_s.so.1",),
    "ZLIB": ("libz.so.1",),
    "OPENSSL": ("libssl.so.3", "libcrypto.so.3", "libssl.so.10", "libcrypto.so.10"),
}


# Version nodes without a number that a linker adds as a requirement, and the release that defines them.
_MARKER_NODES: dict[str, tuple[str, tuple[int, ...]]] = {"GLIBC_ABI_DT_RELR": ("GLIBC", (2, 36))}


@functools.lru_cache(maxsize=4096)
def version_family(version: str) -> tuple[str, tuple[int, ...]] | None:
    """'GLIBCXX_3.4.30' -> ('GLIBCXX', (3, 4, 30)); None for other nodes (GLIBC_PRIVATE, LIBFOO_1).
    Marker nodes count as the release that introduced them (GLIBC_ABI_DT_RELR: glibc 2.36 NEWS)."""
    if version in _MARKER_NODES:
        return _MARKER_NODES[version]
    m = re.fullmatch(r"([A-Z]+)_(\d+(?:\.\d+)*)", version)
    if not m or m.group(1) not in VERSION_FAMILIES:
        return None
    v = parse_version(m.group(2))
    return (m.group(1), v) if v else None


def parse_version(text: str) -> tuple[int, ...] | None:
    """'2.34' -> (2, 34); None for UNKNOWN or anything not dotted digits."""
    if not re.fullmatch(r"\d+(\.\d+)*", text or ""):
        return None
    return tuple(int(p) for p in text.split("."))


class Listing(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    """One data file: its lines and the comment header that says where they came from."""

    path: Traversable
    header: tuple[str, ...]
    entries: tuple[str, ...]

    @property
    def dump_date(self) -> str | None:
        for line in self.header:
            m = re.search(r"(?:last updated|last changed|dump(?:ed)?[^0-9]*)\s*(\d{4}-\d{2}-\d{2})", line)
            if m:
                return m.group(1)
        return None


def _read_listing(path: Traversable) -> Listing:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read runtime listing {path}: {exc.strerror}") from exc
    header, entries = [], []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            header.append(line)
        elif line.startswith("/"):
            entries.append(line)
        else:
            raise PolicyError(f"{path}:{lineno}: expected an absolute path or a # comment, got {line!r}")
    return Listing(path, tuple(header), tuple(entries))


@dataclass(frozen=True)
class Runtime:
    """One runtime on one architecture, as layerpack models it."""

    name: str
    arch: str
    os: str
    family: str
    usr_merge: bool
    path_env: tuple[str, ...]
    ld_library_path: tuple[str, ...]
    default_dirs: tuple[str, ...]
    libs: Listing
    executables: frozenset[str]
    executables_source: str
    executables_note: str | None
    ceilings: dict[str, tuple[int, ...] | None]
    ceilings_source: str
    ceilings_note: str | None
    deprecated: str | None
    lib_paths: frozenset[str] = field(repr=False, default=frozenset())

    @property
    def machine(self) -> str:
        return ARCH_MACHINE[self.arch]

    @property
    def loader(self) -> str:
        return LOADER[self.arch]

    @property
    def dump_date(self) -> str | None:
        return self.libs.dump_date

    def canonical(self, path: str) -> str:
        """Map a path through the usr-merge links (/lib64 -> /usr/lib64, /bin -> /usr/bin)."""
        path = posixpath.normpath(path)
        if self.usr_merge:
            for top in ("/lib64", "/lib", "/bin", "/sbin"):
                if path == top or path.startswith(top + "/"):
                    return "/usr" + path
        return path

    def has_library(self, path: str) -> bool:
        """Does this absolute, normalised path exist on the runtime (as a listed library)?
        `lib_paths` holds every alias (/lib64/x and /usr/lib64/x), so this is one set lookup:
        it runs for every directory of every library search."""
        return path in self.lib_paths

    def has_executable(self, path: str) -> bool:
        return self.canonical(path) in self.executables

    def find_command(self, name: str) -> str | None:
        """Where PATH lookup of a bare command name lands on the runtime (outside /opt)."""
        for d in self.path_env:
            candidate = posixpath.join(d, name)
            if self.has_executable(candidate):
                return posixpath.normpath(candidate)
        return None

    def ceiling(self, family: str) -> tuple[int, ...] | None:
        return self.ceilings.get(family)

    def ceiling_name(self, family: str) -> str:
        """'GLIBC_2.34' (or 'GLIBC_?' when the data does not say)."""
        value = self.ceiling(family)
        return f"{family}_{'.'.join(map(str, value)) if value else '?'}"

    def version_verdict(self, library: str, version: str) -> str | None:
        """Is a need for `version` from `library` met by this runtime's copy of it?
        "too-new", "unknown" (no ceiling in the data), or None: met, or not a library whose
        versions the runtime data covers (GLIBC_PRIVATE, LIBSELINUX_1.0, …)."""
        fam = version_family(version)
        if fam is None or library not in VERSION_FAMILIES[fam[0]]:
            return None
        ceiling = self.ceiling(fam[0])
        if ceiling is None:
            return "unknown"
        return "too-new" if fam[1] > ceiling else None

    def covers_version(self, library: str, version: str) -> bool:
        """Does the runtime data say anything about `version` of `library` (a family it models)?"""
        fam = version_family(version)
        return fam is not None and library in VERSION_FAMILIES[fam[0]]


@functools.lru_cache(maxsize=None)
def _rules_toml(name: str) -> dict:
    """A rules TOML file, parsed once per edit (packer.tomlcache keeps the parsed form)."""
    path = datafiles.rule_file("runtimes", name)

    def parse(text: str) -> dict:
        from packer._compat import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: {exc}") from exc

    try:
        return tomlcache.load_toml(path, parse) if isinstance(path, Path) else parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def _catalogue() -> dict:
    return _rules_toml("runtimes.toml")


def _ceilings_table() -> dict:
    return _rules_toml("version-ceilings.toml")


def runtime_names() -> list[str]:
    return list(_catalogue()["runtime"])


def default_runtime() -> str:
    return _catalogue()["defaults"]["runtime"]


def _ceiling_row(key: str) -> dict:
    name, _, arch = key.rpartition(".")
    row = _ceilings_table().get(name, {}).get(arch)
    if row is None:
        raise PolicyError(f"version-ceilings.toml has no table [\"{name}\".{arch}]")
    return row


@functools.lru_cache(maxsize=None)
def load(name: str, arch: str = "x86_64") -> Runtime:
    """The runtime `name` on `arch`; a clear UsageError for names or arches Lambda does not have."""
    cat = _catalogue()
    spec = cat["runtime"].get(name)
    if spec is None:
        raise UsageError(
            f"unknown runtime {name!r}", hint="`layerpack runtimes` lists the ones layerpack knows"
        )
    if arch not in spec["arches"]:
        raise UsageError(
            f"runtime {name} does not exist for {arch}", hint=f"it exists for {', '.join(spec['arches'])}"
        )
    defaults = cat["defaults"]
    base = datafiles.rules().joinpath("runtimes")
    libs = _read_listing(base.joinpath("libs", spec["libs"][arch]))

    exe_file = spec.get("executables", {}).get(arch)
    exe_note = None
    if exe_file is None:
        exe_file = spec["executables_from"][arch]
        exe_note = spec.get("executables_note")
    exe_listing = _read_listing(base.joinpath("executables", exe_file))
    exes = set(exe_listing.entries) | set(spec.get("executables_extra", []))

    ceil_key = spec.get("ceilings", {}).get(arch)
    ceil_note = None
    if ceil_key is None:
        ceil_key = spec["ceilings_from"][arch]
        ceil_note = spec.get("ceilings_note")
    row = _ceiling_row(ceil_key)
    ceilings = {fam: parse_version(str(row.get(fam, ""))) for fam in VERSION_FAMILIES}

    rt = Runtime(
        name=name,
        arch=arch,
        os=spec["os"],
        family=spec["family"],
        usr_merge=bool(spec["usr_merge"]),
        path_env=tuple(spec.get("path", defaults["path"]).split(":")),
        ld_library_path=tuple(spec.get("ld_library_path", defaults["ld_library_path"]).split(":")),
        default_dirs=tuple(defaults["default_dirs"]),
        libs=libs,
        executables=frozenset(),
        executables_source=exe_file,
        executables_note=exe_note,
        ceilings=ceilings,
        ceilings_source=ceil_key,
        ceilings_note=ceil_note,
        deprecated=spec.get("deprecated"),
    )
    canon = frozenset(_aliases(rt, libs.entries))
    canon_exes = frozenset(rt.canonical(p) for p in exes)
    return replace(rt, lib_paths=canon, executables=canon_exes)


def _aliases(rt: Runtime, paths: tuple[str, ...]) -> set[str]:
    """Each listed path under every name it has (usr-merge links make /lib64/x == /usr/lib64/x)."""
    out = set()
    for p in paths:
        c = rt.canonical(p)
        out.add(c)
        if rt.usr_merge and c.startswith("/usr/"):
            out.add(c[4:])
    return out


def all_runtimes() -> list[Runtime]:
    out = []
    for name in runtime_names():
        for arch in _catalogue()["runtime"][name]["arches"]:
            out.append(load(name, arch))
    return out


# Deprecation: `deprecated = "YYYY-MM-DD"` in runtimes.toml is the date AWS's runtime table gives for
# phase 1 (no more security patches). On that day and after, `runtimes`, `analyze`, `invoke` and
# `publish` say so; the comparison is one pure function and "today" is read in one place.
TODAY_ENV = "LAYERPACK_TODAY"


def today() -> datetime.date:
    """The date deprecation is judged on: `datetime.date.today()`, unless LAYERPACK_TODAY=YYYY-MM-DD
    is set. That variable is a testing aid (tests pin the day before, of and after a deprecation
    date); a malformed value is a usage error rather than a silently ignored one."""
    text = os.environ.get(TODAY_ENV, "").strip()
    if not text:
        return datetime.date.today()
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{TODAY_ENV}={text!r}: expected a date as YYYY-MM-DD") from None


def deprecated_since(deprecated: str | None, on: datetime.date) -> str | None:
    """The deprecation date (YYYY-MM-DD) when `on` is that day or later, else None; a missing or
    malformed date in the data counts as not deprecated (the data is informational)."""
    if not deprecated or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(deprecated)):
        return None
    try:
        date = datetime.date.fromisoformat(str(deprecated))
    except ValueError:
        return None
    return date.isoformat() if on >= date else None


def deprecation_warning(name: str, on: datetime.date | None = None) -> str | None:
    """The one-line warning `analyze` (LP431) and `invoke` give for runtime `name`, or None."""
    spec = _catalogue().get("runtime", {}).get(name, {})
    since = deprecated_since(spec.get("deprecated"), on or today())
    if since is None:
        return None
    return f"runtime {name} is past its deprecation date ({since}): AWS no longer patches it"
