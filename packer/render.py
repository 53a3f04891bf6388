"""The one output module: how every command prints findings, JSON documents and text.

- A finding is one line, in every command: `CODE severity path: message`, followed by
  `    fix: hint` (four spaces), so one grep pattern reads every command's output; consecutive
  findings of one code with the same fix share one fix line, after the last of them.
- Nothing is hard-wrapped when stdout is not a terminal (one finding stays one line in CI logs);
  rich is used only to colour a terminal and to draw tables.
- Every `--json` document is one object whose first key is `"schema": "layerpack.<name>/N"`
  (`SCHEMAS`; each documented in docs/json.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    from rich.console import Console  # rich costs ~40 ms to import: only when a command prints with it

    no_color = "NO_COLOR" in os.environ
    # a pipe gets no wrapping at all: tables take the width their cells need, lines stay whole
    return Console(stderr=stderr, no_color=no_color, highlight=False, soft_wrap=False,
                   width=None if (sys.stderr if stderr else sys.stdout).isatty() else PIPE_WIDTH)


PIPE_WIDTH = 10_000

# --json documents: name -> version. A field removed or changed in meaning bumps the version.
SCHEMAS = {"analyze": 1, "vendor": 1, "slim": 1, "build": 1, "check": 1, "publish": 1, "layers-list": 1,
           "layers-versions": 1, "layers-delete": 1, "invoke": 1, "runtimes": 1, "codes": 1, "wrap": 1,
           "image-list": 1}


def schema_id(name: str) -> str:
    return f"layerpack.{name}/{SCHEMAS[name]}"


def json_text(name: str, doc: dict[str, Any], *, one_line: bool = False) -> str:
    """`doc` with its schema id first: indented for a person at a terminal, compact for a pipe or
    always one line (`one_line`, JSON lines)."""
    out = {"schema": schema_id(name), **{k: v for k, v in doc.items() if k != "schema"}}
    if one_line or not sys.stdout.isatty():
        return compact_json(out)
    return json.dumps(out, indent=2)


def compact_json(doc: Any) -> str:
    """`doc` as one line of JSON: the text of `json.dumps(doc, separators=(",", ":"))` — ASCII with
    `\\u` escapes, whatever the locale's encoding of stdout — but for how a float in exponent form
    is spelled (`1e-05` or `1e-5`, the same number), only faster. orjson where it is
    installed (a dependency wherever PyPI has a wheel for it): analyze's report of
    /usr/lib/x86_64-linux-gnu, 3.3 MB of dependency graph, is encoded in 13 ms instead of the
    standard library's 100 ms (its C encoder makes a call per dict). orjson writes non-ASCII as
    UTF-8 and refuses lone surrogates (a file name that is not UTF-8, read with surrogateescape)
    and integers past 64 bits: such a document, rare in a layer, is the standard library's."""
    if _orjson is not None:
        try:
            text = _orjson.dumps(doc).decode("utf-8")
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
        else:
            if text.isascii() and "\x7f" not in text:  # json escapes DEL too; orjson writes it raw
                return text
    return json.dumps(doc, separators=(",", ":"))


try:
    import orjson as _orjson
except ImportError:  # a platform without an orjson wheel: the standard library's encoder
    _orjson = None


def emit_json(name: str, doc: dict[str, Any], *, one_line: bool = False) -> None:
    sys.stdout.write(json_text(name, doc, one_line=one_line) + "\n")
    sys.stdout.flush()


def finding_lines(f) -> tuple[Line, Line]:
    """The one text form of a finding (see the module docstring); the path is printed once even
    when the message starts with it, as many messages do to read well in JSON."""
    path = f.path or "."
    message = f.message
    if message.startswith(path) and message[len(path):len(path) + 1] in (":", " "):
        message = message[len(path):].lstrip(":").lstrip()
    return ([(f"{f.code} {f.severity}", _SEVERITY_STYLE[str(f.severity)]), (" ", ""), (f"{path}: {message}", "")],
            [("    ", ""), ("fix:", "dim"), (" ", ""), (f.hint, "")])


def grouped_finding_lines(findings: Iterable) -> Iterator[Line]:
    """Findings in the one text form; a run of findings of one code with one fix prints that fix
    once, after the run (pip and npm trees repeat a code dozens of times with the same fix)."""
    run: list = []
    for f in findings:
        if run and (f.code, f.hint) != (run[-1].code, run[-1].hint):
            yield from _run_lines(run)
            run = []
        run.append(f)
    yield from _run_lines(run)


def _run_lines(run: list) -> Iterator[Line]:
    for f in run:
        yield finding_lines(f)[0]
    if run:
        yield finding_lines(run[-1])[1]


def print_findings(findings: Iterable, *, err: bool = False) -> None:
    """Findings in the one text form, on stdout (or stderr), coloured only on a terminal."""
    write_lines(grouped_finding_lines(findings), err=err)


def write_lines(lines: Iterable[Line], *, err: bool = False, out: Console | None = None) -> None:
    """Styled lines as plain text, or through rich when they go to a colour terminal."""
    stream = sys.stderr if err else sys.stdout
    if out is None and stream.isatty() and "NO_COLOR" not in os.environ:
        out = console(stderr=err)
    if out is None:  # a few hundred lines per write (17,000 lines for /usr/lib/x86_64-linux-gnu)
        write: Callable[[str], Any] = stream.write
        chunk: list[str] = []
        for line in lines:
            chunk.extend([text for text, _style in line])
            chunk.append("\n")
            if len(chunk) > 4096:
                write("".join(chunk))
                chunk.clear()
        write("".join(chunk))
        return
    from rich.text import Text

    for line in lines:
        out.print(Text.assemble(*line), soft_wrap=True)


def human_bytes(n: int) -> str:
    step = 1024.0
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < step or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= step
    return f"{n} B"


_STATUS_STYLE = {
    "provided": ("green", "provided by the runtime"),
    "bundled": ("cyan", "in the layer"),
    "shadowed": ("yellow", "SHADOWED"),
    "vendorable": ("red", "MISSING on Lambda (vendorable)"),
    "missing": ("red", "MISSING"),
    "unloadable": ("red", "NOT LOADABLE: the loader stops here"),
    "loaded": ("dim", "already loaded"),
}
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


Line = list[tuple[str, str]]  # (text, rich style) segments of one output line


def render_analysis(report, out: Console | None = None, *, verbose: bool = False) -> None:
    """libtree-style trees that say how each library is found, then the findings and a summary.

    Plain strings are written straight to stdout; rich is only used to colour a terminal.
    Measured on /usr/lib/x86_64-linux-gnu (904 ELF files, 1.5 MB of text): rich's Tree layout
    took 6.6 s, these strings 0.05 s for the same characters."""
    write_lines(analysis_lines(report, verbose=verbose), out=out)


def analysis_lines(report, *, verbose: bool = False) -> Iterator[Line]:
    """The analyze report as styled lines, in output order (the same text on a terminal and a pipe)."""
    rt = report.runtime
    yield [(report.input, "bold"), (" on ", ""), (f"{rt.name} {rt.arch}", "bold"),
           (f" ({rt.os}, library dump {rt.dump_date}), mounted at {report.mount}", "")]
    problem_roots = {f.path for f in report.findings if f.severity >= 2}
    prefix = report.mount + "/"
    few = len(report.processes) <= 8
    for proc in report.processes:
        rel = proc.root.path[len(prefix):] if proc.root.path.startswith(prefix) else proc.root.path
        bad = rel in problem_roots or any(e.status in _PROBLEM for e in proc.edges)
        if not (verbose or bad or few):
            continue
        info = proc.root.info
        desc = f"{info.machine_name}, {'program' if info.is_program else 'library'}" if info else ""
        yield [(rel, "bold"), (" ", ""), (f"({desc})", "dim")]
        children: dict[str, list] = {}
        for e in proc.edges:
            children.setdefault(e.requester, []).append(e)
        yield from _tree_lines(children, proc.root.path, "", set())
    if report.findings:
        yield []
        yield from grouped_finding_lines(report.findings)
    counts = report.status_counts()
    libs = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no shared libraries"
    unverified = getattr(report, "unverified", 0)
    verdict = (("will fail on Lambda", "bold red") if report.errors else
               (f"no errors, but {unverified} not verified (above)", "bold yellow") if unverified else
               ("looks good for Lambda", "bold green"))
    yield []
    yield [(f"{report.files_total} files, {len(report.elf_files)} ELF; libraries: {libs}; "
            f"{report.errors} errors, {report.warnings} warnings — ", ""), verdict]


_PROBLEM = frozenset(("missing", "vendorable", "shadowed"))
_GUIDES = ("    ", "│   ", "├── ", "└── ")  # rich's tree guides, so the text reads as before


def _edge_label(e) -> Line:
    style, label = _STATUS_STYLE.get(e.status, ("", e.status))
    if e.status in ("provided", "bundled", "shadowed"):
        line = [(e.name, ""), (" ", ""), (f"→ {e.path or ''}", style), (" ", ""), (f"[{e.via or ''}] {label}", "dim")]
        if e.status == "shadowed":
            line += [(" ", ""), (f"(the layer's {e.shadowed or ''} loses)", "yellow")]
        return line
    if e.status == "loaded":
        return [(f"{e.name} (already loaded)", "dim")]
    line = [(f"{e.name} {label}", style)]
    if e.host_path:
        line += [(" ", ""), (f"this machine: {e.host_path}", "dim")]
    return line


def _tree_lines(children: dict[str, list], path: str, indent: str, seen: set) -> Iterator[Line]:
    """Depth-first, each object expanded once per process (as before: a library loaded by two
    objects shows its dependencies under the first)."""
    if path in seen:
        return
    seen.add(path)
    edges = children.get(path, ())
    for n, e in enumerate(edges):
        last = n == len(edges) - 1
        yield [(indent + _GUIDES[3 if last else 2], "")] + _edge_label(e)
        inner = indent + _GUIDES[0 if last else 1]
        grand = e.status in ("missing", "vendorable")
        expand = e.target is not None and e.status != "loaded" and e.target.where != "runtime"
        if grand:
            has_more = expand and e.target.path not in seen and bool(children.get(e.target.path))
            guide = _GUIDES[2] if has_more else _GUIDES[3]
            yield [(inner + guide, ""), ("searched: " + " → ".join(s.dir for s in e.searched), "dim")]
        if expand:
            yield from _tree_lines(children, e.target.path, inner, seen)
