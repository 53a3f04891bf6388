"""Carry out a VendorPlan on a copy of the input (or on it, with `--in-place`), then analyse the
output again: the verdict comes from the result, not from the plan."""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path

from packer.analyze import analyze
from packer.atomic import atomic_dir
from packer.elf.patcher import Patcher, make_patcher, replace_path_prefix, set_interpreter_in_place
from packer.elf.reader import load_refusal, read_path
from packer.elf.strip import strip_file
from packer.errors import ElfError, InputError, UsageError, VendorError
from packer.findings import Finding, Severity, finding
from packer.materialise import Writer, unpack
from packer.tree import open_tree
from packer.vendor.model import (
    ALIGNMENT_CHANGED,
    BREAKS_START,
    NO_STRIP,
    NOT_STRIPPED,
    THIRD_PARTY,
    VendorPlan,
    VendorResult,
)
from packer.vendor.notice import third_party_text


def _vendor_error(exc: InputError) -> VendorError:
    return VendorError(f"vendor: {exc}", hint="vendor writes lib/ and bootstrap only as real directories and "
                       "files inside the output; replace the link with a directory")


def apply(p: VendorPlan, out: str | Path | None, *, in_place: bool = False, patcher: Patcher | str | None = None,
          progress: Callable[[int], None] | None = None) -> VendorResult:
    """Carry out the plan on a copy (or on the input with in_place) and analyse the result.

    The copy is unpacked with `packer.materialise` (no write through any link of the input, the
    input's problems refused) into a sibling temporary renamed to `out` once complete. `patcher` is
    a Patcher or the name of one ("patchelf", the default, or "lief"). `progress` counts the files
    the analysis of the output reads."""
    if not p.ok:
        bad = [f for f in p.findings if f.severity is Severity.ERROR]
        raise VendorError(f"vendoring cannot make this tree work: {bad[0].message}", hint=bad[0].hint)
    src = Path(p.input)
    try:
        patcher = make_patcher(patcher or "patchelf") if not hasattr(patcher, "apply") else patcher
    except ElfError as exc:
        raise VendorError(str(exc.args[0]), hint=exc.hint) from exc
    if in_place:
        if not src.is_dir():
            raise UsageError("--in-place works on a directory, not a zip or a single file")
        dst = src
        notes = _apply_into(p, src, patcher)
    else:
        if out is None:
            raise UsageError("give --out DIR (or --in-place to change the input)")
        dst = Path(os.path.abspath(out))
        if dst == src.resolve() or src.resolve() in dst.resolve().parents:
            raise UsageError("--out must not be inside the input")
        with atomic_dir(dst) as tmp:
            _unpack_input(src, tmp)
            notes = _apply_into(p, tmp, patcher)
    report = analyze(dst, runtime=p.runtime, arch=p.arch, as_="layer" if p.mount == "/opt" else "function",
                     progress=progress)
    # every error of the output (a layer analyze says will fail is not clean, whatever the cause),
    # the shadowed libraries vendor is there to fix, and the plan's own "will not start" warnings
    problems = [f for f in report.findings if f.severity is Severity.ERROR or f.code == "LP103"]
    breaks = [f for f in p.findings if f.code in BREAKS_START]
    return VendorResult(p, dst, report, notes + breaks + problems)


def _unpack_input(src: Path, dst: Path) -> None:
    """Copy the input (a zip or a tree) to `dst`; its inventory is freed on return, before the
    output is analysed (a 200,000-entry zip's Tree is ~50 MB)."""
    with open_tree(src) as tree:
        unpack(tree, dst)


def _apply_into(p: VendorPlan, dst: Path, patcher: Patcher) -> list[Finding]:
    """Copy, link, move, patch and wrap inside `dst`, never through a link found there."""
    try:
        with Writer(dst) as w:
            notes = _copy_libraries(p, w)
            for m in p.moves:
                w.rename(m.source, m.dest)
            if p.bundle is not None:
                _relocate_bundle(p, w)
            notes += _patch(p, w, patcher)
            for op in p.in_place:  # payload-carrying programs: same bytes, same size, new PT_INTERP
                if not w.is_real_file(op.rel):
                    raise InputError(f"{w.root}/{op.rel}: not a regular file reached without links; refusing to patch it")
                try:
                    set_interpreter_in_place(w.root / op.rel, op.patch.interpreter or "")
                except ElfError as exc:
                    raise VendorError(str(exc.args[0])) from exc
            if p.wrapper is not None:
                if p.wrapper.move:
                    w.rename("bootstrap", p.wrapper.program)
                else:
                    w.unlink("bootstrap")
                w.write_bytes("bootstrap", p.wrapper.text.encode(), 0o755)
            if p.copies:
                w.write_bytes(posixpath.join(p.libdir, THIRD_PARTY), third_party_text(p.copies).encode())
    except InputError as exc:
        raise _vendor_error(exc) from exc
    return notes


def _relocate_bundle(p: VendorPlan, w: Writer) -> None:
    """gconv modules into the bundle, and the bundled libc pointed at them instead of the directory
    it was built with (which on another system holds an older glibc's modules)."""
    b = p.bundle
    assert b is not None
    if b.gconv_source:
        for rel in b.gconv_files:
            w.copy_file(posixpath.join(b.gconv, rel), os.path.join(b.gconv_source, rel))
    if b.gconv_compiled:
        libc = posixpath.join(b.dir, "libc.so.6")
        if not w.is_real_file(libc):
            raise InputError(f"{w.root}/{libc}: not a regular file reached without links; refusing to patch it")
        try:
            found = replace_path_prefix(w.root / libc, b.gconv_compiled, posixpath.join(p.mount, b.gconv))
        except ElfError as exc:
            raise VendorError(str(exc.args[0])) from exc
        if not found:
            raise VendorError(f"{libc}: the gconv directory {b.gconv_compiled} was not found to relocate")


def _copy_libraries(p: VendorPlan, w: Writer) -> list[Finding]:
    """Copy each library into lib/ (stripped before any patching, never after: auditwheel #716,
    with the strip for its machine and the alignment re-read of `elf.strip`) with its links."""
    notes: list[Finding] = []
    for c in p.copies:
        w.copy_file(c.dest, c.real, stat.S_IMODE(os.stat(c.real).st_mode) | 0o444)
        if p.strip:
            done, why = strip_file(w.root / c.dest)
            if not done:
                code = NO_STRIP if why.startswith("no binutils strip") else NOT_STRIPPED
                notes.append(finding(code, c.dest, f"{c.dest} left unstripped: {why}"))
        for link in c.links:
            w.symlink(link, posixpath.relpath(c.dest, posixpath.dirname(link)))
    return notes


def _patch(p: VendorPlan, w: Writer, patcher: Patcher) -> list[Finding]:
    notes: list[Finding] = []
    for op in p.patches:
        if not w.is_real_file(op.rel):
            raise InputError(f"{w.root}/{op.rel}: not a regular file reached without links; refusing to patch it")
        path = w.root / op.rel
        before = read_path(path)
        original = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
        try:
            patcher.apply(path, op.patch)
        except ElfError as exc:
            raise VendorError(f"{patcher.name} could not patch {op.rel}: {exc.args[0]}", hint=exc.hint) from exc
        path.chmod(mode)
        after = read_path(path)
        refused = load_refusal(after) if load_refusal(before) is None else None
        if after.load_align != before.load_align or refused:  # put the original back, as LP907 says
            path.write_bytes(original)
            what = (f"left a segment ld.so refuses: {refused}" if refused else
                    f"changed the PT_LOAD alignment {before.load_align:#x} -> {after.load_align:#x}")
            notes.append(finding(ALIGNMENT_CHANGED, op.rel, f"{op.rel}: {patcher.name} {what}; original kept"))
    return notes
