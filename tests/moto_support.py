"""moto in server mode for the publish tests: a real HTTP endpoint on 127.0.0.1 and a random port,
talked to by the real `layerpack` console script in a subprocess, exactly as a user's shell would.

Also: small real ELF programs per architecture (compiled here), and zips written with zipfile.
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

FAKE_SECRET = "layerpackTESTsecretDoNotPrint0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """`python -m moto.server` in its own process (its own state)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> MotoServer:
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).read()
                    return self
                except OSError:
                    time.sleep(0.1)
            self.stop()  # port taken between free_port() and bind, or slow start: try another
        raise RuntimeError("moto server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


@dataclass
class Aws:
    """One moto endpoint plus the environment a user would have set to reach it."""

    server: MotoServer
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, service: str, region: str = "us-east-1"):
        return boto3.client(service, region_name=region, endpoint_url=self.url, aws_access_key_id="testing",
                            aws_secret_access_key=FAKE_SECRET)

    def make_bucket(self, name: str, region: str = "us-east-1", versioned: bool = False) -> str:
        s3 = self.client("s3", region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def objects(self, name: str, region: str = "us-east-1") -> list[str]:
        return [o["Key"] for o in self.client("s3", region).list_objects_v2(Bucket=name).get("Contents", [])]

    def bucket_leftovers(self, name: str, region: str = "us-east-1") -> list[str]:
        """Every object, object version and delete marker still in the bucket."""
        s3 = self.client("s3", region)
        out = [o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", [])]
        versions = s3.list_object_versions(Bucket=name)
        out += [f"{v['Key']}@{v['VersionId']}" for v in versions.get("Versions", [])]
        out += [f"marker:{m['Key']}" for m in versions.get("DeleteMarkers", [])]
        return out

    def versions(self, name: str, region: str = "us-east-1") -> list[dict]:
        lam = self.client("lambda", region)
        try:
            return lam.list_layer_versions(LayerName=name)["LayerVersions"]
        except lam.exceptions.ResourceNotFoundException:
            return []


def scrub_aws_env(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """No real profile, config, credentials or instance metadata may leak into a test."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Aws:
    """A clean moto state and the environment variables a user would export for it."""
    moto_server.reset()
    scrub_aws_env(monkeypatch, tmp_path)
    env = {"AWS_ENDPOINT_URL": moto_server.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Aws(moto_server, env)


# -- artefacts ---------------------------------------------------------------------------------------

COMPILERS = {"x86_64": ("x86_64-linux-gnu-gcc", "gcc"), "arm64": ("aarch64-linux-gnu-gcc",)}


def compile_program(arch: str, out: Path, text: str = "hello") -> Path:
    """A tiny real ELF program for `arch`, built with the (cross) compiler."""
    from tests.conftest import require_tool

    host = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())
    names = [c for c in COMPILERS[arch] if c != "gcc" or host == arch]
    cc = next((shutil.which(c) for c in names if shutil.which(c)), None) or require_tool(names[0])
    src = out.with_suffix(".c")
    src.write_text(f'#include <stdio.h>\nint main(void){{puts("{text}");return 0;}}\n')
    subprocess.run([cc, "-O1", "-o", str(out), str(src)], check=True)
    src.unlink()
    return out


def write_zip(path: Path, members: dict[str, bytes | Path], *, mode: int = 0o755,
              compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3
            info.compress_type = compression
            zf.writestr(info, data.read_bytes() if isinstance(data, Path) else data)
    return path


def code_sha256(path: Path) -> str:
    """Lambda's convention, computed independently of layerpack."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


class ThrottlingServer:
    """An endpoint that answers every request as Lambda does when throttling (429), counting them."""

    def __init__(self) -> None:
        import http.server
        import threading

        outer = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def _throttle(self) -> None:
                outer.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = b'{"Type":"User","message":"Rate exceeded"}'
                self.send_response(429)
                self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _throttle

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ThrottlingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
