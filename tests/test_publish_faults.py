"""Publish exactly once behind faults (issue 15).

A small HTTP proxy stands between the real `layerpack` and moto in server mode. It forwards every
request; for PublishLayerVersion it lets moto process the request and then loses the answer — a 500,
a dropped connection, or no answer until the client's read timeout — exactly the cases where a
blind retry makes a second identical version. The judge is moto's own list of versions and the
bucket's contents, read with boto3 directly.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import layerpack_command, run_cli
from tests.moto_support import aws, moto_server, write_zip  # noqa: F401

PUBLISH = re.compile(r"^/2018-10-31/layers/[^/?]+/versions/?(\?.*)?$")


class FaultProxy:
    """Forwards to `upstream`; the first `faults` requests matching (method, pattern) are processed
    upstream (unless not `processed`) and then answered with `mode`: "500", "drop" or "hang" (no
    answer for `hang` seconds)."""

    def __init__(self, upstream: str, mode: str, faults: int, method: str = "POST",
                 pattern: re.Pattern = PUBLISH, hang: float = 4.0, processed: bool = True) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.processed = processed
        self.mode, self.faults, self.method, self.pattern, self.hang = mode, faults, method, pattern, hang
        self.injected = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = outer._should_fault(self.command, self.path)
                if fault and not outer.processed:
                    return outer._fault(self)
                conn = http.client.HTTPConnection(outer.upstream, timeout=60)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                resp = conn.getresponse()
                data = resp.read()
                if fault:
                    return outer._fault(self)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _should_fault(self, method: str, path: str) -> bool:
        with self.lock:
            if method == self.method and self.pattern.match(path) and self.injected < self.faults:
                self.injected += 1
                return True
        return False

    def _fault(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        if self.mode == "500":
            data = json.dumps({"Type": "Service", "message": "injected fault"}).encode()
            handler.send_response(500)
            handler.send_header("x-amzn-ErrorType", "ServiceException")
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return
        if self.mode == "hang":
            time.sleep(self.hang)
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    return write_zip(tmp_path / "layer.zip", {"bootstrap": b"#!/bin/sh\necho hi\n", "README": b"faults\n"})


def publish(url: str, zip_path: Path, tmp_path: Path, *extra: str, env: dict | None = None):
    return run_cli("publish", str(zip_path), "--name", "once", "--json", "--endpoint-url", url, *extra,
                   env={"XDG_CACHE_HOME": str(tmp_path / "cache"), **(env or {})}, timeout=300)


@pytest.mark.parametrize("mode, faults", [("500", 1), ("500", 5), ("drop", 1), ("drop", 5), ("hang", 1)])
def test_lost_answer_after_lambda_published_makes_exactly_one_version(aws, layer, tmp_path, mode, faults):
    with FaultProxy(aws.url, mode, faults, hang=4) as proxy:
        proc = publish(proxy.url, layer, tmp_path, env={"LAYERPACK_READ_TIMEOUT": "2"})
    assert proxy.injected >= 1, "the fault was never injected: the test proved nothing"
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (r,) = json.loads(proc.stdout)["regions"]
    versions = aws.versions("once")
    assert len(versions) == 1
    assert r["action"] == "published" and r["version"] == versions[0]["Version"]
    assert "adopted" in r["note"]


@pytest.mark.parametrize("mode", ["500", "drop"])
def test_lost_answer_through_s3_leaves_one_version_and_no_staging_object(aws, layer, tmp_path, mode):
    aws.make_bucket("stage", versioned=True)
    with FaultProxy(aws.url, mode, 3) as proxy:
        proc = publish(proxy.url, layer, tmp_path, "--s3-bucket", "stage")
    assert proxy.injected >= 1
    assert proc.returncode == 0, proc.stderr
    assert len(aws.versions("once")) == 1
    assert aws.bucket_leftovers("stage") == []


def test_staging_delete_failing_reports_the_published_version_and_the_rerun_removes_the_orphan(aws, layer, tmp_path):
    aws.make_bucket("stage")
    any_object = re.compile(r"^/stage/.+")
    with FaultProxy(aws.url, "500", 100, method="DELETE", pattern=any_object, processed=False) as proxy:
        proc = publish(proxy.url, layer, tmp_path, "--s3-bucket", "stage", env={"AWS_MAX_ATTEMPTS": "2"})
    assert proxy.injected >= 1
    assert proc.returncode == 0, proc.stderr
    (r,) = json.loads(proc.stdout)["regions"]
    assert r["action"] == "published" and "staging object left behind" in r["note"]
    assert len(aws.objects("stage")) == 1  # the orphan, reported
    again = publish(aws.url, layer, tmp_path, "--s3-bucket", "stage")
    assert again.returncode == 0, again.stderr
    (r2,) = json.loads(again.stdout)["regions"]
    assert r2["action"] == "unchanged" and "removed the staging object" in r2["note"]
    assert aws.bucket_leftovers("stage") == [] and len(aws.versions("once")) == 1


def test_two_concurrent_publishes_of_the_same_bytes_make_one_version(aws, layer, tmp_path):
    import os

    argv = layerpack_command()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}
    procs = [subprocess.Popen([*argv, "publish", str(layer), "--name", "once", "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    versions = aws.versions("once")
    assert len(versions) == 1
    actions = sorted(json.loads(out)["regions"][0]["action"] for out, _err in outs)
    assert actions == ["published", "unchanged"]
    assert {json.loads(out)["regions"][0]["version"] for out, _err in outs} == {versions[0]["Version"]}


def test_an_endpoint_that_never_answers_says_read_timeout_not_unreachable(aws, layer, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel does), never answers
    try:
        started = time.monotonic()
        proc = publish(f"http://127.0.0.1:{silent.getsockname()[1]}", layer, tmp_path,
                       env={"LAYERPACK_READ_TIMEOUT": "1", "AWS_MAX_ATTEMPTS": "1"})
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "read timeout" in proc.stderr and "cannot reach" not in proc.stderr, proc.stderr
    assert elapsed < 60
