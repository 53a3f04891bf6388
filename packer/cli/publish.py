"""`layerpack publish`: the zip (or tree) published once per region, with its facts as metadata."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from packer.cli import options
from packer.cli.base import main
from packer.errors import PublishError
from packer.findings import Finding
from packer.publish.apply import RegionResult
from packer.publish.aws import AwsOptions, require_credentials, resolve_regions
from packer.publish.plan import LayerRequest
from packer.publish.run import prepare, publish_regions
from packer.publish.snippets import FORMATS, render
from packer.render import console, emit_json, human_bytes, print_findings


@main.command("publish")
@click.argument("source", metavar="LAYER.zip|TREE", type=click.Path())
@click.option("--name", required=True, help="Layer name (1-140 of letters, digits, '-', '_').")
@options.runtime(multiple=True, help="CompatibleRuntimes (repeatable or comma-separated, up to 15; 'none' for "
                                     "none); default: the default runtime.")
@options.arch(multiple=True, help="CompatibleArchitectures; default: read from the ELF files (an error if they "
                                  "disagree).")
@click.option("--description", default="", help="Version description (up to 256 characters).")
@click.option("--license", "license_info", default="", help="License: SPDX id, URL or text (up to 512 characters).")
@options.aws
@click.option("--s3-bucket", metavar="BUCKET", help="Publish through this bucket ('name-{region}' for several "
              "regions). Needed above the inline limit (~50 MiB zipped).")
@click.option("--s3-prefix", default="layerpack-staging/", show_default=True, help="Key prefix of the staging object.")
@click.option("--keep-s3-object", is_flag=True, help="Keep the staging object after publishing.")
@click.option("--force", is_flag=True, help="Publish even when the latest version has the same CodeSha256.")
@click.option("--public", is_flag=True, help="Let every AWS account use this version.")
@options.listed("--account", "accounts", metavar="ID", help="Let this 12-digit account use this version (repeatable).")
@options.listed("--org", "orgs", metavar="o-…", help="Let accounts of this organization use this version (repeatable).")
@options.dry_run
@options.json_output
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Print a cfn, sam or terraform snippet that "
              "references the published version.")
def publish_cmd(source: str, name: str, runtime: tuple[str, ...], archs: tuple[str, ...], description: str,
                license_info: str, regions: tuple[str, ...], aws: AwsOptions,
                s3_bucket: str | None, s3_prefix: str, keep_s3_object: bool, force: bool, public: bool,
                accounts: tuple[str, ...], orgs: tuple[str, ...], dry_run: bool, as_json: bool,
                fmt: str | None) -> None:
    """Publish LAYER.zip (or build TREE first) as a Lambda layer version, once.

    \b
    The same bytes as the latest version publish nothing and print its ARN (--force publishes).
    Everything PublishLayerVersion would reject is refused before anything is uploaded.
    Exit: 0 published or unchanged, 2 refused locally, bad input, or an AWS error.
    """
    if as_json and fmt:
        raise PublishError("--json and --format both print to stdout; pick one")
    runtimes = runtime
    if runtimes == ("none",):
        runtimes = ()
    elif not runtimes:
        from packer.runtime import default_runtime

        runtimes = (default_runtime(),)
    opts = aws
    request = LayerRequest(name=name, runtimes=runtimes, architectures=archs, description=description,
                           license=license_info, regions=regions, s3_bucket=s3_bucket, s3_prefix=s3_prefix,
                           keep_s3_object=keep_s3_object, public=public, accounts=accounts, orgs=orgs, force=force)
    # Option-only problems first: no point building or reading a zip for a bad name.
    from packer.publish.validate import validate_request

    early = [f for f in validate_request(request) if str(f.severity) == "error"]
    if early:
        _refuse(early, source, as_json)
    if not dry_run:  # --dry-run calls no AWS API, so it needs no credentials
        require_credentials(opts)
    request = LayerRequest(**{**request.__dict__, "regions": resolve_regions(opts, regions)})
    with prepare(source, request) as prepared:
        archive = prepared.archive
        if prepared.refused:
            _refuse(prepared.findings, source, as_json)
        if not as_json:
            print_findings(prepared.build_findings + prepared.findings, err=True)
        progress = _progress_factory(as_json)
        with progress as factory:
            results = publish_regions(request, archive, opts, dry_run=dry_run, progress=factory)
    failed = [r for r in results if r.action == "failed"]
    if as_json:
        emit_json("publish", _json(request, source, archive, prepared.build_findings + prepared.findings, results,
                                   dry_run))
    elif fmt and not failed and not dry_run:
        click.echo(render(fmt, request.name, [(r.region, r.version) for r in results if r.version]), nl=False)
    else:
        _human(archive, results)
    if failed:
        if len(failed) == 1:
            raise PublishError(failed[0].error or "failed")
        raise PublishError(f"publishing failed in {len(failed)} regions: "
                           + "; ".join(f"{r.region}: {r.error}" for r in failed))


def _refuse(findings: list[Finding], source: str, as_json: bool) -> None:
    errors = [f for f in findings if str(f.severity) == "error"]
    if as_json:
        emit_json("publish", {"source": source, "published": False,
                              "findings": [f.to_json() for f in findings], "regions": []})
    else:
        print_findings(findings, err=True)
    raise PublishError(f"refused to publish: {len(errors)} problem{'s' if len(errors) != 1 else ''} "
                       f"AWS would reject ({', '.join(sorted({f.code for f in errors}))}); nothing was uploaded")


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress_factory(as_json: bool) -> Any:
    """A rich progress bar per region on a terminal's stderr; nothing when piped."""
    if as_json or not sys.stderr.isatty():
        return _NoProgress()
    from contextlib import contextmanager

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    @contextmanager
    def bars() -> Any:
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=console(stderr=True), transient=True) as prog:
            def factory(region: str, total: int) -> Callable[[int], None]:
                task = prog.add_task(f"upload {region}", total=total)
                return lambda n: prog.advance(task, n)

            yield factory

    return bars()


def _version_json(r: RegionResult, archive: Any) -> dict[str, Any]:
    v = r.version
    out: dict[str, Any] = {
        "region": r.region,
        "action": r.action,
        "arn": v.arn if v else None,
        "layer_arn": v.layer_arn if v else None,
        "version": v.version if v else None,
        "code_sha256": (v.code_sha256 if v else None) or archive.code_sha256,
        "sha256": archive.sha256_hex,
        "size": (v.code_size if v and v.code_size is not None else archive.size),
        "transport": r.transport,
        "runtimes": list(v.runtimes) if v else [],
        "architectures": list(v.architectures) if v else [],
        "permissions": r.permissions,
    }
    if r.staged:
        out["staged_object"] = r.staged
    if r.note:
        out["note"] = r.note
    if r.error:
        out["error"] = r.error
    if r.calls:
        out["would_call"] = r.calls
    return out


def _json(request: LayerRequest, source: str, archive: Any, findings: list[Finding], results: list[RegionResult],
          dry_run: bool) -> dict[str, Any]:
    return {
        "layer": request.name,
        "source": source,
        "dry_run": dry_run,
        "published": any(r.action == "published" for r in results),
        "zip": {"size": archive.size, "unzipped_size": archive.unzipped_size, "sha256": archive.sha256_hex,
                "code_sha256": archive.code_sha256, "architectures": list(archive.architectures)},
        "findings": [f.to_json() for f in findings],
        "regions": [_version_json(r, archive) for r in results],
    }


def _human(archive: Any, results: list[RegionResult]) -> None:
    width = max(len(r.region) for r in results)
    for r in results:
        head = f"{r.region:<{width}}  {r.action:<13}"
        if r.action == "failed":
            click.echo(f"{head} {r.error}", err=True)
            continue
        if r.version is None:
            click.echo(f"{head} {r.note}")
            for call in r.calls:
                click.echo(f"{'':<{width}}  {'would call':<13} {call}")
            continue
        detail = f"{r.transport}, " if r.transport else ""
        detail += f"{human_bytes(archive.size)}, CodeSha256 {archive.code_sha256}"
        if r.action == "unchanged":
            detail = f"same CodeSha256 as version {r.version.version}; --force publishes anyway"
        click.echo(f"{head} {r.version.arn}  ({detail})")
        if r.permissions:
            click.echo(f"{'':<{width}}  {'shared':<13} {', '.join(r.permissions)}")
        if r.staged:
            click.echo(f"{'':<{width}}  {'kept':<13} {r.staged}")
        if r.note:
            click.echo(f"{'':<{width}}  {'note':<13} {r.note}")
