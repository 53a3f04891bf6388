"""The pure part of publishing: what would be sent to which region, and whether anything needs sending.

`plan_region` takes the facts (the archive, the request, the latest version the region already has)
and decides; it never talks to AWS, so `--dry-run` and the tests can show every decision without an
account. `apply` then carries a plan out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from packer.publish.archive import Archive, digests_equal

from packer.quotas import upload_route


@dataclass(frozen=True)
class LayerRequest:
    """What the user asked for, as plain values (the CLI parses, this carries)."""

    name: str
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()  # declared with --arch; empty: taken from the ELF files
    description: str = ""
    license: str = ""
    regions: tuple[str, ...] = ()
    s3_bucket: str | None = None  # may contain "{region}"
    s3_prefix: str = "layerpack-staging/"
    keep_s3_object: bool = False
    public: bool = False
    accounts: tuple[str, ...] = ()
    orgs: tuple[str, ...] = ()
    force: bool = False

    def bucket_for(self, region: str) -> str | None:
        return self.s3_bucket.replace("{region}", region) if self.s3_bucket else None


@dataclass(frozen=True)
class RemoteVersion:
    """The parts of an existing layer version that decide whether to publish again."""

    version: int
    arn: str
    layer_arn: str
    code_sha256: str | None
    code_size: int | None
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    description: str = ""
    license: str = ""
    created: str = ""

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> RemoteVersion:
        """From a GetLayerVersion / PublishLayerVersion response. `Content.Location` is a presigned
        URL and is deliberately dropped so it can never reach the output."""
        content = data.get("Content") or {}
        return cls(
            version=int(data["Version"]),
            arn=data["LayerVersionArn"],
            layer_arn=data.get("LayerArn", data["LayerVersionArn"].rsplit(":", 1)[0]),
            code_sha256=content.get("CodeSha256"),
            code_size=content.get("CodeSize"),
            runtimes=tuple(data.get("CompatibleRuntimes") or ()),
            architectures=tuple(data.get("CompatibleArchitectures") or ()),
            description=data.get("Description") or "",
            license=data.get("LicenseInfo") or "",
            created=str(data.get("CreatedDate") or ""),
        )


@dataclass(frozen=True)
class Permission:
    """One AddLayerVersionPermission statement; the statement id makes re-running it idempotent."""

    statement_id: str
    principal: str
    organization: str | None = None

    def describe(self) -> str:
        if self.organization:
            return f"organization {self.organization}"
        return "public (any account)" if self.principal == "*" else f"account {self.principal}"


@dataclass(frozen=True)
class RegionPlan:
    region: str
    action: str  # "publish" | "unchanged"
    transport: str | None  # "inline" | "s3" (None when unchanged)
    params: dict[str, Any]  # PublishLayerVersion parameters without Content
    permissions: tuple[Permission, ...]
    bucket: str | None = None
    key: str | None = None
    latest: RemoteVersion | None = None
    differs: tuple[str, ...] = field(default=())  # metadata that differs from `latest` (unchanged code)
    force: bool = False  # publish even when a version with these bytes exists

    @property
    def note(self) -> str:
        if self.action != "unchanged" or not self.differs:
            return ""
        return f"same code, but {', '.join(self.differs)} differ; --force publishes a new version with them"


def compatible_architectures(request: LayerRequest, archive: Archive) -> tuple[str, ...]:
    """--arch when given (validate checks it agrees with the ELF files), else what the ELF files say."""
    return tuple(sorted(set(request.architectures))) if request.architectures else archive.architectures


def publish_params(request: LayerRequest, archive: Archive) -> dict[str, Any]:
    """PublishLayerVersion parameters except Content, leaving out what the user left empty."""
    params: dict[str, Any] = {"LayerName": request.name}
    if request.description:
        params["Description"] = request.description
    if request.runtimes:
        params["CompatibleRuntimes"] = list(dict.fromkeys(request.runtimes))
    archs = compatible_architectures(request, archive)
    if archs:
        params["CompatibleArchitectures"] = list(archs)
    if request.license:
        params["LicenseInfo"] = request.license
    return params


def permissions(request: LayerRequest) -> tuple[Permission, ...]:
    out: list[Permission] = []
    if request.public:
        out.append(Permission("layerpack-public", "*"))
    for account in dict.fromkeys(request.accounts):
        out.append(Permission(f"layerpack-account-{account}", account))
    for org in dict.fromkeys(request.orgs):
        out.append(Permission(f"layerpack-org-{org}", "*", org))
    return tuple(out)


def staging_key(request: LayerRequest, archive: Archive) -> str:
    """Derived from the layer name and the bytes only: a rerun after an interrupted publish reuses
    (and then removes) the object the earlier run left; two runs with the same key upload the same
    bytes, and the per-layer lock orders them on one machine."""
    prefix = request.s3_prefix if not request.s3_prefix or request.s3_prefix.endswith("/") else request.s3_prefix + "/"
    return f"{prefix}{request.name}/{archive.sha256_hex}.zip"


def plan_region(request: LayerRequest, archive: Archive, region: str, latest: RemoteVersion | None) -> RegionPlan:
    """Decide for one region. Same bytes as the latest version -> nothing to publish (unless
    --force); otherwise inline when `quotas.upload_route` says so and no bucket was named, else via S3."""
    params = publish_params(request, archive)
    perms = permissions(request)
    if latest is not None and not request.force and digests_equal(archive.code_sha256, latest.code_sha256):
        differs = []
        if sorted(latest.runtimes) != sorted(params.get("CompatibleRuntimes", [])):
            differs.append("runtimes")
        if sorted(latest.architectures) != sorted(params.get("CompatibleArchitectures", [])):
            differs.append("architectures")
        if latest.description != params.get("Description", ""):
            differs.append("description")
        if latest.license != params.get("LicenseInfo", ""):
            differs.append("license")
        bucket = request.bucket_for(region)
        key = staging_key(request, archive) if bucket else None
        return RegionPlan(region, "unchanged", None, params, perms, bucket=bucket, key=key, latest=latest,
                          differs=tuple(differs))
    bucket = request.bucket_for(region)
    if bucket is None and upload_route(archive.size) == "inline":
        return RegionPlan(region, "publish", "inline", params, perms, latest=latest, force=request.force)
    key = staging_key(request, archive)
    return RegionPlan(region, "publish", "s3", params, perms, bucket=bucket, key=key, latest=latest, force=request.force)


def aws_calls(plan: RegionPlan, *, keep_s3_object: bool = False) -> list[str]:
    """The AWS calls a real publish would make in `plan.region`, in order, for `--dry-run`, which makes
    none: it needs no credentials and no network. The first call decides whether the rest happen
    (the same bytes as the latest version publish nothing)."""
    name = plan.params["LayerName"]
    calls = [f"lambda:ListLayerVersions + GetLayerVersion {name} (the latest version's CodeSha256; "
             "the same bytes stop here" + ("" if not plan.force else ", unless --force") + ")"]
    where = f"s3://{plan.bucket}/{plan.key}"
    if plan.transport == "s3":
        calls.append(f"s3:PutObject (multipart when large) + HeadObject {where}")
    fields = ", ".join(k for k in plan.params if k != "LayerName")
    calls.append(f"lambda:PublishLayerVersion {name} ({plan.transport}" + (f"; {fields}" if fields else "") + ")")
    if plan.transport == "s3" and not keep_s3_object:
        calls.append(f"s3:DeleteObject {where}")
    if plan.permissions:
        calls.append(f"lambda:GetLayerVersionPolicy {name}")
        calls.extend(f"lambda:AddLayerVersionPermission {name} ({p.describe()})" for p in plan.permissions)
    return calls
