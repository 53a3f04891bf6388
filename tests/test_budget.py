"""The size budget as Lambda counts it: function + up to 5 layers, strictly under 262,144,000
unzipped bytes; the 50 MiB inline-upload threshold; largest directories."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from packer.budget import MAX_LAYERS, UNZIPPED_LIMIT, budget, needs_s3
from packer.errors import UsageError

LIMIT = 262_144_000


def sparse(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no disk space (the budget counts bytes, not blocks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def test_limit_is_lambdas_number_and_exactly_the_limit_is_over() -> None:
    assert UNZIPPED_LIMIT == LIMIT and MAX_LAYERS == 5
    assert not budget(LIMIT - 1).over and budget(LIMIT - 1).headroom == 1
    assert budget(LIMIT).over  # "must be smaller than 262144000 bytes"
    assert budget(LIMIT + 1).headroom == -1


def test_five_layers_and_a_function_share_one_budget() -> None:
    fifth = LIMIT // 5  # 52,428,800
    at = budget(fifth, [fifth] * 3, function=fifth)
    assert at.total == 5 * fifth == LIMIT and at.over and at.layers == 4
    under = budget(fifth, [fifth] * 3, function=fifth - 1)
    assert not under.over and under.headroom == 1 and under.headroom_pct == 0.0
    full = budget(1, [1] * 4, function=1)
    assert full.layers == 5 and not full.over
    assert budget(LIMIT // 2).headroom_pct == 50.0
    with pytest.raises(UsageError, match="at most 5"):
        budget(1, [1] * 5)


def test_near_the_limit_warns_and_over_is_an_error_finding() -> None:
    assert [f.code for f in budget(LIMIT - 1000).findings("x")] == ["LP502"]
    assert [f.code for f in budget(LIMIT // 2).findings("x")] == []
    over = budget(LIMIT, [5]).findings("x")
    assert [f.code for f in over] == ["LP501"] and "6 bytes too many" in over[0].message


def test_inline_upload_threshold_is_the_base64_request_limit() -> None:
    assert needs_s3(50 * 1024 * 1024)  # base64 is 69,905,068 bytes: over the 69,905,067 request limit
    assert needs_s3(60_000_000)
    assert not needs_s3(52_000_000)
    assert not needs_s3(1_000)


def _function_zip(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("bootstrap")
        info.create_system = 3
        info.external_attr = 0o100755 << 16
        zf.writestr(info, b"\0" * size)
    return path


def test_check_adds_layers_and_function_and_fails_one_byte_over(tmp_path: Path, cli) -> None:
    fn = _function_zip(tmp_path / "fn.zip", 1_000_000)
    other = tmp_path / "other"
    sparse(other / "lib" / "big.so", 100_000_000)
    target = tmp_path / "layer"
    sparse(target / "share" / "data.bin", LIMIT - 1 - 100_000_000 - 1_000_000)
    args = ["check", str(target), "--with-layer", str(other), "--function", str(fn), "--no-zip-size", "--json"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["budget"]["combined_unzipped_bytes"] == LIMIT - 1
    assert rep["budget"]["headroom_bytes"] == 1 and rep["budget"]["over"] is False
    assert rep["budget"]["layers"] == 2 and rep["budget"]["artefacts"] == 3
    assert [f["code"] for f in rep["findings"]].count("LP502") == 1

    with open(target / "share" / "data.bin", "ab") as fh:
        fh.write(b"!")
    r = cli(*args)
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["budget"]["over"] is True and rep["budget"]["headroom_bytes"] == 0
    assert "LP501" in [f["code"] for f in rep["findings"]]
    r = cli(*args[:-1])  # the text report says so too
    assert r.returncode == 1 and "OVER" in r.stdout and "LP501" in r.stdout


def test_more_than_five_layers_is_a_usage_error(tmp_path: Path, cli) -> None:
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "f").write_text("x")
    r = cli("check", str(tmp_path / "l"), *sum((["--with-layer", str(tmp_path / "l")] for _ in range(5)), []))
    assert r.returncode == 2 and "at most 5" in r.stderr and "Traceback" not in r.stderr
    r = cli("check", str(tmp_path / "l"), *sum((["--with", str(tmp_path / "l")] for _ in range(4)), []), "--no-zip-size")
    assert r.returncode == 0, r.stderr


def test_build_refuses_an_over_budget_layer_unless_forced(tmp_path: Path, cli) -> None:
    tree = tmp_path / "big"
    sparse(tree / "data" / "zeros.bin", LIMIT)
    out = tmp_path / "big.zip"
    r = cli("build", str(tree), "-o", str(out))
    assert r.returncode == 1 and "262,144,000" in r.stderr and "--force" in r.stderr
    assert not out.exists()
    r = cli("build", str(tree), "-o", str(out), "--force", "--level", "1", "--json")
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    assert rep["unzipped_bytes"] == LIMIT and "LP501" in [f["code"] for f in rep["findings"]]
    with zipfile.ZipFile(out) as zf:
        assert sum(i.file_size for i in zf.infolist()) == LIMIT
    r = cli("check", str(out), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["budget"]["over"] is True


def test_unzipped_size_counts_links_as_links_and_matches_the_built_zip(tmp_path: Path, cli) -> None:
    tree = tmp_path / "t"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "libx.so.1.2.3").write_bytes(os.urandom(30_000))
    os.symlink("libx.so.1.2.3", tree / "lib" / "libx.so.1")  # 13 bytes, not 30,000
    rep = json.loads(cli("check", str(tree), "--json", "--exact-zip-size").stdout)
    assert rep["target"]["unzipped_bytes"] == 30_000 + len("libx.so.1.2.3")
    out = tmp_path / "t.zip"
    assert cli("build", str(tree), "-o", str(out)).returncode == 0
    with zipfile.ZipFile(out) as zf:
        assert sum(i.file_size for i in zf.infolist()) == rep["target"]["unzipped_bytes"]
    assert rep["target"]["zipped_bytes"] == out.stat().st_size  # measured without writing
    again = json.loads(cli("check", str(out), "--json").stdout)
    assert again["target"]["unzipped_bytes"] == rep["target"]["unzipped_bytes"]


def test_largest_directories_are_grouped_by_depth(tmp_path: Path, cli) -> None:
    tree = tmp_path / "t"
    sparse(tree / "lib" / "erlang" / "lib" / "wx" / "a.beam", 5_000)
    sparse(tree / "lib" / "erlang" / "lib" / "kernel" / "b.beam", 3_000)
    sparse(tree / "lib" / "erlang" / "erts" / "beam.smp", 4_000)
    sparse(tree / "bootstrap", 10)
    rep = json.loads(cli("check", str(tree), "--json", "--depth", "4", "--no-zip-size").stdout)
    assert [(t["path"], t["bytes"]) for t in rep["top"]] == [
        ("lib/erlang/lib/wx", 5_000), ("lib/erlang/erts", 4_000), ("lib/erlang/lib/kernel", 3_000), (".", 10)]
    rep = json.loads(cli("check", str(tree), "--json", "--depth", "1", "--top", "1", "--no-zip-size").stdout)
    assert rep["top"] == [{"path": "lib", "bytes": 12_000, "entries": 3, "pct": 99.92}]


def test_zip_over_50_mib_is_reported_as_going_through_s3(tmp_path: Path, cli) -> None:
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        info = zipfile.ZipInfo("lib/blob")
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        zf.writestr(info, os.urandom(51 * 1024 * 1024))
    r = cli("check", str(z), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["upload"]["via"] == "s3" and "LP503" in [f["code"] for f in rep["findings"]]
    r = cli("check", str(z))
    assert "S3" in r.stdout
