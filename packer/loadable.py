"""What the runtime will ever load from a Python or Node tree, and the target arch that follows.

Layers people build are mostly `pip install --target python/` and `npm install`: they carry native
files for other Pythons, platforms and machines (prebuilds for darwin/win32/android, a package's
per-platform optional packages, `.cpython-311-…so` in a python3.12 layer). The interpreter never
opens those, so judging them as if they were loaded gave false "will fail" verdicts by the dozen;
and a package with *no* variant the interpreter can open is the real failure, which must be an
error. This module asks the per-language rules (packer.pyload, packer.nodeload) and turns their
facts into findings; analyze leaves the unloaded files out of every per-file check and of the
loader simulation.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from packer.findings import Finding, Severity, define, finding
from packer.lambdafs import LAYER_MOUNT
from packer.runtime import Runtime
from packer.tree import Tree

NOT_IMPORTABLE = define("LP310", Severity.ERROR, "Python extension modules this runtime's Python cannot import",
                        "install the package for the runtime's Python and architecture: `pip install --target python "
                        "--python-version 3.X --platform manylinux2014_x86_64|manylinux2014_aarch64 --only-binary=:all: PKG`")
NO_NODE_VARIANT = define("LP311", Severity.ERROR, "native Node module has no build for the target platform",
                         "install with the target's platform: `npm install --os=linux --cpu=x64|arm64 --libc=glibc` "
                         "(or run npm on the target architecture)")
NEVER_LOADED = define("LP117", Severity.INFO, "native files for other platforms or interpreters: never loaded here",
                      "nothing to do; `layerpack slim` can remove them to save space")
WRONG_NODE = define("LP312", Severity.ERROR, "native Node module built for another Node than the runtime's",
                    "rebuild it with the runtime's Node (`npm rebuild` under Node 22 for nodejs22.x), or install a "
                    "Node-API build; pick the runtime its Node-API version needs")
OTHER_NODE_ONLY = define("LP430", Severity.ERROR, "node layer modules are only in nodejs/nodeNN/node_modules of another Node",
                         "put them in nodejs/node_modules (every nodejs runtime) or nodejs/nodeNN/node_modules of the "
                         "runtime's own Node major")
OTHER_PYTHON_ONLY = define("LP429", Severity.ERROR, "python layer code is only in site-packages of another Python version",
                           "install into python/ (pip install --target python) or python/lib/python3.X/site-packages "
                           "of the runtime's version")

_PYTHON_RUNTIME = re.compile(r"python(3\.\d+)$")


@dataclass
class Selection:
    """The files analyze must not treat as loaded, and the findings that say why."""

    unloaded: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)


def python_version(rt_name: str) -> str | None:
    m = _PYTHON_RUNTIME.match(rt_name)
    return m.group(1) if m else None


def has_python(tree: Tree) -> bool:
    return "python" in tree.entries


def has_node(tree: Tree) -> bool:
    """A Node tree: a layer's nodejs/, or node_modules/ at the root (a function's; in a layer LP422
    says Node will not find it there, and its native files are judged as if it did)."""
    names = tree.entries
    return "nodejs" in names or "node_modules" in names


def arch_evidence(tree: Tree, rt_name: str, mount: str, machines: dict[str, str]) -> tuple[str, str] | None:
    """(arch, why) from the files the runtime would load whose target is unambiguous, or None.
    Not a vote over every ELF file: prebuilds for many platforms say nothing about the target.
    `machines`: Lambda arch of each ELF file of the tree, by path in the tree."""
    kind = "layer" if mount == LAYER_MOUNT else "function"
    votes: list[tuple[str, str]] = []
    if python_version(rt_name) or has_python(tree):
        from packer.pyload import python_arch_evidence

        votes.extend((a or machines.get(rel, ""), rel) for a, rel in python_arch_evidence(tree, kind))
        votes = [(a, rel) for a, rel in votes if a]
    if has_node(tree):
        from packer.nodeload import node_arch_evidence

        votes.extend(node_arch_evidence(tree))
    if not votes:
        return None
    counts = Counter(a for a, _ in votes)
    (arch, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:
        return None
    example = next(why for a, why in votes if a == arch)
    return arch, f"{n} of {len(votes)} native files the runtime would load are for {arch} (e.g. {example})"


def select(tree: Tree, rt: Runtime, mount: str) -> Selection:
    """Files the runtime never loads and the errors for packages it cannot load at all."""
    out = Selection()
    kind = "layer" if mount == LAYER_MOUNT else "function"
    version = python_version(rt.name)
    if version and (kind == "function" or has_python(tree)):
        _python(tree, version, rt, kind, out)
    if has_node(tree) and rt.family in ("node", "provided"):
        _node(tree, rt, out)
    return out


def _python(tree: Tree, version: str, rt: Runtime, kind: str, out: Selection) -> None:
    from packer.pyload import python_native

    native = python_native(tree, version, rt.arch, kind)
    for miss in native.missing:
        n = len(miss.files)
        others = f" (and {n - 1} more module{'s' if n > 2 else ''} of {miss.group})" if n > 1 else ""
        out.findings.append(finding(
            NOT_IMPORTABLE, miss.files[0], f"built for {miss.built_for}{others}; python{version} {rt.arch} has no "
            f"variant of it to import: \"No module named …\" on Lambda",
            package=miss.group, built_for=miss.built_for, files=list(miss.files)))
    if native.other_site_packages and not native.has_own_code:
        sites = ", ".join(native.other_site_packages)
        out.findings.append(finding(OTHER_PYTHON_ONLY, native.other_site_packages[0],
                                    f"{sites} is not on python{version}'s sys.path, and the layer has no other Python code",
                                    directories=list(native.other_site_packages)))
    missing_files = {f for m in native.missing for f in m.files}
    _never_loaded(out, [(u.rel, u.group, u.why) for u in native.unloaded if u.rel not in missing_files])
    out.unloaded.update(u.rel for u in native.unloaded)


def _node(tree: Tree, rt: Runtime, out: Selection) -> None:
    from packer.nodeload import node_native

    major = re.match(r"nodejs(\d+)\.x$", rt.name)
    native = node_native(tree, rt.arch, "glibc", node_major=int(major.group(1)) if major else None)
    for miss in native.missing:
        present = ", ".join(miss.present) or "none"
        out.findings.append(finding(NO_NODE_VARIANT, miss.group, f"{miss.group}: no native build for {miss.wanted} "
                                    f"(present: {present}); require() fails on Lambda",
                                    package=miss.group, wanted=miss.wanted, present=list(miss.present)))
    _never_loaded(out, [(u.rel, u.group, u.why) for u in native.unloaded])
    out.unloaded.update(u.rel for u in native.unloaded)
    if major:
        _other_node_dirs(tree, int(major.group(1)), out)
    # node-gyp's intermediate copies (build/Release/obj.target/x.node): bindings and node-gyp-build
    # load build/Release/x.node only
    out.unloaded.update(e.path for e in tree.files() if "/obj.target/" in e.path and e.path.endswith(".node"))
    if major:
        _node_versions(tree, int(major.group(1)), out)


_NODE_DIR = re.compile(r"^nodejs/node(\d+)/node_modules(?:/|$)")


def _other_node_dirs(tree: Tree, node_major: int, out: Selection) -> None:
    """nodejsNN.x puts /opt/nodejs/nodeNN/node_modules and /opt/nodejs/node_modules on NODE_PATH,
    no other major's directory: what is there is never required (LP117), and a layer with modules
    only there fails every require (LP430). Layers for several runtimes hold one per major."""
    others: dict[str, list[str]] = {}
    own = False
    for e in tree.files():
        m = _NODE_DIR.match(e.path)
        if m and int(m.group(1)) != node_major:
            others.setdefault(m.group(0).rstrip("/"), []).append(e.path)
        elif m or e.path.startswith("nodejs/node_modules/"):
            own = True
    if not others:
        return
    if not own:
        dirs = sorted(others)
        out.findings.append(finding(OTHER_NODE_ONLY, dirs[0], f"{', '.join(dirs)} is not on nodejs{node_major}.x's NODE_PATH "
                                    f"(/opt/nodejs/node{node_major}/node_modules, /opt/nodejs/node_modules), and the layer "
                                    "has no other node modules: require() fails", directories=dirs))
    native = [(rel, d, f"not on nodejs{node_major}.x's NODE_PATH") for d, rels in others.items() for rel in rels
              if rel.endswith((".node", ".so")) or ".so." in rel]
    _never_loaded(out, [n for n in native if n[0] not in out.unloaded])
    out.unloaded.update(rel for d, rels in others.items() for rel in rels)


def _node_versions(tree: Tree, node_major: int, out: Selection) -> None:
    """LP312 for each addon Node would pick that this Node refuses (packer.nodeabi)."""
    from packer.nodeabi import refusal

    for e in tree.files():
        if not e.path.endswith(".node") or e.path in out.unloaded or "node_modules/" not in e.path:
            continue
        data = _bytes(tree, e.path)
        why = refusal(data, node_major) if data is not None and data[:4] == b"\x7fELF" else None
        if why:
            out.findings.append(finding(WRONG_NODE, e.path, why, node=node_major))


def _bytes(tree: Tree, rel: str):
    """The file's bytes (an mmap for a file on disk: @swc/core's addon is 50 MB), None if unreadable."""
    from packer.errors import InputError

    try:
        return tree.mapped_bytes(rel)
    except (OSError, ValueError, InputError):
        return None


def _never_loaded(out: Selection, items: list[tuple[str, str, str]]) -> None:
    """One info line per group (package or directory), not a finding per file."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for rel, group, why in items:
        groups.setdefault(group, []).append((rel, why))
    for group, files in sorted(groups.items()):
        reasons = Counter(why for _, why in files)
        reason = reasons.most_common(1)[0][0] + (f" (and {len(reasons) - 1} other reason{'s' if len(reasons) > 2 else ''})" if len(reasons) > 1 else "")
        n = len(files)
        out.findings.append(finding(NEVER_LOADED, group, f"{group}: {n} native file{'s' if n > 1 else ''} never loaded "
                                    f"here: {reason}", files=[r for r, _ in files]))


def _names(rel: str, info) -> set[str]:
    """The names a DT_NEEDED entry can use for this file: its soname and its file name."""
    names = {rel.rsplit("/", 1)[-1]}
    if info is not None and info.soname:
        names.add(info.soname)
    return names


def keep_loaded(files: list, unloaded: set[str]) -> list:
    """`files` (ElfFile) less the unloaded ones and the libraries only they need: a grafted
    `pydantic_core.libs/libx.so` of a module built for another Python is never loaded either.
    Repeated until nothing more drops (a library needed only by such a library)."""
    dropped = [f for f in files if f.rel in unloaded]
    kept = [f for f in files if f.rel not in unloaded]
    while dropped:
        wanted_by_dropped = {n for f in dropped if f.info for n in f.info.needed}
        if not wanted_by_dropped:
            break
        wanted_by_kept = {n for f in kept if f.info for n in f.info.needed}
        newly = [f for f in kept if f.info is not None and not f.info.is_program
                 and _names(f.rel, f.info) & wanted_by_dropped and not _names(f.rel, f.info) & wanted_by_kept]
        if not newly:
            break
        gone = {f.rel for f in newly}
        kept = [f for f in kept if f.rel not in gone]
        dropped = newly
    return kept


def needed_elsewhere(files: list) -> set[str]:
    """Paths of the libraries another file of the tree names in DT_NEEDED: they are loaded through
    that file's chain (with the RPATH it passes down, as auditwheel's grafted `*.libs/` rely on),
    so analyze makes them roots of their own only if no chain reached them."""
    wanted = {n for f in files if f.info for n in f.info.needed}
    return {f.path for f in files if f.info is not None and not f.info.is_program and _names(f.rel, f.info) & wanted}
