"""`layerpack runtimes` and `layerpack codes`: what layerpack knows, with where it came from."""

from __future__ import annotations


import click

from packer import findings, runtime
from packer.cli import options
from packer.cli.base import main
from packer.render import console, emit_json


@main.command("runtimes")
@options.json_output
def runtimes_cmd(as_json: bool) -> None:
    """List the Lambda runtimes and architectures layerpack models, with each dump's date."""
    rows = []
    today = runtime.today()
    for rt in runtime.all_runtimes():
        rows.append(
            {
                "runtime": rt.name,
                "arch": rt.arch,
                "os": rt.os,
                "dump_date": rt.dump_date,
                "libraries": len(rt.libs.entries),
                "commands": len(rt.executables),
                "glibc": ".".join(map(str, rt.ceiling("GLIBC") or ())) or None,
                "glibcxx": ".".join(map(str, rt.ceiling("GLIBCXX") or ())) or None,
                "deprecated": rt.deprecated,
                "past_deprecation": runtime.deprecated_since(rt.deprecated, today) is not None,
                "default": rt.name == runtime.default_runtime(),
                "notes": [n for n in (rt.executables_note, rt.ceilings_note) if n],
            }
        )
    if as_json:
        emit_json("runtimes", {"default": runtime.default_runtime(), "runtimes": rows})
        return
    from rich.table import Table

    table = Table(title="Lambda runtimes (data: rules/runtimes, live-Lambda dumps)")
    for col in ("runtime", "arch", "os", "dump date", "libs", "cmds", "GLIBC", "GLIBCXX", "deprecated"):
        table.add_column(col)
    for r in rows:
        name = r["runtime"] + (" (default)" if r["default"] else "")
        table.add_row(name, r["arch"], r["os"], r["dump_date"] or "?", str(r["libraries"]), str(r["commands"]),
                      r["glibc"] or "?", r["glibcxx"] or "?",
                      (r["deprecated"] or "") + (" (past)" if r["past_deprecation"] else ""))
    console().print(table)
    if any(r["past_deprecation"] for r in rows):
        click.echo(f"(past): the deprecation date has come (as of {today}); AWS no longer patches the runtime")


@main.command("codes")
@options.json_output
@click.option("--markdown", is_flag=True, help="The README table.")
def codes_cmd(as_json: bool, markdown: bool) -> None:
    """List every finding code with its severity, meaning and usual fix."""
    codes = findings.catalogue()
    if as_json:
        emit_json("codes", {"codes": [{"code": c.code, "severity": str(c.severity), "title": c.title, "hint": c.hint}
                                      for c in codes]})
    elif markdown:
        click.echo(codes_markdown(codes))
    else:
        for c in codes:
            click.echo(f"{c.code} {str(c.severity):7} {c.title}\n    fix: {c.hint}")


def codes_markdown(codes: list[findings.Code]) -> str:
    lines = ["| code | severity | meaning | fix |", "|---|---|---|---|"]
    for c in codes:
        lines.append(f"| {c.code} | {c.severity} | {c.title} | {c.hint} |")
    return "\n".join(lines)
