"""Infrastructure-as-code snippets that reference the layer version just published (or kept).

One region: the version ARN written out. Several regions: a region -> ARN map selected by the
stack's own region, so one template deploys everywhere the layer was published.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from packer.errors import UsageError
from packer.publish.plan import RemoteVersion

FORMATS = ("cfn", "sam", "terraform")


def render(fmt: str, name: str, versions: Sequence[tuple[str, RemoteVersion]]) -> str:
    """`versions` is (region, version) in the order the user gave the regions."""
    if not versions:
        raise UsageError("nothing was published, so there is nothing to reference")
    if fmt == "terraform":
        return _terraform(name, versions)
    if fmt in ("cfn", "sam"):
        return _cloudformation(name, versions, sam=fmt == "sam")
    raise UsageError(f"unknown snippet format {fmt!r}; use one of {', '.join(FORMATS)}")


def _header(comment: str, name: str, versions: Sequence[tuple[str, RemoteVersion]]) -> list[str]:
    v = versions[0][1]
    return [f"{comment} Lambda layer {name} published by layerpack (CodeSha256 {v.code_sha256})"]


def _cloudformation(name: str, versions: Sequence[tuple[str, RemoteVersion]], *, sam: bool) -> str:
    v = versions[0][1]
    mapping = "Layerpack" + "".join(p[:1].upper() + p[1:] for p in re.split(r"[-_]", name) if p)
    lines = _header("#", name, versions)
    if sam:
        lines.append("Transform: AWS::Serverless-2016-10-31")
    if len(versions) > 1:
        lines += ["Mappings:", f"  {mapping}:"]
        for region, rv in versions:
            lines += [f"    {region}:", f"      Arn: {rv.arn}"]
        ref = f'!FindInMap [{mapping}, !Ref "AWS::Region", Arn]'
    else:
        ref = v.arn
    lines += ["Resources:", "  Function:",
              f"    Type: {'AWS::Serverless::Function' if sam else 'AWS::Lambda::Function'}",
              "    Properties:"]
    if v.runtimes:
        lines.append(f"      Runtime: {v.runtimes[0]}")
    if v.architectures:
        lines.append(f"      Architectures: [{v.architectures[0]}]")
    lines += ["      Layers:", f"        - {ref}", "      # ...the function's other properties (Code, Handler, Role...)"]
    return "\n".join(lines) + "\n"


def _terraform(name: str, versions: Sequence[tuple[str, RemoteVersion]]) -> str:
    v = versions[0][1]
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    lines = _header("#", name, versions)
    if len(versions) > 1:
        lines += ["data \"aws_region\" \"current\" {}", "", "locals {", f"  {ident}_layer_arns = {{"]
        width = max(len(r) for r, _ in versions) + 2
        for region, rv in versions:
            quoted = f'"{region}"'
            lines.append(f'    {quoted.ljust(width)} = "{rv.arn}"')
        lines += ["  }", f"  {ident}_layer_arn = local.{ident}_layer_arns[data.aws_region.current.name]", "}"]
    else:
        lines += ["locals {", f"  {ident}_layer_arn = \"{v.arn}\"", "}"]
    lines += ["", "resource \"aws_lambda_function\" \"function\" {", f"  layers        = [local.{ident}_layer_arn]"]
    if v.architectures:
        lines.append(f"  architectures = [\"{v.architectures[0]}\"]")
    if v.runtimes:
        lines.append(f"  runtime       = \"{v.runtimes[0]}\"")
    lines += ["  # ...the function's other arguments (function_name, role, filename...)", "}"]
    return "\n".join(lines) + "\n"
