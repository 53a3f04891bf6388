"""Symbol-version findings of analyze (LP2xx): every object's version needs against what its
dependency will be on Lambda — a bundled file's own definitions, or the runtime's ceilings.

A mixin of `packer.analyze.Analysis`, kept apart because the rules are their own family (ld.so's
`elf/dl-version.c` and the symbol lookup behind it) and the class grew past what one file reads
well; it uses the analysis's `rt`, `fs`, `add`, `obj_rel`, `_label`, `_seen` and `_judged`.
"""

from __future__ import annotations

import mmap  # here, not in _map: a forked child (name_symbols_ahead) imports nothing
from pathlib import Path

from packer.elf.search import MISSING, VENDORABLE, Edge, Obj, Process
from packer.elf.symbols import bindings_needing, symbols_needing
from packer.errors import InputError
from packer.findings import Severity, define, finding
from packer.runtime import version_family

VERSION_TOO_NEW = define("LP201", Severity.ERROR, "needs a symbol version newer than the runtime provides",
                         "build against an older toolchain/sysroot (e.g. glibc ≤ the runtime's), or `layerpack vendor --bundle-libc`")
VERSION_UNDEFINED = define("LP202", Severity.ERROR, "bundled library does not define a version its user needs",
                           "ship the library build your program was linked against")
VERSION_UNKNOWN = define("LP203", Severity.INFO, "the runtime's version ceiling for this library is not known",
                         "test on Lambda (`layerpack invoke` runs it locally) before relying on it")
VERSION_UNVERIFIED = define("LP204", Severity.WARNING, "needs a symbol version of a runtime library whose versions are not known",
                            "run it on Lambda's runtime (`layerpack invoke`), or ship the library build it was linked against")
VERSION_WEAK = define("LP206", Severity.WARNING, "needs a weak symbol version the library lacks: the program starts, a call may fail",
                      "ld.so skips a missing weak version; a strong symbol bound to it fails when it is first looked up "
                      "(at once with BIND_NOW): make sure that code path checks the version first, or build against an older sysroot")
VERSION_NONE = define("LP205", Severity.INFO, "needs symbol versions from a bundled library that defines none",
                      "ld.so warns \"no version information available\" and uses the library; rebuild it with its "
                      "version script to silence the warning")


def _symbols_text(named: list[str], shown: int = 3, width: int = 120) -> str:
    """': symbols a@V, b@V … (12 in all)' for a finding's one line: at most `shown` names and about
    `width` characters of them (C++ names run long); '' for none. JSON data keeps every name."""
    if not named:
        return ""
    kept = named[:1]
    for name in named[1:shown]:
        if sum(len(k) + 2 for k in kept) + len(name) > width:
            break
        kept.append(name)
    more = f" … ({len(named)} in all)" if len(named) > len(kept) else ""
    return f": symbols {', '.join(kept)}{more}"


class VersionFindings:
    """The LP2xx rules, mixed into Analysis."""

    def version_findings(self, proc: Process) -> None:
        """Every object's version needs against what its dependency will actually be on Lambda."""
        by_requester: dict[str, dict[str, Edge]] = {}
        for e in proc.edges:
            by_requester.setdefault(e.requester, {})[e.name] = e
        for obj in proc.objects:
            if obj.info is None or obj.where == "runtime":
                continue
            edges = by_requester.get(obj.path, {})
            too_new: dict[str, list[str]] = {}
            for file, versions in obj.info.version_needs:
                e = edges.get(file)
                if e is None or e.status in (MISSING,):
                    continue
                target = e.target
                # the same object needing from the same file found the same way was judged in an
                # earlier process: every finding it gives is already kept (they are kept once)
                judged = (obj.real, file, e.status, target.real if target else None, target.where if target else None)
                if judged in self._judged:
                    continue
                self._judged.add(judged)
                where = target.where if target else None
                if e.status == VENDORABLE or where in ("tree", "host"):
                    self._bundled_versions(obj, file, versions, target)
                else:
                    self._runtime_versions(obj, file, versions, too_new)
            if too_new:
                self._too_new(obj, too_new)

    def _bundled_versions(self, obj: Obj, file: str, versions: tuple[str, ...], target: Obj | None) -> None:
        """A need met by a file in the tree (or one to vendor): ld.so checks it against that file's
        own definitions; a file that defines none gets a warning on stderr and is used anyway."""
        if target is None or target.info is None:
            return
        if not target.info.version_defs and not target.info.version_needs:
            self.add(finding(VERSION_UNDEFINED, self.obj_rel(obj), f"{self._label(obj)} needs {', '.join(versions)} from "
                             f"{file}; {self._label(target)} has no symbol version table at all, so ld.so prints \"no version "
                             "information available\" and then aborts at the first lookup of such a symbol "
                             "(check_match assertion)", library=file, versions=list(versions)),
                     key=(VERSION_UNDEFINED.code, obj.real, file))
            return
        if not target.info.version_defs:
            self.add(finding(VERSION_NONE, self.obj_rel(obj), f"{self._label(obj)} needs {', '.join(versions)} from {file}; "
                             f"{self._label(target)} defines no versions, so ld.so prints \"{file}: no version information "
                             f"available (required by …)\" on stderr and goes on", library=file, versions=list(versions)),
                     key=(VERSION_NONE.code, obj.real, file))
            return
        missing = [v for v in versions if v not in target.info.version_defs]
        weak = [v for v in missing if obj.info is not None and obj.info.is_weak_need(file, v)]
        if weak:  # ld.so passes a missing weak version (dl-version.c); lookups through it may still fail
            missing = [v for v in missing if v not in weak]
            why = f"{self._label(target)} does not define {'it' if len(weak) == 1 else 'them'}"
            self._add_weak(obj, file, weak, why)
        if missing:
            self.add(finding(VERSION_UNDEFINED, self.obj_rel(obj),
                             f"{self._label(obj)} needs {', '.join(missing)} from {file}, which {self._label(target)} does not define",
                             library=file, versions=missing), key=(VERSION_UNDEFINED.code, obj.real, file))

    def _runtime_versions(self, obj: Obj, file: str, versions: tuple[str, ...], too_new: dict[str, list[str]]) -> None:
        """A need met by the runtime's copy, known only by name: judged by the ceilings of the
        version families the data covers; any other version is not verified. A too-new version
        the object needs only weakly (VER_FLG_WEAK) does not stop ld.so: LP206 or nothing."""
        weak: list[str] = []
        for v in versions:
            verdict = self.rt.version_verdict(file, v)
            if verdict == "too-new" and obj.info is not None and obj.info.is_weak_need(file, v):
                weak.append(v)
                continue
            if verdict == "unknown":
                self.add(finding(VERSION_UNKNOWN, self.obj_rel(obj), f"{self._label(obj)} needs {v} from {file}; "
                                 f"the {version_family(v)[0]} ceiling of {self.rt.name} is not known", version=v),
                         key=(VERSION_UNKNOWN.code, obj.real, v))
            elif verdict == "too-new":
                too_new.setdefault(file, []).append(v)
            elif not self.rt.covers_version(file, v) and v != "GLIBC_PRIVATE":
                self.add(finding(VERSION_UNVERIFIED, self.obj_rel(obj),
                                 f"{self._label(obj)} needs {v} from {file}: not verified — layerpack does not know which "
                                 f"versions {self.rt.name}'s {file} defines. If it defines none, ld.so prints \"no version "
                                 f"information available\" and goes on; if it defines others but not {v}, the program "
                                 f"does not start (version `{v}' not found)", library=file, version=v),
                         key=(VERSION_UNVERIFIED.code, obj.real, file, v))
        if weak:
            fam = version_family(weak[0])[0]  # type: ignore[index]
            self._add_weak(obj, file, weak, f"{self.rt.name} {self.rt.arch} has {self.rt.ceiling_name(fam)}")

    def _too_new(self, obj: Obj, too_new: dict[str, list[str]]) -> None:
        # the finding is kept once per (file, library): skip the symbol scan when another process
        # already reported it (measured: 257 scans of 82 files, 59 of libLLVM, became one per file)
        too_new = {f: vs for f, vs in too_new.items() if (VERSION_TOO_NEW.code, obj.real, f) not in self._seen}
        if not too_new:
            return
        wanted = {v for vs in too_new.values() for v in vs}
        ahead = self._names_named_ahead(obj)
        if ahead is not None:
            symbols = {v: ahead.get(v, []) for v in wanted}
        else:
            data = self._bytes_of(obj)
            symbols = symbols_needing(data, wanted) if data else {}
        for file, versions in too_new.items():
            fam = version_family(versions[0])[0]  # type: ignore[index]
            ceiling = self.rt.ceiling_name(fam)
            newest = max(versions, key=lambda v: version_family(v)[1])  # type: ignore[index]
            named = [f"{s}@{v}" for v in sorted(versions) for s in symbols.get(v, [])]
            # one line naming the path once (the finding's path): the data fields keep everything
            vendored = ", as the copy to vendor" if obj.where == "host" else ""
            self.add(finding(VERSION_TOO_NEW, self.obj_rel(obj) if obj.where != "host" else obj.label,
                             f"needs {newest} from {file}{vendored} ({self.rt.name} {self.rt.arch} provides {ceiling})"
                             f"{_symbols_text(named)}",
                             library=file, versions=sorted(versions), ceiling=ceiling, symbols=named),
                     key=(VERSION_TOO_NEW.code, obj.real, file))

    def _add_weak(self, obj: Obj, file: str, weak: list[str], why: str) -> None:
        """LP206 for versions `obj` needs weakly from `file` and will not find (`why`), unless
        every symbol bound to them is weak (ld.so resolves those to 0 and the program runs)."""
        if (VERSION_WEAK.code, obj.real, file) in self._seen:
            return
        data = self._bytes_of(obj)
        bound = bindings_needing(data, set(weak)) if data is not None else None
        strong = None if bound is None else [f"{s}@{v}" for v in sorted(weak) for s in bound[v][0]]
        if strong == []:
            return
        what = (f"strong references to{_symbols_text(strong).removeprefix(': symbols')} fail" if strong
                else "symbols bound to it fail (unreadable symbol table)")
        self.add(finding(VERSION_WEAK, self.obj_rel(obj) if obj.where != "host" else obj.label,
                         f"needs {', '.join(sorted(weak))} from {file} as a weak version ({why}): ld.so starts it, but "
                         f"{what} when first called (at once with BIND_NOW) — not verified",
                         library=file, versions=sorted(weak), symbols=strong or []),
                 key=(VERSION_WEAK.code, obj.real, file))

    def _names_named_ahead(self, obj: Obj) -> dict[str, list[str]] | None:
        """The names the child found for `obj`'s file, if it is a file of the analysed tree (not
        of a `--with-layer` tree that replaces it at the same path)."""
        if self._names_ahead is None or obj.where != "tree":
            return None
        node = self.fs.lookup(obj.real)
        if node is None or node.mount is not self.main_mount or not node.rel:
            return None
        if self._names is None:
            self._names = self._names_ahead.result()
        return self._names.get(node.rel)

    def _bytes_of(self, obj: Obj):
        """The file's bytes for the symbol reader: an mmap for files on disk (a 200 MB libLLVM
        costs page faults for the tables read, not 200 MB of RSS), a buffer for zip members."""
        try:
            if obj.where == "host":
                return _map(Path(obj.label))
            node = self.fs.lookup(obj.real)
            if node is not None and node.mount is not None and node.rel:
                return node.mount.tree.mapped_bytes(node.rel)
        except (OSError, ValueError, InputError):
            return None
        return None


def _map(path: Path):
    with open(path, "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
