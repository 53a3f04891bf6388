"""Read what a region already has: the latest version of a layer, its versions, all layers.

ListLayerVersions items carry no CodeSha256 on real AWS, so the latest version is found by listing
and then read with GetLayerVersion. Nothing here writes.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from packer.publish.aws import aws_errors, error_code
from packer.publish.plan import RemoteVersion


def list_versions(lam: Any, name: str) -> list[dict[str, Any]]:
    """Every live version of a layer, newest first ([] when the layer does not exist)."""
    out: list[dict[str, Any]] = []
    with aws_errors(f"ListLayerVersions {name}"):
        try:
            for page in lam.get_paginator("list_layer_versions").paginate(LayerName=name):
                out.extend(page.get("LayerVersions", []))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise
    return sorted(out, key=lambda v: int(v["Version"]), reverse=True)


def latest_version(lam: Any, name: str) -> RemoteVersion | None:
    versions = list_versions(lam, name)
    if not versions:
        return None
    return get_version(lam, name, int(versions[0]["Version"]))


def get_version(lam: Any, name: str, version: int) -> RemoteVersion:
    with aws_errors(f"GetLayerVersion {name}:{version}"):
        return RemoteVersion.from_api(lam.get_layer_version(LayerName=name, VersionNumber=version))


def list_layers(lam: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with aws_errors("ListLayers"):
        for page in lam.get_paginator("list_layers").paginate():
            out.extend(page.get("Layers", []))
    return sorted(out, key=lambda layer: layer.get("LayerName", ""))


def policy_statement_ids(lam: Any, name: str, version: int) -> set[str]:
    """Statement ids already on a layer version (none when it has no policy yet)."""
    with aws_errors(f"GetLayerVersionPolicy {name}:{version}"):
        try:
            policy = lam.get_layer_version_policy(LayerName=name, VersionNumber=version).get("Policy") or "{}"
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return set()
            raise
    try:
        statements = json.loads(policy).get("Statement", [])
    except (ValueError, AttributeError):
        return set()
    return {s.get("Sid") for s in statements if isinstance(s, dict) and s.get("Sid")}
