"""Carry out a SlimPlan: copy the tree without what the plan removes, then strip and rewrite.

Why copy-while-filtering instead of copy-then-delete: Debian's OTP tree carries doc symlinks into
/usr/share/doc (213 MB when followed); copying with `symlinks=True` and skipping removed entries never
follows or materialises them. The input is only modified with `in_place=True`. Every file write is
atomic (temp file + rename) and keeps the file mode, as `beam_lib` does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packer.atomic import atomic_dir
from packer.elf.strip import strip_file
from packer.errors import SlimError
from packer.findings import Finding, finding
from packer.slim import beam, otp
from packer.slim.compile import compile_tree
from packer.slim.dedupe import DedupePlan, Link, apply_dedupe
from packer.slim.plan import ELF_ALIGN, LINK, REMOVE, REWRITE, STRIP_BEAM, STRIP_ELF, Action, SlimPlan


@dataclass(frozen=True)
class ApplyResult:
    out: Path
    bytes_after: int  # measured on disk (regular files)
    files_after: int
    elf_saved: int  # measured
    findings: tuple[Finding, ...]
    pyc_compiled: int = 0


def tree_bytes(root: Path) -> tuple[int, int]:
    """Regular-file bytes and count, never following links (what the layer will weigh)."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            if not os.path.islink(os.path.join(dirpath, n)) and os.path.isfile(os.path.join(dirpath, n)):
                total += st.st_size
                files += 1
    return total, files


def _write_atomic(path: Path, data: bytes) -> None:
    mode = os.lstat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=".lp-slim-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _copy(src: Path, out: Path, removed: set[str]) -> None:
    def ignore(directory: str, names: list[str]) -> list[str]:
        rel_dir = os.path.relpath(directory, src)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        return [n for n in names if prefix + n in removed]

    try:
        shutil.copytree(src, out, symlinks=True, ignore=ignore, dirs_exist_ok=True)
    except shutil.Error as exc:
        first = exc.args[0][0] if exc.args and exc.args[0] else exc
        raise SlimError(f"copying {src} to {out} failed: {first}") from exc
    except OSError as exc:
        raise SlimError(f"copying {src} to {out} failed: {exc}") from exc


def _remove_in_place(root: Path, paths: list[str]) -> None:
    for rel in paths:
        p = root / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def apply(plan: SlimPlan, out: str | Path | None = None, *, in_place: bool = False,
          compile_pyc: str | None = None, progress: Callable[[int], None] | None = None) -> ApplyResult:
    """Write the slimmed tree to `out` (must not exist or be empty), or change `plan.root` itself
    when `in_place`. `compile_pyc` is the interpreter (see slim.compile.find_interpreter) that writes
    hash-based .pyc into the output.
    `out` appears whole or not at all: it is built in a sibling temporary and renamed."""
    src = Path(plan.root)
    removed = {a.path for a in plan.actions if a.op == REMOVE}
    if in_place:
        if out is not None:
            raise SlimError("--out and --in-place exclude each other")
        _remove_in_place(src, sorted(removed, key=len, reverse=True))
        findings, elf_saved, compiled = _transform(plan, src, compile_pyc, progress)
        dest = src
    else:
        if out is None:
            raise SlimError("no output directory", hint="pass --out DIR (or --in-place to change the input)")
        dest = Path(os.path.abspath(out))
        if dest == src.resolve() or src.resolve() in dest.resolve().parents:
            raise SlimError(f"{dest}: the output cannot be inside the input tree")
        with atomic_dir(dest) as tmp:
            _copy(src, tmp, removed)
            findings, elf_saved, compiled = _transform(plan, tmp, compile_pyc, progress)
    after, files = tree_bytes(dest)
    return ApplyResult(dest, after, files, elf_saved, tuple(findings), compiled)


def _transform(plan: SlimPlan, dest: Path, compile_pyc: str | None,
               progress: Callable[[int], None] | None) -> tuple[list[Finding], int, int]:
    """Strip and rewrite in the copy; (findings, ELF bytes saved, .pyc compiled)."""
    findings: list[Finding] = []
    elf_saved = 0
    extra = tuple(plan.beam.get("extra_chunks", ()))
    gz = bool(plan.beam.get("gzip", False))
    release = plan.beam.get("otp_release")
    for a in plan.actions:
        p = dest / a.path
        if a.op == STRIP_BEAM:
            _write_atomic(p, beam.strip(p.read_bytes(), extra=extra, otp_release=release, compress=gz))
        elif a.op == STRIP_ELF:
            size = p.stat().st_size
            ok, why = strip_file(p)
            if ok:
                elf_saved += size - p.stat().st_size
            else:
                findings.append(finding(ELF_ALIGN, a.path, f"not stripped: {why}"))
        elif a.op == REWRITE:
            new_root = a.note.rsplit(" -> ", 1)[-1]
            text = p.read_text(encoding="utf-8", errors="surrogateescape")
            new, _ = otp.rewrite_rootdir(text, new_root)
            _write_atomic(p, new.encode("utf-8", "surrogateescape"))
        if progress:
            progress(1)
    links = [Link(a.path, a.note, a.before) for a in plan.actions if a.op == LINK]
    if links:  # after stripping: both copies got the same treatment, apply_dedupe checks they still agree
        apply_dedupe(dest, DedupePlan(tuple(links)))
    compiled = compile_tree(dest, compile_pyc) if compile_pyc else 0
    return findings, elf_saved, compiled


__all__ = ["apply", "ApplyResult", "tree_bytes", "Action"]
