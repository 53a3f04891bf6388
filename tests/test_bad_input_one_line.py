"""Each crash class of issue 15 is now a result, a finding, or one `layerpack: error:` line with
exit 2 — never a traceback, never a hang, and `--debug` never changes the exit code. Inputs are real:
ELF files edited with patchelf, FIFOs made with mkfifo, zips as zipfile and Info-ZIP write them,
configuration files with the bytes users get wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import require_tool, run_cli

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "x86_64"


def one_line_error(r, *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("layerpack: error:")]
    assert len(errors) == 1, r.stderr
    for n in needles:
        assert n in errors[0], errors[0]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "t"
    t.mkdir()
    (t / "bootstrap").write_text("#!/bin/sh\necho hi\n")
    (t / "bootstrap").chmod(0o755)
    return t


def test_needed_names_that_are_directories_are_unloadable_findings(tmp_path):
    patchelf = require_tool("patchelf")
    t = tmp_path / "t"
    (t / "lib" / "gconv").mkdir(parents=True)
    shutil.copy2(FIX / "hello", t / "bootstrap")
    subprocess.run([patchelf, "--add-needed", ".", "--add-needed", "gconv", "--add-needed", "", str(t / "bootstrap")],
                   check=True)
    for args in (["analyze", "--json"], ["analyze"], ["--debug", "analyze"]):
        r = run_cli(*args, str(t))
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "LP111" in r.stdout


def test_a_fifo_where_a_library_is_looked_for_never_blocks(tmp_path):
    patchelf = require_tool("patchelf")
    t = tmp_path / "t"
    (t / "lib").mkdir(parents=True)
    shutil.copy2(FIX / "hello", t / "bootstrap")
    subprocess.run([patchelf, "--add-needed", "libfifo.so.1", str(t / "bootstrap")], check=True)
    os.mkfifo(t / "lib" / "libfifo.so.1")
    sysroot = tmp_path / "sysroot" / "usr" / "lib" / "x86_64-linux-gnu"
    sysroot.mkdir(parents=True)
    os.mkfifo(sysroot / "libfifo.so.1")
    r = run_cli("analyze", str(t), "--sysroot", str(tmp_path / "sysroot"), timeout=60)
    assert r.returncode == 1 and "LP418" in r.stdout and "Traceback" not in r.stderr
    (t / "lib" / "libfifo.so.1").unlink()
    r = run_cli("vendor", str(t), "--sysroot", str(tmp_path / "sysroot"), "--out", str(tmp_path / "o"), timeout=60)
    assert "Traceback" not in r.stderr and r.returncode in (1, 2), r.stderr
    os.mkfifo(t / "lib" / "libfifo.so.1")
    one_line_error(run_cli("vendor", str(t), "--out", str(tmp_path / "o2"), timeout=60), "fifo")


def test_truncated_zip_is_an_input_error_not_a_one_file_layer(tmp_path, tree):
    z = tmp_path / "layer.zip"
    subprocess.run(["zip", "-qry", str(z), "."], cwd=tree, check=True)
    z.write_bytes(z.read_bytes()[:-30])
    for cmd in (["analyze", str(z)], ["check", str(z)], ["vendor", str(z), "--out", str(tmp_path / "o")]):
        one_line_error(run_cli(*cmd), "not a readable zip")
    assert not (tmp_path / "o").exists()


def test_corrupt_and_encrypted_members_are_findings_or_one_line(tmp_path, tree):
    z = tmp_path / "layer.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tree / "bootstrap", "bootstrap")
        zf.writestr("lib/data", b"x" * 5000)
    data = bytearray(z.read_bytes())
    at = data.index(b"lib/data") + len(b"lib/data")
    data[at:at + 8] = b"\xff" * 8  # the deflate stream of lib/data
    z.write_bytes(bytes(data))
    for cmd in (["analyze", str(z), "--json"], ["check", str(z)], ["build", str(z), "-o", str(tmp_path / "b.zip")]):
        r = run_cli(*cmd)
        assert "Traceback" not in r.stderr and r.returncode in (0, 1, 2), (cmd, r.stderr)
    one_line_error(run_cli("vendor", str(z), "--out", str(tmp_path / "o")), "lib/data")


def test_bad_bracket_globs_are_literal_or_one_line(tmp_path, tree):
    r = run_cli("slim", str(tree), "--profile", "generic", "--keep", "[a", "--dry-run", timeout=60)
    assert r.returncode == 0, r.stderr
    one_line_error(run_cli("slim", str(tree), "--profile", "generic", "--keep", "[z-a]", "--dry-run"), "[z-a]")


@pytest.mark.parametrize("content, needle", [
    (b'runtime = "provided.al2023"\n\xff\xfe = 1\n', "not UTF-8"),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    (b'# comment\nruntime = "provided.al2023"\nbogus = 1\n', "layerpack.toml:3: unknown key 'bogus'"),
    (b'[slimm]\nprofile = "elixir"\n', "layerpack.toml:1: unknown table [slimm]"),
    (b'[check]\n\nkindd = "runtime"\n', "layerpack.toml:3: [check] has unknown option 'kindd'"),
    (b'\nruntime = "cobol9"\n', "(set by "),
])
def test_configuration_errors_name_the_file(tmp_path, tree, content, needle):
    (tmp_path / "layerpack.toml").write_bytes(content)
    r = run_cli("check", str(tree), cwd=tmp_path)
    one_line_error(r, needle)
    assert str(tmp_path / "layerpack.toml") in r.stderr
    assert run_cli("--debug", "check", str(tree), cwd=tmp_path).returncode == 2  # --debug keeps the code


def test_readme_slim_profile_key_works(tmp_path, tree):
    (tmp_path / "pyproject.toml").write_text('[tool.layerpack.slim]\nprofile = "generic"\n')
    r = run_cli("slim", str(tree), "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def no_aws_env_and_a_zip(monkeypatch, tmp_path: Path, tree: Path) -> Path:
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    z = tmp_path / "l.zip"
    subprocess.run(["zip", "-qry", str(z), "."], cwd=tree, check=True)
    return z


def test_malformed_aws_files_are_one_line(tmp_path, tree, monkeypatch):
    z = no_aws_env_and_a_zip(monkeypatch, tmp_path, tree)
    (tmp_path / "credentials").write_text("[default\naws_access_key_id = x\n")
    (tmp_path / "config").write_text("[default]\ncredential_process = echo notjson\n")
    base = {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true"}
    one_line_error(run_cli("publish", str(z), "--name", "x", env={**base, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
                                                                  "AWS_CONFIG_FILE": str(tmp_path / "none")}),
                   "Unable to parse config file")
    one_line_error(run_cli("publish", str(z), "--name", "x", env={**base, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                                                                  "AWS_CONFIG_FILE": str(tmp_path / "config")}),
                   "credential_process output is not JSON")


def test_aws_region_is_honoured(tmp_path, tree, monkeypatch):
    from tests.moto_support import MotoServer

    z = no_aws_env_and_a_zip(monkeypatch, tmp_path, tree)
    server = MotoServer().start()
    try:
        r = run_cli("publish", str(z), "--name", "x", "--dry-run", "--json",
                    env={"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "a",
                         "AWS_SECRET_ACCESS_KEY": "b", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                         "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")})
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    assert [x["region"] for x in json.loads(r.stdout)["regions"]] == ["eu-west-1"]


def test_thousands_of_findings_of_one_rule_are_summarised(tmp_path):
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(3000):
            info = zipfile.ZipInfo(f"d{i // 100}/f{i}.txt")
            info.create_system = 3
            info.external_attr = 0o100600 << 16  # not readable by the Lambda user: LP410 each
            zf.writestr(info, b"x")
    r = run_cli("check", str(z))
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr
    assert sum(line.startswith("LP410") for line in r.stdout.splitlines()) == 21 and "and 2,980 more LP410 findings" in r.stdout
    doc = json.loads(run_cli("check", str(z), "--json").stdout)
    found = [f for f in doc["findings"] if f["code"] == "LP410"]
    assert len(found) == 21 and found[-1]["data"]["more"] == 2980
