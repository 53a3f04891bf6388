"""Shared fixtures of the image tests (no tests here): a real OCI registry and a real Debian image.

`registry` is Debian's `docker-registry` (distribution 2.8) on a random loopback port, with a
config file written at test time; `bullseye_image` is `mmdebstrap --variant=minbase --include=curl
bullseye` (Debian 11, glibc 2.31) pushed to it as a one-layer OCI image with the distribution API.
Building the tarball takes minutes, so it is kept between test runs of one machine or CI job in
a cache outside the repository (`LAYERPACK_TEST_IMAGE_CACHE`, else ~/.cache/layerpack-test-images),
keyed by the recipe; the repository never holds it.

Other test modules reuse them with `from tests.images_support import registry, bullseye_image`
(pytest finds imported fixtures), then `image_cache` for a private `LAYERPACK_CACHE_DIR`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from packer.images.registry import DOCKER_MANIFEST, OCI_MANIFEST, RegistryClient, sha256_digest
from tests.conftest import require_tool

MIRROR = os.environ.get("LAYERPACK_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
RECIPE = ["--variant=minbase", "--include=curl", "bullseye"]
BULLSEYE_REF = "lambda/bullseye:1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    """One docker-registry process serving `data` on 127.0.0.1 (start/stop as a test needs).
    With `auth`, the registry demands bearer tokens from that TokenIssuer (Docker's token flow)."""

    data: Path
    workdir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    auth: TokenIssuer | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        exe = require_tool("docker-registry")
        for _ in range(5):
            self.port = _free_port()
            config = self.workdir / f"config-{self.port}.yml"
            config.write_text(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.data}\n  delete:\n    enabled: true\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n" + (self.auth.config() if self.auth else ""))
            log = open(self.workdir / f"registry-{self.port}.log", "wb")
            self.proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
            log.close()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if requests.get(f"http://{self.address}/v2/", timeout=1).status_code in (200, 401):
                        return self
                except requests.RequestException:
                    time.sleep(0.1)
            self.stop()
        pytest.fail(f"docker-registry did not start; see {self.workdir}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def client(self) -> RegistryClient:
        return RegistryClient(self.address)


class TokenIssuer:
    """A token service for docker-registry's `auth: token` mode, as ECR Public's works for anonymous
    pulls: anyone gets a short-lived RS256 JWT for the scope asked, signed by a self-signed certificate
    the registry trusts (`rootcertbundle`). Runs on its own loopback port in a thread."""

    SERVICE, ISSUER = "layerpack-test-registry", "layerpack-test-issuer"

    def __init__(self, workdir: Path) -> None:
        import datetime
        import http.server
        import threading

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "layerpack test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = workdir / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                from urllib.parse import parse_qs, urlparse

                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                issuer.requests.append({"query": query, "authorization": self.headers.get("Authorization")})
                body = json.dumps({"token": issuer.token(query.get("scope", ""))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def config(self) -> str:
        return (f"auth:\n  token:\n    realm: {self.realm}\n    service: {self.SERVICE}\n"
                f"    issuer: {self.ISSUER}\n    rootcertbundle: {self.bundle}\n")

    def token(self, scope: str) -> str:
        import base64

        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        access = []
        for item in filter(None, scope.split(" ")):
            kind, _, rest = item.partition(":")
            repo, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.ISSUER, "sub": "", "aud": self.SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def push_image(reg: Registry, repo: str, tag: str, layers: list[bytes], *, arch: str = "amd64",
               env: list[str] | None = None, layer_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
               digests: list[str] | None = None, manifest_type: str = OCI_MANIFEST) -> str:
    """Push an OCI image (config + gzip layers) with the distribution API; returns the manifest digest.
    `digests` overrides what the manifest claims for each layer (to serve a wrong one)."""
    client = reg.client()
    diff_ids = [sha256_digest(gzip.decompress(b)) if layer_type.endswith("gzip") else sha256_digest(b) for b in layers]
    config = json.dumps({"architecture": arch, "os": "linux",
                         "config": {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest = client.push_blob(repo, config)
    descs = []
    for i, blob in enumerate(layers):
        real = client.push_blob(repo, blob)
        descs.append({"mediaType": layer_type, "digest": (digests or [None] * len(layers))[i] or real,
                      "size": len(blob)})
    config_type = ("application/vnd.docker.container.image.v1+json" if manifest_type == DOCKER_MANIFEST
                   else "application/vnd.oci.image.config.v1+json")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": manifest_type,
                           "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
                           "layers": descs}).encode()
    return client.push_manifest(repo, tag, manifest, manifest_type)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("registry")
    reg = Registry(work / "data", work).start()
    yield reg
    reg.stop()


def _image_cache() -> Path:
    env = os.environ.get("LAYERPACK_TEST_IMAGE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "layerpack-test-images"


@pytest.fixture(scope="session")
def bullseye_tar() -> Path:
    """The mmdebstrap tarball (gzip), built once per recipe and kept outside the repository."""
    key = hashlib.sha256(json.dumps([*RECIPE, MIRROR]).encode()).hexdigest()[:16]
    out = _image_cache() / f"bullseye-curl-{key}.tar.gz"
    if out.is_file():
        return out
    exe = require_tool("mmdebstrap")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + f".{os.getpid()}.part.tar.gz")
    proc = subprocess.run([exe, "--quiet", *RECIPE, str(part), MIRROR], capture_output=True, text=True,
                          timeout=1200)
    if proc.returncode != 0:
        part.unlink(missing_ok=True)
        pytest.fail(f"mmdebstrap failed: {proc.stderr[-2000:]}")
    os.replace(part, out)
    return out


@pytest.fixture(scope="session")
def bullseye_image(registry, bullseye_tar) -> str:
    """`127.0.0.1:PORT/lambda/bullseye:1` on the session's registry: Debian 11 with bash and curl."""
    push_image(registry, "lambda/bullseye", "1", [bullseye_tar.read_bytes()],
               env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE_CONFIG=yes"])
    return f"{registry.address}/{BULLSEYE_REF}"


@pytest.fixture
def image_cache(tmp_path) -> Path:
    """A private LAYERPACK_CACHE_DIR for one test (images and rebuilt roots)."""
    d = tmp_path / "lp-cache"
    d.mkdir()
    return d


def remove_tree(path: Path) -> None:
    from packer.images.store import force_rmtree

    if path.exists():
        force_rmtree(path)
    shutil.rmtree(path, ignore_errors=True)
