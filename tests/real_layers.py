"""The real-layer corpus: layers built from PyPI and npm as users build them, judged by real components.

Trees (tests/real_layers_corpus.py) are built at test time with `pip install --target TREE/python
--only-binary=:all: --platform … --python-version … --no-deps` and `npm install --os --cpu --libc`
into `TREE/nodejs/node_modules`, and kept under ~/.cache/layerpack-test/real-layers (downloads in
`pip-cache/` and `npm-cache/`, trees in `trees/NAME-KEY/` keyed by their recipe); nothing is
committed. A failed download raises `SetupError`, which the tests turn into a failure, never a skip.

`judge(case)` is what the real thing says (tests/real_layers_judge.py: import or require in a
Lambda-shaped sandbox, readelf's symbol versions against the runtime's ceiling, Debian 11's ld.so);
`analyze(case)` is what `layerpack analyze … --json` says, run as a user runs it. (No tests here.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.real_layers_corpus import CASES, TREES, Case, Derive, Npm, Pip, Tree
from tests.real_layers_roots import SetupError, _key, _publish, _workdir, cache_root, pip_command

__all__ = ["CASES", "Case", "SetupError", "Verdict", "Analyzed", "build_tree", "judge", "analyze"]


@dataclass(frozen=True)
class Verdict:
    """The judge's answer for one case."""

    works: bool
    file: str = ""  # the failing file, relative to the tree
    error: str = ""  # the interpreter's (or loader's) error line
    checked: int = 0  # how many modules/packages/files were checked
    notes: tuple[str, ...] = ()  # e.g. modules not imported for an optional pure-Python dependency

    @property
    def word(self) -> str:
        return "works" if self.works else "fails"


@dataclass(frozen=True)
class Analyzed:
    rc: int
    errors: tuple[dict, ...]
    seconds: float
    stderr: str = ""
    findings: tuple[dict, ...] = field(default=())

    @property
    def word(self) -> str:
        return {0: "works", 1: "fails"}.get(self.rc, f"exit {self.rc}")


# --- building ---------------------------------------------------------------------------------------

def build_tree(name: str) -> Path:
    """The tree `name`, built once per recipe (atomically: a half-built tree is never used)."""
    tree = TREES[name]
    out = cache_root() / "trees" / f"{tree.name}-{_key(tree)}"
    work = _workdir(out, f".{tree.name}-")
    if work is None:
        return out
    try:
        for step in tree.steps:
            if isinstance(step, Pip):
                _pip(step, work)
            elif isinstance(step, Npm):
                _npm(step, work)
            else:
                _derive(step, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _publish(work, out)


def _pip(step: Pip, work: Path) -> None:
    platforms = [arg for p in step.platforms for arg in ("--platform", p)]
    argv = [*pip_command(), "install", "-q", "--disable-pip-version-check", "--no-warn-conflicts",
            "--target", str(work / step.into), "--only-binary=:all:", "--no-deps", *platforms,
            "--python-version", step.python, "--implementation", "cp", "--ignore-requires-python",
            "--cache-dir", str(cache_root() / "pip-cache"), *step.packages]
    _run(argv, f"pip install {' '.join(step.packages[:3])}…")


def _derive(step: Derive, work: Path) -> None:
    base = build_tree(step.base)
    subprocess.run(["cp", "-al", f"{base}/.", str(work)], check=True)
    (work / ".complete").unlink(missing_ok=True)
    for pattern in step.remove:
        hits = list(work.glob(pattern))
        if not hits:
            raise SetupError(f"{step.base} has nothing matching {pattern} any more: update the corpus")
        for hit in hits:
            hit.unlink()


def _npm(step: Npm, work: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SetupError("npm is not installed")
    env = dict(os.environ, npm_config_update_notifier="false")
    if step.scripts and os.path.isdir("/usr/include/node"):  # node-gyp: the host node's headers, no download
        env.setdefault("npm_config_nodedir", "/usr")
    argv = [npm, "install", "--prefix", str(work / step.into), "--no-audit", "--no-fund", "--no-package-lock",
            "--os=linux", f"--cpu={step.cpu}", f"--libc={step.libc}", "--cache", str(cache_root() / "npm-cache"),
            *([] if step.scripts else ["--ignore-scripts"]), *step.packages]
    _run(argv, f"npm install {' '.join(step.packages[:3])}…", env=env)


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env)
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"{what} timed out") from exc
    if proc.returncode != 0:
        raise SetupError(f"{what} failed (exit {proc.returncode}; no network?): "
                         f"{_errors(proc.stderr or proc.stdout)}")


def _errors(text: str) -> str:
    lines = [ln for ln in text.splitlines() if not ln.startswith("WARNING: Location")]
    return "\n".join(lines)[-1500:]


# --- judging and analysing --------------------------------------------------------------------------

def judge(case: Case) -> Verdict:
    """What the real interpreter, loader and binutils say about the case's tree."""
    from tests import real_layers_judge

    return real_layers_judge.judge(build_tree(case.tree), case.runtime, case.arch)


def analyze(case: Case, tree: Path | None = None) -> Analyzed:
    """`layerpack analyze TREE --runtime R --arch A --json`, run as a user runs it (the CLI)."""
    tree = tree or build_tree(case.tree)
    from tests.conftest import layerpack_command

    argv = layerpack_command()
    start = time.monotonic()
    proc = subprocess.run([*argv, "analyze", str(tree), "--runtime", case.runtime, "--arch", case.arch, "--json"],
                          capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    findings: tuple[dict, ...] = ()
    if proc.stdout.strip():
        try:
            findings = tuple(json.loads(proc.stdout).get("findings", ()))
        except json.JSONDecodeError:
            findings = ()
    errors = tuple(f for f in findings if f.get("severity") == "error")
    return Analyzed(proc.returncode, errors, seconds, proc.stderr.strip()[-2000:], findings)


def names_file(errors: tuple[dict, ...], file: str) -> bool:
    """Whether some error finding is about `file`: its path, the file named in its message or data,
    or a directory of two or more levels holding it (python/lib/python3.11/site-packages)."""
    for f in errors:
        path = str(f.get("path") or "").rstrip("/")
        if path == file or file in json.dumps(f):
            return True
        if path.count("/") >= 1 and file.startswith(path + "/"):  # a directory holding it (not just python/)
            return True
    return False


def corpus_tree(case: Case) -> Tree:
    return TREES[case.tree]
