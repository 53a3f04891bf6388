"""`layerpack wrap`: the stdio adapter. Any program that reads one JSON line and writes one becomes a
Lambda function, started once per execution environment and kept warm.

Why a generator: the Runtime API loop is the same for every such program, and getting it right in a
shell is subtle (events with line breaks, responses larger than an argument may be, a child that
dies between events, SIGPIPE killing the loop). So layerpack writes it once, as files the user can
read, and `layerpack analyze`/`invoke` check the result like any other layer.

Two flavours, picked from `--runtime`:

* `provided.*` → a `bootstrap` in bash that talks to the Runtime API with `curl` — the only two
  commands it runs, both on provided.al2023's PATH (`rules/runtimes/executables/`). Per event it
  spawns nothing but curl: the event is read with the `read` builtin, line breaks (which valid JSON
  only has *between* tokens, never inside strings) become spaces, and the child is a bash `coproc`.
* `nodejs*` → an `index.mjs` handler (`index.handler`) that spawns the program with
  `child_process.spawn` on the first event and keeps it; `JSON.stringify` already writes one line.

`plan()` only reads (the program, the output directory) and returns the files to write;
`apply()` writes them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from packer import runtime as runtimes
from packer.errors import InputError, UsageError

STDERR_MODES = ("fail", "log")
NEEDED_COMMANDS = ("bash", "curl")  # the only commands the generated bootstrap runs

# Error types the adapter posts for an event it could not answer (Lambda shows them as errorType).
ERR_EXITED = "Stdio.ProgramExited"
ERR_NOT_JSON = "Stdio.NotJson"
ERR_STDERR = "Stdio.Stderr"
ERR_BAD_EVENT = "Stdio.BadEvent"
ERR_NOT_FOUND = "Stdio.ProgramNotFound"


@dataclass(frozen=True)
class WrapFile:
    """One file of the output: generated text, or a copy of the user's program."""

    rel: str
    mode: int
    text: str | None = None
    source: Path | None = None

    @property
    def size(self) -> int:
        if self.text is not None:
            return len(self.text.encode())
        return self.source.stat().st_size if self.source else 0


@dataclass(frozen=True)
class WrapPlan:
    out: Path
    runtime: str
    flavor: str  # "bootstrap" (bash + curl) or "node" (index.mjs)
    program_rel: str  # the program's path inside the output tree
    args: tuple[str, ...]
    stderr_mode: str
    files: tuple[WrapFile, ...] = field(default=())

    @property
    def entry(self) -> str:
        return "bootstrap" if self.flavor == "bootstrap" else "index.mjs"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "layerpack.wrap/1",
            "out": str(self.out),
            "runtime": self.runtime,
            "flavor": self.flavor,
            "entry": self.entry,
            "handler": "index.handler" if self.flavor == "node" else None,
            "program": self.program_rel,
            "args": list(self.args),
            "stderr": self.stderr_mode,
            "files": [{"path": f.rel, "mode": oct(f.mode), "bytes": f.size,
                       "from": str(f.source) if f.source else None} for f in self.files],
        }


def _flavor(runtime: str) -> str:
    if runtime.startswith("provided"):
        return "bootstrap"
    if runtime.startswith("nodejs"):
        return "node"
    raise UsageError(f"layerpack wrap writes a bootstrap for provided.* runtimes or a handler for nodejs*; not {runtime}",
                     hint="pass --runtime provided.al2023 or --runtime nodejs22.x")


def plan(program: str | Path, out: str | Path, *, args: tuple[str, ...] = (), runtime: str | None = None,
         arch: str = "x86_64", stderr_mode: str = "fail", force: bool = False, ready_line: str = "") -> WrapPlan:
    """What `wrap` would write. Reads the program and the output directory; writes nothing.

    The program is copied to `bin/NAME` unless it already lies inside OUT (say, a tree `vendor`
    wrote), in which case the adapter points at it where it is."""
    if stderr_mode not in STDERR_MODES:
        raise UsageError(f"--stderr must be one of {', '.join(STDERR_MODES)}")
    runtime = runtime or runtimes.default_runtime()
    rt = runtimes.load(runtime, arch)
    flavor = _flavor(runtime)
    if flavor == "bootstrap":
        lacking = [c for c in NEEDED_COMMANDS if rt.find_command(c) is None]
        if lacking:
            raise UsageError(f"{runtime} has no {' or '.join(lacking)} on its PATH: the generated bootstrap needs bash and curl",
                             hint="target provided.al2023 (it has both), or use --runtime nodejs22.x")
    src = Path(program)
    if not src.exists():
        raise InputError(f"{program}: no such file")
    if not src.is_file():
        raise InputError(f"{program}: not a regular file", hint="give the program itself, not a directory")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    entry = "bootstrap" if flavor == "bootstrap" else "index.mjs"
    if (out / entry).exists() and not force:
        raise UsageError(f"{out / entry} already exists", hint="pass --force to replace it")

    files: list[WrapFile] = []
    inside = _relative_inside(src, out)
    if inside is not None:
        program_rel = inside
        if program_rel == entry:
            raise UsageError(f"the program is {out / entry} itself; the adapter needs that name",
                             hint="move the program to bin/ first")
    else:
        program_rel = f"bin/{src.name}"
        target = out / program_rel
        if target.exists() and not force:
            raise UsageError(f"{target} already exists", hint="pass --force to replace it, or wrap the copy inside the tree")
        mode = src.stat().st_mode & 0o777
        files.append(WrapFile(program_rel, (mode | 0o755) if mode & 0o111 or _looks_runnable(src) else mode | 0o644,
                              source=src))
    if ready_line and flavor != "bootstrap":
        raise UsageError("--ready-line is for the provided.* bootstrap", hint="the nodejs handler has no init wait")
    text = (render_bootstrap(program_rel, args, stderr_mode, ready_line) if flavor == "bootstrap"
            else render_node_handler(program_rel, args, stderr_mode))
    files.append(WrapFile(entry, 0o755 if flavor == "bootstrap" else 0o644, text=text))
    return WrapPlan(out=out, runtime=runtime, flavor=flavor, program_rel=program_rel, args=tuple(args),
                    stderr_mode=stderr_mode, files=tuple(files))


def _relative_inside(path: Path, root: Path) -> str | None:
    if not root.is_dir():
        return None
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return rel.as_posix()


def _looks_runnable(path: Path) -> bool:
    """An ELF program or a #! script: Lambda's user must be able to execute it."""
    with path.open("rb") as fh:
        head = fh.read(4)
    return head == b"\x7fELF" or head[:2] == b"#!"


def apply(plan: WrapPlan) -> list[Path]:
    """Write the planned files (the program copied with its bytes untouched, modes as planned)."""
    written = []
    plan.out.mkdir(parents=True, exist_ok=True)
    for f in plan.files:
        dest = plan.out / f.rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.layerpack-tmp")
        if f.source is not None:
            shutil.copyfile(f.source, tmp)
        else:
            tmp.write_text(f.text or "", encoding="utf-8")
        os.chmod(tmp, f.mode)
        os.replace(tmp, dest)
        written.append(dest)
    return written


@functools.lru_cache(maxsize=None)
def _template(name: str) -> str:
    """A template shipped as package data in packer/templates/ (readable, and checked by bash -n,
    shellcheck and node --check in tests/test_wrap.py)."""
    return resources.files("packer").joinpath("templates", name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    """Replace every placeholder in one pass, so a value that contains a placeholder's spelling
    (a program named `@ARGS@`) is never substituted again."""
    pattern = re.compile("|".join(re.escape(k) for k in sorted(values, key=len, reverse=True)))
    return pattern.sub(lambda m: values[m.group(0)], text)


_ERROR_TYPES = {"@ERR_NOT_FOUND@": ERR_NOT_FOUND, "@ERR_BAD_EVENT@": ERR_BAD_EVENT, "@ERR_EXITED@": ERR_EXITED,
                "@ERR_NOT_JSON@": ERR_NOT_JSON, "@ERR_STDERR@": ERR_STDERR}


def render_bootstrap(program_rel: str, args: tuple[str, ...] = (), stderr_mode: str = "fail", ready_line: str = "") -> str:
    """The bash bootstrap for provided.* runtimes (text only; pure)."""
    return _fill(_template("wrap-bootstrap.sh"), {
        "@PROGRAM@": shlex.quote(program_rel), "@ARGS@": " ".join(shlex.quote(a) for a in args),
        "@READY_LINE@": shlex.quote(ready_line),
        "@STDERR_FAILS@": "1" if stderr_mode == "fail" else "0", **_ERROR_TYPES})


def render_node_handler(program_rel: str, args: tuple[str, ...] = (), stderr_mode: str = "fail") -> str:
    """The Node.js handler for nodejs* runtimes (text only; pure). The program path is resolved
    relative to the handler file, so it works from /var/task (function) as it does locally."""
    rel = program_rel if program_rel.startswith("/") else f"./{program_rel}"
    return _fill(_template("wrap-handler.mjs"), {
        '"@PROGRAM@"': json.dumps(rel), '["@ARGS@"]': json.dumps(list(args)),
        '"@STDERR_FAILS@"': "true" if stderr_mode == "fail" else "false", **_ERROR_TYPES})
