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

    # AWS_REGION is what the AWS CLI v2 and the SDKs of other languages read first; the installed
    # botocore only reads AWS_DEFAULT_REGION, so it is passed explicitly.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        return boto3.session.Session(profile_name=opts.profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise PublishError(f"AWS profile {exc.kwargs.get('profile', opts.profile)!r} not found",
                           hint="check --profile and AWS_PROFILE against ~/.aws/config") from None
    except botocore.exceptions.BotoCoreError as exc:  # a malformed ~/.aws/config or credentials file
        raise PublishError(f"AWS configuration: {exc}") from None


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
    except ValueError as exc:  # credential_process printed something that is not JSON
        raise PublishError(f"cannot load AWS credentials: credential_process output is not JSON ({exc})") from None
    if creds is None:
        raise PublishError("no AWS credentials found",
                           hint="set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                "or run `aws configure` / `aws sso login`")


# Lambda's control-plane calls answer in well under a second; PublishLayerVersion with a 50 MiB
# inline body has been seen to take tens of seconds. A read timeout of 120 s leaves room for that
# without waiting botocore's 60 s x 5 attempts x several calls (about 25 minutes) on an endpoint
# that accepts connections and never answers. LAYERPACK_READ_TIMEOUT overrides (seconds).
CONNECT_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 120
# Codes AWS uses for "not now" (the request was not processed); any 5xx means "outcome unknown".
_THROTTLING = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                         "SlowDown", "ServiceUnavailable", "ServiceException"})


def env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1
    if not value > 0:
        raise PublishError(f"{name}={raw!r} is not a positive number of seconds")
    return value


def read_timeout() -> float:
    return env_seconds("LAYERPACK_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)


def client(opts: AwsOptions, service: str, region: str, *, single_attempt: bool = False) -> Any:
    """A client with layerpack's timeouts; `single_attempt` for calls that must not be resent blindly
    (PublishLayerVersion: see packer.publish.once)."""
    from botocore.config import Config

    policy = {"mode": "standard", "total_max_attempts": 1} if single_attempt else retries()
    cfg = Config(retries=policy, user_agent_extra=f"layerpack/{__version__}",
                 connect_timeout=CONNECT_TIMEOUT, read_timeout=read_timeout())
    with aws_errors(f"{service} client for {region}"):
        return session(opts, region).client(service, region_name=region, endpoint_url=opts.endpoint_url, config=cfg)


def failure_is_final(exc: BaseException) -> bool | None:
    """True: the service refused (sending again cannot help); False: the outcome is unknown or the
    service asked to slow down (retry after checking); None: not an AWS failure at all."""
    import botocore.exceptions as bx

    if isinstance(exc, bx.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return not (status >= 500 or status == 429 or error_code(exc) in _THROTTLING)
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError)):
        return False  # timeouts, refused or dropped connections
    if isinstance(exc, bx.BotoCoreError):
        return True
    return None


def describe_failure(exc: BaseException) -> str:
    """One line that tells "no answer" from "cannot connect" from "the service said no"."""
    import botocore.exceptions as bx

    endpoint = getattr(exc, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
    if isinstance(exc, bx.ReadTimeoutError):
        return (f"no answer from {endpoint} within {read_timeout():g} s (read timeout: the endpoint took the "
                "request but did not respond)")
    if isinstance(exc, (bx.ConnectTimeoutError, bx.EndpointConnectionError)):
        return f"cannot reach {endpoint} (no connection within {CONNECT_TIMEOUT} s, or refused)"
    if isinstance(exc, bx.ConnectionClosedError):
        return f"{endpoint} closed the connection before answering"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{err.get('Code') or status or 'error'}: {err.get('Message') or err.get('message') or exc}"
    return str(exc)


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
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as exc:
        raise PublishError(f"{what}: {describe_failure(exc)}",
                           hint="check the network, --region and --endpoint-url / AWS_ENDPOINT_URL") from None
    except (bx.ReadTimeoutError, bx.ConnectionClosedError) as exc:
        raise PublishError(f"{what}: {describe_failure(exc)}",
                           hint="the service may be slow or a proxy may hold the request; "
                                "LAYERPACK_READ_TIMEOUT sets the wait in seconds") from None
    except bx.ParamValidationError as exc:
        raise PublishError(f"{what}: {exc}") from None
    except boto3.exceptions.S3UploadFailedError as exc:
        raise PublishError(f"{what}: {exc}") from None
    except bx.BotoCoreError as exc:
        raise PublishError(f"{what}: {exc}") from None
