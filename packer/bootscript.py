"""What a bootstrap script sets up for the program it starts: an exported `LD_LIBRARY_PATH`, or a
bundled loader it execs (`ld-linux-x86-64.so.2 --library-path … PROGRAM`, as the aws-lambda-cpp
packager and `vendor --bundle-libc` write it). Both change what ld.so does, so analyze reads them
instead of judging the program as if Lambda exec'd it directly.

The reading is deliberately simple: top-level `NAME=value` / `export NAME=value` lines and the
first `exec` of a loader, with the few expansions such scripts use (`$LAMBDA_TASK_ROOT`, the
script's own directory as `${0%/*}` / `$(dirname "$0")`, and variables assigned before). A value
it cannot expand is reported as not modelled rather than guessed.
"""

from __future__ import annotations

from typing import NamedTuple

import posixpath
import re
import shlex
from dataclasses import dataclass, field

# ld.so's own file names: ld-linux-x86-64.so.2, ld-linux-aarch64.so.1, ld-2.26.so, ld.so
_LOADER_NAME = re.compile(r"ld(-linux[\w.-]*)?(-\d[\d.]*)?\.so(\.\d+)*")
# ld.so options that take a value, and those that do not (glibc elf/rtld.c)
_VALUE_OPTIONS = ("--library-path", "--inhibit-rpath", "--argv0", "--preload", "--audit", "--glibc-hwcaps-prepend",
                  "--glibc-hwcaps-mask")
_FLAG_OPTIONS = ("--inhibit-cache", "--verify", "--list", "--list-tunables", "--list-diagnostics")
_SELF_DIR = (r'\$\{0%/\*\}', r'\$\{BASH_SOURCE(\[0\])?%/\*\}', r'\$\(\s*dirname\s+"?\$0"?\s*\)',
             r'\$\(\s*cd\s+"?\$\(\s*dirname\s+"?\$0"?\s*\)"?\s*&&\s*pwd\s*\)',
             r'\$\(\s*dirname\s+"?\$\(\s*readlink\s+-f\s+"?\$0"?\s*\)"?\s*\)')


class LoaderExec(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    """`exec LOADER [options] PROGRAM` in a bootstrap script."""

    loader: str  # absolute path on Lambda
    program: str  # absolute path on Lambda
    library_path: tuple[str, ...] | None  # --library-path: replaces LD_LIBRARY_PATH
    inhibit_cache: bool = False
    options: tuple[str, ...] = ()  # every option given, for reports


@dataclass(frozen=True)
class BootScript:
    env: dict[str, str] = field(default_factory=dict)  # variables exported before the program starts
    loader_exec: LoaderExec | None = None
    program: str | None = None  # what it execs (or, in `layerpack wrap`'s bootstrap, its program=)
    unmodelled: tuple[str, ...] = ()  # `NAME=value` lines that matter but could not be expanded


def _expand(value: str, known: dict[str, str], self_dir: str) -> str | None:
    for pattern in _SELF_DIR:
        value = re.sub(pattern, self_dir, value)

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in known:
            raise KeyError(name)
        return known[name]

    try:
        out = re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, value)
    except KeyError:
        return None
    return None if "$" in out or "`" in out else out


def _words(line: str) -> list[str] | None:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return None


def read_bootstrap(text: str, self_dir: str, base_env: dict[str, str]) -> BootScript:
    """Read a shell bootstrap at `self_dir` (its directory on Lambda) started with `base_env`."""
    known = dict(base_env)
    exported: dict[str, str] = {}
    unmodelled: list[str] = []
    loader_exec = None
    program = None
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip()
        m = re.fullmatch(r"(export\s+)?([A-Za-z_]\w*)=(.*?)\s*;?", line)
        if m:
            words = _words(m.group(3)) if m.group(3) else [""]
            value = _expand(" ".join(words), known, self_dir) if words is not None else None
            if value is None:
                known.pop(m.group(2), None)
                if m.group(2) == "LD_LIBRARY_PATH":
                    unmodelled.append(line)
                continue
            known[m.group(2)] = value
            if m.group(1) or m.group(2) in exported:
                exported[m.group(2)] = value
            continue
        m = re.fullmatch(r"export\s+([A-Za-z_][\w ]*)", line)
        if m:
            for name in m.group(1).split():
                if name in known:
                    exported[name] = known[name]
            continue
        if line.startswith("exec ") and loader_exec is None and program is None:
            loader_exec = _loader_exec(line[5:], known, self_dir)
            program = loader_exec.program if loader_exec else _exec_target(line[5:], known, self_dir)
    if program is None and known.get("program"):  # layerpack wrap: program=bin/NAME, relative to the bootstrap
        program = posixpath.join(self_dir, known["program"])
    return BootScript(exported, loader_exec, tuple(unmodelled), program)


def _exec_target(command: str, known: dict[str, str], self_dir: str) -> str | None:
    words = _words(command)
    if not words or words[0].startswith("-"):
        return None
    first = _expand(words[0], known, self_dir)
    return posixpath.join(self_dir, first) if first and "/" in first else None


def _loader_exec(command: str, known: dict[str, str], self_dir: str) -> LoaderExec | None:
    words = _words(command)
    if not words:
        return None
    expanded = [_expand(w, known, self_dir) for w in words]
    loader = expanded[0]
    if loader is None or not _LOADER_NAME.fullmatch(posixpath.basename(loader)):
        return None
    library_path, inhibit_cache, options = None, False, []
    i = 1
    while i < len(expanded):
        word = expanded[i]
        if word in _FLAG_OPTIONS:
            inhibit_cache |= word == "--inhibit-cache"
            options.append(word)
            i += 1
        elif word in _VALUE_OPTIONS and i + 1 < len(expanded):
            value = expanded[i + 1]
            if word == "--library-path":
                if value is None:
                    return None  # a library path we cannot read: no model rather than a wrong one
                library_path = tuple(value.split(":"))
            options.append(word)
            i += 2
        elif word is not None and word.startswith("--"):
            return None  # an option this reader does not know
        else:
            break
    if i >= len(expanded) or expanded[i] is None:
        return None
    program = posixpath.join(self_dir, expanded[i])
    return LoaderExec(posixpath.join(self_dir, loader), program, library_path, inhibit_cache, tuple(options))
