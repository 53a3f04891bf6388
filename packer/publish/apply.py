"""Carry out a `RegionPlan` with boto3: upload (inline or through S3), publish, share.

The S3 staging object exists only for the duration of one PublishLayerVersion call: it is deleted in
a `finally`, so a failed publish (bad parameters, throttling that outlasts the retries, Ctrl-C)
leaves no orphan behind unless `--keep-s3-object` asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from packer.errors import PublishError
from packer.publish.archive import Archive, digests_equal
from packer.publish.aws import AwsOptions, aws_errors, client, error_code
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


def fetch_latest(opts: AwsOptions, region: str, name: str) -> RemoteVersion | None:
    return latest_version(client(opts, "lambda", region), name)


def apply_region(opts: AwsOptions, plan: RegionPlan, archive: Archive, *, keep_s3_object: bool = False,
                 progress: Callable[[int], None] | None = None) -> RegionResult:
    """Publish (or not) in one region and make sure the requested permissions exist."""
    lam = client(opts, "lambda", plan.region)
    if plan.action == "unchanged":
        assert plan.latest is not None
        result = RegionResult(plan.region, "unchanged", plan.latest, note=plan.note)
        if progress:
            progress(archive.size)
    elif plan.transport == "inline":
        data = Path(archive.path).read_bytes()
        with aws_errors(f"PublishLayerVersion {plan.params['LayerName']} in {plan.region}"):
            response = lam.publish_layer_version(**plan.params, Content={"ZipFile": data})
        if progress:
            progress(archive.size)
        result = RegionResult(plan.region, "published", RemoteVersion.from_api(response), "inline")
    else:
        result = _publish_via_s3(opts, lam, plan, archive, keep_s3_object, progress)
    if result.version is not None and result.action == "published" and not digests_equal(
            archive.code_sha256, result.version.code_sha256):
        raise PublishError(f"{plan.region}: Lambda reports CodeSha256 {result.version.code_sha256} for "
                           f"{result.version.arn}, but the zip's is {archive.code_sha256}",
                           hint="the upload was altered in transit or the staging object was overwritten; publish again")
    assert result.version is not None
    result.permissions = ensure_permissions(lam, plan.params["LayerName"], result.version.version, plan.permissions)
    return result


def _publish_via_s3(opts: AwsOptions, lam: Any, plan: RegionPlan, archive: Archive, keep: bool,
                    progress: Callable[[int], None] | None) -> RegionResult:
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
        with aws_errors(f"PublishLayerVersion {plan.params['LayerName']} in {plan.region} from {where}"):
            response = lam.publish_layer_version(**plan.params, Content=content)
    except BaseException as exc:
        if uploaded and not keep:
            try:
                _delete_staging(s3, plan.bucket, plan.key, version_id)
            except PublishError as cleanup:
                raise PublishError(f"{exc}; and the staging object could not be deleted: {cleanup}") from None
        raise
    if not keep:
        _delete_staging(s3, plan.bucket, plan.key, version_id)
    return RegionResult(plan.region, "published", RemoteVersion.from_api(response), "s3",
                        staged=where if keep else None)


def _delete_staging(s3: Any, bucket: str, key: str, version_id: str | None) -> None:
    """Remove the staging object (the exact version in a versioned bucket, so nothing is left)."""
    with aws_errors(f"deleting staging object s3://{bucket}/{key}"):
        if version_id and version_id != "null":
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
        else:
            s3.delete_object(Bucket=bucket, Key=key)


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
