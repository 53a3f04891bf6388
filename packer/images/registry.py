"""A small client for the OCI distribution API (pull, plus the push the tests need), on `requests`.

Why not `oras` (oras-py 0.2.43, which the issue suggested)? It was evaluated and does not fit:
- `Registry.do_request` is wrapped in `decorator.retry(attempts=5, timeout=2)`, which sleeps
  `2 + 3**attempt` seconds after any exception: a stopped or unreachable registry costs
  3+5+11+29+83 = 131 s of silent retries before the user hears anything (oras/decorator.py).
- `get_manifest` returns `response.json()`: the manifest's bytes are gone, so its digest cannot be
  checked, and the `Docker-Content-Digest` header is not exposed.
- `download_blob` writes the stream to the file without checking its digest, and swallows every
  error for the empty blob; layerpack must refuse a blob whose bytes do not hash to its digest.
- `insecure` is per client object, not per host, so "plain HTTP only for loopback" would be ours anyway.
What oras does well (the anonymous bearer-token dance) is 30 lines here; everything else would be
worked around. So the protocol is spoken directly: `GET /v2/<repo>/manifests/<ref>`,
`GET /v2/<repo>/blobs/<digest>`, the `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge
answered anonymously (ECR Public hands out anonymous tokens), HTTPS always except for loopback hosts.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import requests

from packer.errors import ImageError
from packer.images.reference import is_loopback

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CHUNK = 1 << 20
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')

Progress = Callable[[int], None]  # called with the number of bytes just received


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """The hex part of a sha256 digest; anything else is refused (no other algorithm is trusted)."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexpart):
        raise ImageError(f"unsupported or malformed digest {digest!r} (only sha256 is accepted)")
    return hexpart


class RegistryClient:
    """One registry host. Tokens are cached per repository scope for the client's lifetime."""

    def __init__(self, registry: str, *, timeout: float = 30.0) -> None:
        self.registry = registry
        self.base = ("http" if is_loopback(registry) else "https") + f"://{registry}"
        self.session = requests.Session()
        self.timeout = timeout
        self._tokens: dict[str, str] = {}

    # -- transport -------------------------------------------------------------------------------
    def _send(self, method: str, url: str, scope: str, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if scope in self._tokens:
            headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        try:
            resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            if resp.status_code == 401 and scope not in self._tokens:
                self._tokens[scope] = self._token(resp, scope)
                resp.close()
                headers["Authorization"] = f"Bearer {self._tokens[scope]}"
                resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ImageError(f"cannot reach registry {self.registry}: {_reason(exc)}",
                             hint="check the address; a cached image is used without the network") from exc
        return resp

    def _token(self, resp: requests.Response, scope: str) -> str:
        """Answer a Bearer challenge anonymously (the registry's token endpoint, no credentials)."""
        challenge = resp.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer "):
            raise ImageError(f"registry {self.registry} wants {challenge.split(' ')[0] or 'unknown'} "
                             "authentication; layerpack pulls anonymously only")
        fields = dict(_CHALLENGE.findall(challenge))
        realm = fields.get("realm", "")
        if not (realm.startswith("https://") or (realm.startswith("http://") and is_loopback(realm[7:].split("/")[0]))):
            raise ImageError(f"registry {self.registry}: refusing token realm {realm!r} (HTTPS or loopback only)")
        params = {k: v for k, v in (("service", fields.get("service")), ("scope", fields.get("scope") or scope)) if v}
        try:
            answer = self.session.get(realm, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ImageError(f"cannot reach the token service of {self.registry}: {_reason(exc)}") from exc
        if answer.status_code != 200:
            raise ImageError(f"registry {self.registry} refused an anonymous token ({answer.status_code})",
                             hint="the repository may be private; layerpack pulls anonymously only")
        try:
            data = answer.json()
            return str(data.get("token") or data["access_token"])
        except (ValueError, KeyError, AttributeError) as exc:
            raise ImageError(f"registry {self.registry}: unreadable token answer") from exc

    def _fail(self, resp: requests.Response, what: str) -> ImageError:
        detail = ""
        try:
            errors = resp.json().get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        except (ValueError, AttributeError):
            pass
        return ImageError(f"{self.registry}: {what}: HTTP {resp.status_code}" + (f" ({detail})" if detail else ""))

    # -- pulling -----------------------------------------------------------------------------------
    def manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index, its digest checked against the bytes."""
        scope = f"repository:{repo}:pull"
        resp = self._send("GET", f"{self.base}/v2/{repo}/manifests/{reference}", scope,
                          headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if resp.status_code == 404:
            raise ImageError(f"{self.registry}/{repo}:{reference}: no such image on the registry")
        if resp.status_code != 200:
            raise self._fail(resp, f"manifest {repo}:{reference}")
        body = resp.content
        digest = sha256_digest(body)
        claimed = resp.headers.get("Docker-Content-Digest")
        if reference.startswith("sha256:") and reference != digest:
            raise ImageError(f"manifest {reference} of {self.registry}/{repo}: its bytes hash to {digest}; refused")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise ImageError(f"manifest of {self.registry}/{repo}:{reference}: registry says {claimed}, "
                             f"bytes hash to {digest}; refused")
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return body, media, digest

    def blob(self, repo: str, digest: str, dest: Path, progress: Progress | None = None) -> Path:
        """Download `digest` to `dest` atomically; refused (and nothing left behind) if the bytes differ."""
        check_digest(digest)
        resp = self._send("GET", f"{self.base}/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull", stream=True)
        if resp.status_code != 200:
            raise self._fail(resp, f"blob {digest}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=dest.parent)
        h = hashlib.sha256()
        try:
            with resp, os.fdopen(fd, "wb") as out:
                for chunk in resp.iter_content(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
            got = "sha256:" + h.hexdigest()
            if got != digest:
                raise ImageError(f"blob {digest} from {self.registry}/{repo}: bytes hash to {got}; refused",
                                 hint="the registry or a proxy served corrupt data; nothing was cached")
            os.replace(tmp, dest)
        except requests.RequestException as exc:
            raise ImageError(f"download of {digest} from {self.registry} broke off: {_reason(exc)}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    # -- pushing (used to fill a registry, e.g. the tests' own) ----------------------------------------
    def push_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        """Monolithic upload: POST an upload session, PUT the bytes with their digest."""
        digest = digest or sha256_digest(data)
        scope = f"repository:{repo}:pull,push"
        resp = self._send("POST", f"{self.base}/v2/{repo}/blobs/uploads/", scope)
        if resp.status_code != 202:
            raise self._fail(resp, f"start upload to {repo}")
        location = resp.headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        resp = self._send("PUT", f"{location}{sep}digest={digest}", scope, data=data,
                          headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 201:
            raise self._fail(resp, f"upload {digest} to {repo}")
        return digest

    def push_manifest(self, repo: str, tag: str, body: bytes, media_type: str) -> str:
        resp = self._send("PUT", f"{self.base}/v2/{repo}/manifests/{tag}", f"repository:{repo}:pull,push",
                          data=body, headers={"Content-Type": media_type})
        if resp.status_code != 201:
            raise self._fail(resp, f"manifest {repo}:{tag}")
        return sha256_digest(body)


def _reason(exc: Exception) -> str:
    """The innermost cause in a few words (requests nests urllib3 errors three deep)."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if m:
        return m.group(1).strip()
    return text.split(":")[-1].strip() or exc.__class__.__name__
