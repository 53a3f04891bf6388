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

import json
import os
import shutil
from dataclasses import dataclass, field
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


def plan(program: str | Path, out: str | Path, *, args: tuple[str, ...] = (), runtime: str = "provided.al2023",
         arch: str = "x86_64", stderr_mode: str = "fail", force: bool = False) -> WrapPlan:
    """What `wrap` would write. Reads the program and the output directory; writes nothing.

    The program is copied to `bin/NAME` unless it already lies inside OUT (say, a tree `vendor`
    wrote), in which case the adapter points at it where it is."""
    if stderr_mode not in STDERR_MODES:
        raise UsageError(f"--stderr must be one of {', '.join(STDERR_MODES)}")
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
    text = (render_bootstrap(program_rel, args, stderr_mode) if flavor == "bootstrap"
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


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


BOOTSTRAP = r"""#!/bin/bash
# Lambda custom runtime written by `layerpack wrap` (stdio adapter). Edit freely, or regenerate with
#   layerpack wrap PROGRAM --out DIR --force
#
# The program below is started once per execution environment and kept running. For each event it
# gets ONE line on stdin: the event's JSON, with its line breaks turned into spaces (valid JSON
# never has a raw line break inside a string, so this changes only whitespace). It must answer with
# ONE line on stdout (and flush it): a JSON value, which becomes the response. Anything else
# becomes an invocation error:
#   Stdio.NotJson         the line is not a JSON value
#   Stdio.ProgramExited   the program exited or closed stdout (it is started again for the next event)
#   Stdio.Stderr          it wrote to stderr while handling the event (only with --stderr fail)
#   Stdio.BadEvent        the event holds a NUL byte (never valid JSON)
# Its stderr always goes on to the function's logs. Commands used: bash and curl; nothing but curl
# is started per event.
set -u
trap '' PIPE                     # a dead program must not kill this loop through SIGPIPE
LC_ALL=C                         # (not exported) bash's own string operations work on bytes

program=@PROGRAM@
args=(@ARGS@)
stderr_fails=@STDERR_FAILS@
here=${BASH_SOURCE[0]%/*}        # /opt for a layer, /var/task for a function
case $program in /*) ;; *) program=$here/$program ;; esac
api=http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime
tmp=${TMPDIR:-/tmp}/layerpack-wrap.$$
log_fd=2                         # the function's log stream
number_re='^-?[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?$'
err_total=0

json_escape() {                  # -> REPLY: $1 as the inside of a JSON string (no subshell)
  local s=${1:0:8192}
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  s=${s//[$'\001'-$'\037']/?}
  REPLY=$s
}

post() {                         # post PATH [ERROR-TYPE] < body
  if [[ -n ${2-} ]]; then
    curl -sS -o /dev/null -X POST -H "Lambda-Runtime-Function-Error-Type: $2" --data-binary @- "$api/$1"
  else
    curl -sS -o /dev/null -X POST --data-binary @- "$api/$1"
  fi
}

fail() {                         # fail TYPE MESSAGE: the invocation's error
  json_escape "$2"
  post "invocation/$rid/error" "$1" <<<"{\"errorType\":\"$1\",\"errorMessage\":\"$REPLY\"}"
}

is_json() {                      # is $1 a JSON value? (its shape: first and last character)
  local v=$1
  while [[ ${v:0:1} == [[:space:]] ]]; do v=${v:1}; done
  while [[ ${v: -1} == [[:space:]] ]]; do v=${v:0:${#v}-1}; done  # (not ${v%?}: quadratic in bash)
  case $v in
    \{*\} | \[*\] | \"*\" | true | false | null) return 0 ;;
  esac
  [[ $v =~ $number_re ]]
}

drain_stderr() {                 # -> errtext: what the program wrote to stderr since last time
  local l
  errtext=
  while IFS= read -r -u "$errfd" l || [[ -n $l ]]; do errtext+=$l$'\n'; done
  if [[ -n $errtext ]]; then
    printf '%s' "$errtext" >&"$log_fd"
    err_total=$((err_total + ${#errtext}))
    if [[ $err_total -gt 1048576 ]]; then  # keep /tmp small: start the capture file afresh
      : >"$tmp.stderr"
      exec {errfd}<&-
      exec {errfd}<"$tmp.stderr"
      err_total=0
    fi
  fi
}

start_program() {
  : >"$tmp.stderr"
  exec {errfd}<"$tmp.stderr"
  err_total=0
  coproc PROGRAM_PROC { exec "$program" "${args[@]}" 2>>"$tmp.stderr"; }
  pid=$PROGRAM_PROC_PID
  # private copies: bash closes the coproc's own descriptors as soon as it reaps the process,
  # which could lose a line it wrote just before exiting
  exec {to}>&"${PROGRAM_PROC[1]}" {from}<&"${PROGRAM_PROC[0]}"
}

reap_program() {                 # -> how: why it ended
  local status
  exec {to}>&- {from}<&- {errfd}<&-
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  status=$?
  how="exit status $status"
  if [[ $status -gt 128 ]]; then
    status=$((status - 128))
    how="killed by signal $status"
  fi
}

if [[ ! -f $program || ! -x $program ]]; then
  json_escape "$program is missing or not executable"
  post init/error @ERR_NOT_FOUND@ <<<"{\"errorType\":\"@ERR_NOT_FOUND@\",\"errorMessage\":\"$REPLY\"}"
  exit 1
fi
start_program

while :; do
  curl -sS -o "$tmp.event" -D "$tmp.headers" "$api/invocation/next" || exit 1
  rid=
  while IFS= read -r h || [[ -n $h ]]; do
    h=${h%$'\r'}
    case ${h,,} in lambda-runtime-aws-request-id:*) rid=${h#*:}; rid=${rid//[[:space:]]/} ;; esac
  done <"$tmp.headers"

  event=
  if IFS= read -r -d '' event <"$tmp.event"; then
    fail @ERR_BAD_EVENT@ "the event holds a NUL byte, which JSON cannot"
    continue
  fi
  event=${event//[$'\r\n']/ }

  if ! kill -0 "$pid" 2>/dev/null; then
    drain_stderr
    reap_program
    start_program
  fi
  drain_stderr                   # what it wrote between events belongs to no event
  line=
  if ! printf '%s\n' "${event:-null}" >&"$to" || ! IFS= read -r -u "$from" line; then
    drain_stderr
    reap_program
    fail @ERR_EXITED@ "the program ended while handling the event ($how)${errtext:+: $errtext}"
    start_program
    continue
  fi
  if [[ ${line: -1} == $'\r' ]]; then line=${line:0:${#line}-1}; fi
  drain_stderr
  if ! is_json "$line"; then
    fail @ERR_NOT_JSON@ "the program's answer is not a JSON value: ${line:0:2048}${errtext:+ (stderr: $errtext)}"
  elif [[ $stderr_fails = 1 && -n $errtext ]]; then
    fail @ERR_STDERR@ "$errtext"
  else
    post "invocation/$rid/response" <<<"$line"
  fi
done
"""


def render_bootstrap(program_rel: str, args: tuple[str, ...] = (), stderr_mode: str = "fail") -> str:
    """The bash bootstrap for provided.* runtimes (text only; pure)."""
    return (BOOTSTRAP.replace("@PROGRAM@", _sh_quote(program_rel))
            .replace("@ARGS@", " ".join(_sh_quote(a) for a in args))
            .replace("@STDERR_FAILS@", "1" if stderr_mode == "fail" else "0")
            .replace("@ERR_NOT_FOUND@", ERR_NOT_FOUND).replace("@ERR_BAD_EVENT@", ERR_BAD_EVENT)
            .replace("@ERR_EXITED@", ERR_EXITED).replace("@ERR_NOT_JSON@", ERR_NOT_JSON)
            .replace("@ERR_STDERR@", ERR_STDERR))


NODE_HANDLER = r"""// Lambda handler (index.handler) for nodejs22.x written by `layerpack wrap` (stdio adapter).
// The program is spawned on the first event and kept for the life of the execution environment.
// Each event is written to its stdin as one line (JSON.stringify never writes a raw line break);
// it must answer with one line of JSON on stdout. A line that is not JSON, the program exiting,
// or (with --stderr fail) output on stderr while it handles the event throws an error of type
// Stdio.NotJson / Stdio.ProgramExited / Stdio.Stderr; an exited program is started again.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const PROGRAM = @PROGRAM@;
const ARGS = @ARGS@;
const STDERR_FAILS = @STDERR_FAILS@;

class StdioError extends Error {
  constructor(type, message) { super(message); this.name = type; }
}

const programPath = PROGRAM.startsWith('/') ? PROGRAM : fileURLToPath(new URL(PROGRAM, import.meta.url));
let current = null;

function start() {
  const proc = spawn(programPath, ARGS, { stdio: ['pipe', 'pipe', 'pipe'] });
  const state = { proc, lines: [], waiter: null, stderr: '', ended: null };
  const finish = (how) => {
    if (state.ended) return;
    state.ended = how;
    if (state.waiter) { const w = state.waiter; state.waiter = null; w.reject(how); }
  };
  createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (line) => {
    if (state.waiter) { const w = state.waiter; state.waiter = null; w.resolve(line); } else state.lines.push(line);
  });
  proc.stderr.on('data', (chunk) => { process.stderr.write(chunk); state.stderr += chunk; });
  proc.stdin.on('error', () => {});  // EPIPE after a crash: reported by 'close'
  proc.on('error', (err) => finish(`could not start ${programPath}: ${err.message}`));
  proc.on('close', (code, signal) => finish(signal ? `killed by signal ${signal}` : `exit status ${code}`));
  return state;
}

function nextLine(state) {
  if (state.lines.length) return Promise.resolve(state.lines.shift());
  if (state.ended) return Promise.reject(state.ended);
  return new Promise((resolve, reject) => { state.waiter = { resolve, reject }; });
}

export const handler = async (event) => {
  if (!current || current.ended) current = start();
  const state = current;
  state.stderr = '';
  let line;
  try {
    const answer = nextLine(state);
    state.proc.stdin.write(JSON.stringify(event === undefined ? null : event) + '\n');
    line = await answer;
  } catch (how) {
    current = null;
    throw new StdioError('@ERR_EXITED@', `the program ended while handling the event (${how})` +
      (state.stderr ? `: ${state.stderr}` : ''));
  }
  await new Promise((resolve) => setImmediate(resolve));  // let stderr written before the line arrive
  let value;
  try {
    value = JSON.parse(line);
  } catch {
    throw new StdioError('@ERR_NOT_JSON@', `the program's answer is not a JSON value: ${line.slice(0, 2048)}` +
      (state.stderr ? ` (stderr: ${state.stderr})` : ''));
  }
  if (STDERR_FAILS && state.stderr) throw new StdioError('@ERR_STDERR@', state.stderr);
  return value;
};
"""


def render_node_handler(program_rel: str, args: tuple[str, ...] = (), stderr_mode: str = "fail") -> str:
    """The Node.js handler for nodejs* runtimes (text only; pure). The program path is resolved
    relative to the handler file, so it works from /var/task (function) as it does locally."""
    rel = program_rel if program_rel.startswith("/") else f"./{program_rel}"
    return (NODE_HANDLER.replace("@PROGRAM@", json.dumps(rel)).replace("@ARGS@", json.dumps(list(args)))
            .replace("@STDERR_FAILS@", "true" if stderr_mode == "fail" else "false")
            .replace("@ERR_EXITED@", ERR_EXITED).replace("@ERR_NOT_JSON@", ERR_NOT_JSON)
            .replace("@ERR_STDERR@", ERR_STDERR))
