"""`layerpack check TREE|ZIP`: will it fit, and will Lambda find what it needs? Reads only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from packer import budget
from packer.checks import KINDS
from packer.cli import options
from packer.cli.base import EXIT_FINDINGS, main
from packer.findings import Finding
from packer.package import CheckReport, check
from packer.quotas import largest_inline_zip
from packer.render import console, emit_json, human_bytes, print_findings
from packer.zipwrite import BACKENDS


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then by code and path."""
    return sorted(findings, key=lambda f: (-int(f.severity), f.code, f.path))


@contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[Callable[[int], None] | None]:
    """A byte counter on stderr for long walks; nothing when stderr is not a terminal."""
    err = console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err,
                  transient=True) as prog:
        task = prog.add_task(label, total=None)
        yield lambda n: prog.advance(task, n)


def render_check(report: CheckReport) -> None:
    out = console()
    t = report.target
    pct_used = 100.0 * t.unzipped / budget.UNZIPPED_LIMIT
    out.print(f"{t.path} ({t.kind}, {t.entries:,} entries)", markup=False)
    out.print(f"  unzipped   {t.unzipped:>13,} bytes ({human_bytes(t.unzipped)}), {pct_used:.1f}% of Lambda's "
              f"{budget.UNZIPPED_LIMIT:,}", markup=False)
    if t.zipped is not None:
        via = "direct upload" if report.upload == "direct" else f"publish goes through S3 (over {largest_inline_zip():,})"
        if t.zipped_estimate:
            out.print(f"  zipped    ~{t.zipped:>13,} bytes ({human_bytes(t.zipped)}), {via} — an ESTIMATE from a "
                      "sample (--exact-zip-size deflates everything)", markup=False)
            inline_max = largest_inline_zip()  # the route check, build and publish share (packer.quotas)
            if abs(t.zipped - inline_max) < inline_max // 10:
                out.print(f"  the estimate is within 10% of the {inline_max:,}-byte inline-upload limit: the route is "
                          "not certain; run with --exact-zip-size", markup=False)
        else:
            out.print(f"  zipped     {t.zipped:>13,} bytes ({human_bytes(t.zipped)}), {via}", markup=False)
    for a in report.others:
        out.print(f"  + {a.role:8} {a.unzipped:>13,} bytes  {a.path}", markup=False)
    b = report.budget
    verdict = "OVER" if b.over else "fits"
    out.print(f"  combined   {b.total:>13,} bytes, {b.layers} layer(s){' + function' if any(a.role == 'function' for a in report.others) else ''}: "
              f"{verdict}, headroom {b.headroom:,} bytes ({b.headroom_pct}%)", markup=False)
    if report.top:
        from rich.table import Table

        table = Table(title=f"largest directories of {t.path}", title_justify="left")
        table.add_column("directory")
        table.add_column("bytes", justify="right")
        table.add_column("%", justify="right")
        table.add_column("entries", justify="right")
        for c in report.top:
            pct = 100.0 * c.bytes / t.unzipped if t.unzipped else 0.0
            table.add_row(c.path, f"{c.bytes:,}", f"{pct:.1f}", f"{c.entries:,}")
        out.print(table)
    print_findings(sorted_findings(report.findings))


@main.command("check")
@click.argument("tree", type=click.Path(path_type=Path))
@options.with_layers
@click.option("--function", type=click.Path(path_type=Path), metavar="ZIP|DIR",
              help="The function's own package, which shares the budget.")
@click.option("--kind", type=click.Choice(KINDS), default="auto", show_default=True,
              help="What the layer is, for the layout checks.")
@options.runtime()
@click.option("--level", type=click.IntRange(0, 9), default=6, show_default=True,
              help="Deflate level used to measure a directory's zipped size.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True, help="Deflate implementation.")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many directories to list.")
@click.option("--depth", type=click.IntRange(1, 50), default=2, show_default=True,
              help="Group sizes by this many leading path components.")
@click.option("--zip-size/--no-zip-size", default=True, show_default=True,
              help="For a directory, estimate the zipped size by deflating a ~16 MiB sample (labelled an estimate).")
@click.option("--exact-zip-size", is_flag=True,
              help="For a directory, deflate everything (to nowhere) to know the exact zipped size.")
@options.json_output
@click.pass_context
def check_cmd(ctx: click.Context, tree: Path, with_layers: tuple[str, ...], function: Path | None, kind: str,
              runtime: str, level: int, backend: str, top: int, depth: int, zip_size: bool, exact_zip_size: bool,
              as_json: bool) -> None:
    """Measure TREE (a directory or a zip) against Lambda's size budget and check its layout.

    Counts the unzipped size as Lambda does (file sizes, links as links), shared with --with-layer
    layers and the --function package; says whether publish can upload inline or needs S3; lists
    the largest directories. Exit 1 when over budget or a finding is an error, 2 on bad input.
    """
    with progress_bar(not as_json and exact_zip_size and Path(tree).is_dir(), "measuring") as progress:
        report = check(tree, with_layers=with_layers, function=function, kind=kind, runtime=runtime, level=level,
                       backend=backend, depth=depth, top=top, zipped=zip_size or exact_zip_size,
                       exact_zip=exact_zip_size, progress=progress)
    if as_json:
        emit_json("check", report.to_json())
    else:
        render_check(report)
    if report.exit_code:
        ctx.exit(EXIT_FINDINGS)
