"""`layerpack vendor`: copy what Lambda lacks into lib/ and patch so Lambda's search order finds it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from packer.cli import options
from packer.cli.base import EXIT_CLEAN, EXIT_FINDINGS, main
from packer.errors import UsageError
from packer.render import console, emit_json, human_bytes, print_findings


@main.command("vendor")
@click.argument("path", type=click.Path(exists=False))
@options.out(file_okay=False, help="Write the vendored tree here (must be empty).")
@options.in_place
@options.runtime()
@options.arch()
@click.option("--as", "as_", type=click.Choice(["layer", "function"]), default="layer", show_default=True,
              help="Where the tree lands: /opt (layer) or /var/task (function).")
@click.option("--sysroot", type=click.Path(file_okay=False), default=None,
              help="Take libraries from this root (e.g. an aarch64 or older-distro root) instead of this machine.")
@click.option("--bundle-libc", is_flag=True,
              help="Also bundle glibc and its loader in a directory of their own, and make every program use them (PT_INTERP + RPATH).")
@click.option("--strip", is_flag=True, help="strip --strip-unneeded the vendored libraries (before patching).")
@click.option("--patcher", type=click.Choice(["patchelf", "lief"]), default="patchelf", show_default=True,
              help="What rewrites RPATH/NEEDED/SONAME: the patchelf program, or lief (optional extra 'lief').")
@options.dry_run
@options.json_output
def vendor_cmd(path: str, out: str | None, in_place: bool, runtime: str, arch: str | None, as_: str,
               sysroot: str | None, bundle_libc: bool, strip: bool, patcher: str, dry_run: bool, as_json: bool) -> None:
    """Make PATH (binary, directory or .zip) self-sufficient on Lambda.

    \b
    Copies every library Lambda lacks (and runtime libraries too old for your program) into lib/,
    sets DT_RPATH relative to $ORIGIN, renames libraries a runtime copy would shadow, then analyses
    the result again. The input is never modified unless --in-place.
    Exit status: 0 the output is clean, 1 problems remain (listed), 2 bad usage.
    """
    from packer import vendor

    if not dry_run and out is None and not in_place:
        raise UsageError("say where to write the result: pass --out DIR, --in-place or --dry-run")
    with _stages(not as_json) as stage:
        plan = vendor.plan(path, runtime=runtime, arch=arch, as_=as_, sysroot=sysroot,
                           bundle_libc=bundle_libc, strip=strip, progress=stage("analysing the input"))
        if plan.ok and not dry_run:
            result = vendor.apply(plan, out, in_place=in_place, patcher=patcher,
                                  progress=stage("writing, then analysing the output"))
    if dry_run:
        if as_json:
            emit_json("vendor", plan.to_json() | {"dry_run": dry_run})
        else:
            _render_plan(plan)
        sys.exit(EXIT_CLEAN if plan.ok else EXIT_FINDINGS)
    if not plan.ok:
        if as_json:
            emit_json("vendor", plan.to_json() | {"dry_run": dry_run})
        else:
            _render_plan(plan)
            print(f"nothing written: {_why_not(plan)}", file=sys.stderr)
        sys.exit(EXIT_FINDINGS)
    if as_json:
        doc = plan.to_json() | {"out": str(result.out), "ok": result.ok,
                                "after": [f.to_json() for f in result.findings]}
        emit_json("vendor", doc)
    else:
        _render_plan(plan)
        print_findings(result.findings)
        verdict = ("clean: no missing or shadowed library, every version need met" if result.ok
                   else "NOT clean: problems remain (above); this output will not start as it is")
        console().print(f"\nwrote {result.out}; analysed again for {plan.runtime} {plan.arch}: {verdict}", markup=False)
    sys.exit(EXIT_CLEAN if result.ok else EXIT_FINDINGS)


def _why_not(plan) -> str:
    """The one line that says why vendor stopped before writing anything."""
    from packer.findings import Severity
    from packer.vendor.plan import OVER_BUDGET

    over = [f for f in plan.findings if f.code == OVER_BUDGET.code]
    if over:
        return over[0].message
    errors = [f for f in plan.findings if f.severity is Severity.ERROR]
    return f"the plan has {len(errors)} error(s) (listed above) that vendoring cannot fix"


@contextmanager
def _stages(enabled: bool) -> Iterator[Callable[[str], Callable[[int], None] | None]]:
    """A files-read counter and the time spent per stage on stderr, as `analyze` shows; nothing when
    stderr is not a terminal. The second stage's clock starts before the copy, so a long copy shows."""
    err = console(stderr=True)
    if not enabled or not err.is_terminal:
        yield lambda label: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        def stage(label: str) -> Callable[[int], None]:
            for t in bar.tasks:
                bar.update(t.id, visible=False)
            task = bar.add_task(label, total=None)
            return lambda n: bar.advance(task, n)

        yield stage


def _render_plan(plan) -> None:
    from rich.markup import escape

    con = console()
    con.print(f"[bold]vendor plan[/] for {escape(plan.input)} on {plan.runtime} {plan.arch} (lands at {plan.mount})")
    if not (plan.copies or plan.moves or plan.patches):
        con.print("  nothing to do: every library is provided or already reachable")
    for c in plan.copies:
        extra = f", links {', '.join(c.links)}" if c.links else ""
        tag = " [yellow](renamed: a runtime copy would win)[/]" if c.renamed else ""
        con.print(f"  copy   {escape(c.source)} -> {escape(c.dest)}{escape(extra)} ({human_bytes(c.size)}; {escape(c.reason)}){tag}")
    for m in plan.moves:
        con.print(f"  rename {escape(m.source)} -> {escape(m.dest)} (the runtime's {m.soname} would shadow it)")
    if plan.bundle:
        b = plan.bundle
        con.print(f"  bundle {escape(b.dir)}/: the loader, glibc and libgcc_s; every program starts with PT_INTERP={escape(b.interp)}")
    gconv = f"{plan.bundle.gconv}/" if plan.bundle else None
    hidden = [op for op in plan.patches if gconv and op.rel.startswith(gconv)]
    if hidden:
        con.print(f"  patch  {len(hidden)} gconv modules in {escape(gconv)}: RPATH=$ORIGIN/..:$ORIGIN (resolve in the bundle)")
    for op in [op for op in plan.patches if op not in hidden] + plan.in_place:
        parts = []
        if op.patch.rpath is not None:
            parts.append(f"RPATH={':'.join(op.patch.rpath)}")
        parts += [f"NEEDED {a}->{b}" for a, b in op.patch.replace_needed]
        if op.patch.soname:
            parts.append(f"SONAME={op.patch.soname}")
        if op.patch.interpreter:
            parts.append(f"PT_INTERP={op.patch.interpreter}")
        con.print(f"  patch  {escape(op.rel)}: {escape(', '.join(parts))} ({escape(op.reason)})")
    if plan.wrapper:
        con.print(f"  wrap   bootstrap -> {plan.wrapper.program}, started by {plan.wrapper.loader}")
    con.print(f"  adds {human_bytes(plan.bytes_added)} in {len(plan.copies)} files")
    print_findings(plan.findings)
