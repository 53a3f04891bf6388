"""Carry out a `RegionPlan` with boto3: upload (inline or through S3), publish, share.

The S3 staging object exists only for the duration of one publish: it is deleted in a `finally`, so
a failed publish (bad parameters, throttling that outlasts the retries, Ctrl-C) leaves no orphan
behind unless `--keep-s3-object` asked for it. Its key is derived from the bytes alone, so a run
killed before the delete leaves an object the next publish of the same bytes overwrites and removes.
The publish call itself goes through `packer.publish.once` (exactly one version per run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from packer.errors import PublishError
from packer.publish.archive import Archive, digests_equal
from packer.publish.aws import AwsOptions, aws_errors, client, error_code, session
from packer.publish.once import Outcome, layer_lock, publish_once, same_version
from packer.publish.plan import Permission, RegionPlan, RemoteVersion
from packer.publish.remote import latest_version, policy_statement_ids

# Parts of 16 MiB keep a 250 MB upload to ~16 parts, with 4 in flight (boto3's managed transfer).
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024


@dataclass
class RegionResult:
    region: str
    action: str  # "published" | "unchanged" | "would-publish" | "failed"
    version: RemoteVersion | None = None
    transport: str | None = None
    permissions: list[str] = field(default_factory=list)  # statement ids in place after the run
    staged: str | None = None  # s3://bucket/key when --keep-s3-object kept it
    note: str = ""
    error: str | None = None
    calls: list[str] = field(default_factory=list)  # --dry-run: the AWS calls a real run would make


def fetch_latest(opts: AwsOptions, region: str, name: str) -> RemoteVersion | None:
    return latest_version(client(opts, "lambda", region), name)


def apply_region(opts: AwsOptions, plan: RegionPlan, archive: Archive, *, keep_s3_object: bool = False,
                 progress: Callable[[int], None] | None = None) -> RegionResult:
    """Publish (or not) in one region and make sure the requested permissions exist."""
    lam = client(opts, "lambda", plan.region)
    if plan.action == "unchanged":
        assert plan.latest is not None
        result = RegionResult(plan.region, "unchanged", plan.latest, note=plan.note)
        if plan.bucket and plan.key and not keep_s3_object:  # an orphan of an interrupted earlier run
            result.note = _join(result.note, _remove_orphan(opts, plan))
        if progress:
            progress(archive.size)
    else:
        with layer_lock(_identity(opts), opts.endpoint_url or "", plan.region, plan.params["LayerName"]):
            result = _publish_locked(opts, lam, plan, archive, keep_s3_object, progress)
    if result.version is not None and result.action == "published" and not digests_equal(
            archive.code_sha256, result.version.code_sha256):
        raise PublishError(f"{plan.region}: Lambda reports CodeSha256 {result.version.code_sha256} for "
                           f"{result.version.arn}, but the zip's is {archive.code_sha256}",
                           hint="the upload was altered in transit or the staging object was overwritten; publish again")
    assert result.version is not None
    result.permissions = ensure_permissions(lam, plan.params["LayerName"], result.version.version, plan.permissions)
    return result


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _identity(opts: AwsOptions) -> str:
    """Whose account the lock is for: the access key id (one key belongs to one account)."""
    try:
        creds = session(opts).get_credentials()
        return creds.get_frozen_credentials().access_key if creds else ""
    except Exception:  # credential errors are reported by the calls themselves
        return opts.profile or ""


def _publish_locked(opts: AwsOptions, lam: Any, plan: RegionPlan, archive: Archive, keep: bool,
                    progress: Callable[[int], None] | None) -> RegionResult:
    """Under the layer lock: look again (another run may have just published these bytes), then
    publish exactly once."""
    latest = latest_version(lam, plan.params["LayerName"])
    if latest is not None and not plan.force and same_version(latest, archive, plan.params):
        if progress:
            progress(archive.size)
        return RegionResult(plan.region, "unchanged", latest, note="published meanwhile by another run")
    before = latest.version if latest is not None else 0
    single = client(opts, "lambda", plan.region, single_attempt=True)
    if plan.transport == "inline":
        content = {"ZipFile": Path(archive.path).read_bytes()}
        outcome = publish_once(lam, single, archive, plan.params, content, before, _what(plan))
        if progress:
            progress(archive.size)
        return _published(plan, outcome, "inline")
    return _publish_via_s3(opts, lam, single, plan, archive, keep, progress, before)


def _published(plan: RegionPlan, outcome: Outcome, transport: str, note: str = "", staged: str | None = None) -> RegionResult:
    adopted = (f"the answer to PublishLayerVersion was lost (attempt {outcome.attempts}); version "
               f"{outcome.version.version} it created was found and adopted") if outcome.adopted else ""
    return RegionResult(plan.region, "published", outcome.version, transport, staged=staged, note=_join(adopted, note))


def _publish_via_s3(opts: AwsOptions, lam: Any, single: Any, plan: RegionPlan, archive: Archive, keep: bool,
                    progress: Callable[[int], None] | None, before: int) -> RegionResult:
    from boto3.s3.transfer import TransferConfig

    assert plan.bucket and plan.key
    s3 = client(opts, "s3", plan.region)
    where = f"s3://{plan.bucket}/{plan.key}"
    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK,
                            max_concurrency=4)
    uploaded = False
    version_id: str | None = None
    try:
        with aws_errors(f"upload to {where}"):
            # Marked before the call: an upload interrupted after its last part may still leave the
            # object behind, and deleting a key that does not exist is harmless.
            uploaded = True
            s3.upload_file(str(archive.path), plan.bucket, plan.key, Config=config, Callback=progress)
            version_id = s3.head_object(Bucket=plan.bucket, Key=plan.key).get("VersionId")
        content = {"S3Bucket": plan.bucket, "S3Key": plan.key}
        if version_id and version_id != "null":
            content["S3ObjectVersion"] = version_id
        outcome = publish_once(lam, single, archive, plan.params, content, before, f"{_what(plan)} from {where}")
    except BaseException as exc:
        if uploaded and not keep:
            try:
                _delete_staging(s3, plan.bucket, plan.key, version_id)
            except PublishError as cleanup:
                raise PublishError(f"{exc}; and the staging object could not be deleted: {cleanup}") from None
        raise
    if keep:
        return _published(plan, outcome, "s3", staged=where)
    try:
        _delete_staging(s3, plan.bucket, plan.key, version_id)
    except PublishError as cleanup:  # the version exists: report it, and what was left behind
        return _published(plan, outcome, "s3", note=f"staging object left behind ({cleanup}); "
                          "the next publish of these bytes removes it", staged=where)
    return _published(plan, outcome, "s3")


def _delete_staging(s3: Any, bucket: str, key: str, version_id: str | None) -> None:
    """Remove the staging object (the exact version in a versioned bucket, so nothing is left)."""
    with aws_errors(f"deleting staging object s3://{bucket}/{key}"):
        if version_id and version_id != "null":
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
        else:
            s3.delete_object(Bucket=bucket, Key=key)


def _what(plan: RegionPlan) -> str:
    return f"PublishLayerVersion {plan.params['LayerName']} in {plan.region}"


def _remove_orphan(opts: AwsOptions, plan: RegionPlan) -> str:
    """Delete the staging key of these bytes if an interrupted run left it (every version of it in a
    versioned bucket). Best effort: returns a note, never fails the run."""
    assert plan.bucket and plan.key
    s3 = client(opts, "s3", plan.region)
    try:
        with aws_errors(f"removing s3://{plan.bucket}/{plan.key}"):
            listed = s3.list_object_versions(Bucket=plan.bucket, Prefix=plan.key)
            items = [(v["Key"], v.get("VersionId")) for v in listed.get("Versions", []) + listed.get("DeleteMarkers", [])
                     if v["Key"] == plan.key]
            for key, vid in items:
                _delete_staging(s3, plan.bucket, key, vid)
    except PublishError as exc:
        return f"could not check for a leftover staging object: {exc}"
    return f"removed the staging object s3://{plan.bucket}/{plan.key} an interrupted run left" if items else ""


def ensure_permissions(lam: Any, name: str, version: int, wanted: tuple[Permission, ...]) -> list[str]:
    """Add the statements that are missing; re-running is a no-op (statement ids are fixed)."""
    if not wanted:
        return []
    have = policy_statement_ids(lam, name, version)
    for perm in wanted:
        if perm.statement_id in have:
            continue
        args: dict[str, Any] = {"LayerName": name, "VersionNumber": version, "StatementId": perm.statement_id,
                                "Action": "lambda:GetLayerVersion", "Principal": perm.principal}
        if perm.organization:
            args["OrganizationId"] = perm.organization
        with aws_errors(f"AddLayerVersionPermission {name}:{version} ({perm.describe()})"):
            try:
                lam.add_layer_version_permission(**args)
            except ClientError as exc:
                if error_code(exc) != "ResourceConflictException":  # added concurrently: fine
                    raise
        have.add(perm.statement_id)
    return sorted(p.statement_id for p in wanted)
