"""`--bundle-libc` by program-interpreter rewrite, the way exodus and Nix make binaries relocatable.

The loader and the whole glibc family go into one directory of the layer named for their content
(`glibc-<hash>/`), so two layers that each bundle a glibc never overwrite each other's files, and
every ELF program of the tree gets that loader as its PT_INTERP (an absolute Lambda path) and the
directory first on its DT_RPATH. The programs then start directly: `/proc/self/exe` is the program,
and a program it execs has the bundled loader too.

What glibc loads at run time rather than link time must come from the bundle as well, never from
the runtime's older `/lib64` (first on Lambda's LD_LIBRARY_PATH): NSS modules (`libnss_*`), the
`libgcc_s.so.1` that thread cancellation dlopens, and the gconv modules `iconv_open` loads — from a
directory compiled into libc.so.6, which is why the bundled libc's copy of that path is rewritten
in place to the bundle's `gconv/` (the new path is no longer than the old one).

A file carrying a payload past its ELF image (an SBCL core) must not be reshaped by patchelf: its
interpreter is rewritten in place instead (the bundle's `ld.so` path is short enough to fit), and as
it cannot get an RPATH, a bootstrap wrapper puts the bundle first on LD_LIBRARY_PATH and execs it.
Only when even the in-place rewrite cannot fit does the old wrapper remain: start the program
through the bundled loader (LP905: `/proc/self/exe` then names the loader).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import posixpath
from pathlib import Path

from packer.analyze import Report
from packer.elf.hostlibs import HostLibraries
from packer.elf.patcher import Patch
from packer.errors import VendorError
from packer.findings import finding
from packer.vendor.model import (
    GCONV,
    GLIBC_FAMILY,
    LD_PATH_WRAPPER,
    PAYLOAD_NOT_PATCHED,
    PROC_SELF_EXE,
    Bundle,
    Copy,
    PatchOp,
    VendorPlan,
    Wrapper,
)

# Loaded by glibc at run time by soname (not in any DT_NEEDED): they must resolve in the bundle.
RUNTIME_LOADED = ("libnss_compat.so.2", "libnss_hesiod.so.2", "libgcc_s.so.1")
LOADER_ALIAS = "ld.so"  # short, so the interpreter path fits in place in a payload-carrying program
WRAPPER_MARK = "# Written by `layerpack vendor --bundle-libc`"


def _gconv_dir(libc_real: str) -> str | None:
    """The gconv directory compiled into this libc (found as the `.../gconv` string in libc itself,
    so a sysroot's or a cross libc works the same way)."""
    data = Path(libc_real).read_bytes()
    at = data.find(b"/gconv\0")
    while at >= 0:
        head = data.rfind(b"\0", 0, at) + 1
        path = data[head:at + 6].decode("ascii", "replace")
        if path.startswith("/") and " " not in path:
            return path
        at = data.find(b"/gconv\0", at + 1)
    return None


def _imports_iconv(report: Report) -> list[str]:
    """Tree ELF files whose dynamic string table names iconv_open (they may load gconv modules).
    A zip or single-file input is not searched: every file is then assumed to (["(not checked)"])."""
    src = Path(report.input)
    if not src.is_dir():
        return ["(input not a directory: not checked)"]
    out = []
    for f in report.elf_files:
        host = src / f.rel
        if f.info is None or not host.is_file() or host.is_symlink() or host.stat().st_size == 0:
            continue
        with open(host, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(b"\0iconv_open\0") >= 0:
                out.append(f.rel)
    return out


def _family(host: HostLibraries, report: Report, loader_name: str) -> dict[str, str]:
    """soname -> host path of the loader, every glibc-family library and libgcc_s this machine has."""
    hit = host.find(loader_name)
    if hit is None:
        raise VendorError(f"--bundle-libc: this machine has no {loader_name} for {report.runtime.machine}")
    out = {loader_name: str(hit.path)}
    for name in sorted(GLIBC_FAMILY | set(RUNTIME_LOADED)):
        found = None if name.startswith("ld-linux") else host.find(name)
        if found is not None:
            out[name] = str(found.path)
    if "libc.so.6" not in out:
        raise VendorError(f"--bundle-libc: this machine has no libc.so.6 for {report.runtime.machine}")
    return out


def _gconv_files(source: str) -> tuple[tuple[str, ...], int]:
    rels, size = [], 0
    for dirpath, _dirs, names in os.walk(source):
        for n in names:
            if n == "gconv-modules.cache":  # it names the modules by their build-machine paths
                continue
            full = os.path.join(dirpath, n)
            rels.append(os.path.relpath(full, source))
            size += os.path.getsize(full)
    return tuple(sorted(rels)), size


def plan_bundle(report: Report, p: VendorPlan, host: HostLibraries, loader_name: str) -> Bundle:
    """Choose the bundle's files and directory (named for their content); add their copies to `p`."""
    files = _family(host, report, loader_name)
    libc = os.path.realpath(files["libc.so.6"])
    compiled = _gconv_dir(libc)
    users = tuple(_imports_iconv(report))
    source = compiled if users and compiled and os.path.isfile(os.path.join(compiled, "gconv-modules")) else None
    if host.sysroot and compiled and users:
        source = str(host.sysroot) + compiled if os.path.isdir(str(host.sysroot) + compiled) else None
    gconv_files, gconv_bytes = _gconv_files(source) if source else ((), 0)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + Path(os.path.realpath(files[name])).read_bytes())
    digest.update("\0".join(gconv_files).encode())
    bdir = f"glibc-{digest.hexdigest()[:8]}"
    for name, src in sorted(files.items()):
        real = os.path.realpath(src)
        links = (posixpath.join(bdir, LOADER_ALIAS),) if name == loader_name else ()
        reason = "--bundle-libc loader" if name == loader_name else "--bundle-libc"
        p.copies.append(Copy(name, src, real, posixpath.join(bdir, name), links, os.path.getsize(real), False, reason))
    bundle = Bundle(bdir, posixpath.join(bdir, LOADER_ALIAS), posixpath.join(report.mount, bdir, LOADER_ALIAS),
                    compiled, source, gconv_files, gconv_bytes, users)
    if compiled is None:
        where = "libc.so.6 names no gconv directory: iconv can use only its built-in charsets"
    elif source:
        where = (f"{len(gconv_files)} gconv files bundled in {bundle.gconv}/ ({', '.join(users[:3])} import iconv_open); "
                 f"libc.so.6 looks there instead of {compiled}")
    else:
        where = (f"no file imports iconv_open: gconv modules not bundled; libc.so.6 looks in {bundle.gconv}/ instead of "
                 f"{compiled}, never in an older glibc's modules")
    p.findings.append(finding(GCONV, bdir, where))
    return bundle


GLIBC_LOADERS = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}


def program_interp(report: Report) -> str:
    """The glibc loader to bundle: the machine's standard one (every program of the tree will ask
    for it, whatever odd path it was linked with)."""
    if not any(f.info is not None and f.info.interp and not f.info.is_musl and f.info.is_program for f in report.elf_files):
        raise VendorError("--bundle-libc: no dynamically linked glibc program in the tree; nothing would use a bundled glibc")
    name = GLIBC_LOADERS.get(report.runtime.machine)
    if name is None:
        raise VendorError(f"--bundle-libc: no glibc loader known for {report.runtime.machine}")
    return name


def bundle_patches(report: Report, p: VendorPlan, bundle: Bundle, want_rpath) -> tuple[list[PatchOp], dict[str, str]]:
    """Interpreter + RPATH for every program, RPATH to the bundle for every library needing glibc and
    for the bundled libraries themselves (so each resolves there even when dlopened alone).
    Returns the in-place interpreter edits of payload-carrying programs (patchelf must not touch
    them) and the interpreter of every other program."""
    in_place, interp = [], {}
    family = GLIBC_FAMILY | set(RUNTIME_LOADED)
    for f in report.elf_files:
        i = f.info
        if i is None or i.is_static or i.is_musl:
            continue
        if i.has_payload:
            if i.is_program and i.interp and len(bundle.interp) <= len(i.interp):  # fits, NUL included
                in_place.append(PatchOp(f.rel, Patch(interpreter=bundle.interp), "carries a payload: interpreter rewritten in place"))
            continue
        if i.is_program and i.interp:
            interp[f.rel] = bundle.interp
            want_rpath(f.rel, bundle.dir, "the bundled glibc")
        elif any(n in family for n in i.needed):
            want_rpath(f.rel, bundle.dir, "the bundled glibc")
    for c in p.copies:
        if c.dest.startswith(bundle.dir + "/") and c.soname != "libc.so.6" and c.reason == "--bundle-libc":
            want_rpath(c.dest, bundle.dir, "resolves in its bundle")
    for rel in bundle.gconv_files:  # their RUNPATH $ORIGIN (siblings like libJIS.so) stays, as DT_RPATH
        if rel.endswith(".so"):
            want_rpath(posixpath.join(bundle.gconv, rel), bundle.dir, "gconv module: resolves in its bundle")
            want_rpath(posixpath.join(bundle.gconv, rel), posixpath.dirname(posixpath.join(bundle.gconv, rel)),
                       "gconv module: resolves in its bundle")
    return in_place, interp


def bootstrap_program(report: Report) -> tuple[str, bool] | None:
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


def payload_wrapper(report: Report, p: VendorPlan, bundle: Bundle, in_place: list[PatchOp]) -> Wrapper | None:
    """A bootstrap wrapper only for a payload-carrying bootstrap: LD_LIBRARY_PATH puts the bundle
    first (the file cannot get an RPATH), or — if even its interpreter cannot be rewritten — the old
    start through the bundled loader."""
    found = bootstrap_program(report)
    fitted = {op.rel for op in in_place}
    payload = sorted(f.rel for f in report.elf_files
                     if f.info is not None and f.info.has_payload and f.info.is_program and f.info.interp and not f.info.is_musl)
    for rel in payload:
        if found is not None and rel == found[0]:
            continue
        why = (f"its interpreter is rewritten in place but it has no RPATH; it finds the bundled glibc only if whoever starts it "
               f"puts {bundle.dir}/ first on LD_LIBRARY_PATH" if rel in fitted else
               f"its interpreter field is too short for {bundle.interp}, so it still starts on the runtime's loader")
        p.findings.append(finding(PAYLOAD_NOT_PATCHED, rel, f"{rel} carries a payload: {why}"))
    if found is None or found[0] not in payload:
        return None
    rel, is_file = found
    program = "bin/bootstrap.real" if is_file else rel
    if rel in fitted:
        text = (f"#!/bin/sh\n{WRAPPER_MARK}: {program} carries a payload (patchelf would break it), so\n"
                "# it cannot get an RPATH; its interpreter is the bundled loader, and this puts the bundled glibc first.\n"
                'here="${0%/*}"\n'
                f'export LD_LIBRARY_PATH="$here/{bundle.dir}:$LD_LIBRARY_PATH"\n'
                f'exec "$here/{program}" "$@"\n')
        p.findings.append(finding(LD_PATH_WRAPPER, "bootstrap", f"bootstrap is a wrapper that puts {bundle.dir}/ first on "
                                  f"LD_LIBRARY_PATH and execs {program} (it carries a payload, so it has no RPATH); programs it "
                                  "starts inherit that path"))
        return Wrapper(program, bundle.loader, text, move=is_file)
    text = (f"#!/bin/sh\n{WRAPPER_MARK}: start the program with the glibc it was built for,\n"
            "# through the bundled loader. Note: /proc/self/exe names the loader.\n"
            'here="${0%/*}"\n'
            f'exec "$here/{bundle.loader}" --argv0 "$0" --library-path "$here/{bundle.dir}:/lib64:/usr/lib64" "$here/{program}" "$@"\n')
    p.findings.append(finding(PROC_SELF_EXE, "bootstrap", f"bootstrap is now a wrapper that starts {program} through the bundled "
                              f"loader: {program} carries a payload and its interpreter field is too short for {bundle.interp}"))
    return Wrapper(program, bundle.loader, text, move=is_file)
