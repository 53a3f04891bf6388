"""`layerpack build TREE -o layer.zip`: the reproducible, Lambda-correct zip (see packer.package)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from packer import budget
from packer.checks import KINDS
from packer.cli import options
from packer.cli.base import EXIT_FINDINGS, main
from packer.cli.check import sorted_findings
from packer.findings import Severity
from packer.package import build
from packer.render import console, emit_json, human_bytes, print_findings
from packer.zipwrite import BACKENDS


@main.command("build")
@click.argument("tree", type=click.Path(path_type=Path))
@options.out(required=True, metavar="FILE.zip", help="The zip to write (atomically: a temporary file renamed into place).")
@click.option("--level", type=click.IntRange(0, 9), default=6, show_default=True,
              help="Deflate level: 0 stores, 9 is smallest.")
@click.option("--dereference", is_flag=True,
              help="Store the contents of links that are absolute or leave the tree instead of refusing them.")
@click.option("--dedupe", is_flag=True,
              help="Store later identical copies in one directory (pip's libx.so, .so.1, .so.1.2) as symlinks to the first.")
@click.option("--force", is_flag=True, help="Write the zip even when it is over Lambda's 250 MB budget.")
@click.option("--kind", type=click.Choice(KINDS), default="auto", show_default=True,
              help="What the layer is, for the layout checks.")
@options.runtime()
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="Deflate implementation (auto: zlib-ng when installed). Part of what makes bytes reproducible.")
@options.json_output
@click.pass_context
def build_cmd(ctx: click.Context, tree: Path, out: str, level: int, dereference: bool, dedupe: bool, force: bool,
              kind: str, runtime: str, backend: str, as_json: bool) -> None:
    """Zip TREE (a directory, a zip to normalise, or one program as bootstrap) into a layer zip.

    Entries sorted, one timestamp (SOURCE_DATE_EPOCH when set), modes 0644/0755 with exec bits
    kept and forced on ELF programs and bootstrap, symlinks kept as links, no parent folder:
    the same input gives the same bytes. Refuses over-budget layers (exit 1) unless --force, and
    absolute or escaping links, special files and bad zip names (exit 2).
    """
    with _zip_bar(not as_json) as (progress, total):
        result = build(tree, out, level=level, dereference=dereference, force=force, kind=kind, runtime=runtime,
                       progress=progress, backend=backend, dedupe=dedupe, progress_total=total)
    code = EXIT_FINDINGS if any(f.severity >= Severity.ERROR for f in result.findings) else 0
    if as_json:
        emit_json("build", {
            "path": str(result.path), "sha256": result.sha256_hex, "code_sha256": result.code_sha256,
            "zipped_bytes": result.zipped_size, "unzipped_bytes": result.unzipped_size, "entries": result.entries,
            "backend": result.backend,
            "limit_bytes": budget.UNZIPPED_LIMIT, "upload": "s3" if budget.needs_s3(result.zipped_size) else "direct",
            "findings": [f.to_json() for f in result.findings], "exit_code": code,
        })
    else:
        c = console()
        pct = 100.0 * result.unzipped_size / budget.UNZIPPED_LIMIT
        c.print(f"wrote {result.path} ({result.entries:,} entries)", markup=False)
        c.print(f"  unzipped    {result.unzipped_size:>13,} bytes ({human_bytes(result.unzipped_size)}), "
                f"{pct:.1f}% of Lambda's {budget.UNZIPPED_LIMIT:,}", markup=False)
        via = "publish goes through S3" if budget.needs_s3(result.zipped_size) else "direct upload"
        c.print(f"  zipped      {result.zipped_size:>13,} bytes ({human_bytes(result.zipped_size)}), {via}", markup=False)
        c.print(f"  sha256      {result.sha256_hex}", markup=False)
        c.print(f"  CodeSha256  {result.code_sha256}", markup=False)
        print_findings(sorted_findings(result.findings))
    if code:
        ctx.exit(code)


Callback = Callable[[int], None]


@contextmanager
def _zip_bar(enabled: bool) -> Iterator[tuple[Callback | None, Callback | None]]:
    """Bytes zipped out of the tree's unzipped size, with the rate and time left, on a terminal's
    stderr; nothing when stderr is not a terminal. Yields (advance, set_total)."""
    err = console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None, None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    with Progress(TextColumn("zipping"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("zipping", total=None)
        yield (lambda n: bar.advance(task, n)), (lambda n: bar.update(task, total=n))
