"""Shared fixtures of the emulator tests (no tests here): real bootstraps built into tmp dirs.

The C bootstrap is compiled once per session with the host gcc; the runtime root is rebuilt once
per session into a private cache so no test writes to the user's ~/.cache.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, require_tool, run_cli

EMU = FIXTURES / "emulator"


@pytest.fixture(scope="session")
def emu_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("emu-cache")


@pytest.fixture(scope="session")
def sandbox_ready() -> None:
    require_tool("bwrap")
    from packer.emulator import sandbox

    reason = sandbox.probe()
    if reason:
        pytest.fail(f"bwrap is installed but cannot sandbox here: {reason}")


def compile_bootstrap(out: Path, *extra: str) -> Path:
    require_tool("gcc")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", str(out), str(EMU / "http_bootstrap.c"), *extra], check=True)
    out.chmod(0o755)
    return out


@pytest.fixture(scope="session")
def c_layer(tmp_path_factory) -> Path:
    """A layer whose /opt/bootstrap is the compiled C runtime."""
    layer = tmp_path_factory.mktemp("c-layer")
    compile_bootstrap(layer / "bootstrap")
    return layer


@pytest.fixture(scope="session")
def brotli_layer(tmp_path_factory) -> Path:
    """A layer whose bootstrap links libbrotlidec.so.1 (host has it, Amazon Linux 2023 does not)."""
    layer = tmp_path_factory.mktemp("brotli-layer")
    compile_bootstrap(layer / "bootstrap", "-DWITH_BROTLI", "-l:libbrotlidec.so.1")
    return layer


@pytest.fixture
def bash_example(tmp_path) -> tuple[Path, Path]:
    """(layer, function) of the AWS bash example: bootstrap in the layer, function.sh in the function."""
    layer, fn = tmp_path / "layer", tmp_path / "fn"
    layer.mkdir()
    fn.mkdir()
    shutil.copy(EMU / "bash-example" / "bootstrap", layer / "bootstrap")
    shutil.copy(EMU / "bash-example" / "function.sh", fn / "function.sh")
    (layer / "bootstrap").chmod(0o755)
    (fn / "function.sh").chmod(0o644)
    return layer, fn


# The head of a curl-speaking runtime's loop: waits in /next, leaves the event in /tmp/event, the
# response headers in the file $H and the request id in $ID; a test appends its handler and `done`.
RUNTIME_LOOP = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while true; do
  H="$(mktemp)"
  curl -sS -D "$H" -o /tmp/event "$API/next"
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
"""


def script_layer(path: Path, body: str, **files: str) -> Path:
    """A layer with a `#!/bin/sh` bootstrap speaking the Runtime API through curl, plus files."""
    path.mkdir(parents=True, exist_ok=True)
    boot = path / "bootstrap"
    boot.write_text(body)
    boot.chmod(0o755)
    for name, text in files.items():
        f = path / name.replace("__", "/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        f.chmod(0o644)
    return path


# A bootstrap whose handler is a shell command taken from HANDLER_CMD: its output is the response.
SHELL_LOOP = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while true; do
  H="$(mktemp)"
  EVENT=$(curl -sS -D "$H" "$API/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  OUT=$(sh -c "$HANDLER_CMD" 2>&1 || true)
  printf '%s' "$OUT" | curl -sS -o /dev/null "$API/$ID/response" --data-binary @-
done
"""


def cli_env(cache: Path) -> dict[str, str]:
    return {"LAYERPACK_CACHE_DIR": str(cache)}


def invoke_cli(cache: Path, *args: str, input: str | None = None):
    return run_cli("invoke", *args, env=cli_env(cache), input=input)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
