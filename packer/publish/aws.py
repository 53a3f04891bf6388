"""boto3 plumbing shared by `publish` and `layers`: sessions, clients, and errors as one line.

Credentials, profiles and endpoints come from boto3's standard chain (`AWS_PROFILE`,
`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`…), so layerpack behaves like the AWS CLI. Every botocore
exception is turned into a `PublishError` whose text names the operation and the service's own
reason — never a credential, and never a presigned URL (responses are reduced to plain fields
before anything is printed).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from packer import __version__
from packer.errors import PublishError

# Standard retry mode retries throttling (TooManyRequestsException, 429), 5xx and dropped connections
# with exponential backoff. AWS_MAX_ATTEMPTS (the AWS CLI's variable) overrides the attempt count.
DEFAULT_MAX_ATTEMPTS = 5


def retries() -> dict[str, Any]:
    try:
        attempts = max(1, int(os.environ.get("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))
    except ValueError:
        raise PublishError(f"AWS_MAX_ATTEMPTS={os.environ['AWS_MAX_ATTEMPTS']!r} is not a number") from None
    return {"mode": "standard", "total_max_attempts": attempts}  # attempts including the first


@dataclass(frozen=True)
class AwsOptions:
    profile: str | None = None
    endpoint_url: str | None = None


def session(opts: AwsOptions, region: str | None = None) -> Any:
    """A new boto3 session (one per thread: sessions are not thread-safe, clients are)."""
    import boto3
    import botocore.exceptions

    try:
        return boto3.session.Session(profile_name=opts.profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise PublishError(f"AWS profile {exc.kwargs.get('profile', opts.profile)!r} not found",
                           hint="check --profile and AWS_PROFILE against ~/.aws/config") from None


def resolve_regions(opts: AwsOptions, regions: tuple[str, ...]) -> tuple[str, ...]:
    """The regions given, else the session's default region; none at all is one clear error."""
    if regions:
        return tuple(dict.fromkeys(regions))
    default = session(opts).region_name
    if not default:
        raise PublishError("no AWS region configured",
                           hint="pass --region us-east-1 (or set AWS_REGION / AWS_DEFAULT_REGION, or region in ~/.aws/config)")
    return (default,)


def require_credentials(opts: AwsOptions) -> None:
    """Fail before any work when boto3 finds no credentials (it would fail later, mid-upload)."""
    import botocore.exceptions

    try:
        creds = session(opts).get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise PublishError(f"cannot load AWS credentials: {exc}") from None
    if creds is None:
        raise PublishError("no AWS credentials found",
                           hint="set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                "or run `aws configure` / `aws sso login`")


def client(opts: AwsOptions, service: str, region: str) -> Any:
    from botocore.config import Config

    cfg = Config(retries=retries(), user_agent_extra=f"layerpack/{__version__}",
                 connect_timeout=10, read_timeout=300)
    with aws_errors(f"{service} client for {region}"):
        return session(opts, region).client(service, region_name=region, endpoint_url=opts.endpoint_url, config=cfg)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Translate botocore/boto3 failures into one line: `<what>: <service's reason>`."""
    import boto3.exceptions
    import botocore.exceptions as bx

    try:
        yield
    except bx.NoCredentialsError:
        raise PublishError("no AWS credentials found",
                           hint="set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except bx.NoRegionError:
        raise PublishError("no AWS region configured", hint="pass --region us-east-1") from None
    except bx.ClientError as exc:
        err = exc.response.get("Error", {})
        code = err.get("Code") or "error"
        message = err.get("Message") or err.get("message") or str(exc)
        raise PublishError(f"{what}: {code}: {message}") from None
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise PublishError(f"{what}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}",
                           hint="check the network, --region and --endpoint-url / AWS_ENDPOINT_URL") from None
    except bx.ParamValidationError as exc:
        raise PublishError(f"{what}: {exc}") from None
    except boto3.exceptions.S3UploadFailedError as exc:
        raise PublishError(f"{what}: {exc}") from None
    except bx.BotoCoreError as exc:
        raise PublishError(f"{what}: {exc}") from None
