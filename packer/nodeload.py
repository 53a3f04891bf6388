"""Which native files under `node_modules` Node can ever load on a Lambda target.

An npm tree carries native code for every platform its packages support: node-gyp-build
`prebuilds/<platform>-<arch>/` directories, per-platform optional packages (`@img/sharp-linux-x64`,
`@swc/core-linux-arm64-gnu`), Bare runtime addons (`*.bare`). Node opens one of them, chosen by the
package's own loader, so judging every ELF file against the target reports dozens of files that are
never opened. This module re-implements those loaders' choices, read from their sources:

* `build/Release` and `build/Debug` hold what node-gyp built on the install machine: loaded as built.
* node-gyp-build (and its fork node-gyp-build-optional-packages) picks the `prebuilds/` directory
  for `process.platform`-`process.arch` (a single-arch directory before `linux-x64+arm64`), then
  the file whose tags (`node`/`electron`, `napi`, `abi<N>`, `uv<N>`, `armv<N>`, `glibc`/`musl`) all
  match, preferring the runtime's own tag, then an `abi` tag over `napi`, then the most tags.
* npm installs a per-platform package only where its `package.json` `os`, `cpu` and `libc` fields
  fit; the dispatching package (`sharp`, napi-rs packages, esbuild) requires the one for the host.

It is pure: no findings and no printing; `analyze` turns the result into findings.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from packer import nodeabi
from packer.elf.reader import MACHINES
from packer.errors import InputError
from packer.runtime import MACHINE_ARCH
from packer.tree import Tree

# Lambda arch -> Node's process.arch.
NODE_CPU = {"x86_64": "x64", "arm64": "arm64"}
# ELF e_machine -> Lambda arch (the only two machines Lambda runs).
E_MACHINE_ARCH = {num: MACHINE_ARCH[name] for num, name in MACHINES.items() if name in MACHINE_ARCH}
# NODE_MODULE_VERSION of each Node major, what an `abi<N>` prebuild tag is compared with. A major
# not listed there leaves abi tags undecided.
NODE_ABI = {major: str(abi) for major, abi in nodeabi.NODE_ABI.items()}
UV_MAJOR = "1"  # libuv 1.x in every Node that has N-API
NODE_GYP_BUILD = "node-gyp-build"
NODE_GYP_BUILD_STRICT = "node-gyp-build-optional-packages"  # its fork demands a runtime tag
PLATFORMS = frozenset({"linux", "linuxmusl", "darwin", "win32", "android", "freebsd", "openbsd", "netbsd",
                       "sunos", "aix", "openharmony", "wasi"})
CPUS = frozenset({"x64", "arm64", "arm", "ia32", "ppc64", "ppc64le", "s390x", "riscv64", "loong64",
                  "mips64el", "wasm32", "universal"})
# Files whose bytes are never an ELF object in practice; skipping them spares a read per JS file.
TEXT_SUFFIXES = (".js", ".cjs", ".mjs", ".ts", ".cts", ".mts", ".json", ".map", ".md", ".txt", ".d.ts",
                 ".html", ".css", ".yml", ".yaml", ".markdown", ".gyp", ".gypi", ".h", ".c", ".cc", ".cpp")
_NODE_DIR = re.compile(r"(?:^|/)nodejs/node(\d+)/node_modules/")


@dataclass(frozen=True)
class Unloaded:
    """An ELF file Node never loads on this target."""

    rel: str  # path in the tree
    group: str  # the package directory (rel) it belongs to, for one info line per package
    why: str  # e.g. "prebuild for darwin-arm64", "package @img/sharp-linux-arm64 is for cpu arm64"


@dataclass(frozen=True)
class NoVariant:
    """A native addon with no variant for the target: require() fails."""

    group: str  # the package directory
    wanted: str  # e.g. "linux-arm64 (glibc)"
    present: tuple[str, ...]  # the variants that are there, e.g. ("darwin-x64", "linux-x64")


@dataclass(frozen=True)
class NodeNative:
    unloaded: tuple[Unloaded, ...]
    missing: tuple[NoVariant, ...]


@dataclass(frozen=True)
class Target:
    """What the loaders look at: process.platform is linux, process.arch, libc, the ABIs possible."""

    cpu: str  # x64 | arm64
    libc: str  # glibc | musl
    abis: frozenset[str] | None  # None: any Node (abi tags undecided)

    @property
    def armv(self) -> str:
        return "8" if self.cpu == "arm64" else ""  # node-gyp-build: arm64 -> 8, x64 -> no arm_version

    def wanted(self) -> str:
        return f"linux-{self.cpu} ({self.libc})"


@dataclass
class Package:
    """A directory `…/node_modules/<name>` (or `@scope/<name>`) and what its package.json says."""

    dir: str
    name: str
    manifest: dict
    files: list[str] = field(default_factory=list)  # rel paths of its own files (not nested packages)

    def sub(self, rel: str) -> str:
        return rel[len(self.dir) + 1:]

    def deps(self) -> set[str]:
        return set(_names(self.manifest.get("dependencies"))) | set(_names(self.manifest.get("optionalDependencies")))


def _names(value: object) -> list[str]:
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else []


# -- tag matching (node-gyp-build's parseTags / matchTags / compareTags) ------------------------
@dataclass(frozen=True)
class Tags:
    file: str
    runtime: str | None = None
    napi: bool = False
    abi: str | None = None
    uv: str | None = None
    armv: str | None = None
    libc: str | None = None
    specificity: int = 0


def parse_tags(file: str) -> Tags | None:
    """node-gyp-build's parseTags: `name.napi.glibc.node` -> tags; not a `.node` file -> None."""
    parts = file.split(".")
    if parts.pop() != "node":
        return None
    found: dict[str, object] = {}
    count = 0
    for tag in parts:
        if tag in ("node", "electron", "node-webkit"):
            found["runtime"] = tag
        elif tag == "napi":
            found["napi"] = True
        elif tag[:3] == "abi":
            found["abi"] = tag[3:]
        elif tag[:2] == "uv":
            found["uv"] = tag[2:]
        elif tag[:4] == "armv":
            found["armv"] = tag[4:]
        elif tag in ("glibc", "musl"):
            found["libc"] = tag
        else:
            continue
        count += 1
    return Tags(file=file, specificity=count, **found)  # type: ignore[arg-type]


def tag_mismatch(tags: Tags, target: Target, abi: str, strict: bool = False) -> str | None:
    """Why node-gyp-build (running Node with `abi`) rejects the file, or None if it matches.
    `strict` is the optional-packages fork, which rejects a file without a runtime or abi tag."""
    agnostic = tags.runtime == "node" and tags.napi
    if (tags.runtime or strict) and tags.runtime != "node" and not agnostic:
        return f"prebuild for runtime {tags.runtime or '(none)'}"
    if (tags.abi or strict) and tags.abi != abi and not tags.napi:
        return f"prebuild for abi{tags.abi or '(none)'}"
    if tags.uv and tags.uv != UV_MAJOR:
        return f"prebuild for uv{tags.uv}"
    if tags.armv and tags.armv != target.armv:
        return f"prebuild for armv{tags.armv}"
    if tags.libc and tags.libc != target.libc:
        return f"prebuild for {tags.libc}"
    return None


def _rank(tags: Tags) -> tuple[int, int, int]:
    """compareTags("node") as a sort key: the runtime's own tag, then abi over napi, then specificity."""
    return (0 if tags.runtime == "node" else 1, 0 if tags.abi else 1, -tags.specificity)


def select_prebuild(files: Iterable[str], target: Target, abi: str, strict: bool = False) -> str | None:
    """The file node-gyp-build loads from one prebuilds directory (its readdir order breaks ties)."""
    candidates = [t for t in (parse_tags(f) for f in sorted(files))
                  if t is not None and tag_mismatch(t, target, abi, strict) is None]
    return min(candidates, key=_rank).file if candidates else None


def _abis_to_try(target: Target, files: Iterable[str]) -> list[str]:
    """The ABIs to run the selection with: the target's, or (any Node) every abi a tag names plus
    one no tag names, so a file is called unloaded only if no Node would load it."""
    if target.abis is not None:
        return sorted(target.abis)
    named = {t.abi for t in (parse_tags(f) for f in files) if t is not None and t.abi}
    return sorted(named) + ["(other)"]


def _tag_losers(names: list[str], target: Target, strict: bool) -> dict[str, str]:
    """name -> why, for the `.node` files of one directory node-gyp-build never picks on `target`
    (with any of the target's ABIs)."""
    abis = _abis_to_try(target, names)
    winners = {select_prebuild(names, target, abi, strict) for abi in abis}
    out: dict[str, str] = {}
    for name in names:
        tags = parse_tags(name)
        if tags is None or name in winners:
            continue
        whys = [tag_mismatch(tags, target, abi, strict) for abi in abis]
        if all(whys):
            out[name] = f"{whys[0]}{_abi_note(target, tags)}"
        else:
            out[name] = "node-gyp-build picks " + ", ".join(sorted(w for w in winners if w))
    return out


def _abi_note(target: Target, tags: Tags) -> str:
    if tags.abi and not tags.napi and target.abis:
        return f" (Node on the target uses abi {', '.join(sorted(target.abis))})"
    return ""


# -- package.json os / cpu / libc (what npm checks before installing a package) -----------------
def _field_excludes(values: object, wanted: str) -> bool:
    """npm's checkList: a list of names, `!name` excluding, `["any"]` or no list allowing all."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or values == ["any"]:
        return False
    names = [v for v in values if isinstance(v, str)]
    if f"!{wanted}" in names:
        return True
    positive = [v for v in names if not v.startswith("!")]
    return bool(positive) and wanted not in positive


def manifest_excludes(manifest: dict, target: Target) -> str | None:
    """Why npm's os/cpu/libc check refuses this package on the target, or None."""
    for key, wanted in (("os", "linux"), ("cpu", target.cpu), ("libc", target.libc)):
        values = manifest.get(key)
        if _field_excludes(values, wanted):
            shown = values if isinstance(values, str) else ",".join(str(v) for v in values)  # type: ignore[union-attr]
            return f"is for {key} {shown}"
    return None


def _name_platform(name: str) -> tuple[str, str, str | None] | None:
    """(os, cpu, libc) a per-platform package's name says (`@img/sharp-linuxmusl-x64`,
    `@swc/core-linux-arm64-gnu`, `@esbuild/darwin-arm64`), or None when it names no platform."""
    tokens = name.split("/")[-1].split("-")
    for i, tok in enumerate(tokens[:-1]):
        if tok in PLATFORMS and tokens[i + 1] in CPUS:
            rest = tokens[i + 2:]
            libc = "glibc" if {"gnu", "glibc"} & set(rest) else None
            libc = "musl" if tok == "linuxmusl" or "musl" in rest else libc
            return ("linux" if tok == "linuxmusl" else tok), tokens[i + 1], libc
    return None


def _platform_manifest(pkg: Package) -> dict:
    """The package's os/cpu/libc fields, or (none declared) what its name says."""
    if any(k in pkg.manifest for k in ("os", "cpu", "libc")):
        return pkg.manifest
    named = _name_platform(pkg.name)
    if named is None:
        return {}
    os_, cpu, libc = named
    return {"os": [os_], "cpu": [cpu], **({"libc": [libc]} if libc and os_ == "linux" else {})}


def variant_of(manifest: dict) -> str:
    """`linux-x64`, `linux-x64 (musl)` from os/cpu/libc fields."""
    def first(key: str) -> str:
        v = manifest.get(key)
        v = v[0] if isinstance(v, list) and v else v
        return v if isinstance(v, str) else "any"
    libc = manifest.get("libc")
    suffix = f" ({first('libc')})" if libc else ""
    return f"{first('os')}-{first('cpu')}{suffix}"


# -- the tree ----------------------------------------------------------------------------------
def package_dir(rel: str) -> tuple[str, str] | None:
    """(package directory, package name) of a file under node_modules, the innermost package."""
    parts = rel.split("/")
    idx = max((i for i, p in enumerate(parts[:-1]) if p == "node_modules"), default=-1)
    if idx < 0 or parts[idx + 1].startswith("."):
        return None
    end = idx + 3 if parts[idx + 1].startswith("@") else idx + 2
    if end >= len(parts):  # a file directly in node_modules or in @scope/
        return None
    return "/".join(parts[:end]), "/".join(parts[idx + 1:end])


def _read_manifest(tree: Tree, rel: str) -> dict:
    try:
        data = json.loads(tree.read_bytes(rel, 4 << 20))
    except (InputError, OSError, ValueError, KeyError):
        return {}
    return data if isinstance(data, dict) else {}


def packages(tree: Tree) -> dict[str, Package]:
    """Every package directory under a node_modules of the tree, keyed by its rel path."""
    out: dict[str, Package] = {}
    for entry in tree.files():
        if "node_modules/" not in entry.path:
            continue
        found = package_dir(entry.path)
        if found is None:
            continue
        pdir, name = found
        pkg = out.get(pdir)
        if pkg is None:
            manifest_rel = f"{pdir}/package.json"
            manifest = _read_manifest(tree, manifest_rel) if manifest_rel in tree.entries else {}
            pkg = out[pdir] = Package(pdir, name, manifest)
        pkg.files.append(entry.path)
    return out


def elf_machine(tree: Tree, rel: str) -> int | None:
    """e_machine of an ELF file (None: not ELF, unreadable)."""
    try:
        head = tree.read_head(rel, 20)
    except (InputError, OSError):
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def elf_files(tree: Tree, pkg: Package) -> dict[str, int]:
    """rel -> e_machine of the package's ELF files (text files skipped by name)."""
    out: dict[str, int] = {}
    for rel in pkg.files:
        if rel.endswith(TEXT_SUFFIXES) or tree.entries[rel].size < 52:
            continue
        machine = elf_machine(tree, rel)
        if machine is not None:
            out[rel] = machine
    return out


def package_abis(pkg_dir: str, node_major: int | None) -> frozenset[str] | None:
    """The ABIs Node can have where the package is: the runtime's; in a layer's
    `nodejs/nodeNN/node_modules` that Node major's (only nodejsNN.x puts it on NODE_PATH);
    else None (any Node Lambda has: abi tags undecided)."""
    m = _NODE_DIR.search(pkg_dir + "/")
    major = node_major if node_major is not None else (int(m.group(1)) if m else None)
    abi = NODE_ABI.get(major) if major is not None else None
    return frozenset({abi}) if abi else None


# -- prebuilds/<platform>-<arch>/ --------------------------------------------------------------
def parse_tuple(name: str) -> tuple[str, tuple[str, ...]] | None:
    """node-gyp-build's parseTuple: `darwin-x64+arm64` -> ("darwin", ("x64", "arm64"))."""
    arr = name.split("-")
    if len(arr) != 2 or not arr[0]:
        return None
    archs = tuple(arr[1].split("+"))
    return (arr[0], archs) if all(archs) else None


def _loader(pkg: Package) -> str | None:
    """Which node-gyp-build chooses this package's prebuild ("strict": the optional-packages fork)."""
    deps = pkg.deps()
    if NODE_GYP_BUILD_STRICT in deps:
        return "strict"
    return "plain" if NODE_GYP_BUILD in deps else None


@dataclass
class Prebuilds:
    """A package's prebuilds/ directories and the one node-gyp-build picks for the target."""

    dirs: dict[str, list[str]]  # tuple dir -> file names directly in it
    chosen: str | None  # the single-arch-first linux-<cpu> directory

    @classmethod
    def of(cls, pkg: Package, target: Target) -> Prebuilds:
        dirs: dict[str, list[str]] = {}
        for rel in pkg.files:
            parts = pkg.sub(rel).split("/")
            if parts[0] == "prebuilds" and len(parts) == 3:
                dirs.setdefault(parts[1], []).append(parts[2])
        fitting = [(len(t[1]), name) for name in sorted(dirs) if (t := parse_tuple(name))
                   and t[0] == "linux" and target.cpu in t[1]]
        return cls(dirs, min(fitting)[1] if fitting else None)

    def addons(self) -> list[str]:
        return sorted(d for d, files in self.dirs.items() if any(f.endswith(".node") for f in files))


def _other_platform(tup: str, target: Target) -> bool:
    """A directory name that clearly names another platform (`darwin-x64`, `linux-arm64`,
    `linux-x64-musl`), for a package whose loader is not known: a name it does not understand is
    given the benefit of the doubt."""
    tokens = set(re.split(r"[-+_.]", tup))
    if tokens & PLATFORMS - {"linux", "linuxmusl"}:
        return True
    if not tokens & {"linux", "linuxmusl"}:
        return False
    musl = "musl" in tokens or "linuxmusl" in tokens
    return bool(tokens & CPUS) and target.cpu not in tokens or musl != (target.libc == "musl")


def _has_build(pkg: Package) -> bool:
    return any(pkg.sub(rel).startswith(("build/Release/", "build/Debug/")) and rel.endswith(".node")
               for rel in pkg.files)


def _prebuild_why(pkg: Package, rel: str, pre: Prebuilds, target: Target) -> str | None:
    """Why the file under prebuilds/ is never loaded on the target, or None (it may be)."""
    parts = pkg.sub(rel).split("/")
    name, tup = parts[-1], parts[1]
    if name.endswith(".bare"):
        return "Bare runtime addon (Node loads only .node files)"
    loader = _loader(pkg)
    parsed = parse_tuple(tup)
    if loader is None and _other_platform(tup, target):
        return f"prebuild for {tup}"
    if loader is not None and (parsed is None or parsed[0] != "linux" or target.cpu not in parsed[1]):
        return f"prebuild for {tup}"
    if not name.endswith(".node") or len(parts) != 3:
        return None  # a library next to the addon: loaded with it
    if loader is None:  # an unknown loader: only what no loader would pick on this target
        tags = parse_tags(name)
        return tag_mismatch(tags, target, "", strict=False) if tags and (tags.libc or tags.armv) else None
    if _has_build(pkg):
        return "node-gyp-build loads build/Release first"
    if tup != pre.chosen:
        return f"node-gyp-build picks prebuilds/{pre.chosen}"
    return _tag_losers(pre.dirs[tup], target, loader == "strict").get(name)


def _has_js_fallback(tree: Tree, pkg: Package) -> bool:
    """The package catches node-gyp-build's failure and goes on in JS (bufferutil's and
    utf-8-validate's `try { require('node-gyp-build')(__dirname) } catch { require('./fallback') }`)."""
    if f"{pkg.dir}/fallback.js" in tree.entries:
        return True
    main = pkg.manifest.get("main") if isinstance(pkg.manifest.get("main"), str) else "index.js"
    path = posixpath.normpath(f"{pkg.dir}/{main}")
    for rel in (path, f"{path}.js", f"{path}/index.js"):
        if rel in tree.entries:
            try:
                text = tree.read_bytes(rel, 1 << 20).decode("utf-8", "replace")
            except (InputError, OSError):
                return False
            return re.search(r"try\s*\{[^}]*node-gyp-build", text) is not None
    return False


def _prebuild_missing(tree: Tree, pkg: Package, pre: Prebuilds, target: Target) -> NoVariant | None:
    """A package whose only addons are prebuilds, none of which the target can load."""
    addons = pre.addons()
    if not addons or _has_build(pkg) or _has_js_fallback(tree, pkg):
        return None
    if any(rel.endswith(".node") and not pkg.sub(rel).startswith("prebuilds/") for rel in pkg.files):
        return None  # an addon elsewhere in the package: its loader is not known, so not verified
    loader = _loader(pkg)
    if loader is None:  # a loader not known: only when every directory is for another platform
        return None if not all(_other_platform(d, target) for d in addons) else NoVariant(
            pkg.dir, target.wanted(), tuple(addons))
    if pre.chosen is not None:
        names = pre.dirs[pre.chosen]
        if any(select_prebuild(names, target, abi, loader == "strict") for abi in _abis_to_try(target, names)):
            return None
    return NoVariant(pkg.dir, target.wanted(), tuple(addons))


# -- per-platform packages ---------------------------------------------------------------------
def _platform_deps(pkg: Package) -> dict[str, tuple[str, str, str | None]]:
    """The package's optionalDependencies that name a platform."""
    out = {}
    for name in _names(pkg.manifest.get("optionalDependencies")):
        parsed = _name_platform(name)
        if parsed is not None:
            out[name] = parsed
    return out


def _fits(parsed: tuple[str, str, str | None], target: Target) -> bool:
    os_, cpu, libc = parsed
    return os_ == "linux" and cpu == target.cpu and libc in (None, target.libc)


def _has_fallback(pkg: Package, deps: Iterable[str], by_name: dict[str, list[Package]]) -> bool:
    """A wasm/wasi build of the same family installed (sharp's @img/sharp-wasm32, napi-rs'
    `-wasm32-wasi`): the JS falls back to it, so no native variant is needed."""
    scopes = {d.split("/")[0] for d in deps if d.startswith("@")}
    for name in by_name:
        if ("wasm" in name or "wasi" in name) and (name.split("/")[0] in scopes or name.startswith(pkg.name)):
            return True
    return False


def _dispatch_missing(pkg: Package, by_name: dict[str, list[Package]], own_elf: bool, target: Target,
                      strict_ok: dict[str, bool]) -> NoVariant | None:
    """A package that requires its per-platform package when none for the target is installed."""
    deps = _platform_deps(pkg)
    if not any(_fits(p, target) for p in deps.values()) or own_elf:
        return None  # no name for the target (not verified), or native code of its own (local build)
    installed = [p for name in deps for p in by_name.get(name, [])]
    for inst in installed:
        if manifest_excludes(_platform_manifest(inst), target) is None and strict_ok.get(inst.dir, True):
            return None
    if _has_fallback(pkg, deps, by_name):
        return None
    present = tuple(sorted({variant_of(_platform_manifest(p)) for p in installed}))
    return NoVariant(pkg.dir, target.wanted(), present)


def _strict_platform_packages(pkgs: dict[str, Package], by_name: dict[str, list[Package]]) -> set[str]:
    """Platform packages whose dispatcher picks their file by tags (node-gyp-build-optional-packages)."""
    out: set[str] = set()
    for pkg in pkgs.values():
        if _loader(pkg) == "strict":
            for name in _platform_deps(pkg):
                out.update(p.dir for p in by_name.get(name, []))
    return out


# -- the whole tree ----------------------------------------------------------------------------
def _package_unloaded(pkg: Package, elves: dict[str, int], target: Target,
                      by_tags: bool) -> tuple[list[Unloaded], bool]:
    """The package's ELF files Node never loads, and whether a tag-picked platform package
    (`by_tags`) has a file the target loads."""
    excluded = manifest_excludes(_platform_manifest(pkg), target)
    if excluded is not None:
        why = f"package {pkg.name} {excluded}"
        return [Unloaded(rel, pkg.dir, why) for rel in sorted(elves)], False
    pre = Prebuilds.of(pkg, target)
    roots = sorted(pkg.sub(rel) for rel in pkg.files if rel.endswith(".node") and "/" not in pkg.sub(rel))
    losers = _tag_losers(roots, target, strict=True) if by_tags else {}
    out = []
    for rel in sorted(elves):
        sub = pkg.sub(rel)
        why: str | None = None
        if sub.startswith("prebuilds/") and sub.count("/") >= 2:
            why = _prebuild_why(pkg, rel, pre, target)
        elif sub.endswith(".bare"):
            why = "Bare runtime addon (Node loads only .node files)"
        elif by_tags and "/" not in sub:
            why = losers.get(sub)
        if why is not None:
            out.append(Unloaded(rel, pkg.dir, why))
    loadable = not by_tags or any(select_prebuild(roots, target, abi, True) for abi in _abis_to_try(target, roots))
    return out, loadable


def make_target(arch: str, libc: str = "glibc", abis: frozenset[str] | None = None) -> Target:
    if arch not in NODE_CPU:
        raise ValueError(f"unknown Lambda arch {arch!r} (x86_64 or arm64)")
    if libc not in ("glibc", "musl"):
        raise ValueError(f"unknown libc {libc!r} (glibc or musl)")
    return Target(NODE_CPU[arch], libc, abis)


def node_native(tree: Tree, arch: str, libc: str = "glibc", *, node_major: int | None = None) -> NodeNative:
    """Which ELF files under node_modules Node never loads on `arch`, and which native addons have
    no variant it can load. `node_major` (20 for nodejs20.x) decides `abi<N>` prebuild tags; without
    it a `nodejs/nodeNN/` layer directory decides, else every Node is assumed possible."""
    base = make_target(arch, libc)
    pkgs = packages(tree)
    targets = {pdir: replace(base, abis=package_abis(pdir, node_major)) for pdir in pkgs}
    by_name: dict[str, list[Package]] = {}
    for pkg in pkgs.values():
        by_name.setdefault(pkg.name, []).append(pkg)
    by_tags = _strict_platform_packages(pkgs, by_name)
    unloaded: list[Unloaded] = []
    loadable: dict[str, bool] = {}
    elves: dict[str, dict[str, int]] = {}
    for pdir in sorted(pkgs):
        elves[pdir] = elf_files(tree, pkgs[pdir])
        found, loadable[pdir] = _package_unloaded(pkgs[pdir], elves[pdir], targets[pdir], pdir in by_tags)
        unloaded.extend(found)
    missing: list[NoVariant] = []
    for pdir in sorted(pkgs):
        pkg, target = pkgs[pdir], targets[pdir]
        if manifest_excludes(_platform_manifest(pkg), target) is not None:
            continue  # never installed by npm for this target: its own needs do not matter
        gap = _prebuild_missing(tree, pkg, Prebuilds.of(pkg, target), target) or \
            _dispatch_missing(pkg, by_name, bool(elves[pdir]), target, loadable)
        if gap is not None:
            missing.append(gap)
    return NodeNative(tuple(unloaded), tuple(missing))


def node_arch_evidence(tree: Tree) -> list[tuple[str, str]]:
    """(lambda arch, why) from files that exist for one arch only: build/Release/*.node (their ELF
    e_machine), installed per-platform packages (npm installs only the one matching the machine it
    ran for), a package whose prebuilds/ hold exactly one linux arch. Ambiguous sources give nothing."""
    arch_of_cpu = {cpu: arch for arch, cpu in NODE_CPU.items()}
    out: list[tuple[str, str]] = []
    for pdir, pkg in sorted(packages(tree).items()):
        for rel in sorted(pkg.files):
            if pkg.sub(rel).startswith("build/Release/") and rel.endswith(".node"):
                arch = E_MACHINE_ARCH.get(elf_machine(tree, rel) or 0)
                if arch:
                    out.append((arch, f"{rel} was built for {arch}"))
        manifest = _platform_manifest(pkg)
        cpus, oses = manifest.get("cpu"), manifest.get("os")
        if isinstance(cpus, list) and len(cpus) == 1 and cpus[0] in arch_of_cpu and oses == ["linux"] \
                and elf_files(tree, pkg):
            out.append((arch_of_cpu[cpus[0]], f"{pdir} is installed, a package for cpu {cpus[0]}"))
        linux = {a for d in Prebuilds.of(pkg, Target("x64", "glibc", None)).addons()
                 if (t := parse_tuple(d)) and t[0] == "linux" for a in t[1]}
        if len(linux) == 1 and (cpu := linux.pop()) in arch_of_cpu:
            out.append((arch_of_cpu[cpu], f"{pdir}/prebuilds has linux-{cpu} only"))
    return out
