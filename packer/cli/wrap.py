"""`layerpack wrap PROGRAM --out DIR`: make a stdin/stdout JSON-lines program a Lambda function."""

from __future__ import annotations


import click

from packer.cli import options
from packer.cli.base import main
from packer.render import console, emit_json, human_bytes


@main.command("wrap")
@click.argument("program", type=click.Path(dir_okay=True, path_type=str))
@click.argument("args", nargs=-1)
@options.out(required=True, help="Directory to write (the layer, or the function code for nodejs*). The program "
                                  "is copied to bin/ unless it is already inside it.")
@options.runtime(help="provided.*: a bash+curl bootstrap; nodejs*: an index.mjs handler.")
@options.arch(default="x86_64", help="Target architecture (only used to read the runtime's command list).")
@click.option("--stderr", "stderr_mode", type=click.Choice(["fail", "log"]), default="fail", show_default=True,
              help="fail: output on stderr while handling an event makes it an invocation error; log: only logged.")
@click.option("--ready-line", default="", metavar="TEXT",
              help="A line the program prints on stdout once it is ready: init waits for it (default: until the "
                   "program and its children all sleep, waiting for input).")
@click.option("--force", is_flag=True, help="Replace an existing bootstrap/index.mjs or bin/PROGRAM.")
@options.dry_run
@options.json_output
def wrap_cmd(program: str, args: tuple[str, ...], out: str, runtime: str, arch: str, stderr_mode: str,
             ready_line: str, force: bool, dry_run: bool, as_json: bool) -> None:
    """Wrap PROGRAM (reads one JSON line per event on stdin, answers one JSON line on stdout) as a
    Lambda custom runtime that starts it once and keeps it warm. ARGS after `--` are passed to it.

    \b
    layerpack wrap ./handler --out layer                         # bootstrap + bin/handler
    layerpack wrap ./handler --out fn --runtime nodejs22.x       # index.mjs + bin/handler
    layerpack invoke layer --event event.json
    """
    from packer import wrap

    plan = wrap.plan(program, out, args=args, runtime=runtime, arch=arch,
                     stderr_mode=stderr_mode, force=force, ready_line=ready_line)
    if not dry_run:
        wrap.apply(plan)
    if as_json:
        emit_json("wrap", plan.to_json() | {"written": not dry_run})
        return
    con = console()
    verb = "would write" if dry_run else "wrote"
    con.print(f"{verb} {plan.out} for {plan.runtime} (stdio adapter, stderr: {plan.stderr_mode})", markup=False)
    for f in plan.files:
        what = f"copy of {f.source}" if f.source else "generated"
        con.print(f"  {f.rel:<24} {oct(f.mode)[2:]:>4}  {human_bytes(f.size):>10}  {what}", markup=False, highlight=False)
    if plan.flavor == "node":
        con.print("handler: index.handler (deploy the directory as the function's code)", markup=False)
    con.print(f"next: layerpack analyze {plan.out} && layerpack invoke {plan.out} --event event.json"
              if plan.flavor == "bootstrap" else f"next: layerpack analyze {plan.out} --runtime {plan.runtime}",
              markup=False, highlight=False)
