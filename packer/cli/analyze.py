"""`layerpack analyze`: findings and the dependency tree, as text or JSON."""

from __future__ import annotations

import gc
import sys

import click

from packer.analyze import analyze, cycle_collector_paused
from packer.cli import options
from packer.cli.base import EXIT_CLEAN, EXIT_FINDINGS, main
from packer.findings import Severity
from packer.render import console, render_analysis


@main.command("analyze")
@click.argument("path", type=click.Path(exists=False))
@options.runtime()
@options.arch()
@click.option("--as", "as_", type=click.Choice(["layer", "function"]), default="layer", show_default=True,
              help="Mount the tree at /opt (a layer) or /var/task (the function).")
@options.with_layers
@click.option("--sysroot", type=click.Path(file_okay=False), default=None,
              help="Look for vendorable libraries in this root instead of this machine's (e.g. an aarch64 root).")
@click.option("--kind", type=click.Choice(["auto", "runtime", "python", "node", "bin-lib", "generic"]), default="auto",
              show_default=True, help="What the layer is, for the layout checks.")
@options.env("The function's environment variable, as set in its configuration (repeatable); "
             "LD_LIBRARY_PATH replaces the runtime's.")
@options.json_output
@click.option("--verbose", "-v", is_flag=True, help="Show every dependency tree, not only those with problems.")
@click.option("--cache", is_flag=True,
              help="Reuse ELF header facts of unchanged files from earlier runs (kept in the cache directory).")
def analyze_cmd(path: str, runtime: str, arch: str | None, as_: str, with_layers: tuple[str, ...],
                sysroot: str | None, kind: str, env: dict[str, str], as_json: bool, verbose: bool, cache: bool) -> None:
    """Tell what happens to PATH (a binary, directory or .zip) on Lambda, without running it.

    \b
    Exit status: 0 no errors, 1 error findings, 2 bad usage or unreadable input.
    """
    with cycle_collector_paused():
        with _progress(path) as advance:
            report = analyze(path, runtime=runtime, arch=arch, as_=as_, with_layers=with_layers, sysroot=sysroot,
                             kind=kind, progress=advance, env=env, cache=cache)
        if as_json:  # indented for a person at a terminal; compact (C encoder, 5x faster) for a pipe
            report.write_json(sys.stdout.write, indent=2 if sys.stdout.isatty() else None)
            sys.stdout.write("\n")
        else:
            render_analysis(report, verbose=verbose)
        gc.freeze()  # the process ends here: spare the report's objects the collector's final pass at exit
    sys.exit(EXIT_FINDINGS if any(f.severity is Severity.ERROR for f in report.findings) else EXIT_CLEAN)


class _progress:
    """A progress bar on stderr for big trees (only when stderr is a terminal)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("analysing"), BarColumn(), MofNCompleteColumn(), console=console(stderr=True),
                            transient=True)
        self.bar.start()
        task = self.bar.add_task("walk", total=None)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
