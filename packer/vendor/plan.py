"""The plan of `layerpack vendor`: pure, read-only, what `--dry-run` prints.

Computed from the analysis: the transitive closure of libraries Lambda lacks, the runtime libraries
that are too old for the program (their host copy is vendored under a content-hash name, as
auditwheel does, so no `/lib64` copy can shadow it), and libraries the tree already has but cannot
reach (fixed with an RPATH, not copied again).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packer.analyze import Report, analyze
from packer.budget import budget
from packer.elf.hostlibs import HostLibraries
from packer.elf.patcher import Patch
from packer.elf.reader import ElfInfo, read_path
from packer.elf.search import MISSING, SHADOWED, VENDORABLE
from packer.findings import Severity, define, finding
from packer.quotas import UNZIPPED_LIMIT
from packer.render import human_bytes
from packer.runtime import version_family
from packer.tree import FILE, SYMLINK, open_tree
from packer.vendor.bundle import RUNTIME_LOADED, bundle_patches, payload_wrapper, plan_bundle, program_interp
from packer.vendor.model import (
    GLIBC_FAMILY,
    HOST_TOO_OLD,
    LIBC_NOT_VENDORED,
    NOT_VENDORABLE,
    PAYLOAD_NOT_PATCHED,
    VENDORED_TOO_NEW,
    Copy,
    Move,
    PatchOp,
    VendorPlan,
    hashed_name,
    sha256_file,
)
from packer.vendor.notice import third_party_text

NOTICE_BOUND = 8_192  # THIRD-PARTY.txt's line for one copy is far shorter (two paths and a package name)
OVER_BUDGET = define("LP912", Severity.ERROR, "the vendored output would be over Lambda's unzipped size limit",
                     "nothing was written: slim the input first (`layerpack slim`), or vendor fewer libraries")


def _needs_too_new(info: ElfInfo, rt) -> list[tuple[str, str]]:
    """(version, library) pairs of `info` that the runtime cannot meet. A weak need (VER_FLG_WEAK)
    does not stop ld.so (analyze's LP206 says what it costs), so it is not one of them."""
    return [(v, file) for file, versions in info.version_needs for v in versions
            if rt.version_verdict(file, v) == "too-new" and not info.is_weak_need(file, v)]


@dataclass
class _Needs:
    """What the analysis asks of vendoring, gathered before anything is decided."""

    report: Report
    host: HostLibraries
    wanted: dict[str, tuple[str, str]] = field(default_factory=dict)  # soname -> (host path, reason)
    users: dict[str, set[str]] = field(default_factory=dict)  # soname -> requesters (absolute Lambda paths)
    unreachable: dict[str, set[str]] = field(default_factory=dict)  # tree path of the library -> requesters
    shadowed: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # soname -> (tree path that loses, requesters)

    def rel(self, abs_path: str) -> str:
        mount = self.report.mount
        return abs_path[len(mount) + 1:] if abs_path.startswith(mount + "/") else abs_path

    def want(self, soname: str, host_path: str, reason: str, requesters: set[str] | str) -> None:
        self.wanted.setdefault(soname, (host_path, reason))
        self.users.setdefault(soname, set()).update({requesters} if isinstance(requesters, str) else requesters)


def plan(path: str | Path, *, runtime: str | None = None, arch: str | None = None, as_: str = "layer",
         sysroot: str | Path | None = None, bundle_libc: bool = False, strip: bool = False,
         report: Report | None = None, progress: Callable[[int], None] | None = None) -> VendorPlan:
    """What vendoring would copy, rename and patch. Reads the input; changes nothing.

    Phases: gather what the loader could not satisfy -> runtime libraries too old for their users
    -> the glibc family (bundled or refused) -> copies -> renames of shadowed tree libraries ->
    patches (with --bundle-libc: every program's interpreter and RPATH to the bundle) -> a wrapper
    only for a payload-carrying bootstrap -> the size of the output against Lambda's budget (LP912).
    `progress` counts the files the analysis reads."""
    report = report or analyze(path, runtime=runtime, arch=arch, as_=as_, sysroot=sysroot, progress=progress)
    rt = report.runtime
    p = VendorPlan(str(path), rt.name, rt.arch, report.mount, "lib", strip=strip, bundle_libc=bundle_libc)
    need = _Needs(report, HostLibraries(rt.machine, 64, "little", Path(sysroot) if sysroot else None))
    _gather_edges(need, p)
    _too_old_runtime_libraries(need, p, bundle_libc)
    _glibc_family(need, p, bundle_libc)
    _plan_copies(need, p, bundle_libc)
    if bundle_libc:
        p.bundle = plan_bundle(report, p, need.host, program_interp(report))
    _plan_moves(need, p)
    _plan_patches(need, p)
    if p.bundle is not None:
        p.wrapper = payload_wrapper(report, p, p.bundle, p.in_place)
    _check_budget(p, input_bytes(path))
    return p


def input_bytes(path: str | Path) -> int:
    """The input as Lambda counts it unzipped: file sizes plus symlink target lengths."""
    with open_tree(path) as tree:
        return sum(e.size for e in tree.entries.values() if e.kind in (FILE, SYMLINK))


def output_bytes(p: VendorPlan, input_size: int, *, notice: bool = True) -> int:
    """What the output will unzip to, as Lambda counts it: the input, the copies and their soname
    links, THIRD-PARTY.txt and a wrapper. Patching grows a file by a few KiB more; the re-analysis
    of the output (LP501) judges that, but an output this plan already puts over the limit is never
    written: copying 250 MB to learn it is what the user should be spared."""
    links = sum(len(posixpath.relpath(c.dest, posixpath.dirname(link)).encode()) for c in p.copies for link in c.links)
    text = len(third_party_text(p.copies).encode()) if p.copies and notice else 0
    wrapper = len(p.wrapper.text.encode()) if p.wrapper is not None else 0
    return input_size + p.bytes_added + links + text + wrapper


def _check_budget(p: VendorPlan, input_size: int) -> None:
    """LP912 when the planned output alone is not under Lambda's unzipped limit (strictly smaller)."""
    rough = output_bytes(p, input_size, notice=False)  # THIRD-PARTY.txt asks dpkg: only near the limit
    if rough + NOTICE_BOUND * (len(p.copies) + 1) < UNZIPPED_LIMIT:
        return
    total = output_bytes(p, input_size)
    b = budget(total)
    if b.over:
        p.findings.append(finding(
            OVER_BUDGET, ".", f"vendoring would add {p.bytes_added:,} bytes ({human_bytes(p.bytes_added)}) to a "
            f"{input_size:,}-byte input: the output would unzip to {total:,} bytes, over Lambda's budget of "
            f"{b.limit:,} ({total - b.limit + 1:,} bytes too many)",
            total=total, added=p.bytes_added, limit=b.limit))


def _gather_edges(need: _Needs, p: VendorPlan) -> None:
    """Libraries Lambda lacks (vendorable or not), tree libraries out of reach, shadowed ones."""
    tree_by_name = _tree_libraries(need.report)
    for proc in need.report.processes:
        for e in proc.edges:
            if e.status == VENDORABLE and e.host_path:
                need.want(e.name, e.host_path, "missing on Lambda", e.requester)
            elif e.status == MISSING:
                in_tree = tree_by_name.get(e.name)
                if in_tree:
                    need.unreachable.setdefault(in_tree, set()).add(e.requester)
                else:
                    who = need.rel(e.requester)
                    p.findings.append(finding(NOT_VENDORABLE, who, f"{who} needs {e.name}, which is neither on {p.runtime} "
                                              "nor on this machine", library=e.name))
            elif e.status == SHADOWED and e.shadowed:
                need.shadowed.setdefault(e.name, (e.shadowed, set()))[1].add(e.requester)


def _too_old_runtime_libraries(need: _Needs, p: VendorPlan, bundle_libc: bool) -> None:
    """LP201: the runtime has the library but too old; vendor this machine's copy if it is new enough."""
    report, mount = need.report, need.report.mount
    too_old: dict[str, set[str]] = {}
    for f in report.findings:
        if f.code != "LP201":
            continue
        lib = f.data.get("library", "")
        if lib in GLIBC_FAMILY:
            if not bundle_libc:
                p.findings.append(finding(LIBC_NOT_VENDORED, f.path, f"{f.message}; glibc is not vendored by default", library=lib))
        else:
            too_old.setdefault(lib, set()).add(posixpath.join(mount, f.path) if not f.path.startswith("/") else f.path)
    for lib, reqs in too_old.items():
        hit = need.host.find(lib)
        if hit is None:
            p.findings.append(finding(HOST_TOO_OLD, lib, f"{lib} on {p.runtime} is too old and this machine has no copy", library=lib))
            continue
        info = read_path(hit.real)
        needed = {v for r in reqs for v in _needs_of(report, r, lib)}
        missing = sorted(v for v in needed if v not in info.version_defs)
        if missing:
            p.findings.append(finding(HOST_TOO_OLD, lib, f"{hit.path} does not define {', '.join(missing)} either", library=lib))
            continue
        need.wanted[lib] = (str(hit.path), f"the runtime's copy is too old ({', '.join(sorted(needed))})")
        need.users.setdefault(lib, set()).update(reqs)


def _glibc_family(need: _Needs, p: VendorPlan, bundle_libc: bool) -> None:
    """Never mixed with the runtime's: without --bundle-libc no glibc-family library may be vendored
    into lib/; with it, the whole family (and libgcc_s) goes to the bundle instead (bundle.py)."""
    for soname in [s for s in need.wanted if s in GLIBC_FAMILY or (bundle_libc and s in RUNTIME_LOADED)]:
        host_path, _ = need.wanted.pop(soname)
        need.users.pop(soname, None)
        if bundle_libc:
            continue
        p.findings.append(finding(LIBC_NOT_VENDORED, soname, f"{soname} is needed and missing on {p.runtime}; this machine's copy "
                                  f"({host_path}) is part of glibc", library=soname))


def _plan_copies(need: _Needs, p: VendorPlan, bundle_libc: bool) -> None:
    """The real file once, soname links kept; a hashed name when a runtime copy would win."""
    rt, mount = need.report.runtime, need.report.mount
    for soname in sorted(need.wanted):
        host_path, reason = need.wanted[soname]
        real = os.path.realpath(host_path)
        collides = any(rt.has_library(posixpath.join(d, soname))
                       for d in (*rt.ld_library_path, *rt.default_dirs) if not d.startswith(mount))
        if collides:
            dest = posixpath.join(p.libdir, hashed_name(soname, sha256_file(real)))
            links: tuple[str, ...] = ()
        else:
            base = os.path.basename(real)
            dest = posixpath.join(p.libdir, base if base.startswith(soname.split(".so")[0]) else soname)
            links = (posixpath.join(p.libdir, soname),) if posixpath.basename(dest) != soname else ()
        p.copies.append(Copy(soname, host_path, real, dest, links, os.path.getsize(real), collides, reason))
        if not bundle_libc:
            for version, lib in _needs_too_new(read_path(real), rt):
                p.findings.append(finding(VENDORED_TOO_NEW, dest, f"{soname} from {host_path} needs {version} (from {lib}); "
                                          f"{rt.name} has {rt.ceiling_name(version_family(version)[0])}", library=soname))


def _plan_moves(need: _Needs, p: VendorPlan) -> None:
    """Libraries in the tree that a runtime copy shadows get a content-hash name."""
    for soname, (tree_path, reqs) in sorted(need.shadowed.items()):
        src = need.rel(tree_path)
        host_file = report_tree_file(need.report, src)
        digest = sha256_file(host_file) if host_file else hashlib.sha256(src.encode()).hexdigest()
        new = hashed_name(soname, digest)
        p.moves.append(Move(src, posixpath.join(posixpath.dirname(src), new), soname, new))
        need.users.setdefault(soname, set()).update(reqs)


def _plan_patches(need: _Needs, p: VendorPlan) -> None:
    """DT_RPATH ($ORIGIN-relative) and NEEDED renames on every user; SONAME on every renamed library."""
    renames = {c.soname: posixpath.basename(c.dest) for c in p.copies if c.renamed}
    renames.update({m.soname: m.new_soname for m in p.moves})
    interp: dict[str, str] = {}
    per_file = _rpath_wishes(need, p, renames)
    if p.bundle is not None:
        p.in_place, interp = bundle_patches(need.report, p, p.bundle, lambda rel, d, why: _wish(per_file, rel, d, why))
    report, mount = need.report, need.report.mount
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
        p.patches.append(PatchOp(user_rel, Patch(rpath=rpath, replace_needed=tuple(sorted(set(entry["replace"]))),
                                                 interpreter=interp.get(user_rel)),
                                 "; ".join(sorted(entry["why"]))))
    for c in p.copies:
        if c.renamed:
            p.patches.append(PatchOp(c.dest, Patch(soname=posixpath.basename(c.dest)), "renamed so the runtime's copy cannot shadow it"))
    for m in p.moves:
        p.patches.append(PatchOp(m.dest, Patch(soname=m.new_soname), "renamed so the runtime's copy cannot shadow it"))
    _merge_patches(p)


def _rpath_wishes(need: _Needs, p: VendorPlan, renames: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per file to patch: the $ORIGIN directories it must search, NEEDED renames, and why."""
    lib_of = {c.soname: c.dest for c in p.copies} | {m.soname: m.dest for m in p.moves}
    per_file: dict[str, dict[str, Any]] = {}

    def want_rpath(user_rel: str, target_dir: str, why: str) -> None:
        _wish(per_file, user_rel, target_dir, why)

    # vendorable libraries appear in the analysis where vendoring will put them: lib/<soname>
    placed = {posixpath.join(need.report.mount, p.libdir, c.soname): c for c in p.copies}
    for soname, reqs in need.users.items():
        target = lib_of.get(soname)
        if target is None:
            continue
        for req in reqs:
            # a vendored library needing another is patched in its own file (same directory)
            user_rel = placed[req].dest if req in placed else need.rel(req)
            want_rpath(user_rel, posixpath.dirname(target), f"needs {soname}")
            if soname in renames:
                per_file[user_rel]["replace"].append((soname, renames[soname]))
    for lib_path, reqs in need.unreachable.items():
        for req in reqs:
            want_rpath(need.rel(req), posixpath.dirname(need.rel(lib_path)), f"reach {need.rel(lib_path)}")
    return per_file


def _wish(per_file: dict[str, dict[str, Any]], user_rel: str, target_dir: str, why: str) -> None:
    """Record that `user_rel` must search `target_dir` (as an $ORIGIN-relative RPATH entry)."""
    entry = per_file.setdefault(user_rel, {"dirs": [], "replace": [], "why": set()})
    d = posixpath.relpath(target_dir, posixpath.dirname(user_rel) or ".")
    origin = "$ORIGIN" if d == "." else f"$ORIGIN/{d}"
    if origin not in entry["dirs"]:
        entry["dirs"].append(origin)
    entry["why"].add(why)


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


