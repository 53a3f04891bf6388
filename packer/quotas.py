"""Lambda's quotas that decide whether a layer fits and how it is uploaded, in one place.

Every command that talks about size (`check`, `build`, `publish`) reads these numbers and asks
`upload_route()` how a zip would travel, so they can never disagree. Sources, in docs/lambda.md:
the Lambda quotas page of the AWS Lambda Developer Guide (250 MB unzipped for a function and all its
layers, 50 MB zipped for a direct upload, 5 layers) and the error text the PublishLayerVersion API
returns ("Unzipped size must be smaller than 262144000 bytes", "Request must be smaller than
69905067 bytes for the PublishLayerVersion operation").
"""

from __future__ import annotations

import json
import math
from typing import Literal

# Source of every number below: AWS Lambda Developer Guide, "Lambda quotas",
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (and the API error texts quoted).
UNZIPPED_LIMIT = 262_144_000  # 250 MB unzipped, function + all layers; strictly smaller ("must be smaller than")
MAX_LAYERS = 5  # per function
REQUEST_LIMIT = 69_905_067  # an inline PublishLayerVersion request must be strictly smaller (base64 of 50 MiB)
MAX_TIMEOUT_S = 900  # function timeout: 900 seconds (15 minutes) at most
MIN_MEMORY_MB = 128  # function memory: 128 MB ...
MAX_MEMORY_MB = 10_240  # ... to 10,240 MB
# Invocation payload, synchronous: 6 MB each way. The emulator takes an Invoke request body of at most
# 6 MiB, as AWS's runtime interface emulator does (its error text reads "Request must be smaller than
# 6291456 bytes for the Invoke operation"); a buffered response may be 100 bytes more: Lambda and
# AWS's runtime interface emulator both accept exactly 6,291,556 bytes.
INVOKE_REQUEST_LIMIT = 6 * 1024 * 1024  # 6,291,456
RESPONSE_PAYLOAD_LIMIT = INVOKE_REQUEST_LIMIT + 100  # 6,291,556, inclusive
STREAMED_RESPONSE_LIMIT = 20 * 1024 * 1024  # a streamed response: 20 MiB

# The JSON around the base64 zip in the largest request PublishLayerVersion accepts: 15 runtimes,
# two architectures, a 256-character description and a 512-character license, each character
# escaped as \uXXXX (6 bytes). Measured with `inline_request_bytes` below on botocore's model:
# 4,979 bytes with botocore 1.43, 4,987 with 1.44 (its runtime enum gained longer names). The allowance
# is 6 KiB so that a newer model's names still fit (tests/test_quotas.py measures the installed one).
# The route must not depend on options that `check` and `build` do not know, so it assumes this worst
# case, plus 8 KiB for whatever a proxy or a header might add.
MAX_REQUEST_BODY = 6_144
REQUEST_MARGIN = 8_192

Route = Literal["inline", "s3"]


def base64_size(n: int) -> int:
    return 4 * math.ceil(n / 3)


def upload_route(zipped_size: int) -> Route:
    """How PublishLayerVersion can receive a zip of this size: `inline` (the zip in the request)
    when even the largest legal request stays under REQUEST_LIMIT with the margin, else `s3`."""
    request = base64_size(zipped_size) + MAX_REQUEST_BODY + REQUEST_MARGIN
    return "inline" if request < REQUEST_LIMIT else "s3"


def largest_inline_zip() -> int:
    """The largest zipped size `upload_route` sends inline (52,418,046 bytes, just under 50 MiB)."""
    lo, hi = 0, REQUEST_LIMIT
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if upload_route(mid) == "inline" else (lo, mid)
    return lo


def inline_request_bytes(params: dict, zip_size: int) -> int:
    """Size of the PublishLayerVersion JSON body with the zip inline (botocore serialises the body
    with `json.dumps` and the blob as base64; LayerName travels in the URL)."""
    body = {k: v for k, v in params.items() if k != "LayerName"}
    body["Content"] = {"ZipFile": ""}
    return len(json.dumps(body).encode("utf-8")) + base64_size(zip_size)
