"""The judge of the real-layer corpus: real interpreters in a Lambda-shaped sandbox, readelf, ld.so.

1. **Import/require** (x86_64): the runtime's root is rebuilt from host files as `layerpack invoke`
   does (`packer.emulator.rootfs.plan_root/materialize`: only the runtime's listed libraries), the
   real CPython of the runtime's version (pyenv's, else Debian's /usr/bin/python3.X) or a real Node.js
   of its major version is staged at /var/lang as packer/emulator/managed.py stages the host's, the
   tree is bound at /opt, and bubblewrap runs, as sbx_user1051, a script that imports every extension
   module (its path → its module name; only /opt/python on sys.path) or requires every package the
   tree installed (NODE_PATH as Lambda's). arm64 trees run the same way through qemu-user in an arm64
   root (tests/real_layers_arm64.py).
2. **Symbol versions**: the host's glibc (2.36) is newer than every runtime's, so a library that
   imported fine is then checked with binutils' `readelf -V` — every file the interpreter actually
   mapped (read back from /proc/self/maps) — against the runtime's ceilings from the live-Lambda
   dumps; a GLIBC_ version above 2.31 must also be refused by Debian 11's real ld.so.
(No tests here.)
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.real_layers import Verdict
from tests.real_layers_roots import SetupError, _key, _publish, _workdir, cache_root

EXT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.(cpython-\d+[a-z]*-[\w-]+|abi3|cp\d+-[\w-]+)?\.?so$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HERE = Path(__file__).resolve().parent
PY_SCRIPT = HERE / "real_layers_import.py"


def node_script() -> Path:
    """tests/real_layers_require.py's script as a file (content-named, written atomically)."""
    from tests.real_layers_require import SCRIPT

    out = cache_root() / "scripts" / f"require-{_key(SCRIPT)}.js"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(f".{out.name}.{os.getpid()}")
        part.write_text(SCRIPT)
        os.replace(part, out)
    return out


def judge(tree: Path, runtime: str, arch: str) -> Verdict:
    """The verdict for `tree` as a layer of `runtime` on `arch`."""
    if arch != _host_arch():
        from tests import real_layers_arm64

        report = real_layers_arm64.run(tree, runtime, arch)
    elif runtime.startswith("python"):
        report = _sandboxed(tree, runtime, arch, _python_command(runtime))
    else:
        report = _sandboxed(tree, runtime, arch, _node_command(runtime, arch))
    started = [r for r in report["results"] if not r["error"].startswith("crashed") or r["target"] != "?"]
    if not started:  # nothing was imported at all: the judge itself did not run, which proves nothing
        raise SetupError(f"the judge did not run for {tree.name} ({runtime} {arch}): {report['stderr'][-800:]}")
    first = _first_failure(tree, report)
    if first is not None:
        return first
    too_new = glibc_verdict(tree, runtime, arch, report.get("loaded", []))
    return too_new or Verdict(True, checked=len(report["results"]), notes=tuple(report.get("notes", ())))


# --- what to load -----------------------------------------------------------------------------------

def extension_modules(tree: Path) -> list[tuple[str, str]]:
    """(module name, path relative to the tree) of every extension module under TREE/python."""
    base = tree / "python"
    out: list[tuple[str, str]] = []
    for path in sorted(base.rglob("*.so")):
        rel = path.relative_to(base)
        if len(rel.parts) > 3 and rel.parts[0] == "lib" and rel.parts[2] == "site-packages":
            rel = Path(*rel.parts[3:])  # python/lib/python3.X/site-packages/…: on the path of 3.X only
        m = EXT.match(rel.name)
        if m is None or not all(IDENT.match(p) for p in rel.parts[:-1]):
            continue
        if m.group(2) is None and f"PyInit_{m.group(1)}".encode() not in path.read_bytes():
            continue  # a plain library named *.so (pyarrow's libarrow_python.so), not a module
        out.append((".".join([*rel.parts[:-1], m.group(1)]), str(path.relative_to(tree))))
    return out


def node_packages(tree: Path) -> list[str]:
    """The packages the tree's package.json installed (what a handler would require)."""
    names: set[str] = set()
    for meta in (tree / "nodejs").glob("**/package.json"):
        if meta.parent.name != "node_modules" and "node_modules" not in meta.parts:
            names |= set(json.loads(meta.read_text()).get("dependencies", {}))
    return sorted(names)


def native_files(tree: Path, package: str) -> list[str]:
    """The native files of a node package: its own `.node`/binaries and its per-platform packages'."""
    stem = package.split("/")[-1].split("-")[0] if package.startswith("@") else package.split("-")[0]
    stem = {"core": "swc", "canvas": "canvas", "watcher": "watcher"}.get(stem, stem)
    hits = []
    for path in (tree / "nodejs").rglob("*"):
        rel = str(path.relative_to(tree))
        if stem in rel and path.is_file() and (path.suffix == ".node" or path.suffix != ".o" and _is_elf(path)):
            hits.append(rel)
    return sorted(hits)


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


# --- the sandbox ------------------------------------------------------------------------------------

def _host_arch() -> str:
    return {"x86_64": "x86_64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


@functools.lru_cache(maxsize=None)
def lambda_root(runtime: str, arch: str) -> Path:
    """The runtime's root rebuilt from host files (only its listed libraries), once per runtime."""
    from packer import runtime as rtmod
    from packer.emulator import rootfs, sandbox

    reason = sandbox.probe()
    if reason:
        raise SetupError(f"bwrap cannot sandbox here: {reason}")
    return rootfs.materialize(rootfs.plan_root(rtmod.load(runtime, arch)), cache_root() / "emulator")


def interpreter(version: str) -> Path:
    """The real CPython `version` (3.X): pyenv's, else the system's (Debian's python3.11);
    LAYERPACK_TEST_JUDGE_PYTHON=system prefers the system's."""
    pyenv = Path(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))) / "versions"
    system = Path(f"/usr/bin/python{version}")
    if os.environ.get("LAYERPACK_TEST_JUDGE_PYTHON") == "system" and system.is_file():
        return system
    for cand in sorted(glob.glob(f"{pyenv}/{version}.*/bin/python{version}"), reverse=True):
        return Path(cand)
    if system.is_file():
        return system
    raise SetupError(f"no CPython {version} on this machine (pyenv install {version}, or apt-get install python{version})")


def _python_command(runtime: str) -> tuple[list[tuple[str, str]], list[str], dict[str, str]]:
    """Binds, argv and environment that run the import script with the runtime's CPython."""
    version = runtime.removeprefix("python")
    exe = interpreter(version)
    stdlib = _stdlib(exe, version)
    lang = _stage_lang(exe, runtime, "x86_64", f"python{version}")
    binds = [(str(lang), "/var/lang"), (str(stdlib), f"/var/lang/lib/python{version}"),
             (str(PY_SCRIPT), "/var/runtime/judge.py")]
    argv = [f"/var/lang/bin/python{version}", "-s", "-E", "/var/runtime/judge.py"]
    return binds, argv, {"PYTHONPATH": ""}


def _stdlib(exe: Path, version: str) -> Path:
    proc = subprocess.run([str(exe), "-S", "-c", "import os; print(os.path.dirname(os.__file__))"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SetupError(f"{exe} does not run: {proc.stderr.strip()}")
    return Path(proc.stdout.strip())


def _node_command(runtime: str, arch: str) -> tuple[list[tuple[str, str]], list[str], dict[str, str]]:
    from tests.real_layers_roots import node_binary

    major = int(runtime.removeprefix("nodejs").removesuffix(".x"))
    exe = node_binary(major, arch)
    lang = _stage_lang(exe, runtime, arch, "node")
    binds = [(str(lang), "/var/lang"), (str(node_script()), "/var/runtime/judge.js")]
    env = {"NODE_PATH": f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules"}
    return binds, ["/var/lang/bin/node", "/var/runtime/judge.js"], env


def _stage_lang(exe: Path, runtime: str, arch: str, name: str) -> Path:
    """/var/lang for `exe`: the binary, the runtime's own /var/lang/lib files (from the rebuilt root),
    and the host libraries the interpreter and its standard modules need that the runtime lacks (on
    Lambda the runtime's interpreter brings its own there)."""
    root = lambda_root(runtime, arch)
    st = exe.stat()
    out = cache_root() / "lang" / f"{runtime}-{arch}-{name}-{_key(2, str(exe), st.st_size, st.st_mtime_ns, str(root))}"
    work = _workdir(out, ".lang-")
    if work is None:
        return out
    (work / "bin").mkdir(mode=0o755)
    (work / "lib").mkdir(mode=0o755)
    shutil.copy2(exe, work / "bin" / name)
    if (root / "var" / "lang" / "lib").is_dir():
        subprocess.run(["cp", "-a", f"{root}/var/lang/lib/.", str(work / "lib")], check=True)
    offered = {p.name for p in (root / "usr" / "lib64").iterdir()} | {p.name for p in (work / "lib").iterdir()}
    users = [exe, *(exe.parent.parent / "lib").glob("python3*/lib-dynload/*.so")]
    if str(exe).startswith("/usr/bin/"):
        users += list(Path("/usr/lib").glob(f"{name}/lib-dynload/*.so"))
    for lib in _host_needs(users, offered):
        shutil.copy2(lib, work / "lib" / lib.name)
    for lib in _host_needs([exe], set()):  # its own libpython, not the host's copy of the runtime's name
        if lib.name.startswith("libpython"):
            (work / "lib" / lib.name).unlink(missing_ok=True)
            shutil.copy2(lib, work / "lib" / lib.name)
    if name.startswith("python"):
        (work / "lib" / name).mkdir()  # mount point of the standard library
    return _publish(work, out)


_GLIBC = re.compile(r"^(libc|libm|libdl|libpthread|librt|libutil|ld-linux[-\w]*)\.so")


def _host_needs(files: list[Path], offered: set[str]) -> set[Path]:
    found: set[Path] = set()
    for f in files:
        text = subprocess.run(["ldd", str(f)], capture_output=True, text=True, timeout=60).stdout
        for name, path in re.findall(r"^\s*(\S+) => (/\S+)", text, re.M):
            if not _GLIBC.match(name) and name not in offered:
                found.add(Path(path))
    return found


def _sandboxed(tree: Path, runtime: str, arch: str, command: tuple) -> dict:
    """Run the judge script in the Lambda-shaped sandbox; its JSON report."""
    from packer import runtime as rtmod
    from packer.emulator import rootfs, sandbox

    binds, argv, extra = command
    rt = rtmod.load(runtime, arch)
    root = lambda_root(runtime, arch)
    env = {"PATH": ":".join(rt.path_env), "LD_LIBRARY_PATH": ":".join(rt.ld_library_path),
           "LAMBDA_TASK_ROOT": "/var/task", "LANG": "en_US.UTF-8", "HOME": "/tmp", **extra,
           "JUDGE_TARGETS": json.dumps(_targets(tree, runtime))}
    drop = rootfs.uid_helper(cache_root() / "emulator") if os.geteuid() == 0 else None
    spec = sandbox.SandboxSpec(root=root, opt=tree, task=None, command=tuple(argv), env=env, drop=drop,
                               unprivileged=True, binds=tuple(binds))
    proc = subprocess.run(sandbox.bwrap_argv(spec, sandbox.bwrap_path() or "bwrap"), capture_output=True,
                          text=True, timeout=600)
    return parse_report(proc.stdout, proc.stderr, proc.returncode)


def _targets(tree: Path, runtime: str) -> list:
    if runtime.startswith("python"):
        return extension_modules(tree)
    return node_packages(tree)


def parse_report(stdout: str, stderr: str, rc: int) -> dict:
    """The script prints one JSON object per line (a result, then `loaded`): a crash leaves the
    results before it, and the module being loaded when it died is the failure."""
    results, loaded, notes, current = [], [], [], None
    for line in stdout.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "start" in item:
            current = item["start"]
        elif "loaded" in item:
            loaded = item["loaded"]
        elif "note" in item:
            notes.append(item["note"])
        else:
            results.append(item)
            current = None
    if current is not None or (rc != 0 and not loaded):
        last = (stderr.strip().splitlines() or [f"exit {rc}"])[-1]
        results.append({"target": current or "?", "file": "", "ok": False, "error": f"crashed: {last}"})
    return {"results": results, "loaded": loaded, "notes": notes, "stderr": stderr}


def _first_failure(tree: Path, report: dict) -> Verdict | None:
    for item in report["results"]:
        if not item["ok"]:
            files = [item["file"]] if item.get("file") else []
            files += [m[len("/opt/"):] for m in re.findall(r"/opt/[^\s:'\"]+", item["error"])]
            files += re.findall(r"(?<![/\w.+-])(lib[\w.+-]+\.so[\w.]*)", item["error"])  # a library named
            homes = [str(p.relative_to(tree)) for p in (tree / "nodejs").glob(f"**/node_modules/{item['target']}")
                     if p.is_dir() and str(p.relative_to(tree / "nodejs")).count("node_modules") == 1]
            if not item.get("file") and homes:
                # Node: the package that did not load, then the native files it could have loaded
                files = [*homes, *files, *native_files(tree, item["target"])]
            return Verdict(False, file=" ".join(dict.fromkeys(files)), error=item["error"],
                           checked=len(report["results"]), notes=tuple(report.get("notes", ())))
    return None


# --- symbol versions --------------------------------------------------------------------------------

def version_needs(path: Path) -> dict[str, set[str]]:
    """{library: {version, …}} from binutils' `readelf -V` (the version-needs section), without the
    needs flagged WEAK: the loader only refuses a missing version that is not weak (Rust's std asks for
    `statx@GLIBC_2.28` weakly and checks at run time, so such a wheel loads on glibc 2.26)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        raise SetupError("readelf is not installed (apt-get install binutils)")
    text = subprocess.run([readelf, "-V", "--wide", str(path)], capture_output=True, text=True, timeout=60).stdout
    needs: dict[str, set[str]] = {}
    section = text.split("Version needs section", 1)[-1] if "Version needs section" in text else ""
    lib = ""
    for line in section.splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            lib = m.group(1)
            continue
        m = re.search(r"Name: (\S+)\s+Flags: (\S+)", line)
        if m and lib and "WEAK" not in m.group(2):  # glibc's dl-version.c: a missing weak version is no error
            needs.setdefault(lib, set()).add(m.group(1))
    return needs


def glibc_verdict(tree: Path, runtime: str, arch: str, loaded: list[str]) -> Verdict | None:
    """The first loaded file of the tree that needs a version the runtime's library lacks."""
    from packer import runtime as rtmod

    rt = rtmod.load(runtime, arch)
    for inside in loaded:
        rel = inside[len("/opt/"):]
        host = tree / rel
        for lib, versions in sorted(version_needs(host).items()):
            for version in sorted(versions, key=_version_key, reverse=True):
                if rt.version_verdict(lib, version) == "too-new":
                    error = f"{lib}: version `{version}' not found (required by {inside})"
                    if arch == "x86_64":
                        _confirm_with_old_ldso(tree, rel, version, error)
                    return Verdict(False, file=rel, error=error, checked=len(loaded))
    return None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def _confirm_with_old_ldso(tree: Path, rel: str, version: str, error: str) -> None:
    """A GLIBC_ version above Debian 11's 2.31: Debian 11's own ld.so must refuse the file too
    (else readelf and our ceilings disagree with a real loader, and the judge would be wrong)."""
    if not version.startswith("GLIBC_") or _version_key(version) <= (2, 31):
        return
    from tests.real_layers_roots import bullseye_root

    root = bullseye_root()
    proc = subprocess.run(["bwrap", "--ro-bind", str(root), "/", "--ro-bind", str(tree), "/opt",
                           "--proc", "/proc", "--dev", "/dev", "--clearenv", "--",
                           "/lib64/ld-linux-x86-64.so.2", "--list", f"/opt/{rel}"],
                          capture_output=True, text=True, timeout=60)
    said = proc.stdout + proc.stderr
    if f"version `{version}' not found" not in said:
        raise SetupError(f"Debian 11's ld.so did not refuse {rel} ({error}); it said: {said[-500:]}")
