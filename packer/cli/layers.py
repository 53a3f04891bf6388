"""`layerpack layers list|versions|delete`: housekeeping for published layers."""

from __future__ import annotations

import sys
from typing import Any

import click

from packer.cli.base import main
from packer.cli import options
from packer.errors import PublishError
from packer.publish.aws import AwsOptions, aws_errors, client, require_credentials, resolve_regions
from packer.publish.housekeeping import select_for_deletion
from packer.publish.remote import list_layers, list_versions
from packer.publish.validate import validate_name
from packer.render import emit_json


@main.group("layers")
def layers_group() -> None:
    """List, inspect and delete published layer versions."""


def _setup(regions: tuple[str, ...], opts: AwsOptions) -> tuple[AwsOptions, tuple[str, ...]]:
    require_credentials(opts)
    return opts, resolve_regions(opts, regions)


def _check_name(name: str) -> None:
    if name.startswith("arn:"):
        return
    problems = validate_name(name)
    if problems:
        raise PublishError(problems[0].message)


def _plain(v: dict[str, Any]) -> dict[str, Any]:
    """Keep the listing's plain fields (never Content.Location, a presigned URL)."""
    return {
        "version": v.get("Version"),
        "arn": v.get("LayerVersionArn"),
        "created": str(v.get("CreatedDate") or ""),
        "description": v.get("Description") or "",
        "runtimes": v.get("CompatibleRuntimes") or [],
        "architectures": v.get("CompatibleArchitectures") or [],
        "license": v.get("LicenseInfo") or "",
    }


@layers_group.command("list")
@options.aws
@options.json_output
def list_cmd(regions: tuple[str, ...], aws: AwsOptions, as_json: bool) -> None:
    """Every layer in the region(s), with its latest version."""
    opts, regions = _setup(regions, aws)
    rows = []
    for region in regions:
        for layer in list_layers(client(opts, "lambda", region)):
            rows.append({"region": region, "name": layer.get("LayerName"), "layer_arn": layer.get("LayerArn"),
                         "latest": _plain(layer.get("LatestMatchingVersion") or {})})
    if as_json:
        emit_json("layers-list", {"layers": rows})
        return
    if not rows:
        click.echo(f"no layers in {', '.join(regions)}")
        return
    for r in rows:
        latest = r["latest"]
        click.echo(f"{r['region']}  {r['name']}  v{latest['version']}  {latest['created']}  "
                   f"{','.join(latest['runtimes']) or '-'}  {','.join(latest['architectures']) or '-'}  {latest['arn']}")


@layers_group.command("versions")
@click.argument("name")
@options.aws
@options.json_output
def versions_cmd(name: str, regions: tuple[str, ...], aws: AwsOptions,
                 as_json: bool) -> None:
    """The live versions of layer NAME, newest first."""
    _check_name(name)
    opts, regions = _setup(regions, aws)
    rows = []
    for region in regions:
        for v in list_versions(client(opts, "lambda", region), name):
            rows.append({"region": region, **_plain(v)})
    if as_json:
        emit_json("layers-versions", {"layer": name, "versions": rows})
        return
    if not rows:
        raise PublishError(f"layer {name} has no versions in {', '.join(regions)}")
    for r in rows:
        click.echo(f"{r['region']}  v{r['version']}  {r['created']}  {','.join(r['runtimes']) or '-'}  "
                   f"{','.join(r['architectures']) or '-'}  {r['arn']}" + (f"  {r['description']}" if r['description'] else ""))


@layers_group.command("delete")
@click.argument("name")
@click.argument("versions", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "all_versions", is_flag=True, help="Delete every version.")
@click.option("--keep", type=click.IntRange(min=0), help="Delete all but the newest N versions.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@options.aws
@options.json_output
def delete_cmd(name: str, versions: tuple[int, ...], all_versions: bool, keep: int | None, yes: bool,
               regions: tuple[str, ...], aws: AwsOptions, as_json: bool) -> None:
    """Delete versions of layer NAME (asks first unless --yes).

    \b
    layerpack layers delete my-layer 3 4      delete versions 3 and 4
    layerpack layers delete my-layer --keep 2 keep the newest two
    layerpack layers delete my-layer --all --yes
    Functions that already use a deleted version keep working; new ones cannot add it.
    Exit: 0 deleted (or nothing to do), 1 declined at the prompt, 2 bad usage or an AWS error.
    """
    _check_name(name)
    opts, regions = _setup(regions, aws)
    lams = {region: client(opts, "lambda", region) for region in regions}
    chosen = {region: select_for_deletion([int(v["Version"]) for v in list_versions(lam, name)], versions,
                                          all_versions=all_versions, keep=keep)
              for region, lam in lams.items()}
    total = sum(len(v) for v in chosen.values())
    if total == 0:
        _report(as_json, name, {r: [] for r in regions}, "nothing to delete")
        return
    summary = "; ".join(f"{region}: {', '.join(map(str, vs))}" for region, vs in chosen.items() if vs)
    if not yes:
        click.echo(f"Delete {total} version{'s' if total != 1 else ''} of layer {name} ({summary})?", err=True)
        try:
            answer = click.prompt("Type 'yes' to delete", default="", show_default=False, err=True)
        except click.Abort:  # end of input: no answer is not a yes
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            click.echo("nothing deleted", err=True)
            sys.exit(1)
    for region, vs in chosen.items():
        for version in vs:
            with aws_errors(f"DeleteLayerVersion {name}:{version} in {region}"):
                lams[region].delete_layer_version(LayerName=name, VersionNumber=version)
    _report(as_json, name, chosen, f"deleted {summary}")


def _report(as_json: bool, name: str, chosen: dict[str, list[int]], text: str) -> None:
    if as_json:
        emit_json("layers-delete", {"layer": name, "deleted": [{"region": r, "versions": vs} for r, vs in chosen.items()]})
    else:
        click.echo(f"{name}: {text}")
