"""`layerpack slim`: a thin shell around packer.slim (plan -> print or apply)."""

from __future__ import annotations

import posixpath

import click

from packer.cli import options
from packer.cli.base import main
from packer.errors import UsageError
from packer.render import console, emit_json, human_bytes, print_findings
from packer.slim import apply as slim_apply
from packer.slim import plan as slim_plan
from packer.slim import profiles
from packer.slim.compile import AUTO, find_interpreter
from packer.slim.plan import SlimOptions


@main.command("slim")
@click.argument("path", type=click.Path(file_okay=False, dir_okay=True, path_type=str))
@click.option("--profile", "profile_name", required=True, metavar="NAME", shell_complete=options.complete_profile,
              help=f"Rule profile: {', '.join(profiles.profile_names())}.")
@click.option("--tier", type=click.Choice(profiles.TIERS), default="safe", show_default=True,
              help="Apply rules up to this risk tier (caution adds more, danger adds the risky ones).")
@click.option("--rules", "rule_files", multiple=True, type=click.Path(dir_okay=False, path_type=str), metavar="FILE",
              help="Extra rule file(s) (same TOML schema) layered on the profile; same id replaces a rule.")
@click.option("--keep", multiple=True, metavar="GLOB", help="Never remove, strip or rewrite what matches (repeatable).")
@click.option("--keep-app", "keep_apps", multiple=True, metavar="APP",
              help="Erlang/Elixir: keep this application and its closure (e.g. ssl, crypto).")
@click.option("--mount-path", default="/opt", show_default=True, metavar="DIR",
              help="Where the tree's root will be on Lambda (layers unpack at /opt).")
@click.option("--gzip-beams/--no-gzip-beams", default=None,
              help="gzip stripped BEAM files like beam_lib (smaller unzipped, same zipped). Default: profile.")
@click.option("--beam-keep-chunk", "beam_chunks", multiple=True, metavar="ID",
              help="Extra BEAM chunk to keep (repeatable; replaces the profile's list, default Attr).")
@options.runtime(default=None, help="Target runtime; python3.X keeps only that version's .pyc files.")
@click.option("--compile-pyc", "compile_pyc", is_flag=False, flag_value=AUTO, default=None, metavar="[PYTHON]",
              help="Write hash-based .pyc into the output with the runtime's Python (found from --runtime "
                   "python3.X on PATH or in ~/.pyenv, or this interpreter, which must be that version).")
@click.option("--dedupe", is_flag=True,
              help="Identical copies in one directory (pip's libx.so, .so.1, .so.1.2) become symlinks to the first.")
@options.out(help="Write the slimmed tree here.")
@options.in_place
@options.dry_run
@options.json_output
def slim_cmd(path: str, profile_name: str, tier: str, rule_files: tuple[str, ...], keep: tuple[str, ...],
             keep_apps: tuple[str, ...], mount_path: str, gzip_beams: bool | None, beam_chunks: tuple[str, ...],
             runtime: str | None, compile_pyc: str | None, dedupe: bool, out: str | None, in_place: bool,
             dry_run: bool, as_json: bool) -> None:
    """Shrink an interpreter distribution or package tree with a rule profile.

    \b
    layerpack slim /usr/lib/erlang --profile erlang --mount-path /opt/erlang --out build/erlang
    layerpack slim python/ --profile python --dry-run
    layerpack slim python/ --profile python --runtime python3.12 --compile-pyc --dedupe --out build/python
    """
    if not dry_run and not in_place and not out:
        raise UsageError("say where to write the result", hint="pass --out DIR, --in-place or --dry-run")
    if out and in_place:
        raise UsageError("--out and --in-place exclude each other")
    if not posixpath.isabs(mount_path):
        raise UsageError(f"--mount-path {mount_path!r} must be an absolute path such as /opt")
    for c in beam_chunks:
        if len(c) != 4 or not c.isascii():
            raise UsageError(f"--beam-keep-chunk {c!r}: a BEAM chunk id is 4 ASCII characters (Attr, Docs, Dbgi...)")
    python = find_interpreter(compile_pyc, runtime) if compile_pyc else None
    prof = profiles.load(profile_name, tuple(rule_files))
    opts = SlimOptions(tier=tier, keep=keep, keep_apps=keep_apps, mount_path=posixpath.normpath(mount_path),
                       beam_gzip=gzip_beams, beam_keep_chunks=beam_chunks or None, runtime=runtime,
                       compile_pyc=python is not None, dedupe=dedupe)
    plan = slim_plan(path, prof, opts)
    result = None
    if not dry_run:
        result = slim_apply(plan, out, in_place=in_place, compile_pyc=python)
    if as_json:
        doc = plan.to_json()
        doc["dry_run"] = dry_run
        doc["compile_pyc"] = python
        if result is not None:
            doc["result"] = {"out": str(result.out), "bytes_after": result.bytes_after, "files_after": result.files_after,
                             "elf_saved": result.elf_saved, "pyc_compiled": result.pyc_compiled,
                             "findings": [f.to_json() for f in result.findings]}
        emit_json("slim", doc)
        return
    _print(plan, result, dry_run)


def _print(plan, result, dry_run: bool) -> None:
    from rich.table import Table

    con = console()
    title = f"slim {plan.root} — profile {plan.profile}, tier {plan.tier}" + (" (dry run)" if dry_run else "")
    table = Table(title=title)
    for col, just in (("rule", "left"), ("tier", "left"), ("action", "left"), ("files", "right"),
                      ("before", "right"), ("saved", "right"), ("reason", "left")):
        table.add_column(col, justify=just)
    for r in plan.rules:
        table.add_row(r.id, r.tier, r.action, str(r.files), human_bytes(r.before), human_bytes(r.saved) if r.files else "-", r.reason)
    con.print(table)
    if plan.apps_removed:
        con.print(f"applications kept: {', '.join(f'{k} ({v})' for k, v in plan.apps_kept.items())}")
        con.print("applications removed:")
        for name, why in plan.apps_removed.items():
            con.print(f"  {name}: {why}")
    print_findings([*plan.findings, *(result.findings if result else ())])
    if plan.not_applied:
        con.print(f"not applied at tier {plan.tier}: " + ", ".join(f"{r.id} ({r.tier})" for r in plan.not_applied))
    line = f"total: {human_bytes(plan.before_bytes)} -> {human_bytes(plan.after_bytes)} (saves {human_bytes(plan.saved_bytes)}" \
           f"{', ELF estimated' if any(a.op == 'strip-elf' for a in plan.actions) else ''})"
    con.print(line)
    if result is not None:
        con.print(f"wrote {result.out}: {result.bytes_after:,} bytes in {result.files_after} files"
                  + (f", {result.pyc_compiled} .pyc compiled" if result.pyc_compiled else ""))
