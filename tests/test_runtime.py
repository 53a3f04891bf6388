"""Runtime policy is data: every runtime loads, keeps its source header, and ships inside the wheel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from packer import runtime
from packer.errors import PolicyError, UsageError
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"provided.al2023", "provided.al2", "provided", "python3.10", "python3.11", "python3.12", "python3.13",
            "python3.14", "nodejs20.x", "nodejs22.x", "nodejs24.x"}


def test_every_runtime_and_arch_loads_with_facts_from_the_dumps() -> None:
    assert set(runtime.runtime_names()) == EXPECTED
    for rt in runtime.all_runtimes():
        assert rt.libs.header and any("source" in line for line in rt.libs.header)
        assert rt.has_library("/lib64/libc.so.6")
        assert rt.has_library("/usr/lib64/libc.so.6") == rt.usr_merge  # AL1 has separate /lib64 and /usr/lib64
        assert rt.ceiling("GLIBC") is not None
        assert rt.ld_library_path[-1] == "/opt/lib" and "/opt/bin" in rt.path_env
        assert rt.dump_date and rt.dump_date.startswith("20")


def test_lib_search_order_puts_the_system_before_opt_lib() -> None:
    rt = runtime.load("provided.al2023")
    assert rt.ld_library_path.index("/lib64") < rt.ld_library_path.index("/opt/lib")


def test_every_shipped_listing_names_the_dump_it_comes_from() -> None:
    """The repository stands alone: each listing says, in its own header, which public dump and
    commit it was read from (docs/lambda.md explains the sources)."""
    listings = sorted((ROOT / "rules" / "runtimes").glob("*/*.txt"))
    assert len(listings) > 20
    for f in listings:
        head = [line for line in f.read_text().splitlines()[:12] if line.startswith("#")]
        assert any("source" in line and "github.com/" in line for line in head), f
        assert any(re.search(r"\b20\d\d-\d\d-\d\d\b", line) for line in head), f


def test_known_differences_between_runtimes() -> None:
    al2, al2023 = runtime.load("provided.al2"), runtime.load("provided.al2023")
    assert al2023.has_library("/lib64/libssl.so.3") and not al2.has_library("/lib64/libssl.so.3")
    assert al2.find_command("curl") is None and al2023.find_command("curl") == "/usr/bin/curl"
    assert al2023.find_command("sh") == "/usr/bin/sh"
    assert runtime.load("nodejs24.x").ceiling("GLIBCXX") == (3, 4, 32)  # /var/lang/lib shadows the OS copy
    assert runtime.load("provided.al2023", "arm64").loader == "/lib/ld-linux-aarch64.so.1"
    assert runtime.load("provided.al2023", "arm64").has_library("/lib/ld-linux-aarch64.so.1")


def test_unknown_runtime_or_arch_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown runtime"):
        runtime.load("provided.al2099")
    with pytest.raises(UsageError, match="does not exist for arm64"):
        runtime.load("provided", "arm64")


def test_malformed_listing_is_a_policy_error_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("# header\n/usr/lib64/libc.so.6\nlibfoo.so\n")
    with pytest.raises(PolicyError, match=r"x.txt:3"):
        runtime._read_listing(bad)


def test_runtimes_command_lists_every_runtime_with_its_dump_date() -> None:
    res = run_cli("runtimes", "--json")
    doc = json.loads(res.stdout)
    rows = doc["runtimes"]
    assert doc["schema"] == "layerpack.runtimes/1" and doc["default"] == "provided.al2023"
    assert {r["runtime"] for r in rows} == EXPECTED
    assert len(rows) == 21
    default = [r for r in rows if r["default"]]
    assert {r["runtime"] for r in default} == {"provided.al2023"}
    text = run_cli("runtimes")
    assert "2026-08-07" in text.stdout and "provided.al2023 (default)" in text.stdout
