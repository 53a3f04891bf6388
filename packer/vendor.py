"""`layerpack vendor`: make a layer self-sufficient in a way Lambda's search order cannot undo.

Copying a missing library into `lib/` is the easy part. What goes wrong in practice (peers.md §4):
the copy loses to `/lib64` because `/lib64` precedes `/opt/lib` on LD_LIBRARY_PATH; RUNPATH is not
inherited so transitive dependencies are not found; the copied library itself needs a newer glibc;
`strip` after patchelf corrupts files; symlinked sonames get flattened. So:

* the plan (pure, `--dry-run`) is computed from the analysis: the transitive closure of libraries
  Lambda lacks, the runtime libraries that are too old for the program (their host copy is vendored
  under a content-hash name, as auditwheel does, so no `/lib64` copy can shadow it), libraries the
  tree already has but cannot reach (fixed with an RPATH, not copied again);
* DT_RPATH (not RUNPATH: inherited, and searched before LD_LIBRARY_PATH) relative to `$ORIGIN` on
  every object that needs a vendored library;
* the glibc family is never copied unless `--bundle-libc`, which also writes a `bootstrap` wrapper
  that starts the program through the bundled loader (the aws-lambda-cpp packager's approach);
* files carrying a payload (SBCL cores, `raco exe`) are never stripped or patched;
* the output is analysed again, and must come out clean.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packer.analyze import Report, analyze
from packer.elf.hostlibs import HostLibraries
from packer.elf.patcher import Patch, PatchelfPatcher, Patcher, strip_unneeded
from packer.elf.reader import ElfInfo, read_path
from packer.elf.search import MISSING, SHADOWED, VENDORABLE
from packer.errors import UsageError, VendorError
from packer.findings import Finding, Severity, define, finding
from packer.runtime import VERSION_FAMILIES, version_family
from packer.tree import DIR, FILE, SYMLINK, open_tree

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

GLIBC_FAMILY = frozenset(VERSION_FAMILIES["GLIBC"]) | {"libnss_compat.so.2", "libSegFault.so", "libmemusage.so"}
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
    strip: bool = False
    bundle_libc: bool = False

    @property
    def bytes_added(self) -> int:
        return sum(c.size for c in self.copies)

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "layerpack.vendor-plan/1",
            "input": self.input, "runtime": self.runtime, "arch": self.arch, "mount": self.mount,
            "libdir": self.libdir, "bundle_libc": self.bundle_libc, "strip": self.strip,
            "bytes_added": self.bytes_added,
            "copies": [{"soname": c.soname, "from": c.source, "file": c.real, "to": c.dest, "links": list(c.links),
                        "bytes": c.size, "renamed": c.renamed, "reason": c.reason} for c in self.copies],
            "renames": [{"from": m.source, "to": m.dest, "soname": m.soname, "new_soname": m.new_soname} for m in self.moves],
            "patches": [{"file": p.rel, "rpath": list(p.patch.rpath) if p.patch.rpath is not None else None,
                         "replace_needed": [list(x) for x in p.patch.replace_needed], "soname": p.patch.soname,
                         "reason": p.reason} for p in self.patches],
            "wrapper": {"program": self.wrapper.program, "loader": self.wrapper.loader} if self.wrapper else None,
            "findings": [f.to_json() for f in self.findings],
        }


def hashed_name(soname: str, digest: str) -> str:
    """libstdc++.so.6 + digest -> libstdc++-1a2b3c4d.so.6 (auditwheel's scheme)."""
    base, sep, rest = soname.partition(".so")
    return f"{base}-{digest[:8]}{sep}{rest}"


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _needs_too_new(info: ElfInfo, rt) -> list[tuple[str, str]]:
    """(version, library) pairs of `info` that the runtime cannot meet."""
    return [(v, file) for file, versions in info.version_needs for v in versions
            if rt.version_verdict(file, v) == "too-new"]


def plan(path: str | Path, *, runtime: str | None = None, arch: str | None = None, as_: str = "layer",
         sysroot: str | Path | None = None, bundle_libc: bool = False, strip: bool = False,
         report: Report | None = None) -> VendorPlan:
    """What vendoring would copy, rename and patch. Reads the input; changes nothing."""
    report = report or analyze(path, runtime=runtime, arch=arch, as_=as_, sysroot=sysroot)
    rt = report.runtime
    libdir = "lib"
    p = VendorPlan(str(path), rt.name, rt.arch, report.mount, libdir, strip=strip, bundle_libc=bundle_libc)
    host = HostLibraries(rt.machine, 64, "little", Path(sysroot) if sysroot else None)
    mount = report.mount

    def rel(abs_path: str) -> str:
        return abs_path[len(mount) + 1:] if abs_path.startswith(mount + "/") else abs_path

    # --- what to copy: libraries Lambda lacks, and runtime libraries too old for their users ----
    wanted: dict[str, tuple[str, str]] = {}  # soname -> (host path, reason)
    users: dict[str, set[str]] = {}  # soname -> requesters (absolute Lambda paths)
    unreachable: dict[str, set[str]] = {}  # tree path of the library -> requesters
    shadowed: dict[str, tuple[str, set[str]]] = {}  # soname -> (tree path that loses, requesters)
    tree_by_name = _tree_libraries(report)
    for proc in report.processes:
        for e in proc.edges:
            if e.status == VENDORABLE and e.host_path:
                wanted.setdefault(e.name, (e.host_path, "missing on Lambda"))
                users.setdefault(e.name, set()).add(e.requester)
            elif e.status == MISSING:
                in_tree = tree_by_name.get(e.name)
                if in_tree:
                    unreachable.setdefault(in_tree, set()).add(e.requester)
                else:
                    p.findings.append(finding(NOT_VENDORABLE, rel(e.requester),
                                              f"{rel(e.requester)} needs {e.name}, which is neither on {rt.name} nor on this machine",
                                              library=e.name))
            elif e.status == SHADOWED and e.shadowed:
                shadowed.setdefault(e.name, (e.shadowed, set()))[1].add(e.requester)
    too_old: dict[str, set[str]] = {}
    for f in report.findings:
        if f.code == "LP201":
            lib = f.data.get("library", "")
            if lib in GLIBC_FAMILY:
                if not bundle_libc:
                    p.findings.append(finding(LIBC_NOT_VENDORED, f.path, f"{f.message}; glibc is not vendored by default",
                                              library=lib))
            else:
                too_old.setdefault(lib, set()).add(posixpath.join(mount, f.path) if not f.path.startswith("/") else f.path)
    for lib, reqs in too_old.items():
        hit = host.find(lib)
        if hit is None:
            p.findings.append(finding(HOST_TOO_OLD, lib, f"{lib} on {rt.name} is too old and this machine has no copy", library=lib))
            continue
        info = read_path(hit.real)
        needed = {v for r in reqs for v in _needs_of(report, r, lib)}
        missing = sorted(v for v in needed if v not in info.version_defs)
        if missing:
            p.findings.append(finding(HOST_TOO_OLD, lib, f"{hit.path} does not define {', '.join(missing)} either", library=lib))
            continue
        wanted[lib] = (str(hit.path), f"the runtime's copy is too old ({', '.join(sorted(needed))})")
        users.setdefault(lib, set()).update(reqs)

    # --- the glibc family --------------------------------------------------------------------------
    if bundle_libc:
        for proc in report.processes:
            for e in proc.edges:
                if e.name in GLIBC_FAMILY and e.name not in wanted and e.status != "loaded":
                    hit = host.find(e.name)
                    if hit is not None:
                        wanted[e.name] = (str(hit.path), "--bundle-libc")
                        users.setdefault(e.name, set()).add(e.requester)
    else:
        for soname in [s for s in wanted if s in GLIBC_FAMILY]:
            host_path, _ = wanted.pop(soname)
            p.findings.append(finding(LIBC_NOT_VENDORED, soname, f"{soname} is needed and missing on {rt.name}; this machine's copy "
                                      f"({host_path}) is part of glibc", library=soname))

    # --- copies: real file once, soname links kept; hashed name when a runtime copy would win ----
    for soname in sorted(wanted):
        host_path, reason = wanted[soname]
        real = os.path.realpath(host_path)
        collides = any(rt.has_library(posixpath.join(d, soname))
                       for d in (*rt.ld_library_path, *rt.default_dirs) if not d.startswith(mount))
        if bundle_libc and soname in GLIBC_FAMILY:
            collides = False  # the wrapper's --library-path puts lib/ first
        size = os.path.getsize(real)
        if collides:
            dest = posixpath.join(libdir, hashed_name(soname, _sha256(real)))
            links: tuple[str, ...] = ()
        else:
            base = os.path.basename(real)
            dest = posixpath.join(libdir, base if base.startswith(soname.split(".so")[0]) else soname)
            links = (posixpath.join(libdir, soname),) if posixpath.basename(dest) != soname else ()
        p.copies.append(Copy(soname, host_path, real, dest, links, size, collides, reason))
        info = read_path(real)
        if not bundle_libc:
            for version, lib in _needs_too_new(info, rt):
                p.findings.append(finding(VENDORED_TOO_NEW, dest, f"{soname} from {host_path} needs {version} (from {lib}); "
                                          f"{rt.name} has {rt.ceiling_name(version_family(version)[0])}", library=soname))

    # --- shadowed libraries in the tree: rename them ---------------------------------------------
    for soname, (tree_path, reqs) in sorted(shadowed.items()):
        src = rel(tree_path)
        host_file = report_tree_file(report, src)
        digest = _sha256(host_file) if host_file else hashlib.sha256(src.encode()).hexdigest()
        new = hashed_name(soname, digest)
        p.moves.append(Move(src, posixpath.join(posixpath.dirname(src), new), soname, new))
        users.setdefault(soname, set()).update(reqs)

    # --- patches -----------------------------------------------------------------------------------
    renames = {c.soname: posixpath.basename(c.dest) for c in p.copies if c.renamed}
    renames.update({m.soname: m.new_soname for m in p.moves})
    lib_of = {c.soname: c.dest for c in p.copies} | {m.soname: m.dest for m in p.moves}
    per_file: dict[str, dict[str, Any]] = {}

    def want_rpath(user_rel: str, target_dir: str, why: str) -> None:
        entry = per_file.setdefault(user_rel, {"dirs": [], "replace": [], "why": set()})
        d = posixpath.relpath(target_dir, posixpath.dirname(user_rel) or ".")
        origin = "$ORIGIN" if d == "." else f"$ORIGIN/{d}"
        if origin not in entry["dirs"]:
            entry["dirs"].append(origin)
        entry["why"].add(why)

    # vendorable libraries appear in the analysis where vendoring will put them: lib/<soname>
    placed = {posixpath.join(mount, libdir, c.soname): c for c in p.copies}
    for soname, reqs in users.items():
        target = lib_of.get(soname)
        if target is None:
            continue
        for req in reqs:
            # a vendored library needing another is patched in its own file (same directory)
            user_rel = placed[req].dest if req in placed else rel(req)
            want_rpath(user_rel, posixpath.dirname(target), f"needs {soname}")
            if soname in renames:
                per_file[user_rel]["replace"].append((soname, renames[soname]))
    for lib_path, reqs in unreachable.items():
        for req in reqs:
            want_rpath(rel(req), posixpath.dirname(rel(lib_path)), f"reach {rel(lib_path)}")

    payload_files = {f.rel for f in report.elf_files if f.info is not None and f.info.has_payload}
    existing = {f.rel: f.info for f in report.elf_files if f.info is not None}
    for user_rel, entry in sorted(per_file.items()):
        if user_rel in payload_files:
            p.findings.append(finding(PAYLOAD_NOT_PATCHED, user_rel, f"{user_rel} carries a payload; it is not patched"))
            continue
        old = existing.get(user_rel)
        keep = [r for r in (old.rpath + old.runpath if old else ()) if r.startswith("$ORIGIN") or r.startswith("${ORIGIN}")
                or r.startswith(mount + "/")]
        rpath = tuple(dict.fromkeys([*entry["dirs"], *keep]))
        p.patches.append(PatchOp(user_rel, Patch(rpath=rpath, replace_needed=tuple(sorted(set(entry["replace"])))),
                                 "; ".join(sorted(entry["why"]))))
    for c in p.copies:
        if c.renamed:
            p.patches.append(PatchOp(c.dest, Patch(soname=posixpath.basename(c.dest)), "renamed so the runtime's copy cannot shadow it"))
    for m in p.moves:
        p.patches.append(PatchOp(m.dest, Patch(soname=m.new_soname), "renamed so the runtime's copy cannot shadow it"))
    _merge_patches(p)

    if bundle_libc:
        p.wrapper = _wrapper(report, p, host)
    return p


def _merge_patches(p: VendorPlan) -> None:
    """One patchelf call per file: fold the edits of several PatchOps on the same file together."""
    merged: dict[str, PatchOp] = {}
    for op in p.patches:
        prev = merged.get(op.rel)
        if prev is None:
            merged[op.rel] = op
            continue
        a, b = prev.patch, op.patch
        merged[op.rel] = PatchOp(op.rel, Patch(rpath=a.rpath if a.rpath is not None else b.rpath,
                                               replace_needed=tuple(sorted(set(a.replace_needed) | set(b.replace_needed))),
                                               soname=a.soname or b.soname, interpreter=a.interpreter or b.interpreter),
                                 f"{prev.reason}; {op.reason}")
    p.patches = sorted(merged.values(), key=lambda o: o.rel)


def _needs_of(report: Report, requester: str, lib: str) -> set[str]:
    rel = requester[len(report.mount) + 1:] if requester.startswith(report.mount + "/") else requester
    for f in report.elf_files:
        if f.rel == rel and f.info is not None:
            return set(f.info.needs_for(lib))
    return set()


def _tree_libraries(report: Report) -> dict[str, str]:
    """soname/file name -> absolute Lambda path, for every shared library in the analysed tree."""
    out: dict[str, str] = {}
    for f in report.elf_files:
        if f.info is None or f.info.is_program:
            continue
        out.setdefault(posixpath.basename(f.rel), f.path)
        if f.info.soname:
            out.setdefault(f.info.soname, f.path)
    return out


def report_tree_file(report: Report, rel: str) -> Path | None:
    """The input's own copy of a tree file on disk (None for zip inputs)."""
    src = Path(report.input)
    if src.is_dir():
        return src / rel
    return None


def _bootstrap_program(report: Report) -> tuple[str, bool] | None:
    """(the ELF program bootstrap runs, whether bootstrap is that file itself or a link to it)."""
    files = {f.rel: f for f in report.elf_files if f.info is not None}
    if "bootstrap" in files:
        return "bootstrap", True
    src = Path(report.input)
    link = src / "bootstrap"
    if src.is_dir() and link.is_symlink():
        target = os.path.normpath(os.path.join("", os.path.dirname("bootstrap"), os.readlink(link)))
        if target in files:
            return target, False
    return None


def _wrapper(report: Report, p: VendorPlan, host: HostLibraries) -> Wrapper | None:
    found = _bootstrap_program(report)
    if found is None:
        raise VendorError("--bundle-libc needs a dynamically linked ELF `bootstrap` (or a relative link to one) at the root of the tree")
    rel, is_file = found
    boot = next(f for f in report.elf_files if f.rel == rel)
    if not boot.info.interp:
        raise VendorError(f"--bundle-libc: {rel} is statically linked; it needs no bundled glibc")
    loader_name = posixpath.basename(boot.info.interp)
    hit = host.find(loader_name)
    if hit is None:
        raise VendorError(f"--bundle-libc: this machine has no {loader_name} for {report.runtime.machine}")
    real = os.path.realpath(hit.path)
    loader_dest = posixpath.join(p.libdir, loader_name)
    p.copies.append(Copy(loader_name, str(hit.path), real, loader_dest, (), os.path.getsize(real), False, "--bundle-libc loader"))
    program = "bin/bootstrap.real" if is_file else rel
    text = (
        "#!/bin/sh\n"
        "# Written by `layerpack vendor --bundle-libc`: start the program with the glibc it was built for,\n"
        "# from this layer's lib/, through the bundled loader. Note: /proc/self/exe names the loader.\n"
        'here="${0%/*}"\n'
        f'exec "$here/{loader_dest}" --argv0 "$0" --library-path "$here/{p.libdir}:/lib64:/usr/lib64" "$here/{program}" "$@"\n'
    )
    p.findings.append(finding(PROC_SELF_EXE, "bootstrap", f"bootstrap is now a wrapper that starts {program}; programs it "
                              "starts in turn use the runtime's loader and glibc"))
    return Wrapper(program, loader_dest, text, move=is_file)


# ---------------------------------------------------------------------------------------------------
# apply


@dataclass
class VendorResult:
    plan: VendorPlan
    out: Path
    report: Report  # the output, analysed again
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)


def _materialise(src: str, out: Path) -> None:
    """Copy the input (dir, zip or single binary) to `out`, keeping links and modes."""
    sp = Path(src)
    if sp.is_dir():
        shutil.copytree(sp, out, symlinks=True, dirs_exist_ok=True)
        return
    with open_tree(sp) as tree:
        if tree.kind == "file":
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(sp, out / "bootstrap")
            return
        for e in sorted(tree.entries.values(), key=lambda e: e.path):
            dst = out / e.path
            if e.kind == DIR:
                dst.mkdir(parents=True, exist_ok=True)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if e.kind == SYMLINK:
                os.symlink(e.link or "", dst)
            elif e.kind == FILE:
                dst.write_bytes(tree.read_bytes(e.path))
                dst.chmod(e.mode)


def apply(p: VendorPlan, out: str | Path | None, *, in_place: bool = False, patcher: Patcher | None = None) -> VendorResult:
    """Carry out the plan on a copy (or on the input with in_place) and analyse the result."""
    if not p.ok:
        bad = [f for f in p.findings if f.severity is Severity.ERROR]
        raise VendorError(f"vendoring cannot make this tree work: {bad[0].message}", hint=bad[0].hint)
    src = Path(p.input)
    if in_place:
        if not src.is_dir():
            raise UsageError("--in-place works on a directory, not a zip or a single file")
        dst = src
    else:
        if out is None:
            raise UsageError("give --out DIR (or --in-place to change the input)")
        dst = Path(out)
        if dst.exists() and any(dst.iterdir()):
            raise UsageError(f"--out {dst} exists and is not empty", hint="remove it or choose another directory")
        if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
            raise UsageError("--out must not be inside the input")
        _materialise(str(src), dst)
    patcher = patcher or PatchelfPatcher()
    notes: list[Finding] = []
    arch_strip = shutil.which("strip") if p.arch == "x86_64" else shutil.which("aarch64-linux-gnu-strip")

    for c in p.copies:
        target = dst / c.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(c.real, target)
        mode = stat.S_IMODE(os.stat(c.real).st_mode) | 0o444
        target.chmod(mode)
        if p.strip:  # strip before patching, never after (auditwheel #716)
            if arch_strip is None:
                notes.append(finding(NO_STRIP, c.dest, f"{c.dest} left unstripped: no strip for {p.arch}"))
            else:
                strip_unneeded(target, arch_strip)
        for link in c.links:
            lp = dst / link
            if lp.is_symlink() or lp.exists():
                lp.unlink()
            os.symlink(posixpath.relpath(c.dest, posixpath.dirname(link)), lp)
    for m in p.moves:
        shutil.copy2(dst / m.source, dst / m.dest)
        (dst / m.source).unlink()

    for op in p.patches:
        path = dst / op.rel
        before = read_path(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        patcher.apply(path, op.patch)
        path.chmod(mode)
        after = read_path(path)
        if after.load_align != before.load_align:
            notes.append(finding(ALIGNMENT_CHANGED, op.rel, f"{op.rel}: PT_LOAD alignment {before.load_align:#x} -> {after.load_align:#x}"))

    if p.wrapper is not None:
        if p.wrapper.move:
            prog = dst / p.wrapper.program
            prog.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dst / "bootstrap", prog)
        else:
            (dst / "bootstrap").unlink()
        (dst / "bootstrap").write_text(p.wrapper.text)
        (dst / "bootstrap").chmod(0o755)

    if p.copies:
        _write_third_party(dst / p.libdir / THIRD_PARTY, p.copies)

    report = analyze(dst, runtime=p.runtime, arch=p.arch, as_="layer" if p.mount == "/opt" else "function")
    problems = [f for f in report.findings if f.code in ("LP101", "LP102", "LP103", "LP201", "LP202", "LP307")]
    return VendorResult(p, dst, report, notes + problems)


def _dpkg_owner(path: str, cache: dict[str, str | None]) -> str | None:
    """The Debian package owning a file, when dpkg can tell (usr-merge: try both spellings)."""
    if path in cache:
        return cache[path]
    owner = None
    if shutil.which("dpkg"):
        candidates = [path, os.path.realpath(path)]
        for c in list(candidates):
            if c.startswith("/usr/"):
                candidates.append(c[4:])
            else:
                candidates.append("/usr" + c)
        for c in candidates:
            proc = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if proc.returncode == 0 and ":" in proc.stdout:
                owner = proc.stdout.split(": ", 1)[0].strip()
                break
    cache[path] = owner
    return owner


def _write_third_party(path: Path, copies: list[Copy]) -> None:
    cache: dict[str, str | None] = {}
    lines = ["Libraries vendored into this layer by `layerpack vendor`.",
             "Each keeps the licence of the package it came from; ship their licence texts with your layer.", ""]
    for c in sorted(copies, key=lambda c: c.dest):
        pkg = _dpkg_owner(c.source, cache)
        lines.append(f"{c.dest}\tfrom {c.source}" + (f" ({c.real})" if c.real != c.source else "")
                     + f"\tpackage: {pkg or 'unknown (not installed by dpkg)'}")
    path.write_text("\n".join(lines) + "\n")
