"""`build` and `check`: a Lambda-correct, reproducible layer zip, and whether it fits.

The zip tools people use lose exec bits, flatten symlink chains into copies, keep files only
their owner can read, or nest everything under a parent folder. Here the tree is first turned into
a `ZipPlan` (pure: which members, with which normalised modes, and why some entries cannot be
in a layer at all), then the plan is written by `packer.zipwrite` to a temporary file that is
renamed into place. The same input gives the same bytes, so `publish` can skip an upload whose
SHA-256 Lambda already has.

Normalisation, and why:
  * directories 0755, files 0644 or 0755: Lambda runs code as a user that owns no file, so only
    the "other" bits matter; collapsing to two modes makes umask and checkout differences vanish.
  * the exec bit is kept, and forced on ELF programs and on the root `bootstrap` (the classic
    `permission denied` after zipping on Windows or with a tool that drops modes).
  * symlinks stay symlinks when they resolve inside the tree; absolute or escaping links are
    refused (they break or point at the build machine once unpacked) unless `--dereference`,
    which stores the contents of those links. Special files are refused.
  * names sorted, one fixed timestamp (SOURCE_DATE_EPOCH when set, clipped to 1980..2107).
"""

from __future__ import annotations

import base64
import functools
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packer.digest import file_sha256
from packer import budget as budget_mod
from packer.atomic import is_temporary_name, sigterm_unwinds
from packer import runtime as runtime_mod
from packer.budget import Budget, Contributor
from packer.elf.reader import read_elf
from packer.errors import ElfError, InputError, PackageError, UsageError
from packer.findings import Finding, Severity, define, finding
from packer.pyc import pyc_findings
from packer.tree import DIR, FILE, SPECIAL, SYMLINK, Tree, open_tree
from packer.zipwrite import CountingSink, Member, get_backend, source_date_epoch, write_zip

EXEC_ADDED = define("LP510", Severity.INFO, "exec bit added",
                    "nothing to fix: ELF programs and the root bootstrap must be executable on Lambda")
MODES_NORMALISED = define("LP511", Severity.INFO, "permissions normalised for Lambda",
                          "nothing to fix: files are stored 0644/0755 and directories 0755 so Lambda's user can read them")
DEREFERENCED = define("LP512", Severity.INFO, "link leaving the tree stored as the contents of its target",
                      "nothing to fix (--dereference); drop the option to be told about such links instead")
OUTPUT_SKIPPED = define("LP513", Severity.INFO, "the output zip lies inside the input tree and was left out",
                        "write the zip outside the tree (`-o ../layer.zip`)")
PLAIN_ZLIB = define("LP514", Severity.INFO, "zipped with plain zlib: zlib-ng is not installed here",
                    "pip install zlib-ng (wheels for x86_64 and aarch64) for about 2x faster builds; "
                    "the zip bytes then differ, as they do between any two deflate backends")

DEDUPED = define("LP507", Severity.INFO, "identical copies in one directory stored as symlinks (--dedupe)",
                 "nothing to fix: Lambda restores the links when it unpacks the layer")

_ELF_MAGIC = b"\x7fELF"


class OverBudget(PackageError):
    """Refusing to write a zip Lambda would refuse: exit code 1 like any over-budget check."""

    exit_code = 1


@dataclass(frozen=True)
class BuildResult:
    path: Path  # the zip written
    sha256_hex: str  # hex SHA-256 of the zip bytes
    code_sha256: str  # base64 of the raw SHA-256 digest (what Lambda returns as CodeSha256)
    zipped_size: int
    unzipped_size: int  # as Lambda counts it
    entries: int
    findings: list  # list[packer.findings.Finding]
    backend: str = "zlib"  # the deflate implementation that made the bytes (part of reproducibility)


@dataclass
class ZipPlan:
    """What would go into the zip. `refusals` name entries that cannot be in a layer at all;
    `build` raises on them, `check` only measures around them."""

    members: list[Member]
    findings: list[Finding] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def unzipped_size(self) -> int:
        return sum(m.size for m in self.members)


def normalised_mode(mode: int, executable: bool) -> int:
    return 0o755 if executable or mode & 0o111 else 0o644


def _is_elf_program(tree: Tree, rel: str) -> bool:
    try:
        if tree.read_head(rel, 4) != _ELF_MAGIC:
            return False
        with tree.source(rel) as src:
            return read_elf(src).is_program
    except (ElfError, InputError):
        return False  # a broken ELF file is `analyze`'s business, not the zip's


def _tree_opener(tree: Tree, rel: str) -> Callable:
    host = tree.host_path(rel)
    if host is not None:
        return functools.partial(open, host, "rb")
    # zip members: bounded read (the zip was inspected for bombs before planning)
    import io

    return lambda: io.BytesIO(tree.read_bytes(rel))


def plan(tree: Tree, *, dereference: bool = False, exclude: Iterable[str] = ()) -> ZipPlan:
    """Decide every member of the zip for `tree` without writing anything."""
    skip = set(exclude)
    members: list[Member] = []
    out = ZipPlan(members)
    for p in tree.problems:
        out.refusals.append(f"{p.path}: {p.detail}")
    exec_added: list[tuple[str, str]] = []
    normalised: list[str] = []
    for rel in sorted(tree.entries):
        if any(is_temporary_name(part) for part in rel.split("/")):
            continue  # an unfinished output of a killed layerpack run (vendor/slim --out, build -o)
        if rel in skip:
            if not rel.endswith(".tmp"):
                out.findings.append(finding(OUTPUT_SKIPPED, rel, f"{rel} is the zip being written; it is not put inside itself"))
            continue
        e = tree.entries[rel]
        if e.kind == DIR:
            if e.mode & 0o7777 != 0o755 and tree.kind == "dir":
                normalised.append(rel)
            members.append(Member(rel, DIR, 0o755, 0))
        elif e.kind == SPECIAL:
            out.refusals.append(f"{rel}: a device, fifo or socket cannot be in a zip")
        elif e.kind == FILE:
            forced = (rel == "bootstrap") or (not e.mode & 0o111 and _is_elf_program(tree, rel))
            mode = normalised_mode(e.mode, forced)
            if forced and not e.mode & 0o111:
                exec_added.append((rel, "the runtime's entry point" if rel == "bootstrap" else "an ELF program"))
            elif mode != e.mode & 0o7777:
                normalised.append(rel)
            members.append(Member(rel, FILE, mode, e.size, opener=_tree_opener(tree, rel)))
        elif e.kind == SYMLINK:
            _final, status = tree.resolve(rel)
            if status in ("escapes",) or status.startswith("absolute:"):
                why = "is absolute" if status.startswith("absolute:") else "leaves the tree"
                if not dereference:
                    out.refusals.append(f"{rel} -> {e.link}: the link {why} (use --dereference to store its contents)")
                    continue
                host = tree.host_path(rel)
                if host is None:
                    out.refusals.append(f"{rel} -> {e.link}: the link {why}, and links inside a zip cannot be dereferenced")
                    continue
                before = len(members)
                _dereference(host, rel, members, out.refusals, set())
                if len(members) > before:
                    out.findings.append(finding(DEREFERENCED, rel, f"{rel} -> {e.link} {why}: stored its contents "
                                                f"({sum(m.size for m in members[before:]):,} bytes)", target=e.link))
            else:  # inside the tree (dangling and looping links are the layout checks' findings)
                members.append(Member(rel, SYMLINK, 0o777, len(os.fsencode(e.link or "")), link=e.link))
    for rel, what in exec_added:
        out.findings.append(finding(EXEC_ADDED, rel, f"{rel} is {what} but had mode {tree.entries[rel].mode:04o}: stored as 0755"))
    if normalised:
        out.findings.append(finding(MODES_NORMALISED, normalised[0],
                                    f"{len(normalised)} entries stored with Lambda-safe modes (first: {normalised[0]})",
                                    paths=normalised[:50], count=len(normalised)))
    members.sort(key=lambda m: os.fsencode(m.name))
    return out


def _dereference(host: Path, rel: str, members: list[Member], refusals: list[str], seen: set[tuple[int, int]]) -> None:
    """Store what a link outside the tree points to (files; directories recursively)."""
    try:
        st = os.stat(host)  # follows the link
    except OSError as exc:
        refusals.append(f"{rel}: its target cannot be read ({exc.strerror})")
        return
    if stat.S_ISREG(st.st_mode):
        members.append(Member(rel, FILE, normalised_mode(st.st_mode, False), st.st_size,
                              opener=functools.partial(open, os.path.realpath(host), "rb")))
    elif stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in seen:
            refusals.append(f"{rel}: the dereferenced directory contains itself (link loop)")
            return
        seen = seen | {key}
        members.append(Member(rel, DIR, 0o755, 0))
        try:
            names = sorted(os.listdir(host))
        except OSError as exc:
            refusals.append(f"{rel}: cannot list ({exc.strerror})")
            return
        for name in names:
            _dereference(host / name, f"{rel}/{name}", members, refusals, seen)
    else:
        refusals.append(f"{rel}: its target is a device, fifo or socket")


def _dedupe_members(tree: Tree, p: ZipPlan) -> None:
    """--dedupe: the members of later identical copies become symlinks to the first (a pure
    `slim.dedupe` plan; the tree itself is never changed)."""
    from packer.slim.dedupe import plan_dedupe

    links = {k.path: k for k in plan_dedupe(tree, [m.name for m in p.members if m.kind == FILE]).links}
    if not links:
        return
    for i, m in enumerate(p.members):
        k = links.get(m.name)
        if k is not None:
            p.members[i] = Member(m.name, SYMLINK, 0o777, len(os.fsencode(k.target)), link=k.target)
    saved = sum(k.saved for k in links.values())
    first = min(links.values(), key=lambda k: os.fsencode(k.path))
    p.findings.append(finding(DEDUPED, first.path, f"{len(links)} identical copies stored as symlinks, {saved:,} bytes "
                              f"less unzipped (e.g. {first.path} -> {first.target})", links=len(links), saved=saved))


def _refuse(origin: str, refusals: list[str]) -> PackageError:
    more = f" (and {len(refusals) - 3} more)" if len(refusals) > 3 else ""
    return PackageError(f"{origin}: {len(refusals)} entries cannot go into a layer: " + "; ".join(refusals[:3]) + more,
                        hint="`layerpack check` lists them all")


def code_sha256(zip_path: str | os.PathLike) -> str:
    """Base64 of the raw SHA-256 digest of a file: Lambda's CodeSha256 convention."""
    return base64.b64encode(file_sha256(Path(zip_path)).digest()).decode("ascii")


def _load_runtime(name: str | None, kind: str) -> runtime_mod.Runtime:
    from packer.checks import KINDS

    if kind not in KINDS:
        raise UsageError(f"unknown layer kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    return runtime_mod.load(name or runtime_mod.default_runtime())


def _layout(tree: Tree, rt: runtime_mod.Runtime, kind: str) -> list[Finding]:
    from packer.checks import layout_findings

    return layout_findings(tree, rt, kind)


def _open(path: str | os.PathLike, inspection: budget_mod.ZipInspection | None = None) -> Tree:
    """open_tree, but a `.zip` that is not a readable zip is bad input, not a one-file layer.
    `inspection` checks the zip for bombs in the same pass over its directory."""
    t = open_tree(path, watch=inspection)
    if t.kind == "file" and str(path).lower().endswith(".zip"):
        t.close()
        raise InputError(f"{path}: not a readable zip file", hint="rebuild it with `layerpack build`")
    return t


def _inside(root: Path, path: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def build(tree: str | Path, out: str | Path, *, level: int = 6, dereference: bool = False,
          force: bool = False, kind: str = "auto", runtime: str | None = None,
          progress: Callable[[int], None] | None = None, backend: str = "auto",
          epoch: int | None = None, dedupe: bool = False,
          progress_total: Callable[[int], None] | None = None) -> BuildResult:
    """Zip `tree` (a directory, a zip to normalise, or a single program seen as `bootstrap`) into
    `out`, atomically. Raises PackageError for entries that cannot be in a layer, OverBudget when
    the layer alone is over Lambda's limit (unless `force`). `epoch` defaults to SOURCE_DATE_EPOCH.
    `dedupe`: later identical copies in one directory are stored as symlinks to the first.
    `progress` is called with the bytes of each piece as it is zipped, once `progress_total` got
    what they add up to (the unzipped size), so a bar can show how far along it is."""
    if not 0 <= level <= 9:
        raise UsageError(f"compression level {level} is out of range", hint="use 0 (store) to 9 (smallest)")
    rt = _load_runtime(runtime, kind)
    be = get_backend(backend)
    when = epoch if epoch is not None else source_date_epoch()
    out_path = Path(out)
    if out_path.is_dir():
        raise UsageError(f"{out}: is a directory; give the zip's file name", hint="-o layer.zip")
    if out_path.suffix.lower() != ".zip":
        raise UsageError(f"{out}: the output must be a .zip file")
    src = Path(tree)
    findings: list[Finding] = []
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out_path.parent}: cannot create: {exc.strerror}") from exc
    if src.exists() and src.resolve() == out_path.resolve():
        raise UsageError(f"{out}: the output would overwrite the input", hint="write the zip somewhere else")
    # SIGTERM unwinds from before the temporary exists (installed after it, a SIGTERM in between left it)
    with sigterm_unwinds():
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
        except OSError as exc:
            raise InputError(f"{out_path.parent}: cannot write: {exc.strerror}") from exc
        tmp = Path(tmp_name)
        try:
            inspection = budget_mod.ZipInspection(src)
            with os.fdopen(fd, "w+b") as fh, _open(src, inspection) as t:
                if t.kind == "zip":
                    findings.extend(inspection.facts(t.zip_index).findings)
                exclude = []
                if t.kind == "dir":
                    exclude = [r for r in (_inside(src, out_path), _inside(src, tmp)) if r]
                p = plan(t, dereference=dereference, exclude=exclude)
                if p.refusals:
                    raise _refuse(str(tree), p.refusals)
                if dedupe:
                    _dedupe_members(t, p)
                # judged on the input: a directory's copies are real files (the message says so)
                copies = [] if dedupe else budget_mod.flattened_copies(t)
                b = budget_mod.budget(p.unzipped_size)
                if b.over and not force:
                    raise OverBudget(f"{tree}: unzips to {b.total:,} bytes; Lambda's limit is {b.limit:,} "
                                     f"({b.total - b.limit + 1:,} bytes too many); no zip written",
                                     hint="slim the tree (`layerpack slim`), or --force to write it anyway")
                findings.extend(p.findings)
                if progress_total is not None:
                    progress_total(p.unzipped_size)
                stats = write_zip(p.members, fh, level=level, epoch=when, backend=be, progress=progress)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, out_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    findings.extend(b.findings(str(out_path)))
    if backend == "auto" and be.name == "zlib" and level > 0:
        findings.append(finding(PLAIN_ZLIB, str(out_path), "zipped with Python's zlib because zlib-ng is not installed"))
    findings.extend(budget_mod.upload_findings(str(out_path), stats.zipped_size))
    with open_tree(out_path) as zt:
        findings.extend(_layout(zt, rt, kind))
        findings.extend(copies)
        findings.extend(pyc_findings(zt, rt))
    digest = file_sha256(out_path).digest()
    return BuildResult(out_path, digest.hex(), base64.b64encode(digest).decode("ascii"), stats.zipped_size,
                       stats.unzipped_size, stats.entries, findings, be.name)


# -- check -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Artefact:
    path: str
    role: str  # "layer" | "function"
    kind: str  # "dir" | "zip" | "file"
    unzipped: int
    zipped: int | None
    entries: int
    zipped_estimate: bool = False  # zipped is estimated from a sample (packer.zipestimate)

    def to_json(self) -> dict:
        return {"path": self.path, "role": self.role, "kind": self.kind, "unzipped_bytes": self.unzipped,
                "zipped_bytes": self.zipped, "zipped_estimate": self.zipped_estimate, "entries": self.entries}


@dataclass
class CheckReport:
    target: Artefact
    others: list[Artefact]
    budget: Budget
    top: list[Contributor]
    findings: list[Finding]
    backend: str | None = None

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity >= Severity.ERROR for f in self.findings) else 0

    @property
    def upload(self) -> str | None:
        if self.target.zipped is None:
            return None
        return "s3" if budget_mod.needs_s3(self.target.zipped) else "direct"

    def to_json(self) -> dict:
        return {
            "target": self.target.to_json(),
            "with": [a.to_json() for a in self.others],
            "budget": self.budget.to_json(),
            "upload": {"zipped_bytes": self.target.zipped, "via": self.upload,
                       "request_limit_bytes": budget_mod.REQUEST_LIMIT},
            "top": [c.to_json(self.target.unzipped) for c in self.top],
            "findings": [f.to_json() for f in self.findings],
            "exit_code": self.exit_code,
        }


def _measure(path: str | Path, role: str, *, zipped: bool, level: int, backend: str,
             progress: Callable[[int], None] | None = None, exact: bool = True) -> tuple[Artefact, Tree, list[Finding]]:
    """Size of one artefact. A zip is measured from its (checked) directory; a tree from the plan
    `build` would write, and its zipped size by compressing into a counting sink (no file written).
    The returned Tree is open; the caller closes it."""
    findings: list[Finding] = []
    inspection = budget_mod.ZipInspection(path)
    t = _open(path, inspection)
    try:
        if t.kind == "zip":
            facts = inspection.facts(t.zip_index)
            findings.extend(facts.findings)
            return Artefact(str(path), role, "zip", facts.declared_unzipped, facts.zipped_size, facts.entries), t, findings
        p = plan(t, dereference=False)
        size_zip = None
        if zipped and not exact:
            from packer.zipestimate import estimate_zipped_size

            est = estimate_zipped_size(p.members, level=level, backend=get_backend(backend))
            return Artefact(str(path), role, t.kind, p.unzipped_size, est.size, len(p.members), True), t, findings
        if zipped:
            sink = CountingSink()
            size_zip = write_zip(p.members, sink, level=level, epoch=None, backend=get_backend(backend),
                                 progress=progress).zipped_size
        return Artefact(str(path), role, t.kind, p.unzipped_size, size_zip, len(p.members)), t, findings
    except BaseException:
        t.close()
        raise


def check(tree: str | Path, *, with_layers: Iterable[str | Path] = (), function: str | Path | None = None,
          kind: str = "auto", runtime: str | None = None, level: int = 6, backend: str = "auto",
          depth: int = 2, top: int = 10, zipped: bool = True, exact_zip: bool = True,
          progress: Callable[[int], None] | None = None) -> CheckReport:
    """Measure `tree` (a layer) against Lambda's budget together with other layers and the function,
    and run the layout checks. Pure reading: a zip is never extracted, nothing is written."""
    rt = _load_runtime(runtime, kind)
    if depth < 1 or top < 1:
        raise UsageError("--depth and --top must be at least 1")
    layers = list(with_layers)
    budget_mod.budget(0, [0] * len(layers))  # layer count is a usage error before any work
    target, t, findings = _measure(tree, "layer", zipped=zipped, level=level, backend=backend, progress=progress,
                                   exact=exact_zip)
    with t:
        findings.extend(_layout(t, rt, kind))
        findings.extend(budget_mod.flattened_copies(t))
        findings.extend(pyc_findings(t, rt))
        contributors = budget_mod.contributors(t, depth=depth, top=top)
    others: list[Artefact] = []
    for role, paths in (("layer", layers), ("function", [function] if function else [])):
        for p in paths:
            a, ot, extra = _measure(p, role, zipped=False, level=level, backend=backend)
            ot.close()
            others.append(a)
            findings.extend(extra)
    b = budget_mod.budget(target.unzipped, [a.unzipped for a in others if a.role == "layer"],
                          next((a.unzipped for a in others if a.role == "function"), None))
    findings.extend(b.findings(str(tree)))
    if target.zipped is not None:
        findings.extend(budget_mod.upload_findings(str(tree), target.zipped, target.zipped_estimate))
    return CheckReport(target, others, b, contributors, findings,
                       backend=get_backend(backend).name if zipped and target.kind != "zip" else None)


__all__ = ["BuildResult", "CheckReport", "OverBudget", "ZipPlan", "build", "check", "code_sha256", "plan"]
