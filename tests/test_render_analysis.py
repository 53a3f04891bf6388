"""The analyze text report is written as plain strings (rich's layout engine took 75 % of the time
on big trees); its content must stay what rich's Tree rendered. The oracle here is rich itself:
the same tree laid out by `rich.tree.Tree` on a console too wide to wrap."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree as RichTree

from packer.analyze import analyze
from packer.render import _STATUS_STYLE, analysis_lines
from tests.trees import make_tree

X86 = Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "x86_64"


def _rich_oracle(report) -> str:
    """What `layerpack analyze` printed with rich's Tree before the plain-string renderer."""
    out = Console(file=io.StringIO(), width=100_000, no_color=True, highlight=False)
    for line in analysis_lines(report, verbose=True):
        if line and line[0][0].startswith(("├", "└", "│", " ")) and line[1] != ("fix:", "dim"):
            continue  # tree lines come from rich below
        text = "".join(t for t, _ in line)
        if len(line) == 3 and line[2][1] == "dim" and line[2][0].startswith("("):  # a process root
            tree = RichTree(escape(text))
            proc = next(p for p in report.processes if p.root.path.endswith("/" + line[0][0]))
            _rich_children(tree, proc, proc.root.path, set())
            out.print(tree)
        else:
            out.print(escape(text))
    return out.file.getvalue()


def _rich_children(node, proc, path: str, seen: set) -> None:
    """The markup the rich renderer used, verbatim, so labels are checked as well as the layout."""
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
            child.add(f"[dim]searched: {escape(' → '.join(s.dir for s in e.searched))}[/]")
        if e.target is not None and e.status != "loaded" and e.target.where != "runtime":
            _rich_children(child, proc, e.target.path, seen)


def _plain(report) -> str:
    return "".join("".join(t for t, _ in line) + "\n" for line in analysis_lines(report, verbose=True))


def test_plain_tree_text_equals_richs_tree_layout_on_fixture_trees(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {
        "bootstrap": X86 / "needs-z",
        "bin/atomic": X86 / "needs-atomic",  # vendorable: searched list and the host copy's own needs
        "bin/missing": X86 / "needs-missing",
        "lib/libz.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1"),  # shadowed
        "bin/glibc236": X86 / "needs-glibc236",
    })
    report = analyze(tree)
    statuses = {e.status for p in report.processes for e in p.edges}
    assert {"provided", "shadowed", "vendorable", "missing", "loaded"} <= statuses
    assert _plain(report) == _rich_oracle(report)


def test_plain_tree_text_equals_richs_on_a_system_library_directory() -> None:
    report = analyze("/usr/lib/x86_64-linux-gnu/gconv" if Path("/usr/lib/x86_64-linux-gnu/gconv").is_dir()
                     else "/usr/lib/x86_64-linux-gnu")
    assert len(report.processes) > 8
    assert _plain(report) == _rich_oracle(report)
