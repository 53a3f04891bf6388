"""Carry out a VendorPlan on a copy of the input (or on it, with `--in-place`), then analyse the
output again: the verdict comes from the result, not from the plan."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from pathlib import Path

from packer.analyze import analyze
from packer.elf.patcher import PatchelfPatcher, Patcher, strip_unneeded
from packer.elf.reader import read_path
from packer.errors import UsageError, VendorError
from packer.findings import Finding, Severity, finding
from packer.tree import DIR, FILE, SYMLINK, open_tree
from packer.vendor.model import (
    ALIGNMENT_CHANGED,
    NO_STRIP,
    THIRD_PARTY,
    VendorPlan,
    VendorResult,
)
from packer.vendor.notice import write_third_party


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
        write_third_party(dst / p.libdir / THIRD_PARTY, p.copies)

    report = analyze(dst, runtime=p.runtime, arch=p.arch, as_="layer" if p.mount == "/opt" else "function")
    problems = [f for f in report.findings if f.code in ("LP101", "LP102", "LP103", "LP201", "LP202", "LP307")]
    return VendorResult(p, dst, report, notes + problems)


