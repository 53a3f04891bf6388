"""`--bundle-libc`: the bootstrap wrapper that starts the program through the bundled loader
(the aws-lambda-cpp packager's approach), so the program gets the glibc it was built for."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from packer.analyze import Report
from packer.elf.hostlibs import HostLibraries
from packer.errors import VendorError
from packer.findings import finding
from packer.vendor.model import PROC_SELF_EXE, Copy, VendorPlan, Wrapper


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


def wrapper(report: Report, p: VendorPlan, host: HostLibraries) -> Wrapper | None:
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


