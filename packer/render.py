"""Text rendering helpers shared by commands (rich, honouring NO_COLOR)."""

from __future__ import annotations

import os
import sys

from rich.console import Console


def console(stderr: bool = False) -> Console:
    no_color = "NO_COLOR" in os.environ
    return Console(stderr=stderr, no_color=no_color, highlight=False, soft_wrap=False,
                   width=None if (sys.stderr if stderr else sys.stdout).isatty() else 120)


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
    "loaded": ("dim", "already loaded"),
}
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def render_analysis(report, out: Console, *, verbose: bool = False) -> None:
    """libtree-style trees that say how each library is found, then the findings and a summary."""
    from rich.markup import escape
    from rich.tree import Tree as RichTree

    rt = report.runtime
    out.print(f"[bold]{escape(report.input)}[/] on [bold]{rt.name} {rt.arch}[/] ({rt.os}, library dump {rt.dump_date}), "
              f"mounted at {report.mount}")
    problem_roots = {f.path for f in report.findings if f.severity >= 2}
    for proc in report.processes:
        rel = proc.root.path[len(report.mount) + 1:] if proc.root.path.startswith(report.mount + "/") else proc.root.path
        bad = any(e.status in ("missing", "vendorable", "shadowed") for e in proc.edges) or rel in problem_roots
        if not (verbose or bad or len(report.processes) <= 8):
            continue
        info = proc.root.info
        desc = f"{info.machine_name}, {'program' if info.is_program else 'library'}" if info else ""
        tree = RichTree(f"[bold]{escape(rel)}[/] [dim]({desc})[/]")
        _add_children(tree, proc, proc.root.path, set(), escape)
        out.print(tree)
    if report.findings:
        out.print()
        for f in report.findings:
            style = _SEVERITY_STYLE[str(f.severity)]
            out.print(f"[{style}]{f.code} {f.severity}[/] {escape(f.message)}")
            out.print(f"    [dim]fix:[/] {escape(f.hint)}")
    counts = report.status_counts()
    libs = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no shared libraries"
    verdict = "[bold red]will fail on Lambda[/]" if report.errors else "[bold green]looks good for Lambda[/]"
    out.print(f"\n{report.files_total} files, {len(report.elf_files)} ELF; libraries: {libs}; "
              f"{report.errors} errors, {report.warnings} warnings — {verdict}")


def _add_children(node, proc, path: str, seen: set, escape) -> None:
    if path in seen:
        return
    seen.add(path)
    for e in proc.children(path):
        style, label = _STATUS_STYLE.get(e.status, ("", e.status))
        if e.status in ("provided", "bundled", "shadowed"):
            text = f"{escape(e.name)} [{style}]→ {escape(e.path or '')}[/] [dim]\\[{escape(e.via or '')}] {label}[/]"
            if e.status == "shadowed":
                text += f" [yellow](the layer's {escape(e.shadowed or '')} loses)[/]"
        elif e.status == "loaded":
            text = f"[dim]{escape(e.name)} (already loaded)[/]"
        else:
            text = f"[{style}]{escape(e.name)} {label}[/]"
            if e.host_path:
                text += f" [dim]this machine: {escape(e.host_path)}[/]"
        child = node.add(text)
        if e.status in ("missing", "vendorable"):
            searched = " → ".join(f"{s.dir}" for s in e.searched)
            child.add(f"[dim]searched: {escape(searched)}[/]")
        if e.target is not None and e.status not in ("loaded",) and e.target.where != "runtime":
            _add_children(child, proc, e.target.path, seen, escape)
