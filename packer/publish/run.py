"""Publishing end to end: input -> zip -> checks -> per-region plan -> apply, regions in parallel.

The CLI is a thin shell around `prepare` and `publish_regions`; both are usable from Python.
"""

from __future__ import annotations

import contextlib
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packer.errors import LayerpackError, PublishError
from packer.findings import Finding
from packer.publish.apply import RegionResult, apply_region, fetch_latest
from packer.publish.archive import Archive, inspect_archive
from packer.publish.aws import AwsOptions
from packer.publish.plan import LayerRequest, RegionPlan, aws_calls, plan_region
from packer.publish.validate import validate

ProgressFactory = Callable[[str, int], Callable[[int], None] | None]


@dataclass
class Prepared:
    archive: Archive
    findings: list[Finding] = field(default_factory=list)  # publish's own checks (LP7xx)
    build_findings: list[Finding] = field(default_factory=list)  # from `build`, when a tree was zipped first

    @property
    def refused(self) -> list[Finding]:
        """What AWS would reject. Build findings are shown but do not block: `check` is that gate."""
        return [f for f in self.findings if str(f.severity) == "error"]


@contextlib.contextmanager
def prepare(source: str | Path, request: LayerRequest) -> Iterator[Prepared]:
    """Yield the zip to publish and everything wrong with it. A directory (or a single binary) is
    built into a temporary zip with `packer.package.build` first; the temporary zip is removed on exit."""
    path = Path(source)
    if not path.exists():
        raise PublishError(f"{source}: no such file or directory")
    if path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)):
        archive = inspect_archive(path)
        yield Prepared(archive, validate(request, archive))
        return
    try:
        from packer import package
    except ModuleNotFoundError as exc:
        if exc.name != "packer.package":
            raise
        raise PublishError(f"{source}: publishing a directory needs `layerpack build`, which is not installed",
                           hint="build the zip first and pass it") from None
    with tempfile.TemporaryDirectory(prefix="layerpack-publish-") as tmp:
        out = Path(tmp) / f"{request.name or 'layer'}.zip"
        result = package.build(path, out, runtime=request.runtimes[0] if request.runtimes else None)
        archive = inspect_archive(result.path)
        yield Prepared(archive, validate(request, archive), list(result.findings))


def publish_regions(request: LayerRequest, archive: Archive, opts: AwsOptions, *, dry_run: bool = False,
                    progress: ProgressFactory | None = None) -> list[RegionResult]:
    """Plan and apply in every region concurrently; one region failing does not stop the others.
    Results come back in the order the regions were given."""
    def one(region: str) -> RegionResult:
        try:
            if dry_run:  # local only: no credentials, no network (so not even the latest version)
                return _dry_result(plan_region(request, archive, region, None), request.keep_s3_object)
            latest = fetch_latest(opts, region, request.name)
            rplan = plan_region(request, archive, region, latest)
            tick = progress(region, archive.size) if progress else None
            return apply_region(opts, rplan, archive, keep_s3_object=request.keep_s3_object, progress=tick)
        except LayerpackError as exc:
            return RegionResult(region, "failed", error=str(exc))

    regions = list(dict.fromkeys(request.regions))
    if len(regions) == 1:
        return [one(regions[0])]
    with ThreadPoolExecutor(max_workers=min(len(regions), 8), thread_name_prefix="publish") as pool:
        return list(pool.map(one, regions))


def _dry_result(rplan: RegionPlan, keep_s3_object: bool) -> RegionResult:
    """What a real run would do, from local facts alone: the version number and whether the bytes are
    already published are only known to AWS, so the result lists the calls that would find out."""
    how = f"through s3://{rplan.bucket}/{rplan.key}" if rplan.transport == "s3" else "inline"
    return RegionResult(rplan.region, "would-publish", None, rplan.transport,
                        note=f"{how}, unless the latest version has the same CodeSha256 (not checked: "
                             "--dry-run calls no AWS API)",
                        calls=aws_calls(rplan, keep_s3_object=keep_s3_object))
