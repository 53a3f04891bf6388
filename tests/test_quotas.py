"""Lambda's quotas live in packer/quotas.py, and check, build and publish route a zip the same way.

Before: check/build said "direct upload" for zips of 52,422,574 to 52,425,726 bytes for which
publish chose S3 (two formulas with different overheads)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from packer import budget, quotas
from packer.package import check
from packer.publish.plan import LayerRequest, plan_region, publish_params
from packer.publish.validate import limits, validate
from tests.test_publish_plan import archive

OLD_BAND = (52_422_574, 52_425_726)


def test_the_worst_case_request_body_fits_the_allowance() -> None:
    """The largest request botocore's model lets through: 15 runtimes, both architectures, the
    longest description and license, every character escaped by json.dumps."""
    lim = limits()
    request = LayerRequest("x", runtimes=tuple(sorted(lim.runtimes, key=len, reverse=True)[:lim.max_runtimes]),
                           architectures=lim.architectures, description="\x01" * lim.description_max,
                           license="\x01" * lim.license_max)
    params = publish_params(request, archive(archs=lim.architectures))
    assert quotas.inline_request_bytes(params, 0) <= quotas.MAX_REQUEST_BODY


def test_the_inline_boundary_is_just_under_50_mib() -> None:
    n = quotas.largest_inline_zip()
    assert quotas.upload_route(n) == "inline" and quotas.upload_route(n + 1) == "s3"
    assert quotas.base64_size(n) + quotas.MAX_REQUEST_BODY + quotas.REQUEST_MARGIN < quotas.REQUEST_LIMIT
    assert 52_400_000 < n < 50 * 1024 * 1024
    assert quotas.upload_route(50 * 1024 * 1024) == "s3"  # its base64 alone is over the request limit


def _resize_zip(path: Path, size: int) -> None:
    """Make the zip exactly `size` bytes by rewriting its archive comment (nothing else moves)."""
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    base = eocd + 22
    pad = size - base
    assert 0 <= pad <= 0xFFFF
    with open(path, "r+b") as fh:
        fh.seek(eocd + 20)
        fh.write(struct.pack("<H", pad) + b"c" * pad)
        fh.truncate(size)


@pytest.fixture(scope="module")
def big_zip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("q") / "layer.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo("data.bin", (2020, 1, 1, 0, 0, 0)), b"\0" * (quotas.largest_inline_zip() - 200))
    return path


@pytest.mark.parametrize("size", [quotas.largest_inline_zip(), quotas.largest_inline_zip() + 1, OLD_BAND[0],
                                  (OLD_BAND[0] + OLD_BAND[1]) // 2, OLD_BAND[1], OLD_BAND[1] + 1])
def test_check_build_and_publish_route_a_zip_the_same_way(big_zip: Path, size: int) -> None:
    _resize_zip(big_zip, size)
    assert big_zip.stat().st_size == size
    report = check(big_zip, zipped=True)
    via_check = {"direct": "inline", "s3": "s3"}[report.upload]
    via_build = "s3" if budget.needs_s3(size) else "inline"  # what `build` prints and puts in its JSON
    via_publish = plan_region(LayerRequest("x"), archive(size=size), "us-east-1", None).transport
    refused_without_bucket = any(f.code == "LP712" for f in validate(LayerRequest("x"), archive(size=size)))
    assert via_check == via_build == via_publish == quotas.upload_route(size)
    assert refused_without_bucket == (via_publish == "s3")
    assert any(f.code == "LP503" for f in report.findings) == (via_check == "s3")


def test_the_s3_finding_names_the_same_boundary() -> None:
    assert f"{quotas.largest_inline_zip():,} bytes or less" in budget.VIA_S3.hint
    (f,) = budget.upload_findings("x.zip", quotas.largest_inline_zip() + 1)
    assert f.code == "LP503" and f"over {quotas.largest_inline_zip():,}" in f.message
    assert budget.upload_findings("x.zip", quotas.largest_inline_zip()) == []


def test_lambdas_limit_numbers_are_written_only_in_quotas() -> None:
    """Issue 24: 262,144,000 was written four times and publish's copy was off by one. Every number
    literal of a Lambda limit in packer/ must be quotas.py's (900 and 128 are too common to police)."""
    import io
    import tokenize

    facts = {quotas.UNZIPPED_LIMIT, quotas.MAX_MEMORY_MB, quotas.INVOKE_REQUEST_LIMIT, quotas.RESPONSE_PAYLOAD_LIMIT,
             quotas.REQUEST_LIMIT}
    root = Path(quotas.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "quotas.py":
            continue
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
            if tok.type == tokenize.NUMBER and "j" not in tok.string.lower():
                value = float(tok.string) if any(c in tok.string for c in ".eE") and "x" not in tok.string else None
                number = value if value is not None else int(tok.string, 0)
                if number in facts:
                    found.append(f"{path.relative_to(root)}:{tok.start[0]}: {tok.string}")
    assert found == []
    assert quotas.MAX_TIMEOUT_S == 900 and (quotas.MIN_MEMORY_MB, quotas.MAX_MEMORY_MB) == (128, 10_240)
    assert quotas.RESPONSE_PAYLOAD_LIMIT == 6_291_556 and quotas.INVOKE_REQUEST_LIMIT == 6_291_456
