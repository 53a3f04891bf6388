"""PublishLayerVersion exactly once, although the call is not idempotent.

Lambda has no idempotency token for PublishLayerVersion: when the answer is lost after Lambda
processed the request (a 5xx from a proxy, a dropped connection, a read timeout), botocore's own
retry sends it again and a second identical version appears; after five such faults the command
used to report failure while five versions existed. So:

* the publish call itself is never retried by botocore (one attempt per client call);
* after every failure whose outcome is unknown, and before reporting any failure, the versions
  created since the run started are read and one with the same CodeSha256, description, runtimes,
  architectures and licence is adopted instead of publishing again;
* one run per layer at a time on this machine (an exclusive `flock` on a file keyed by credentials,
  endpoint, region and layer), and right before publishing, under the lock, the latest version is
  read again, so two concurrent `publish` of the same bytes make one version.

What remains: two machines publishing the same bytes at the same instant can still make two
versions — Lambda offers no conditional publish and no lock; the window is between the re-check
and the publish (one round trip). `layers delete` removes the extra one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packer.errors import PublishError
from packer.publish.archive import Archive, digests_equal
from packer.publish.aws import describe_failure, env_seconds, failure_is_final, retries
from packer.publish.plan import RemoteVersion
from packer.publish.remote import get_version, list_versions

# Whole publish of one region, retries included; LAYERPACK_PUBLISH_DEADLINE overrides (seconds).
DEFAULT_DEADLINE = 900.0
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)


def deadline_seconds() -> float:
    return env_seconds("LAYERPACK_PUBLISH_DEADLINE", DEFAULT_DEADLINE)


def _lock_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "layerpack" / "locks"


@contextlib.contextmanager
def layer_lock(*identity: str) -> Iterator[None]:
    """Exclusive per-layer lock on this machine (released by the kernel if the process dies)."""
    d = _lock_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / (hashlib.sha256("\0".join(identity).encode()).hexdigest()[:32] + ".lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise PublishError(f"cannot create the publish lock in {d}: {exc.strerror}",
                           hint="set XDG_CACHE_HOME to a writable directory") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def same_version(v: RemoteVersion, archive: Archive, params: dict[str, Any]) -> bool:
    """The version holds these bytes with this metadata (what one publish of them would have made)."""
    return (digests_equal(archive.code_sha256, v.code_sha256)
            and v.description == params.get("Description", "")
            and sorted(v.runtimes) == sorted(params.get("CompatibleRuntimes", []))
            and sorted(v.architectures) == sorted(params.get("CompatibleArchitectures", []))
            and v.license == params.get("LicenseInfo", ""))


def find_published(lam: Any, archive: Archive, params: dict[str, Any], newer_than: int) -> RemoteVersion | None:
    """A version newer than `newer_than` holding exactly what we publish, or None."""
    for item in list_versions(lam, params["LayerName"]):
        number = int(item["Version"])
        if number <= newer_than:
            break
        found = get_version(lam, params["LayerName"], number)
        if same_version(found, archive, params):
            return found
    return None


@dataclass
class Outcome:
    version: RemoteVersion
    adopted: bool  # found after a failure whose answer was lost, not returned by our call
    attempts: int


def publish_once(lam: Any, lam_single: Any, archive: Archive, params: dict[str, Any], content: dict[str, Any],
                 before: int, what: str) -> Outcome:
    """Call PublishLayerVersion (through `lam_single`, a client that never retries) until it answers,
    adopting the version a lost answer created; `before` is the newest version seen before."""
    deadline = time.monotonic() + deadline_seconds()
    max_attempts = retries()["total_max_attempts"]
    failures: list[str] = []
    attempt = 0
    checked = False
    while True:
        attempt += 1
        try:
            response = lam_single.publish_layer_version(**params, Content=content)
            return Outcome(RemoteVersion.from_api(response), False, attempt)
        except Exception as exc:  # classified below; anything not from botocore is re-raised
            final = failure_is_final(exc)
            if final is None:
                raise
            failures.append(describe_failure(exc))
        try:
            found = find_published(lam, archive, params, before)
            checked = True
        except PublishError:
            found, checked = None, False
        if found is not None:
            return Outcome(found, True, attempt)
        wait = BACKOFF[min(attempt - 1, len(BACKOFF) - 1)]
        if final or attempt >= max_attempts or time.monotonic() + wait > deadline:
            tried = f" after {attempt} attempts" if attempt > 1 else ""
            known = ("no version with these bytes exists" if checked
                     else "whether a version was created could not be checked: run `layerpack layers list`")
            raise PublishError(f"{what}: {failures[-1]}{tried}; {known}",
                               hint=None if final else "try again later; a rerun adopts a version a lost answer created")
        time.sleep(wait)
