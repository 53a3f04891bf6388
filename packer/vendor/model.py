"""What vendoring decides and produces: the finding codes (LP9xx), the plan's records and the result.

Kept apart from `plan` and `apply` so both, the CLI and the tests share one vocabulary without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packer.digest import file_sha256
from packer.analyze import Report
from packer.elf.patcher import Patch
from packer.findings import Finding, Severity, define
from packer.runtime import VERSION_FAMILIES

LIBC_NOT_VENDORED = define("LP901", Severity.ERROR, "a glibc-family library is needed but is not vendored",
                           "glibc cannot be mixed with the runtime's: rebuild for the runtime's glibc, or use --bundle-libc")
VENDORED_TOO_NEW = define("LP902", Severity.ERROR, "a library to vendor needs a newer glibc than the runtime has",
                          "take the library from an older distribution (--sysroot), or use --bundle-libc")
PAYLOAD_NOT_PATCHED = define("LP903", Severity.WARNING, "file carries a payload and is not patched",
                             "its libraries are placed in lib/ (on LD_LIBRARY_PATH); a renamed library cannot reach it")
NOT_VENDORABLE = define("LP904", Severity.ERROR, "a needed library exists neither on Lambda nor on this machine",
                        "install it on this machine (for the target arch) or pass --sysroot, then run vendor again")
PROC_SELF_EXE = define("LP905", Severity.WARNING, "bootstrap now starts through the bundled loader",
                       "/proc/self/exe names the loader, not your program: programs that find files relative to it need a fixed path")
HOST_TOO_OLD = define("LP906", Severity.ERROR, "this machine's copy of a library is too old for the program as well",
                      "install a newer build of the library on this machine or in --sysroot")
ALIGNMENT_CHANGED = define("LP907", Severity.ERROR, "patching changed a file's segment alignment",
                           "report a bug; the file was left unpatched in the output")
NO_STRIP = define("LP908", Severity.INFO, "strip is not installed; vendored libraries were not stripped",
                  "apt-get install binutils (or binutils-aarch64-linux-gnu for arm64)")
NOT_STRIPPED = define("LP909", Severity.INFO, "stripping would have broken a vendored library; it was kept unstripped",
                      "nothing to do: the library works as it is, only larger")

LD_PATH_WRAPPER = define("LP910", Severity.WARNING, "bootstrap is a wrapper that puts the bundled glibc first on LD_LIBRARY_PATH",
                         "the program carries a payload, so it cannot get an RPATH; a runtime program it starts (e.g. /bin/sh) "
                         "would see the bundled glibc too: start those with LD_LIBRARY_PATH restored")
GCONV = define("LP911", Severity.INFO, "where the bundled glibc finds its gconv (iconv) modules",
               "iconv_open of a charset that is not built in needs them; they are bundled when a file imports iconv_open")

# Plan warnings that say the output will not start (a payload program started through the bundled
# loader reads /proc/self/exe — the loader — for its payload: SBCL's "Can't find sbcl.core").
BREAKS_START = frozenset({PROC_SELF_EXE.code})

GLIBC_FAMILY = frozenset(VERSION_FAMILIES["GLIBC"]) | {"libnss_compat.so.2", "libnss_hesiod.so.2", "libSegFault.so",
                                                       "libmemusage.so", "libpcprofile.so"}
THIRD_PARTY = "THIRD-PARTY.txt"


@dataclass(frozen=True)
class Copy:
    """A library to place in the layer's lib/."""

    soname: str  # the name users need (before any rename)
    source: str  # host path as found (may be a symlink)
    real: str  # the host file copied
    dest: str  # real file's path in the output (relative)
    links: tuple[str, ...]  # soname symlinks to create next to it (relative paths)
    size: int
    renamed: bool = False  # collides with a runtime soname: dest carries a content hash
    reason: str = "missing on Lambda"


@dataclass(frozen=True)
class Move:
    """A library already in the tree that must be renamed so the runtime cannot shadow it."""

    source: str  # rel path in the tree
    dest: str  # rel path of the renamed copy
    soname: str
    new_soname: str


@dataclass(frozen=True)
class PatchOp:
    rel: str  # file in the output tree
    patch: Patch
    reason: str


@dataclass(frozen=True)
class Bundle:
    """The `--bundle-libc` directory: loader, glibc family, libgcc_s, maybe gconv modules."""

    dir: str  # rel path, named for its content: glibc-<sha256[:8]>
    loader: str  # rel path of the loader alias every program's PT_INTERP names
    interp: str  # that alias's absolute path on Lambda
    gconv_compiled: str | None  # the gconv directory compiled into libc.so.6 (rewritten to the bundle's)
    gconv_source: str | None  # this machine's copy, when the modules are bundled
    gconv_files: tuple[str, ...] = ()  # relative to gconv_source
    gconv_bytes: int = 0
    iconv_users: tuple[str, ...] = ()

    @property
    def gconv(self) -> str:
        return f"{self.dir}/gconv"


@dataclass
class Wrapper:
    program: str  # rel path of the program the wrapper starts
    loader: str  # rel path of the bundled loader
    text: str
    move: bool = True  # move the bootstrap file to `program` (False: bootstrap was a link to it)


@dataclass
class VendorPlan:
    input: str
    runtime: str
    arch: str
    mount: str
    libdir: str
    copies: list[Copy] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    patches: list[PatchOp] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    wrapper: Wrapper | None = None
    bundle: Bundle | None = None
    in_place: list[PatchOp] = field(default_factory=list)  # interpreter edits that keep the file's layout
    strip: bool = False
    bundle_libc: bool = False

    @property
    def bytes_added(self) -> int:
        return sum(c.size for c in self.copies) + (self.bundle.gconv_bytes if self.bundle else 0)

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "layerpack.vendor/1",
            "input": self.input, "runtime": self.runtime, "arch": self.arch, "mount": self.mount,
            "libdir": self.libdir, "bundle_libc": self.bundle_libc, "strip": self.strip,
            "bytes_added": self.bytes_added,
            "copies": [{"soname": c.soname, "from": c.source, "file": c.real, "to": c.dest, "links": list(c.links),
                        "bytes": c.size, "renamed": c.renamed, "reason": c.reason} for c in self.copies],
            "renames": [{"from": m.source, "to": m.dest, "soname": m.soname, "new_soname": m.new_soname} for m in self.moves],
            "patches": [{"file": p.rel, "rpath": list(p.patch.rpath) if p.patch.rpath is not None else None,
                         "replace_needed": [list(x) for x in p.patch.replace_needed], "soname": p.patch.soname,
                         "interpreter": p.patch.interpreter, "reason": p.reason} for p in self.patches + self.in_place],
            "bundle": {"dir": self.bundle.dir, "interpreter": self.bundle.interp, "gconv": self.bundle.gconv,
                       "gconv_modules": len(self.bundle.gconv_files)} if self.bundle else None,
            "wrapper": {"program": self.wrapper.program, "loader": self.wrapper.loader} if self.wrapper else None,
            "findings": [f.to_json() for f in self.findings],
        }



@dataclass
class VendorResult:
    plan: VendorPlan
    out: Path
    report: Report  # the output, analysed again
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        """Clean: nothing says the output will fail — no error, no "will not start" warning."""
        return not any(f.severity is Severity.ERROR or f.code in BREAKS_START for f in self.findings)



def hashed_name(soname: str, digest: str) -> str:
    """libstdc++.so.6 + digest -> libstdc++-1a2b3c4d.so.6 (auditwheel's scheme)."""
    base, sep, rest = soname.partition(".so")
    return f"{base}-{digest[:8]}{sep}{rest}"


def sha256_file(path: str | Path) -> str:
    return file_sha256(path).hexdigest()


