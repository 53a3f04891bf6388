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

from packer.images.registry import OCI_MANIFEST, RegistryClient, sha256_digest
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
    """One docker-registry process serving `data` on 127.0.0.1 (start/stop as a test needs)."""

    data: Path
    workdir: Path
    port: int = 0
    proc: subprocess.Popen | None = None

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
                f"http:\n  addr: 127.0.0.1:{self.port}\n")
            log = open(self.workdir / f"registry-{self.port}.log", "wb")
            self.proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
            log.close()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if requests.get(f"http://{self.address}/v2/", timeout=1).status_code == 200:
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


def push_image(reg: Registry, repo: str, tag: str, layers: list[bytes], *, arch: str = "amd64",
               env: list[str] | None = None, layer_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
               digests: list[str] | None = None) -> str:
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
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": descs}).encode()
    return client.push_manifest(repo, tag, manifest, OCI_MANIFEST)


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
    push_image(registry, "lambda/bullseye", "1", [bullseye_tar.read_bytes()])
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
