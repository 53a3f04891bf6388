"""Issue 24: every Lambda limit tested at limit - 1, limit and limit + 1 through each command that checks it.

The unzipped size goes through `check`, `build` and publish's validation on real zips (deflated zeros:
a 250 MB member is a 250 KB zip, so the disk stays small); `--timeout` and `--memory` through the
real `invoke` and `run` commands; the response payload through the real emulator, answered by a
curl-speaking bootstrap in the sandbox.
"""

from __future__ import annotations

import http.client
import shutil
import urllib.request
import zipfile
from pathlib import Path

import pytest

from packer import quotas
from packer.emulator.invoke import FunctionConfig, LocalFunction
from packer.emulator.server import Invocation, InvokeServer, RuntimeAPIServer, RuntimeState
from packer.package import OverBudget, build, check
from packer.publish.archive import inspect_archive
from packer.publish.plan import LayerRequest
from packer.publish.validate import validate
from tests.conftest import run_cli
from tests.emulator_support import (RUNTIME_LOOP, cli_env, emu_cache, invoke_cli, sandbox_ready,  # noqa: F401
                                    script_layer)

LIMIT = quotas.UNZIPPED_LIMIT
BIG = LIMIT - 1_000  # the zeros member; a small member brings the total to the size under test
WHEN = (2020, 1, 1, 0, 0, 0)


@pytest.fixture(scope="module")
def zeros_zip(tmp_path_factory) -> Path:
    """A valid zip with one deflated member of BIG zero bytes (about 250 KB on disk)."""
    path = tmp_path_factory.mktemp("zeros") / "base.zip"
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(zipfile.ZipInfo("python/zeros.bin", WHEN), "w", force_zip64=False) as fh:
            left = BIG
            while left:
                n = min(left, len(chunk))
                fh.write(chunk[:n])
                left -= n
    return path


def sized_zip(base: Path, tmp_path: Path, total: int) -> Path:
    """A copy of `base` with a second member making its declared unzipped size exactly `total`."""
    path = tmp_path / f"layer-{total}.zip"
    shutil.copyfile(base, path)
    info = zipfile.ZipInfo("python/pad.txt", WHEN)
    info.compress_type = zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(info, b"p" * (total - BIG))
    return path


@pytest.mark.parametrize("total", [LIMIT - 1, LIMIT, LIMIT + 1])
def test_unzipped_size_boundary_in_check_build_and_publish(zeros_zip: Path, tmp_path: Path, total: int) -> None:
    """Lambda: "Unzipped size must be smaller than 262144000 bytes", so exactly the limit is refused."""
    src = sized_zip(zeros_zip, tmp_path, total)
    fits = total < LIMIT
    report = check(src, zipped=True)
    assert report.budget.total == total
    assert (not any(f.code == "LP501" for f in report.findings)) == fits
    published = validate(LayerRequest("x"), inspect_archive(src))
    assert inspect_archive(src).unzipped_size == total
    assert (not any(f.code == "LP711" for f in published)) == fits, [f.message for f in published]
    out = tmp_path / "out" / "built.zip"
    if fits:
        build(src, out, level=1)
        with zipfile.ZipFile(out) as zf:
            assert sum(i.file_size for i in zf.infolist()) == total
    else:
        with pytest.raises(OverBudget, match=f"{total:,} bytes"):
            build(src, out, level=1)
        assert not out.exists()


def test_the_limit_lives_in_quotas_only() -> None:
    """The numbers every other module uses are quotas' (changing quotas changes them all)."""
    from packer import budget, materialise, tree
    from packer.emulator import server
    assert budget.Budget((0,), 0).limit == materialise.LAMBDA_UNZIPPED_MAX == tree.MAX_MEMBER_READ == LIMIT
    assert (server.MAX_REQUEST, server.MAX_PAYLOAD) == (quotas.INVOKE_REQUEST_LIMIT, quotas.RESPONSE_PAYLOAD_LIMIT)
    from packer.publish.validate import TOO_BIG_UNZIPPED
    assert f"{LIMIT:,}" in budget.OVER_BUDGET.hint and f"{LIMIT:,}" in TOO_BIG_UNZIPPED.title


# -- --timeout and --memory: one line, exit 2, beyond Lambda's range ---------------------------------

def _config(tmp_path: Path, **kw) -> FunctionConfig:
    layer = tmp_path / "l"
    layer.mkdir(exist_ok=True)
    return FunctionConfig(layers=[layer], **kw)


@pytest.mark.parametrize(("option", "value", "ok"), [
    ("--timeout", "899", True), ("--timeout", "900", True), ("--timeout", "901", False),
    ("--memory", "127", False), ("--memory", "128", True), ("--memory", "10240", True),
    ("--memory", "10241", False),
])
def test_timeout_and_memory_bounds(tmp_path: Path, option: str, value: str, ok: bool) -> None:
    key = option.lstrip("-")
    cfg = _config(tmp_path, **{key: float(value) if key == "timeout" else int(value)})
    if ok:
        cfg.validate()
        return
    for command in ("invoke", "run"):
        proc = run_cli(command, str(tmp_path / "l"), option, value, "--no-sandbox", timeout=60)
        assert proc.returncode == 2, (command, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) <= 2 and f"{option} {value}" in lines[0] and "Traceback" not in proc.stderr, proc.stderr


# Answers each event `[N]` or `[N, "chunked"]` with exactly N bytes of "x".
SIZED = RUNTIME_LOOP + r"""  N=$(tr -dc 0-9 < /tmp/event)
  if grep -q chunked /tmp/event; then TE="Transfer-Encoding: chunked"; else TE="X-Plain: 1"; fi
  head -c "$N" /dev/zero | tr '\0' x | curl -sS -o /dev/null "$API/$ID/response" -H "$TE" --data-binary @-
done
"""


def test_timeout_and_memory_maxima_really_run(sandbox_ready, emu_cache, tmp_path) -> None:  # noqa: F811
    layer = script_layer(tmp_path / "sized", SIZED)
    for args in (("--timeout", "900", "--memory", "10240"), ("--timeout", "899", "--memory", "128")):
        proc = invoke_cli(emu_cache, str(layer), *args, "--event", "-", input="[3]")
        assert proc.returncode == 0 and proc.stdout.strip() == "xxx", (args, proc.stdout, proc.stderr)


@pytest.mark.parametrize("chunked", [False, True])
def test_response_payload_boundary(sandbox_ready, emu_cache, tmp_path, chunked: bool) -> None:  # noqa: F811
    layer = script_layer(tmp_path / "sized", SIZED)
    limit = quotas.RESPONSE_PAYLOAD_LIMIT
    tail = ', "chunked"' if chunked else ""
    with LocalFunction(FunctionConfig(layers=[layer], cache=emu_cache, timeout=60)) as f:
        results = {n: f.invoke(f"[{n}{tail}]".encode()) for n in (limit - 1, limit, limit + 1)}
    for n in (limit - 1, limit):
        r = results[n]
        assert r.ok and r.payload == b"x" * n, (n, r.error_type, len(r.payload))
    over = results[limit + 1]
    assert over.error_type == "Function.ResponseSizeTooLarge" and f"({limit} bytes)" in over.payload.decode()


# -- the same payload limits straight over HTTP, with chunk layouts curl never makes -----------------

def _post(port: int, path: str, body, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=body, headers=headers or {}, encode_chunked=not isinstance(body, bytes))
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def _layouts(n: int, limit: int):
    """The body of n bytes in one chunk, in 1 MiB chunks, and split right at the limit."""
    yield "one", lambda: iter([b"x" * n])
    yield "mib", lambda: (b"x" * min(1 << 20, n - i) for i in range(0, n, 1 << 20))
    yield "at-limit", lambda: iter([b"x" * min(n, limit - 1), b"x" * max(0, n - limit + 1)][: 2 if n >= limit else 1])


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_runtime_api_response_limit_in_any_chunking(delta: int) -> None:
    limit = quotas.RESPONSE_PAYLOAD_LIMIT
    n = limit + delta
    state = RuntimeState(timeout_s=30)
    state.new_generation()
    server = RuntimeAPIServer(state)
    try:
        port = int(server.address.split(":")[1])
        for name, body in [("length", lambda: b"x" * n), *_layouts(n, limit)]:
            inv = Invocation(b"{}", function_name="fn")
            state.submit(inv)
            with urllib.request.urlopen(f"http://{server.address}/2018-06-01/runtime/invocation/next", timeout=30):
                pass
            status, _ = _post(port, f"/2018-06-01/runtime/invocation/{inv.request_id}/response", body())
            if delta <= 0:
                assert (status, inv.outcome.kind, len(inv.outcome.body)) == (202, "response", n), name
            else:
                assert (status, inv.outcome.kind) == (413, "too_large"), name
    finally:
        server.close()


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_invoke_endpoint_request_limit_in_any_chunking(delta: int) -> None:
    """`run`'s Invoke endpoint keeps the project's documented limit: at most 6,291,456 bytes."""
    limit = quotas.INVOKE_REQUEST_LIMIT
    n = limit + delta
    srv = InvokeServer(lambda body, headers: (200, {}, str(len(body)).encode()))
    try:
        for name, body in [("length", lambda: b"x" * n), *_layouts(n, limit)]:
            status, data = _post(srv.port, InvokeServer.PATH, body())
            if delta <= 0:
                assert (status, data) == (200, str(n).encode()), name
            else:
                assert status == 413 and b"RequestTooLargeException" in data, name
    finally:
        srv.close()
