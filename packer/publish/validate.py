"""Refuse locally, before any byte is sent, everything PublishLayerVersion would reject.

Test endpoints (moto, LocalStack) accept almost anything, and real AWS rejects only after a 50 MB
upload, so the limits are checked here. They come from botocore's own service model (the same data
the SDK is generated from) rather than being copied: a new runtime in a boto3 release is accepted
without a layerpack release.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from packer.errors import LayerpackError, PublishError
from packer.findings import Finding, Severity, define, finding
from packer.publish.archive import Archive
from packer.publish.plan import LayerRequest, publish_params
from packer.quotas import REQUEST_LIMIT, UNZIPPED_LIMIT, inline_request_bytes, largest_inline_zip, upload_route
from packer.render import human_bytes

BAD_NAME = define("LP701", Severity.ERROR, "layer name AWS would reject",
                  "use 1-140 characters from letters, digits, '-' and '_'")
BAD_RUNTIME = define("LP702", Severity.ERROR, "runtime is not one Lambda accepts",
                     "pick one from `layerpack runtimes` or the list in the message (`--runtime none` to declare none)")
TOO_MANY_RUNTIMES = define("LP703", Severity.ERROR, "more compatible runtimes than Lambda allows",
                           "declare at most 15 runtimes")
ARCH_CONFLICT = define("LP704", Severity.ERROR, "--arch disagrees with the ELF files in the layer",
                       "drop --arch (layerpack reads it from the ELF files) or rebuild the binaries for that architecture")
LONG_DESCRIPTION = define("LP705", Severity.ERROR, "description longer than Lambda allows",
                          "shorten --description to 256 characters")
LONG_LICENSE = define("LP706", Severity.ERROR, "license info longer than Lambda allows",
                      "use an SPDX id or a URL (at most 512 characters)")
MIXED_ARCH = define("LP707", Severity.ERROR, "the layer holds ELF files for both x86_64 and arm64",
                    "build one layer per architecture: a function runs on exactly one")
FOREIGN_MACHINE = define("LP708", Severity.ERROR, "ELF file for a machine Lambda does not run",
                         "Lambda runs x86_64 and arm64 (aarch64) only: rebuild or remove the file")
BAD_ZIP = define("LP709", Severity.ERROR, "not a zip Lambda can unpack",
                 "rebuild it with `layerpack build`")
BAD_ENTRY = define("LP710", Severity.ERROR, "zip entry Lambda cannot unpack safely",
                   "rebuild the zip from a directory with `layerpack build` (no absolute or '..' names)")
TOO_BIG_UNZIPPED = define("LP711", Severity.ERROR, f"unzipped size over Lambda's {UNZIPPED_LIMIT:,}-byte quota",
                          "slim the layer (`layerpack slim`) or split it; the quota covers the function and all its layers")
NEEDS_S3 = define("LP712", Severity.ERROR, "zip too large to publish inline (request limit 69,905,067 bytes)",
                  "pass --s3-bucket BUCKET (in the same region) to publish through S3")
BAD_BUCKET = define("LP713", Severity.ERROR, "S3 bucket name or placement AWS would reject",
                    "use a bucket in each target region; with several regions write --s3-bucket 'name-{region}'")
BAD_PRINCIPAL = define("LP714", Severity.ERROR, "account or organization id AWS would reject",
                       "an account is 12 digits; an organization id looks like o-abc123defg")
UNREADABLE_ELF = define("LP715", Severity.WARNING, "ELF file could not be read; its architecture is unknown",
                        "check the file with `layerpack analyze`; a truncated binary will not run either")
NO_ELF = define("LP716", Severity.INFO, "no ELF files: CompatibleArchitectures left out",
                "pass --arch x86_64 or --arch arm64 if the layer only works on one")
BAD_REGION = define("LP717", Severity.ERROR, "region name AWS would reject",
                    "use names like us-east-1; several regions are comma-separated: --region us-east-1,eu-west-1")
DEPRECATED_RUNTIME = define("LP718", Severity.WARNING, "declared runtime is deprecated",
                            "Lambda no longer lets new functions use it; declare a supported runtime")


@dataclass(frozen=True)
class Limits:
    """PublishLayerVersion's input constraints, read from botocore's model of the Lambda API."""

    name_pattern: str
    name_min: int
    name_max: int
    runtimes: tuple[str, ...]
    max_runtimes: int
    architectures: tuple[str, ...]
    max_architectures: int
    description_max: int
    license_max: int
    bucket_pattern: str
    bucket_min: int
    bucket_max: int
    principal_pattern: str
    org_pattern: str
    org_max: int


@functools.lru_cache(maxsize=1)
def limits() -> Limits:
    import botocore.exceptions
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model("lambda")
    except botocore.exceptions.BotoCoreError as exc:  # it reads ~/.aws/config, which may be malformed
        raise PublishError(f"AWS configuration: {exc}") from None
    publish = model.operation_model("PublishLayerVersion").input_shape.members
    permission = model.operation_model("AddLayerVersionPermission").input_shape.members
    content = publish["Content"].members
    name = publish["LayerName"].metadata
    bucket = content["S3Bucket"].metadata
    return Limits(
        name_pattern=name["pattern"], name_min=name.get("min", 1), name_max=_plain_name_max(name),
        runtimes=tuple(publish["CompatibleRuntimes"].member.enum),
        max_runtimes=publish["CompatibleRuntimes"].metadata["max"],
        architectures=tuple(publish["CompatibleArchitectures"].member.enum),
        max_architectures=publish["CompatibleArchitectures"].metadata["max"],
        description_max=publish["Description"].metadata["max"],
        license_max=publish["LicenseInfo"].metadata["max"],
        bucket_pattern=bucket["pattern"], bucket_min=bucket["min"], bucket_max=bucket["max"],
        principal_pattern=permission["Principal"].metadata["pattern"],
        org_pattern=permission["OrganizationId"].metadata["pattern"],
        org_max=permission["OrganizationId"].metadata["max"],
    )


# Region names as AWS spells them (us-east-1, ap-southeast-4, us-gov-west-1, cn-north-1, eusc-de-east-1).
REGION_RE = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")


def _plain_name_max(meta: dict) -> int:
    """The longest plain layer name. botocore up to 1.43 models LayerName with max 140; from 1.44 the
    shape is LayerNameOrArn (max 2048, for ARNs) and the name's own limit lives in the pattern as
    `[a-zA-Z0-9-_]{1,140}`. Read it from there when present."""
    m = re.search(r"\[a-zA-Z0-9-_\]\{1,(\d+)\}", meta.get("pattern", ""))
    return min(meta["max"], int(m.group(1))) if m else meta["max"]


def validate_name(name: str) -> list[Finding]:
    lim = limits()
    if name.startswith("arn:"):
        return [finding(BAD_NAME, name, "give the layer's name, not an ARN: the ARN fixes one region and account")]
    if not (lim.name_min <= len(name) <= lim.name_max) or not re.fullmatch(lim.name_pattern, name):
        return [finding(BAD_NAME, name, f"layer name {name!r} must be {lim.name_min}-{lim.name_max} characters "
                                        "of letters, digits, '-' and '_'")]
    return []


def validate_request(request: LayerRequest) -> list[Finding]:
    """Checks on the options alone (no zip needed)."""
    lim = limits()
    out = validate_name(request.name)
    for rt in dict.fromkeys(request.runtimes):
        if rt not in lim.runtimes:
            close = [r for r in lim.runtimes if r.split(".")[0].rstrip("0123456789") == rt.split(".")[0].rstrip("0123456789")]
            out.append(finding(BAD_RUNTIME, rt, f"runtime {rt!r} is not in Lambda's Runtime enum; "
                                                f"accepted: {', '.join(close or lim.runtimes)}"))
        else:
            dep = _deprecated(rt)
            if dep:
                out.append(finding(DEPRECATED_RUNTIME, rt, f"runtime {rt} is deprecated ({dep})"))
    if len(set(request.runtimes)) > lim.max_runtimes:
        out.append(finding(TOO_MANY_RUNTIMES, "--runtime", f"{len(set(request.runtimes))} runtimes declared; "
                                                          f"Lambda allows at most {lim.max_runtimes}"))
    for arch in request.architectures:
        if arch not in lim.architectures:
            out.append(finding(ARCH_CONFLICT, arch, f"architecture {arch!r} is not one of {', '.join(lim.architectures)}"))
    if len(request.description) > lim.description_max:
        out.append(finding(LONG_DESCRIPTION, "--description", f"description is {len(request.description)} characters; "
                                                              f"Lambda allows {lim.description_max}"))
    if len(request.license) > lim.license_max:
        out.append(finding(LONG_LICENSE, "--license", f"license info is {len(request.license)} characters; "
                                                      f"Lambda allows {lim.license_max}"))
    for region in request.regions:
        if not REGION_RE.fullmatch(region):
            out.append(finding(BAD_REGION, region, f"{region!r} is not a region name"))
    if request.s3_bucket is not None:
        if len(set(request.regions)) > 1 and "{region}" not in request.s3_bucket:
            out.append(finding(BAD_BUCKET, request.s3_bucket,
                               "Lambda reads the zip only from a bucket in the region it publishes to, and "
                               f"{len(set(request.regions))} regions were given with one bucket"))
        for region in dict.fromkeys(request.regions or ("us-east-1",)):
            bucket = request.bucket_for(region) or ""
            if not (lim.bucket_min <= len(bucket) <= lim.bucket_max) or not re.fullmatch(lim.bucket_pattern, bucket):
                out.append(finding(BAD_BUCKET, bucket, f"bucket name {bucket!r} is not valid "
                                                       f"({lim.bucket_min}-{lim.bucket_max} characters, no trailing '.')"))
                break
    for account in request.accounts:
        if not re.fullmatch(r"\d{12}", account):
            out.append(finding(BAD_PRINCIPAL, account, f"account id {account!r} is not 12 digits"))
    for org in request.orgs:
        if len(org) > lim.org_max or not re.fullmatch(lim.org_pattern, org):
            out.append(finding(BAD_PRINCIPAL, org, f"organization id {org!r} does not match {lim.org_pattern}"))
    return out


def validate_archive(request: LayerRequest, archive: Archive) -> list[Finding]:
    """Checks on the zip, given the options (architectures declared, bucket or not)."""
    src = str(archive.path)
    out: list[Finding] = []
    if archive.corrupt:
        return [finding(BAD_ZIP, src, f"{src}: {archive.corrupt}")]
    for member, why in archive.bad_entries:
        out.append(finding(BAD_ENTRY, member, f"{src}: entry {member!r}: {why}"))
    if archive.unzipped_size >= UNZIPPED_LIMIT:  # Lambda: "must be smaller than"
        out.append(finding(TOO_BIG_UNZIPPED, src, f"{src} unzips to {archive.unzipped_size:,} bytes "
                                                  f"({human_bytes(archive.unzipped_size)}); Lambda allows less than "
                                                  f"{UNZIPPED_LIMIT:,} for the function and all its layers together",
                           unzipped_size=archive.unzipped_size))
    if len(archive.architectures) > 1:
        a, b = archive.architectures[:2]
        out.append(finding(MIXED_ARCH, src, f"{src}: {_sample(archive.elf_machines[a])} are {a} but "
                                            f"{_sample(archive.elf_machines[b])} are {b}"))
    for machine in archive.foreign_machines:
        out.append(finding(FOREIGN_MACHINE, archive.elf_machines[machine][0],
                           f"{_sample(archive.elf_machines[machine])} built for {machine}"))
    if request.architectures and archive.architectures:
        extra = set(archive.architectures) - set(request.architectures)
        if extra or set(request.architectures) - set(archive.architectures):
            found = ", ".join(f"{a} ({_sample(archive.elf_machines[a])})" for a in archive.architectures)
            out.append(finding(ARCH_CONFLICT, src, f"--arch {','.join(request.architectures)} declared, "
                                                   f"but the ELF files are {found}"))
    for member, why in archive.unreadable_elf:
        out.append(finding(UNREADABLE_ELF, member, f"{member}: {why}"))
    if not archive.elf_machines and not request.architectures:
        out.append(finding(NO_ELF, src, f"{src} holds no ELF files; the layer declares no architecture"))
    if request.s3_bucket is None and upload_route(archive.size) == "s3":
        out.append(finding(NEEDS_S3, src, f"{src} is {archive.size:,} bytes ({human_bytes(archive.size)}); inline it "
                                          f"would make a request of about "
                                          f"{inline_request_bytes(publish_params(request, archive), archive.size):,} "
                                          f"bytes, and layerpack sends nothing over {largest_inline_zip():,} bytes "
                                          f"inline (Lambda refuses requests of {REQUEST_LIMIT:,} bytes or more)",
                           size=archive.size))
    return out


def validate(request: LayerRequest, archive: Archive | None = None) -> list[Finding]:
    findings = validate_request(request)
    if archive is not None:
        findings += validate_archive(request, archive)
    return findings


def _sample(paths: tuple[str, ...], n: int = 2) -> str:
    shown = ", ".join(paths[:n])
    return shown + (f" and {len(paths) - n} more" if len(paths) > n else "")


def _deprecated(name: str) -> str | None:
    """'since 2024-01-08' when layerpack's runtime data says the runtime's deprecation date has passed."""
    from packer import runtime

    try:
        dates = {str(rt.deprecated) for rt in runtime.all_runtimes() if rt.name == name and rt.deprecated}
    except LayerpackError:  # policy data problems are reported by the commands that need it
        return None
    today = runtime.today()  # one definition of "today" and of "past" for every command
    past = sorted(d for d in (runtime.deprecated_since(x, today) for x in dates) if d)
    return f"since {past[0]}" if past else None
