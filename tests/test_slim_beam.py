"""BEAM stripping: byte-identical to real `beam_lib:strip_release` on Debian's OTP and Elixir beams."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from packer.slim import beam

OTP = Path("/usr/lib/erlang")
ELIXIR = Path("/usr/lib/elixir")


def _copy_ebins(src: Path, dst: Path) -> None:
    """Copy only lib/*/ebin (what strip_release touches); never follows links."""
    for ebin in src.glob("lib/*/ebin"):
        shutil.copytree(ebin, dst / ebin.relative_to(src), symlinks=True)


@pytest.fixture(scope="module")
def stripped_by_erl(tmp_path_factory):
    """(original root, root stripped by real erl) for OTP and, when installed, Elixir."""
    require_tool("erl")
    if not OTP.is_dir():
        pytest.skip("Debian erlang not installed")
    base = tmp_path_factory.mktemp("beam")
    pairs = []
    for name, src in (("otp", OTP), ("elixir", ELIXIR)):
        if not src.is_dir():
            continue
        _copy_ebins(src, base / name)
        pairs.append((src, base / name))
    expr = "".join(f'{{ok, _}} = beam_lib:strip_release("{d}"), ' for _, d in pairs) + "halt()."
    res = subprocess.run(["erl", "-noshell", "-eval", expr], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return pairs


def test_python_strip_is_byte_identical_to_beam_lib_strip_release_on_every_beam(stripped_by_erl):
    compared = 0
    mismatches = []
    for src, erl_root in stripped_by_erl:
        for original in sorted(src.glob("lib/*/ebin/*.beam")):
            expected = (erl_root / original.relative_to(src)).read_bytes()
            ours = beam.strip(original.read_bytes(), otp_release=25)
            compared += 1
            if ours != expected:
                mismatches.append(str(original))
    assert compared > 700  # 785 OTP beams + 422 Elixir beams on Debian 12
    assert mismatches == []


def test_stripping_a_stripped_beam_again_changes_nothing(stripped_by_erl):
    src, erl_root = stripped_by_erl[0]
    once = next(erl_root.glob("lib/stdlib-*/ebin/lists.beam")).read_bytes()
    assert beam.strip(once, otp_release=25) == once


def test_uncompressed_strip_keeps_attr_first_and_drops_debug_info():
    raw = next(OTP.glob("lib/stdlib-*/ebin/lists.beam")).read_bytes()
    before = beam.chunk_sizes(raw)
    out = beam.strip(raw, extra=("Attr",), compress=False)
    assert out[:4] == b"FOR1"
    ids = [c.id for c in beam.parse(out)]
    assert ids[0] == "Attr" and "Dbgi" not in ids and "CInf" not in ids
    assert ids[1:] == [c for c in beam.SIGNIFICANT_OTP25 if c in before]
    assert len(out) < len(raw) and len(out) % 4 == 0


def test_otp24_chunk_list_drops_type_and_meta():
    raw = next(OTP.glob("lib/stdlib-*/ebin/lists.beam")).read_bytes()
    ids = [c.id for c in beam.parse(beam.strip(raw, otp_release=24, compress=False))]
    assert "Type" not in ids and "Meta" not in ids and "Code" in ids


@pytest.mark.parametrize("data, message", [
    (b"", "not a BEAM file"),
    (b"FOR1\x00\x00\x00\x04BEAX", "missing FOR1/BEAM header"),
    (b"FOR1\x00\x01\x00\x00BEAM", "runs past the end"),
    (b"FOR1\x00\x00\x00\x10BEAMCode\x00\x00\x00\xff", "runs past the end"),
    (b"FOR1\x00\x00\x00\x0cBEAMAtU8\x00\x00\x00\x00", "mandatory chunk"),
])
def test_broken_beam_is_a_clear_error_not_a_crash(data, message):
    with pytest.raises(beam.BeamError, match=message):
        beam.strip(data)
