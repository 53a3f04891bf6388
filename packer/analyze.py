"""`layerpack analyze`: what happens to this tree when it lands on Lambda — without running it.

The tree is mounted where Lambda puts it (`/opt` for a layer, `/var/task` for a function), on the
target runtime's file system as the live dumps describe it. Every ELF file is checked, not only the
entry point: NIFs, plugins and vendored libraries fail on Lambda just as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import posixpath
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packer import checks, loadable, runtime as runtimes
from packer.bootscript import BootScript, LoaderExec, read_bootstrap
from packer.elf.hostlibs import HostLibraries
from packer.elf.reader import MACHINES, STRICT_ALIGN_BEFORE, ElfInfo, InfoMemo, load_refusal
from packer.elffiles import ElfFile, collect
from packer.elf.search import MISSING, SHADOWED, UNLOADABLE, VENDORABLE, Edge, Loader, Obj, Process, hwcap_subdirs
from packer.elf.symbols import symbols_needing
from packer.errors import ElfError, InputError, UsageError
from packer.findings import Finding, Severity, define, finding
from packer.forkwork import Forked, jobs
from packer.lambdafs import FUNCTION_MOUNT, LAYER_MOUNT, LambdaFS, Mount
from packer.render import compact_json
from packer.runtime import ARCH_MACHINE, MACHINE_ARCH, Runtime
from packer.tree import FILE, Tree, open_tree
from packer.versionfindings import VersionFindings, _map

SCHEMA = "layerpack.analyze/1"

LIB_MISSING = define("LP101", Severity.ERROR, "library not found on Lambda, nor on this machine",
                     "build the library for the target and ship it in the layer's lib/, or link it statically")
LIB_VENDORABLE = define("LP102", Severity.ERROR, "library not found on Lambda; this machine has a copy",
                        "run `layerpack vendor` to copy it into the layer's lib/ with an RPATH Lambda honours")
LIB_SHADOWED = define("LP103", Severity.WARNING, "bundled library is shadowed by the runtime's copy",
                      "Lambda searches /lib64 before /opt/lib: `layerpack vendor` renames it or sets DT_RPATH so yours wins "
                      "(only if your copy is a loadable library for the target: DT_RPATH makes the loader open it first, "
                      "and a file it cannot load then stops the program)")
INTERP_MISSING = define("LP104", Severity.ERROR, "program interpreter does not exist on Lambda",
                        "build for glibc with the standard loader path, or ship the loader and start it from a bootstrap wrapper")
FOREIGN_RPATH = define("LP105", Severity.WARNING, "RPATH/RUNPATH names a build-machine directory",
                       "use $ORIGIN-relative paths (`layerpack vendor` rewrites them); Lambda has no such directory")
STATIC_PROGRAM = define("LP106", Severity.INFO, "statically linked program: no shared libraries to find",
                        "nothing to do")
PATH_NEEDED = define("LP108", Severity.WARNING, "DT_NEEDED names a path instead of a soname",
                     "relink with the library's soname (-l or -Wl,-soname) so the loader searches for it")
UNLOADABLE_CANDIDATE = define("LP109", Severity.WARNING, "a library of another ELF class or machine sits where the loader looks",
                              "the loader skips only a wrong class or machine and searches on; remove it or rebuild it for the target")
LOADER_STOPS = define("LP111", Severity.ERROR, "the loader stops at a file that is not a loadable library",
                      "ld.so does not skip it (a Git LFS pointer, an empty or truncated file, a directory or a program "
                      "with the library's name): put the real library there (`git lfs pull`) or remove the file")
ENV_UNMODELLED = define("LP112", Severity.WARNING, "bootstrap sets LD_LIBRARY_PATH in a way layerpack cannot follow",
                        "write it as `export LD_LIBRARY_PATH=/opt/lib:$LD_LIBRARY_PATH`, or pass the value with `analyze --env`")
REUSED_ELSEWHERE = define("LP116", Severity.WARNING, "library found only if another module of the tree loaded it first",
                          "ship the library where this module's own search finds it (beside it, or in a directory of "
                          "its RPATH), so the outcome does not depend on which module is imported first")
CPU_DEPENDENT = define("LP113", Severity.WARNING, "which library loads depends on the CPU (glibc-hwcaps or legacy hwcap subdirectory)",
                       "glibc searches glibc-hwcaps/x86-64-v4…v2 (and tls/, x86_64/, haswell/…) before the directory itself, "
                       "using those the CPU supports; keep one plain copy, or test on the CPUs your function may get")
TRAILING_DATA = define("LP110", Severity.INFO, "ELF file carries data past its image (SBCL core, raco exe payload)",
                       "layerpack never strips or patches such files; keep them byte-for-byte")
WRONG_ARCH = define("LP301", Severity.ERROR, "ELF file is for another architecture than the target",
                    "build for the target arch (--arch), or pick the matching Lambda architecture")
MIXED_ARCH = define("LP302", Severity.ERROR, "tree mixes ELF architectures",
                    "a layer serves one architecture: split it, or rebuild the odd files")
MUSL_ON_GLIBC = define("LP303", Severity.ERROR, "musl program on a glibc runtime (or glibc library in a musl program)",
                       "link statically against musl, or ship musl's loader and libc in the layer")
BITS_32 = define("LP304", Severity.ERROR, "32-bit ELF file: Lambda has no 32-bit loader or libraries",
                 "build a 64-bit binary")
FOREIGN_OS = define("LP305", Severity.ERROR, "ELF file is for another operating system", "build for Linux")
MISALIGNED_LOAD = define("LP306", Severity.ERROR, "the loader refuses the file's segment layout (PT_LOAD offset and address disagree)",
                         "a plain `strip` or patchelf after auditwheel moved a segment: take the file from its wheel or "
                         "package again, and strip with `layerpack slim`, which keeps only a strip ld.so accepts")
MALFORMED = define("LP307", Severity.ERROR, "file starts like ELF but is malformed", "rebuild it; the loader will refuse it too")

# Lambda arch -> ELF e_machine number, derived from the reader's table and runtime's arch names
_ARCH_MACHINES = {arch: num for arch, name in ARCH_MACHINE.items() for num, n in MACHINES.items() if n == name}
# Directories an RPATH may name on Lambda. Not /tmp: it is empty when an execution environment
# starts, and an RPATH into it is the most common build-directory leak.
_EXPECTED_ROOTS = ("/opt", "/var/task", "/var/lang", "/var/runtime", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


def _layout_refused(i: ElfInfo, rt: Runtime) -> str | None:
    """Why `i`'s PT_LOAD layout is refused on `rt` (None: it maps). A library is mapped by the
    runtime's ld.so, whose rule depends on its glibc (`load_refusal`); a program by the kernel,
    which maps page by page: a segment off by part of a page runs the wrong bytes (it crashed with
    SIGSEGV here), the rule of glibc 2.35 and later."""
    if i.bits != 64 or i.machine_name != rt.machine or i.is_musl or i.type not in (2, 3):
        return None
    if i.is_program:
        why = load_refusal(i, STRICT_ALIGN_BEFORE)
        return None if why is None else f"{why} (the kernel maps a program; it fails to start)"
    why = load_refusal(i, rt.ceiling("GLIBC"))
    return None if why is None else f"{why} (ld.so of {rt.name} refuses to load it)"


@dataclass
class Report:
    input: str
    runtime: Runtime
    mount: str
    layers: list[str]
    kind: str
    elf_files: list[ElfFile]
    processes: list[Process]
    findings: list[Finding]
    files_total: int = 0
    arch_source: str = "option"

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)

    @property
    def unverified(self) -> int:
        """Findings that say the outcome could not be established statically (CPU level, versions
        the data does not cover, a library path the bootstrap computes): not a pass."""
        return sum(1 for f in self.findings if f.code in _UNVERIFIED)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.WARNING)

    def status_counts(self) -> Counter:
        seen: dict[tuple[str, str], str] = {}
        for p in self.processes:
            for e in p.edges:
                if e.status != "loaded":
                    seen[(e.requester, e.name)] = e.status
        return Counter(seen.values())

    def to_json(self) -> dict[str, Any]:
        return self._json_head() | {
            "files": [_file_json(f) for f in self.elf_files],
            "dependencies": [_process_json(p) for p in self.processes],
            "findings": [f.to_json() for f in self.findings],
        }

    def write_json(self, write: Callable[[str], object], indent: int | None = None) -> None:
        """The same text as `compact_json(self.to_json())` (indent None) or `json.dumps(self.to_json(),
        indent=indent)`, written one array item at a time: the whole document as dicts and one
        string cost 60 MB more than the analysis itself on 3,616 ELF files (120 MB peak instead of
        59 MB)."""
        import json

        sections = {"files": (_file_json, self.elf_files), "dependencies": (_process_json, self.processes),
                    "findings": (lambda f: f.to_json(), self.findings)}
        dumps = compact_json if indent is None else lambda doc: json.dumps(doc, indent=indent)
        head = dumps(self._json_head() | {k: _MARK + k for k in sections})
        for key, (convert, items) in sections.items():
            before, head = head.split(dumps(_MARK + key), 1)
            write(before)
            _write_array(write, (convert(i) for i in items), indent)
        write(head)

    def _json_head(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "input": self.input,
            "runtime": {"name": self.runtime.name, "arch": self.runtime.arch, "os": self.runtime.os,
                        "dump_date": self.runtime.dump_date, "arch_source": self.arch_source},
            "mount": self.mount,
            "layers": self.layers,
            "kind": self.kind,
            "summary": {"files": self.files_total, "elf_files": len(self.elf_files), "errors": self.errors, "unverified": self.unverified,
                        "warnings": self.warnings, "libraries": dict(sorted(self.status_counts().items()))},
        }


_UNVERIFIED = frozenset({"LP112", "LP113", "LP115", "LP116", "LP203", "LP204", "LP206"})
_REPORTED = frozenset((MISSING, VENDORABLE, SHADOWED, UNLOADABLE))
_MARK = "\0"  # no path or name holds a NUL: marks where a streamed array goes in the JSON head


def _write_array(write: Callable[[str], object], items, indent: int | None) -> None:
    """One array at the top level of the report, formatted exactly as `write_json`'s whole-document
    encoder would."""
    import json

    first = True
    if indent is None:  # compact: items joined by ",", one encoder call per batch, not per item
        write("[")
        for batch in _batches(items, 256):
            write(("" if first else ",") + compact_json(batch)[1:-1])
            first = False
        write("]")
        return
    pad = " " * (2 * indent)
    for item in items:
        text = json.dumps(item, indent=indent).replace("\n", "\n" + pad)
        write(("[\n" if first else ",\n") + pad + text)
        first = False
    write("[]" if first else "\n" + " " * indent + "]")


def _batches(items, size: int):
    """Lists of up to `size` items: bounded memory, few encoder calls."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _file_json(f: ElfFile) -> dict[str, Any]:
    if f.info is None:
        return {"path": f.path, "error": f.error}
    i = f.info
    return {"path": f.path, "machine": i.machine_name, "class": i.bits, "type": i.type_name,
            "interpreter": i.interp, "static": i.is_static, "needed": list(i.needed), "soname": i.soname,
            "rpath": list(i.rpath), "runpath": list(i.runpath), "nodeflib": i.nodeflib,
            "trailing_bytes": i.trailing_bytes}


def _process_json(p: Process) -> dict[str, Any]:
    return {
        "root": p.root.path,
        "program": bool(p.root.info and p.root.info.is_program),
        "edges": [
            {"requester": e.requester, "name": e.name, "status": e.status, "path": e.path, "via": e.via,
             "searched": [{"dir": s.dir, "source": s.source} for s in e.searched] if e.status in (MISSING, VENDORABLE) else [],
             "host_path": e.host_path, "shadowed": e.shadowed,
             "skipped": [{"path": p_, "why": w} for p_, w in e.skipped]}
            for e in p.edges
        ],
    }


def pick_arch(elf_files: list[ElfFile], explicit: str | None, evidence: tuple[str, str] | None = None,
              native_tree: bool = False) -> tuple[str, str]:
    """The Lambda arch to analyse for: the option, else the bootstrap's, else what the runtime's
    interpreter would load (`evidence`, packer.loadable), else — for a Python or Node tree, whose
    native files may be prebuilds for every platform — the default, else the most common."""
    if explicit:
        if explicit not in _ARCH_MACHINES:
            raise UsageError(f"unknown --arch {explicit!r}", hint="use x86_64 or arm64")
        return explicit, "option"
    for f in elf_files:
        if f.rel == "bootstrap" and f.info and f.info.machine_name in MACHINE_ARCH:
            return MACHINE_ARCH[f.info.machine_name], "bootstrap"
    if evidence is not None:
        return evidence[0], f"loaded files: {evidence[1]}"
    if native_tree:
        return "x86_64", "default (the native files do not settle the architecture: pass --arch)"
    counts = Counter(MACHINE_ARCH[f.info.machine_name] for f in elf_files if f.info and f.info.machine_name in MACHINE_ARCH)
    if counts:
        return counts.most_common(1)[0][0], "ELF files"
    return "x86_64", "default"


class Analysis(VersionFindings):
    """One analysis run: holds the file system model, the loader and the findings as they come."""

    def __init__(self, tree: Tree, rt: Runtime, mount: str, extra: list[Tree], sysroot: Path | None,
                 memo: InfoMemo | None = None, ld_library_path: tuple[str, ...] | None = None) -> None:
        self.memo = memo or InfoMemo()
        self.tree = tree
        self.rt = rt
        self.mount = mount
        self.main_mount = Mount(mount, tree, "layer" if mount == LAYER_MOUNT else "function")
        mounts = [self.main_mount] if mount == LAYER_MOUNT else []
        for i, t in enumerate(extra, 2):
            mounts.append(Mount(LAYER_MOUNT, t, f"layer {i} ({Path(t.origin).name})"))
        if mount == FUNCTION_MOUNT:
            mounts.append(self.main_mount)
        self.fs = LambdaFS(rt, mounts)
        self.host = HostLibraries(rt.machine, 64, "little", sysroot, memo=self.memo)
        self.ld_library_path = rt.ld_library_path if ld_library_path is None else ld_library_path
        self.hwcaps = hwcap_subdirs(rt.machine, rt.ceiling("GLIBC"))
        self.loader = Loader(self.fs, self.ld_library_path, rt.default_dirs, machine=_ARCH_MACHINES[rt.arch], bits=64,
                             host_finder=self._host_find, hwcap_subdirs=self.hwcaps)
        self.findings: list[Finding] = []
        self._also_by: dict[tuple[str, str], list[str]] = {}
        self._seen: set[tuple] = set()
        self._judged: set[tuple] = set()
        self._host_elf_cache: dict[str, ElfInfo | None] = {}
        self._names_ahead: Forked | None = None
        self._names: dict[str, dict[str, list[str]]] | None = None

    def name_symbols_ahead(self, files: list[ElfFile], stack: contextlib.ExitStack) -> None:
        """Start naming, in another process, the symbols behind every too-new version need of the
        tree's files while this one simulates the loader. Which of these needs are reported
        depends on where each library resolves, known only later; a name list per version does
        not depend on the other versions asked for, so `_too_new` takes the versions it reports
        from these lists. The scan is ~40 % of the findings phase on /usr/lib/x86_64-linux-gnu (300
        files with versions newer than the runtime's)."""
        if self.tree.kind == "dir" and jobs() > 1 and len(files) >= NAMES_AHEAD_MIN:
            self._names_ahead = stack.enter_context(Forked(_too_new_names, self.tree, files, self.rt))

    def _host_find(self, name: str) -> str | None:
        hit = self.host.find(name)
        return str(hit.path) if hit else None

    def host_elf(self, path: str) -> ElfInfo | None:
        if path not in self._host_elf_cache:
            try:
                self._host_elf_cache[path] = self.memo.read_path(path)
            except ElfError:
                self._host_elf_cache[path] = None
        return self._host_elf_cache[path]

    def add(self, f: Finding, key: tuple | None = None) -> None:
        k = key or (f.code, f.path, f.message)
        if k not in self._seen:
            self._seen.add(k)
            self.findings.append(f)

    def rel(self, abs_path: str) -> str:
        prefix = self.mount + "/"
        return abs_path[len(prefix):] if abs_path.startswith(prefix) else abs_path

    def obj_rel(self, obj: Obj) -> str:
        """Where a loaded object is, by its real path: a library found through
        `$ORIGIN/../pkg.libs` is `python/pkg.libs/x.so`, not `python/mod/../pkg.libs/x.so`."""
        return self.rel(obj.real if obj.where == "tree" and obj.real else obj.path)

    # -- per-file facts --------------------------------------------------------------------------
    def file_checks(self, files: list[ElfFile]) -> None:
        machines = Counter(f.info.machine_name for f in files if f.info)
        if len(machines) > 1:
            summary = ", ".join(f"{n} {m}" for m, n in machines.most_common())
            self.add(finding(MIXED_ARCH, ".", f"the tree mixes architectures: {summary}", machines=dict(machines)))
        for f in files:
            if f.info is None:
                self.add(finding(MALFORMED, f.rel, f"{f.rel}: {f.error}"))
                continue
            i = f.info
            if i.bits == 32:
                self.add(finding(BITS_32, f.rel, f"{f.rel} is a 32-bit {i.machine_name} file"))
            elif i.machine_name != self.rt.machine:
                self.add(finding(WRONG_ARCH, f.rel, f"{f.rel} is {i.machine_name}, the target is {self.rt.arch} ({self.rt.machine}): "
                                 "Lambda reports 'exec format error'", machine=i.machine_name))
            if i.osabi not in (0, 3):
                self.add(finding(FOREIGN_OS, f.rel, f"{f.rel} has OS ABI {i.osabi} (not Linux)"))
            if i.is_musl:
                self.add(finding(MUSL_ON_GLIBC, f.rel, f"{f.rel} uses the musl loader {i.interp}; {self.rt.name} is glibc-based"))
            if i.has_payload:
                self.add(finding(TRAILING_DATA, f.rel, f"{f.rel} carries {i.trailing_bytes} bytes past its ELF image",
                                 trailing_bytes=i.trailing_bytes))
            if i.is_static:
                self.add(finding(STATIC_PROGRAM, f.rel, f"{f.rel} is statically linked"))
            refused = _layout_refused(i, self.rt)
            if refused is not None:
                self.add(finding(MISALIGNED_LOAD, f.rel, refused, segment=refused.split(":")[0]))
            for kind, entries in (("RPATH", i.rpath), ("RUNPATH", i.runpath)):
                for e in entries:
                    if e and not e.startswith("$ORIGIN") and not e.startswith("${ORIGIN}") and e.startswith("/") \
                            and not any(e == r or e.startswith(r + "/") for r in _EXPECTED_ROOTS):
                        why = "/tmp is empty when a Lambda function starts" if e == "/tmp" or e.startswith("/tmp/") \
                            else "which does not exist on Lambda"
                        self.add(finding(FOREIGN_RPATH, f.rel, f"{f.rel} has {kind} {e}, {why}", entry=e))
            for name in i.needed:
                if "/" in name:
                    self.add(finding(PATH_NEEDED, f.rel, f"{f.rel} needs {name!r} by path"))

    # -- loading ---------------------------------------------------------------------------------
    def simulate(self, files: list[ElfFile], wrapped: dict[str, LoaderExec] | None = None) -> list[Process]:
        """Load every program, then every library no program loaded (as dlopen would).

        `wrapped`: programs a bootstrap script starts through a bundled loader (aws-lambda-cpp's
        packager, `vendor --bundle-libc`), by program path."""
        wrapped = wrapped or {}
        processes = []
        covered: set[str] = set()
        usable = [f for f in files if f.info and not f.info.is_static and f.info.bits == 64
                  and f.info.machine == _ARCH_MACHINES[self.rt.arch]]
        programs = [f for f in usable if f.info.is_program]
        needed = loadable.needed_elsewhere(files)
        # libraries no other file needs first (extension modules, plugins: what dlopen opens),
        # those another file needs only if no chain reached them
        libraries = [f for f in usable if not f.info.is_program and f.path not in needed] + \
                    [f for f in usable if not f.info.is_program and f.path in needed]
        bundled_rtld = self._bundled_loaders(usable)
        for f in programs + libraries:
            if not f.info.is_program and f.path in covered:
                continue
            found = self.fs.find(f.path)
            if found is None or found.where != "tree":
                continue
            loader = self.loader
            # a library beside a bundled dynamic loader (`vendor --bundle-libc`, a shipped glibc) is
            # loaded by processes that loader runs, never by the runtime's
            interp = None if f.info.is_program else _in_bundle(f.path, bundled_rtld)
            if f.path in wrapped:
                run = wrapped[f.path]
                interp = run.loader
                # --library-path replaces LD_LIBRARY_PATH. Without --inhibit-cache the loader reads
                # Lambda's /etc/ld.so.cache (the default directories' libraries); with it, only its
                # own built-in directories, which depend on where it was built: not assumed here.
                libpath = run.library_path if run.library_path is not None else self.ld_library_path
                defaults = () if run.inhibit_cache else self.rt.default_dirs
                loader = Loader(self.fs, libpath, defaults, machine=_ARCH_MACHINES[self.rt.arch], bits=64,
                                host_finder=self._host_find, hwcap_subdirs=self.hwcaps)
                loader.seed(self.loader.cached())
            proc = loader.load(found, as_program=f.info.is_program, vendored_dir=posixpath.join(self.mount, "lib"),
                               host_elf=self.host_elf, interp=interp)
            processes.append(proc)
            covered.update(o.real for o in proc.objects)
            covered.update(o.path for o in proc.objects)
        return processes

    def _bundled_loaders(self, files: list[ElfFile]) -> dict[str, str]:
        """{directory: path} of the tree's copies of the dynamic loader (an object whose soname is
        the runtime loader's name): the glibc bundle's libraries (and its gconv/ modules below)
        run under that one."""
        name = posixpath.basename(self.rt.loader)
        return {posixpath.dirname(f.path): f.path for f in files
                if f.info is not None and f.info.soname == name and not f.info.needed}

    def process_findings(self, proc: Process) -> None:
        root = proc.root
        root_rel = self.rel(root.path)
        if root.info and root.info.interp and proc.interp_ok is False and not root.info.is_musl:
            self.add(finding(INTERP_MISSING, root_rel, f"{root_rel} asks for the interpreter {root.info.interp}, "
                             f"which {self.rt.name} {self.rt.arch} does not have", interpreter=root.info.interp))
        objs = {o.path: o for o in proc.objects}
        for e in proc.edges:
            if e.hwcaps:
                self._cpu_dependent(e, root)
            if not e.skipped and e.status not in _REPORTED:
                continue  # most edges: found where Lambda has it, nothing to say
            req = self._label(objs[e.requester]) if e.requester in objs else self.rel(e.requester)
            # the same library can resolve in one program and not another; the finding's path is
            # `req` for LP101/LP102, so their message does not name it again
            loaded_by = f" (loaded by {root_rel})" if e.requester != root.path else ""
            req_text = req + loaded_by
            where = f"{self.rt.name} {self.rt.arch}"
            if e.status in (MISSING, VENDORABLE) and self._reused_elsewhere(e, root, req, loaded_by):
                pass
            elif e.status == MISSING and (LIB_MISSING.code, req, e.name) in self._seen:
                self._also_by.setdefault((req, e.name), []).append(root_rel)  # one line, counted
            elif e.status == MISSING:
                searched = ", ".join(s.dir for s in e.searched)
                self.add(finding(LIB_MISSING, req, f"needs {e.name}{loaded_by}: not found on {where} nor on this machine "
                                 f"(searched {searched})", library=e.name, searched=[s.dir for s in e.searched],
                                 loaded_by=root_rel), key=(LIB_MISSING.code, req, e.name))
            elif e.status == VENDORABLE and (LIB_VENDORABLE.code, req, e.name) not in self._seen:
                # (not made again when kept from an earlier process: 2,539 made for 1,040 kept on /usr/lib/x86_64-linux-gnu)
                self.add(finding(LIB_VENDORABLE, req, f"needs {e.name}{loaded_by}: not on {where}; this machine has {e.host_path}",
                                 library=e.name, host_path=e.host_path), key=(LIB_VENDORABLE.code, req, e.name))
            elif e.status == UNLOADABLE:
                self.add(finding(LOADER_STOPS, self.rel(e.path or ""), f"{req_text} needs {e.name}: ld.so opens {e.path} "
                                 f"({e.via}) and stops: {e.error}", library=e.name, error=e.error),
                         key=(LOADER_STOPS.code, root.path, e.path))
            elif e.status == SHADOWED:
                self.add(finding(LIB_SHADOWED, self.rel(e.shadowed or ""), f"{req_text} needs {e.name}: Lambda loads {e.path} "
                                 f"({e.via}) before the layer's {e.shadowed}", library=e.name, winner=e.path),
                         key=(LIB_SHADOWED.code, e.shadowed, e.name))
            for path, why in e.skipped:
                if not why.startswith("wrong"):
                    continue  # unreadable by Lambda's user: LP410 names the file, and the search result shows the rest
                self.add(finding(UNLOADABLE_CANDIDATE, self.rel(path), f"{self.rel(path)} is skipped by the loader: {why}"),
                         key=(UNLOADABLE_CANDIDATE.code, path))
        self.version_findings(proc)

    def fold_repeats(self) -> None:
        """A library missing for one requester is one LP101 line however many roots load that
        requester (numpy.libs/libgfortran is loaded by 34 scipy modules): the first root is named,
        the others counted (`data.also_loaded_by`)."""
        for i, f in enumerate(self.findings):
            more = self._also_by.get((f.path, f.data.get("library"))) if f.code == LIB_MISSING.code else None
            if more:
                first = f"(loaded by {f.data['loaded_by']})"
                text = f.message.replace(first, f"{first[:-1]} and {len(more)} more)", 1)
                self.findings[i] = dataclasses.replace(f, message=text, data={**f.data, "also_loaded_by": more})

    def note_tree_objects(self, processes: list[Process]) -> None:
        """The tree's files some process loads, by the names a DT_NEEDED can match (file name
        and soname), for `_reused_elsewhere`."""
        self._tree_names: dict[str, str] = {}
        for p in processes:
            for o in p.objects:
                if o.where == "tree" and o.info is not None:
                    for name in (posixpath.basename(o.real or o.path), o.info.soname):
                        if name:
                            self._tree_names.setdefault(name, o.real or o.path)

    def _reused_elsewhere(self, e: Edge, root: Obj, req: str, loaded_by: str) -> bool:
        """A library dlopen'd into an interpreter (a Python extension, a Node addon) whose own
        search misses a name another of the tree's modules loads: ld.so reuses an object already
        loaded under that name, so it works when that module is loaded first in the same process
        (scipy imports numpy, whose numpy.libs/ holds the same libquadmath-<hash>.so). Import order
        is not known statically: not verified, never an error or a pass. Programs are processes of
        their own and get no such help."""
        other = getattr(self, "_tree_names", {}).get(e.name)
        if other is None or (root.info is not None and root.info.is_program):
            return False
        self.add(finding(REUSED_ELSEWHERE, req, f"needs {e.name}{loaded_by}: its own search does not find it; "
                         f"{self.rel(other)} has that name and is loaded by another module of the tree, and ld.so "
                         "reuses it only if that module is loaded first in the same process — not verified",
                         library=e.name, other=self.rel(other)), key=(REUSED_ELSEWHERE.code, req, e.name))
        return True

    def _cpu_dependent(self, e: Edge, root: Obj) -> None:
        alts = ", ".join(e.hwcaps)
        if e.path in e.hwcaps:
            text = (f"{self.rel(e.requester)} needs {e.name}: it is only in {alts}, a hardware-capability subdirectory "
                    f"the loader uses only on CPUs with that capability; elsewhere it is missing — not verified")
        else:
            text = (f"{self.rel(e.requester)} needs {e.name}: on CPUs with the capability the loader takes {alts} "
                    f"instead of {e.path} — which copy loads depends on the CPU Lambda runs on: not verified")
        self.add(finding(CPU_DEPENDENT, self.rel(e.hwcaps[0]), text, library=e.name, candidates=list(e.hwcaps),
                         otherwise=None if e.path in e.hwcaps else e.path), key=(CPU_DEPENDENT.code, e.requester, e.name))


    def _label(self, obj: Obj) -> str:
        if obj.where == "host":
            return f"{posixpath.basename(obj.path)} (to vendor, from {obj.label})"
        return self.obj_rel(obj)


def _in_bundle(path: str, loaders: dict[str, str]) -> str | None:
    """The bundled loader of the directory `path` is in, or of one above it (glibc's gconv/)."""
    d = posixpath.dirname(path)
    while loaders and d not in ("", "/"):
        if d in loaders:
            return loaders[d]
        d = posixpath.dirname(d)
    return None


NAMES_AHEAD_MIN = 64  # ELF files: below this, the scan costs less than a fork


def _too_new_names(tree: Tree, files: list[ElfFile], rt: Runtime) -> dict[str, dict[str, list[str]]]:
    """{path in the tree: {version: symbols}} for each of its ELF files that needs versions the
    runtime's ceilings reject (`_runtime_versions`' test), whichever library they turn out to
    come from."""
    out = {}
    for f in files:
        if f.info is None or not f.info.version_needs:
            continue
        wanted = {v for lib, versions in f.info.version_needs for v in versions if rt.version_verdict(lib, v) == "too-new"}
        host = tree.host_path(f.rel) if wanted else None
        if host is None:
            continue
        try:
            out[f.rel] = symbols_needing(_map(host), wanted)
        except (OSError, ValueError):
            continue
    return out




def _boot_script(tree: Tree, mount: str, rt: Runtime, env: dict[str, str]) -> BootScript:
    """The environment and loader a `#!` bootstrap at the root sets up for the program it starts."""
    base = {"LAMBDA_TASK_ROOT": FUNCTION_MOUNT, "LD_LIBRARY_PATH": ":".join(rt.ld_library_path),
            "PATH": ":".join(rt.path_env), **env}
    entry = tree.entries.get("bootstrap")
    if entry is None or entry.kind != FILE or entry.size > 65536:
        return BootScript(env=dict(env))
    try:
        text = tree.read_bytes("bootstrap")
    except InputError:
        return BootScript(env=dict(env))
    if not text.startswith(b"#!"):
        return BootScript(env=dict(env))
    boot = read_bootstrap(text.decode("utf-8", "replace"), mount, base)
    return BootScript({**env, **boot.env}, boot.loader_exec, boot.unmodelled)


@contextlib.contextmanager
def cycle_collector_paused():
    """Analysis and its output allocate hundreds of thousands of objects that live until the
    report is written; the cycle collector traversed them ~200 times per run of
    /usr/lib/x86_64-linux-gnu (~100 ms of ~800 ms CPU, measured with gc.callbacks). What it would
    free is only the analysis's own graph once the report is dropped (9,201 objects there), so it
    is paused for the run and resumed after, not needed in between."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# Emitted below (and by `invoke`, which shows the same line): runtimes.toml's `deprecated` date has come.
RUNTIME_DEPRECATED = define("LP431", Severity.WARNING, "target runtime is past its deprecation date",
                            "move to a supported runtime (`layerpack runtimes` marks the deprecated ones): AWS no "
                            "longer patches it and will later block creating and updating functions on it")


def analyze(path: str | Path, *, runtime: str | None = None, arch: str | None = None, as_: str = "layer",
            with_layers: tuple[str, ...] = (), sysroot: str | Path | None = None, kind: str = "auto",
            progress: Callable[[int], None] | None = None, env: dict[str, str] | None = None,
            cache: bool = False) -> Report:
    """Analyse a directory, zip or single binary for a Lambda runtime. Raises only LayerpackError.

    `cache`: answer ELF header facts of unchanged files from earlier runs (packer.elf.infocache).

    `env`: the function's environment variables (its configuration); `LD_LIBRARY_PATH` there, or
    exported by a bootstrap script, replaces the runtime's."""
    if as_ not in ("layer", "function"):
        raise UsageError(f"--as must be 'layer' or 'function', not {as_!r}")
    if sysroot is not None and not Path(sysroot).is_dir():
        raise UsageError(f"--sysroot {sysroot}: not a directory")
    if len(with_layers) > 4 + (as_ == "function"):
        raise UsageError("Lambda allows at most 5 layers per function")
    name = runtime or runtimes.default_runtime()
    if name not in runtimes.runtime_names():
        runtimes.load(name)  # raises the UsageError that lists what exists
    mount = LAYER_MOUNT if as_ == "layer" else FUNCTION_MOUNT
    tree = open_tree(path, progress=progress)
    extra = [open_tree(p) for p in with_layers]
    stack = contextlib.ExitStack()
    try:
        if cache:
            from packer.elf.infocache import PersistentInfoMemo

            memo: InfoMemo = PersistentInfoMemo()
        else:
            memo = InfoMemo()
        files = collect(tree, mount, progress, memo)
        native_tree = loadable.has_python(tree) or loadable.has_node(tree)
        evidence = loadable.arch_evidence(tree, name, mount, {f.rel: MACHINE_ARCH.get(f.info.machine_name, "") for f in files
                                                              if f.info}) if native_tree and not arch else None
        chosen_arch, source = pick_arch(files, arch, evidence, native_tree)
        rt = runtimes.load(name, chosen_arch)
        deprecated = [finding(RUNTIME_DEPRECATED, "--runtime", w) for w in [runtimes.deprecation_warning(name)] if w]
        selection = loadable.select(tree, rt, mount)
        files = loadable.keep_loaded(files, selection.unloaded)
        boot = _boot_script(tree, mount, rt, env or {})
        llp = boot.env.get("LD_LIBRARY_PATH")
        a = Analysis(tree, rt, mount, extra, Path(sysroot) if sysroot else None, memo,
                     ld_library_path=tuple(llp.split(":")) if llp is not None else None)
        a.findings += deprecated
        for line in boot.unmodelled:
            a.add(finding(ENV_UNMODELLED, "bootstrap", f"bootstrap sets the library path with `{line}`, which layerpack "
                          "cannot expand: the libraries it adds are not verified", line=line))
        if tree.kind == "file":
            kind = "runtime"
        for f in selection.findings:
            a.add(f)
        a.file_checks(files)
        started = (boot.program,) if boot.program else ()
        for f in checks.layout_findings(tree, rt, kind, fs=a.fs, mount=mount, started=started):
            a.add(f)
        from packer.pyc import pyc_findings  # LP613: .pyc the zip's dates make stale (issue 23)

        for f in pyc_findings(tree, rt):
            a.add(f)
        a.loader.seed({f.path: f.info for f in files if f.info is not None})
        a.name_symbols_ahead(files, stack)
        wrapped = {boot.loader_exec.program: boot.loader_exec} if boot.loader_exec else {}
        processes = a.simulate(files, wrapped=wrapped)
        a.note_tree_objects(processes)
        for p in processes:
            a.process_findings(p)
        a.fold_repeats()
        from packer.payloads import payload_findings  # archives a package unpacks at run time (LP114/LP115/LP308)

        for f in payload_findings(tree, rt, fs=a.fs):
            a.add(f)
        findings = sorted(a.findings, key=lambda f: (-int(f.severity), f.code, f.path))
        if cache:
            memo.save()  # type: ignore[attr-defined]
        return Report(str(path), rt, mount, [t.origin for t in extra], checks.detect_kind(tree) if kind == "auto" else kind,
                      files, processes, findings, files_total=sum(1 for _ in tree.files()), arch_source=source)
    finally:
        stack.close()
        tree.close()
        for t in extra:
            t.close()
