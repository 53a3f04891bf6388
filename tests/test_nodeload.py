"""`packer.nodeload` against the real thing: npm trees installed for Lambda's platforms, Node
requiring every package (the `.node` files it opened, read from /proc/self/maps), the packages' own
JS run with `process.arch` set to arm64, node-gyp-build's own `resolve`, and npm's own platform check.

The trees are installed once into ~/.cache/layerpack-test/npm-trees/<recipe> (never committed),
with pinned versions and `--ignore-scripts`, exactly as a layer build on another machine would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from packer.nodeload import (NODE_ABI, NODE_CPU, Unloaded, make_target, manifest_excludes, node_arch_evidence,
                             node_native)
from packer.tree import open_tree
from tests.conftest import run_cli
from tests.conftest import require_tool

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerpack-test" / "npm-trees"
PACKAGES = {  # what issue 23's tree holds, plus node-gyp-build / prebuildify packages with many prebuilds
    "sharp": "0.35.6", "@napi-rs/canvas": "1.2.1", "@swc/core": "1.16.22", "esbuild": "0.28.2",
    "tar-fs": "3.1.4", "@sparticuz/chromium": "153.0.0", "bufferutil": "4.2.0", "utf-8-validate": "6.1.0",
    "sodium-native": "5.1.0", "@parcel/watcher": "2.6.0", "msgpackr-extract": "3.0.7", "lmdb": "3.5.6",
    "classic-level": "3.0.0", "@serialport/bindings-cpp": "13.0.1",
}
# How each package is exercised: require, or (esbuild, which starts its binary lazily) a first use.
PROBE = {name: f"require({name!r})" for name in PACKAGES}
PROBE["esbuild"] = "require('esbuild').transformSync('let a = 1')"
# npm's own os/cpu/libc check, from the npm that runs the installs (its global root holds npm).
FIND_NPM_CHECKS = ("const r = require('child_process').execSync('npm root -g').toString().trim();"
                   "console.log(require.resolve('npm-install-checks', "
                   "{ paths: [r + '/npm', '/usr/share/nodejs/npm', '/usr/share/nodejs'] }))")

# Runs the packages' own JS as on another arch/ABI: process.arch and process.versions.modules are
# what their loaders read; process.dlopen records the addon instead of loading it.
SIMULATE = r"""
const [arch, abi, root, ...pkgs] = process.argv.slice(1)
Object.defineProperty(process, 'arch', { value: arch })
Object.defineProperty(process, 'versions', { value: { ...process.versions, modules: abi } })
const opened = []
const stub = new Proxy(function () {}, {
  get: (t, k) => (k === Symbol.toPrimitive ? () => '' : k === 'prototype' ? {} : stub),
  apply: () => stub, construct: () => stub })
process.dlopen = (m, file) => { opened.push(file); m.exports = stub }
const req = require('module').createRequire(root + '/')
for (const p of pkgs) { try { req(p) } catch (e) {} }
console.log(JSON.stringify(opened))
"""


def _npm_tree(recipe: str, cpu: str, libc: str) -> Path:
    """The cached tree of `recipe`, installed on first use (into a temporary directory, renamed)."""
    npm = require_tool("npm")
    spec = [f"{name}@{version}" for name, version in sorted(PACKAGES.items())]
    root = CACHE / recipe
    stamp = json.dumps([cpu, libc, spec])
    if (root / "recipe.json").exists() and (root / "recipe.json").read_text() == stamp:
        return root
    tmp = CACHE / f".{recipe}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "package.json").write_text('{"name": "t", "version": "1.0.0", "private": true}')
    subprocess.run([npm, "install", "--os=linux", f"--cpu={cpu}", f"--libc={libc}", "--ignore-scripts",
                    "--no-audit", "--no-fund", "--loglevel=error", *spec], cwd=tmp, check=True,
                   capture_output=True, timeout=600)
    (tmp / "recipe.json").write_text(stamp)
    shutil.rmtree(root, ignore_errors=True)
    try:
        tmp.rename(root)
    except OSError:  # another test process installed it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        assert (root / "recipe.json").read_text() == stamp
    return root


@pytest.fixture(scope="module")
def host_major() -> int:
    """The host Node's major (CI may run 20, 22 or 24): its ABI decides abi-tagged prebuilds."""
    require_tool("node")
    major = int(subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"], capture_output=True,
                               text=True, check=True).stdout)
    assert major in NODE_ABI, f"Node {major}: add its NODE_MODULE_VERSION to packer.nodeload.NODE_ABI"
    return major


@pytest.fixture(scope="module")
def x64() -> Path:
    return _npm_tree("x64-glibc", "x64", "glibc")


@pytest.fixture(scope="module")
def arm64() -> Path:
    return _npm_tree("arm64-glibc", "arm64", "glibc")


@pytest.fixture(scope="module")
def x64_musl() -> Path:
    return _npm_tree("x64-musl", "x64", "musl")


def _real_run(root: Path, name: str) -> tuple[bool, set[str]]:
    """Does the package work under the host's Node (x86_64, glibc), and which .node files it opened."""
    script = f"{PROBE[name]}; console.log(require('fs').readFileSync('/proc/self/maps', 'utf8'))"
    proc = subprocess.run(["node", "-e", script], cwd=root, capture_output=True, text=True, timeout=60)
    opened = {line.split()[-1] for line in proc.stdout.splitlines() if line.endswith((".node", ".bare"))}
    return proc.returncode == 0, {os.path.relpath(p, root) for p in opened if p.startswith(str(root))}


def _simulated(root: Path, arch: str, abi: str) -> set[str]:
    out = subprocess.run(["node", "-e", SIMULATE, arch, abi, str(root), *PACKAGES], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return {os.path.relpath(p, root) for p in json.loads(out)}


def _node_files(root: Path) -> set[str]:
    return _node_files_in(root)


def _loadable_nodes(root: Path, unloaded: tuple[Unloaded, ...]) -> set[str]:
    return _node_files(root) - {u.rel for u in unloaded}


def _foreign_elf(root: Path, machine: int) -> set[str]:
    """Every ELF file of the tree built for another machine (Node cannot have loaded any)."""
    out = set()
    for p in (root / "node_modules").rglob("*"):
        if p.is_file() and not p.is_symlink() and p.stat().st_size >= 52:
            with p.open("rb") as fh:
                head = fh.read(20)
            if head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") != machine:
                out.add(str(p.relative_to(root)))
    return out


def _machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    return int.from_bytes(head[18:20], "little")


# -- the trees, judged by Node --------------------------------------------------------------------
def test_x64_tree_node_opens_exactly_what_is_not_unloaded(x64: Path, host_major: int) -> None:
    opened: set[str] = set()
    for name in PACKAGES:
        ok, files = _real_run(x64, name)
        assert ok, f"{name} does not load from the x64 tree"
        opened |= files
    with open_tree(x64) as tree:
        anyone = node_native(tree, "x86_64")
        on_host = node_native(tree, "x86_64", node_major=host_major)
    unloaded = {u.rel for u in anyone.unloaded}
    assert len(opened) >= 8
    assert not opened & unloaded, "Node opened files reported as never loaded"
    # with the host Node's ABI known, what is left is exactly what Node opened
    assert _loadable_nodes(x64, on_host.unloaded) == opened
    assert anyone.missing == () and on_host.missing == ()
    whys = {u.why for u in anyone.unloaded}
    assert {"prebuild for darwin-arm64", "prebuild for linux-arm64", "prebuild for musl"} <= whys or \
        {"prebuild for android-arm64", "prebuild for linux-arm64", "prebuild for musl"} <= whys


def test_x64_tree_has_no_x86_64_file_flagged_and_x64_evidence(x64: Path) -> None:
    with open_tree(x64) as tree:
        result = node_native(tree, "x86_64")
        evidence = node_arch_evidence(tree)
    for u in result.unloaded:
        if _machine(x64 / u.rel) == 62:  # an x86_64 file unloaded only for a reason other than its arch
            assert "x64" not in u.why.replace("android-x64", "") and "cpu" not in u.why, u
    assert evidence and {arch for arch, _ in evidence} == {"x86_64"}
    foreign = _foreign_elf(x64, 62)  # issue 23: every file of another arch is one Node never loads
    assert len(foreign) > 40 and foreign <= {u.rel for u in result.unloaded}
    assert not any("bufferutil" in why for _, why in evidence)  # prebuilds for both linux arches


@pytest.mark.parametrize("recipe", ["arm64", "x64_musl"])
def test_tree_for_another_platform_names_every_package_that_fails(recipe: str, request) -> None:
    root: Path = request.getfixturevalue(recipe)
    failed = {name for name in PACKAGES if not _real_run(root, name)[0]}
    assert failed, "the wrong-platform tree should break some packages"
    with open_tree(root) as tree:
        result = node_native(tree, "x86_64")
    assert {m.group.removeprefix("node_modules/") for m in result.missing} == failed
    for m in result.missing:
        assert m.wanted == "linux-x64 (glibc)" and m.present


def test_arm64_tree_on_arm64_matches_the_packages_own_choice(arm64: Path, host_major: int) -> None:
    chosen = _simulated(arm64, "arm64", NODE_ABI[host_major])
    with open_tree(arm64) as tree:
        anyone = node_native(tree, "arm64")
        on_host = node_native(tree, "arm64", node_major=host_major)
        evidence = node_arch_evidence(tree)
    assert len(chosen) >= 8 and not chosen & {u.rel for u in anyone.unloaded}
    assert _loadable_nodes(arm64, on_host.unloaded) == chosen
    assert anyone.missing == ()
    for u in anyone.unloaded:  # an arm64 file is never unloaded for its arch
        if _machine(arm64 / u.rel) == 183:
            assert "linux-arm64" not in u.why and "cpu" not in u.why, u  # android, musl, Bare
    assert evidence and {arch for arch, _ in evidence} == {"arm64"}
    foreign = _foreign_elf(arm64, 183)
    assert len(foreign) > 40 and foreign <= {u.rel for u in anyone.unloaded}


def test_simulation_agrees_with_real_loading(x64: Path, host_major: int) -> None:
    """The arch-swapping harness, run for x64, sees what real Node opened (so it can judge arm64)."""
    real = set().union(*(_real_run(x64, name)[1] for name in PACKAGES))
    assert _simulated(x64, "x64", NODE_ABI[host_major]) == real


def test_layer_nodeNN_directories_decide_abi_tags(x64: Path, tmp_path: Path) -> None:
    """Only nodejsNN.x looks in nodejs/nodeNN/node_modules: Node 20's ABI (115) picks msgpackr's
    abi115 prebuild there, Node 22's (127) the napi one in nodejs/node22."""
    chosen: set[str] = set()
    for major in (20, 22):
        base = tmp_path / "nodejs" / f"node{major}"
        for name in ("msgpackr-extract", "@msgpackr-extract/msgpackr-extract-linux-x64",
                     "node-gyp-build-optional-packages", "detect-libc"):
            shutil.copytree(x64 / "node_modules" / name, base / "node_modules" / name, symlinks=True)
        out = subprocess.run(["node", "-e", SIMULATE, "x64", NODE_ABI[major], str(base), "msgpackr-extract"],
                             capture_output=True, text=True, check=True).stdout
        chosen |= {os.path.relpath(p, tmp_path) for p in json.loads(out)}
    assert chosen == {f"nodejs/node{m}/node_modules/@msgpackr-extract/msgpackr-extract-linux-x64/node.{tag}.glibc.node"
                      for m, tag in ((20, "abi115"), (22, "napi"))}
    with open_tree(tmp_path) as tree:
        result = node_native(tree, "x86_64")
    assert _loadable_nodes_in(tmp_path, result.unloaded) == chosen
    zipped = tmp_path.parent / "layer.zip"  # a zip is read in place, with the same answer
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in sorted(tmp_path.rglob("*")):
            zf.write(p, str(p.relative_to(tmp_path)))
    with open_tree(zipped) as tree:
        assert node_native(tree, "x86_64") == result


@pytest.mark.parametrize("name, falls_back", [("bufferutil", True), ("utf-8-validate", True),
                                              ("classic-level", False)])
def test_prebuilds_for_other_platforms_only(x64: Path, tmp_path: Path, name: str, falls_back: bool) -> None:
    """The package with its linux-x64 prebuilds removed: bufferutil's JS falls back and works,
    classic-level's require fails; only the latter has no variant."""
    (tmp_path / "node_modules").mkdir()
    for dep in (x64 / "node_modules").iterdir():  # its dependencies as links, the package as a copy
        if dep.name != name:
            (tmp_path / "node_modules" / dep.name).symlink_to(dep)
    shutil.copytree(x64 / "node_modules" / name, tmp_path / "node_modules" / name, symlinks=True)
    shutil.rmtree(tmp_path / "node_modules" / name / "prebuilds" / "linux-x64")
    run = subprocess.run(["node", "-e", f"require({name!r})"], cwd=tmp_path, capture_output=True, text=True)
    works = run.returncode == 0
    assert works or "No native build was found" in run.stderr
    with open_tree(tmp_path) as tree:
        missing = node_native(tree, "x86_64").missing
    assert works == falls_back
    assert [m.group for m in missing] == ([] if works else [f"node_modules/{name}"])
    if missing:
        assert "linux-arm64" in missing[0].present and missing[0].wanted == "linux-x64 (glibc)"


# -- node-gyp-build's tag rules, judged by node-gyp-build -----------------------------------------
ELF_X64 = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x03\x00\x3e\x00" + bytes(44)
TAG_CASES = {
    "napi-vs-abi": {"linux-x64": ["a.napi.node", "a.abi115.node", "a.abi127.node"]},
    "napi-only-vs-newer-abi": {"linux-x64": ["a.napi.node", "a.abi141.node"]},
    "abi-napi-combined": {"linux-x64": ["a.abi141.napi.node", "a.abi108.node"]},
    "musl-vs-glibc": {"linux-x64": ["a.musl.node", "a.glibc.node"]},
    "musl-only": {"linux-x64": ["a.napi.musl.node"], "darwin-x64": ["a.napi.node"]},
    "untagged-vs-musl": {"linux-x64": ["a.node", "a.musl.node"]},
    "armv7-vs-arm64": {"linux-arm64": ["a.armv7.node", "a.armv8.node"], "linux-arm": ["a.armv7.node"]},
    "armv-tag-on-x64": {"linux-x64": ["a.armv7.node"]},
    "single-arch-first": {"linux-x64+arm64": ["a.napi.node"], "linux-x64": ["a.napi.node"]},
    "multi-arch-only": {"linux-x64+arm64": ["a.napi.node"], "darwin-x64+arm64": ["a.napi.node"]},
    "runtime-tags": {"linux-x64": ["a.electron.napi.node", "a.node.napi.node", "a.electron.abi115.node"]},
    "uv-tags": {"linux-x64": ["a.uv1.napi.node", "a.uv2.abi115.node", "a.napi.node"]},
    "specificity": {"linux-x64": ["a.napi.node", "a.napi.glibc.node", "a.node.napi.glibc.node"]},
    "napi-version-names": {"linux-x64": ["a.napi.v10.node"], "linux-arm64": ["a.napi.v3.node"]},
    "build-release-first": {"build/Release": ["a.node"], "linux-x64": ["a.napi.node", "a.abi115.node"]},
    "other-platforms-only": {"darwin-arm64": ["a.node"], "win32-x64": ["a.node"], "android-arm64": ["a.node"]},
}
RESOLVE = r"""
const [ngb, ...jobs] = process.argv.slice(1)
const out = []
for (const job of jobs) {
  const [dir, arch, abi] = job.split('|')
  process.env.npm_config_arch = arch
  Object.defineProperty(process, 'versions', { value: { ...process.versions, modules: abi }, configurable: true })
  delete require.cache[require.resolve(ngb)]
  try { out.push(require(ngb).resolve(dir)) } catch (e) { out.push(null) }
}
console.log(JSON.stringify(out))
"""


def _tag_tree(tmp_path: Path, case: str, loader: str = "node-gyp-build") -> Path:
    pkg = tmp_path / case / "node_modules" / "a"
    for tup, files in TAG_CASES[case].items():
        where = pkg / tup if "/" in tup else pkg / "prebuilds" / tup
        where.mkdir(parents=True)
        for f in files:
            (where / f).write_bytes(ELF_X64)
    (pkg / "package.json").write_text(json.dumps({"name": "a", "dependencies": {loader: "*"}}))
    return tmp_path / case


@pytest.mark.parametrize("loader", ["node-gyp-build", "node-gyp-build-optional-packages"])
def test_prebuild_tags_match_node_gyp_build(x64: Path, tmp_path: Path, loader: str) -> None:
    ngb = x64 / "node_modules" / loader / "node-gyp-build.js"
    jobs, keys = [], []
    for case in TAG_CASES:
        root = _tag_tree(tmp_path, case, loader)
        for arch in ("x86_64", "arm64"):
            for major in (20, 22, 24):
                jobs.append(f"{root / 'node_modules' / 'a'}|{NODE_CPU[arch]}|{NODE_ABI[major]}")
                keys.append((case, arch, major))
    out = subprocess.run(["node", "-e", RESOLVE, str(ngb), *jobs], capture_output=True, text=True, check=True)
    winners = dict(zip(keys, json.loads(out.stdout)))
    for case in TAG_CASES:
        root = tmp_path / case
        with open_tree(root) as tree:
            for arch in ("x86_64", "arm64"):
                any_node = node_native(tree, arch)
                possible = {os.path.relpath(won, root) for m in (20, 22, 24) if (won := winners[case, arch, m])}
                assert not possible & {u.rel for u in any_node.unloaded}, (case, arch)
                for major in (20, 22, 24):
                    result = node_native(tree, arch, node_major=major)
                    left = _loadable_nodes_in(root, result.unloaded)
                    won = winners[case, arch, major]
                    assert left == ({os.path.relpath(won, root)} if won else set()), (case, arch, major)
                    assert bool(result.missing) == (won is None), (case, arch, major, result.missing)


def _loadable_nodes_in(root: Path, unloaded: tuple[Unloaded, ...]) -> set[str]:
    return _node_files_in(root) - {u.rel for u in unloaded}


def _node_files_in(root: Path) -> set[str]:
    """The ELF addons of the tree: Node's `.node` and the Bare runtime's `.bare` (Mach-O and PE skipped)."""
    found = [*root.rglob("*.node"), *root.rglob("*.bare")]
    return {str(p.relative_to(root)) for p in found if p.read_bytes()[:4] == b"\x7fELF"}


# -- package.json os / cpu / libc, judged by npm's own check ---------------------------------------
MANIFESTS = [
    {"os": ["linux"], "cpu": ["x64"], "libc": ["glibc"]},
    {"os": ["linux"], "cpu": ["arm64"], "libc": ["glibc"]},
    {"os": ["linux"], "cpu": ["x64"], "libc": ["musl"]},
    {"os": ["linux"], "cpu": ["x64"]},
    {"os": ["darwin"], "cpu": ["x64"]},
    {"os": ["!win32"], "cpu": ["!arm64"]},
    {"os": ["linux", "darwin"], "cpu": ["x64", "arm64"]},
    {"cpu": ["!x64", "!ia32"]},
    {"libc": ["!musl"]},
    {"os": "linux", "cpu": "arm64"},
    {"cpu": ["any"]},
    {"cpu": ["x64", "!x64"]},
    {"cpu": []},
    {},
]


def test_os_cpu_libc_fields_match_npm(tmp_path: Path) -> None:
    require_tool("npm")
    checks = subprocess.run(["node", "-e", FIND_NPM_CHECKS], capture_output=True, text=True, check=True).stdout
    jobs = [[m, cpu, libc] for m in MANIFESTS for cpu in ("x64", "arm64") for libc in ("glibc", "musl")]
    script = (f"const c = require({checks.strip()!r}); const jobs = JSON.parse(process.argv[1]);"
              "console.log(JSON.stringify(jobs.map(([m, cpu, libc]) => { try {"
              "c.checkPlatform(m, false, {os: 'linux', cpu, libc}); return true } catch (e) { return false } })))")
    npm_ok = json.loads(subprocess.run(["node", "-e", script, json.dumps(jobs)], capture_output=True, text=True,
                                       check=True).stdout)
    for (manifest, cpu, libc), ok in zip(jobs, npm_ok):
        arch = "x86_64" if cpu == "x64" else "arm64"
        assert (manifest_excludes(manifest, make_target(arch, libc)) is None) == ok, (manifest, cpu, libc)


def test_fields_not_the_name_decide(tmp_path: Path) -> None:
    """A package named for linux-x64 whose package.json says arm64 is for arm64 (npm reads the fields)."""
    pkg = tmp_path / "node_modules" / "@s" / "p-linux-x64-gnu"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "@s/p-linux-x64-gnu", "cpu": ["arm64"], "os": ["linux"]}))
    (pkg / "p.node").write_bytes(ELF_X64)
    bare = tmp_path / "node_modules" / "q-linux-arm64"  # no fields: the name decides
    bare.mkdir()
    (bare / "package.json").write_text('{"name": "q-linux-arm64"}')
    (bare / "q.node").write_bytes(ELF_X64)
    with open_tree(tmp_path) as tree:
        x = {u.rel: u.why for u in node_native(tree, "x86_64").unloaded}
        a = {u.rel: u.why for u in node_native(tree, "arm64").unloaded}
    assert x == {"node_modules/@s/p-linux-x64-gnu/p.node": "package @s/p-linux-x64-gnu is for cpu arm64",
                 "node_modules/q-linux-arm64/q.node": "package q-linux-arm64 is for cpu arm64"}
    assert a == {}


def test_missing_platform_package_with_wasm_fallback_is_not_reported(arm64: Path, tmp_path: Path) -> None:
    """sharp falls back to @img/sharp-wasm32 when installed: require works, so nothing is missing."""
    shutil.copytree(arm64 / "node_modules" / "sharp", tmp_path / "node_modules" / "sharp", symlinks=True)
    wasm = tmp_path / "node_modules" / "@img" / "sharp-wasm32"
    wasm.mkdir(parents=True)
    (wasm / "package.json").write_text('{"name": "@img/sharp-wasm32", "cpu": ["wasm32"]}')
    with open_tree(tmp_path) as tree:
        assert node_native(tree, "x86_64").missing == ()
    shutil.rmtree(wasm)
    with open_tree(tmp_path) as tree:
        assert [m.group for m in node_native(tree, "x86_64").missing] == ["node_modules/sharp"]


def test_bad_target_is_refused(tmp_path: Path) -> None:
    with open_tree(tmp_path) as tree, pytest.raises(ValueError):
        node_native(tree, "i386")


# -- analyze, as a user runs it, against the same judge ------------------------------------------

def _analyze(root: Path, *args: str) -> tuple[int, dict]:
    res = run_cli("analyze", str(root), "--json", *args)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_analyze_of_a_working_x64_tree_has_no_error_and_picks_x86_64(x64: Path) -> None:
    """issue 23's tree (sharp, @sparticuz/chromium, @napi-rs/canvas, @swc/core, esbuild, tar-fs…):
    every package works under real Node, and analyze said "79 errors — will fail" before, all of
    them prebuilds for other platforms and Bare addons."""
    assert all(_real_run(x64, name)[0] for name in PACKAGES)
    for runtime in ("nodejs20.x", "nodejs22.x"):
        rc, doc = _analyze(x64, "--runtime", runtime)
        assert rc == 0 and [f for f in doc["findings"] if f["severity"] == "error"] == [], runtime
        assert doc["runtime"]["arch"] == "x86_64" and doc["runtime"]["arch_source"].startswith("loaded files")
        never = [f for f in doc["findings"] if f["code"] == "LP117"]
        assert len({f["path"] for f in never}) == len(never)  # one line per package


@pytest.mark.parametrize("recipe", ["arm64", "x64_musl"])
def test_analyze_names_exactly_the_packages_real_node_cannot_load(recipe: str, request) -> None:
    root: Path = request.getfixturevalue(recipe)
    failed = {name for name in PACKAGES if not _real_run(root, name)[0]}
    rc, doc = _analyze(root, "--runtime", "nodejs22.x", "--arch", "x86_64")
    lp311 = {f["path"].removeprefix("node_modules/") for f in doc["findings"] if f["code"] == "LP311"}
    assert rc == 1 and lp311 == failed


def test_analyze_of_an_arm64_install_targets_arm64_without_being_told(arm64: Path) -> None:
    rc, doc = _analyze(arm64, "--runtime", "nodejs22.x")
    assert doc["runtime"]["arch"] == "arm64" and "arm64" in doc["runtime"]["arch_source"]
    assert not [f for f in doc["findings"] if f["code"] in ("LP301", "LP302", "LP311")]
    # @sparticuz/chromium ships x86_64 Chromium only: on arm64 its payload cannot run (LP308)
    assert {f["code"] for f in doc["findings"] if f["severity"] == "error"} == {"LP308"} and rc == 1


def test_modules_only_in_another_nodes_directory_fail_as_require_does(x64: Path, tmp_path: Path) -> None:
    """nodejs22.x's NODE_PATH holds /opt/nodejs/node22/node_modules and /opt/nodejs/node_modules,
    not node20's: real Node with that NODE_PATH cannot require what a node20/ directory holds."""
    layer = tmp_path / "layer"
    shutil.copytree(x64 / "node_modules", layer / "nodejs" / "node20" / "node_modules", symlinks=True)
    node_path = {major: f"{layer}/nodejs/node{major}/node_modules:{layer}/nodejs/node_modules" for major in (20, 22)}
    script = "require('@parcel/watcher')"
    for major, works in ((20, True), (22, False)):
        res = subprocess.run(["node", "-e", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "NODE_PATH": node_path[major]})
        assert (res.returncode == 0) is works, res.stderr
        rc, doc = _analyze(layer, "--runtime", f"nodejs{major}.x")
        codes = [f["code"] for f in doc["findings"] if f["severity"] == "error"]
        assert (rc, codes) == ((0, []) if works else (1, ["LP430"])), major
    # a layer for several runtimes holds one directory per major: nothing is wrong for nodejs22.x
    shutil.copytree(x64 / "node_modules", layer / "nodejs" / "node22" / "node_modules", symlinks=True)
    rc, doc = _analyze(layer, "--runtime", "nodejs22.x")
    assert rc == 0 and any(f["code"] == "LP117" and f["path"] == "nodejs/node20/node_modules" for f in doc["findings"])
