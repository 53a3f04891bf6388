"""Configuration files ([tool.layerpack] in pyproject.toml, layerpack.toml) driving the real
`layerpack` console script from a temporary project directory, as a user's project would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.moto_support import aws, moto_server, write_zip  # noqa: F401

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "bin" / "x86_64"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with a tiny layer zip (no ELF files, so the architecture is only what the
    configuration declares) and a tree to slim."""
    write_zip(tmp_path / "layer.zip", {"python/mod.py": b"X = 1\n"}, mode=0o644)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("x")
    return tmp_path


def test_readme_arch_example_publishes_with_that_architecture(aws, project: Path) -> None:  # noqa: F811
    """The README's example: a top-level `arch` is a single value for analyze and one item of
    publish's repeatable --arch; moto (botocore's Lambda model) records what was declared."""
    (project / "pyproject.toml").write_text('[tool.layerpack]\nruntime = "python3.12"\narch = "arm64"\n\n'
                                            '[tool.layerpack.publish]\nname = "configured"\n')
    res = run_cli("publish", "layer.zip", cwd=project)
    assert res.returncode == 0, res.stderr
    got = aws.client("lambda").get_layer_version(LayerName="configured", VersionNumber=1)
    assert got["CompatibleArchitectures"] == ["arm64"] and got["CompatibleRuntimes"] == ["python3.12"]
    res = run_cli("analyze", str(FIX / "hello"), "--json", cwd=project)
    assert json.loads(res.stdout)["runtime"]["arch"] == "arm64", res.stderr


@pytest.mark.parametrize("text", ['arch = "arm64"\n', 'arch = ["arm64"]\n'])
def test_arch_as_string_or_list_fits_every_command(project: Path, text: str) -> None:
    (project / "layerpack.toml").write_text(text)
    res = run_cli("publish", "layer.zip", "--name", "x", "--region", "us-east-1", "--dry-run", "--json",
                  cwd=project, env={"AWS_CONFIG_FILE": str(project / "none"),
                                    "AWS_SHARED_CREDENTIALS_FILE": str(project / "none")})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["zip"]["architectures"] == []  # from the ELF files: none
    assert "CompatibleArchitectures" in json.loads(res.stdout)["regions"][0]["would_call"][1]
    res = run_cli("analyze", str(FIX / "hello"), "--json", cwd=project)
    assert json.loads(res.stdout)["runtime"]["arch"] == "arm64", res.stderr


@pytest.mark.parametrize("name", ["pyproject.toml", "layerpack.toml"])
def test_top_level_key_of_two_meanings_is_refused_naming_both_tables(project: Path, name: str) -> None:
    """`profile` is slim's rule profile and publish's AWS profile: at top level it would set both."""
    body = 'profile = "python"\n'
    (project / name).write_text(f"[tool.layerpack]\n{body}" if name == "pyproject.toml" else body)
    prefix = "tool.layerpack." if name == "pyproject.toml" else ""
    for args in (("slim", "tree", "--dry-run"), ("publish", "layer.zip", "--name", "x", "--dry-run")):
        res = run_cli(*args, cwd=project)
        assert res.returncode == 2, res.stdout + res.stderr
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
        assert f"{name}:" in lines[0] and "'profile'" in lines[0]
        assert f"[{prefix}slim] profile = " in lines[0] and f"[{prefix}publish] profile = " in lines[0]


def test_keys_of_one_meaning_stay_allowed_at_top_level(project: Path) -> None:
    (project / "layerpack.toml").write_text('runtime = "python3.12"\narch = "arm64"\n\n[slim]\nprofile = "generic"\n')
    res = run_cli("slim", "tree", "--dry-run", "--json", cwd=project)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["profile"] == "generic"


def test_per_command_tables_separate_the_two_profiles(project: Path) -> None:
    """The AWS profile from [publish] reaches boto3 (an unknown profile is its error), the rule
    profile from [slim] reaches slim."""
    (project / "layerpack.toml").write_text('[slim]\nprofile = "generic"\n\n[publish]\nprofile = "no-such-profile"\n')
    res = run_cli("slim", "tree", "--dry-run", "--json", cwd=project)
    assert res.returncode == 0 and json.loads(res.stdout)["profile"] == "generic", res.stderr
    res = run_cli("publish", "layer.zip", "--name", "x", "--region", "us-east-1", cwd=project,
                  env={"AWS_CONFIG_FILE": str(project / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(project / "none")})
    assert res.returncode == 2 and "AWS profile 'no-such-profile' not found" in res.stderr, res.stderr
