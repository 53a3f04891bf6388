"""`layerpack layers list|versions|delete` against moto in server mode."""

from __future__ import annotations

import json

import pytest
from tests.conftest import run_cli
from tests.moto_support import aws, moto_server, write_zip  # noqa: F401


@pytest.fixture
def three_versions(aws, tmp_path):
    """Layer `house` with versions 1-3 in us-east-1 and version 1 in eu-west-1."""
    lam = aws.client("lambda")
    for i in range(3):
        z = write_zip(tmp_path / f"{i}.zip", {"data.txt": f"v{i}".encode()}, mode=0o644)
        lam.publish_layer_version(LayerName="house", Content={"ZipFile": z.read_bytes()},
                                  CompatibleRuntimes=["provided.al2023"], Description=f"v{i + 1}")
    aws.client("lambda", "eu-west-1").publish_layer_version(LayerName="house", Content={"ZipFile": z.read_bytes()})
    return aws


def live(aws, region="us-east-1"):
    return sorted(v["Version"] for v in aws.versions("house", region))


def test_list_shows_each_layer_with_its_latest_version(three_versions):
    proc = run_cli("layers", "list", "--region", "us-east-1,eu-west-1", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = doc["layers"]
    assert doc["schema"] == "layerpack.layers-list/1"
    assert [(r["region"], r["name"], r["latest"]["version"]) for r in rows] == [("us-east-1", "house", 3),
                                                                                 ("eu-west-1", "house", 1)]
    assert "Location" not in proc.stdout


def test_versions_lists_newest_first(three_versions):
    proc = run_cli("layers", "versions", "house")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["v3", "v2", "v1"]
    assert "layer:house:3" in lines[0] and "v3" in lines[0]


def test_versions_of_an_unknown_layer_is_one_line(aws):
    proc = run_cli("layers", "versions", "nothere")
    assert proc.returncode == 2 and "no versions" in proc.stderr and "Traceback" not in proc.stderr


def test_delete_asks_and_a_no_deletes_nothing(three_versions):
    proc = run_cli("layers", "delete", "house", "1", "2", input="n\n")
    assert proc.returncode == 1
    assert "Delete 2 versions of layer house (us-east-1: 2, 1)?" in proc.stderr
    assert live(three_versions) == [1, 2, 3]


def test_delete_without_an_answer_deletes_nothing(three_versions):
    proc = run_cli("layers", "delete", "house", "--all", input="")
    assert proc.returncode == 1 and "nothing deleted" in proc.stderr
    assert live(three_versions) == [1, 2, 3]


def test_delete_asks_and_yes_deletes_the_named_versions(three_versions):
    proc = run_cli("layers", "delete", "house", "1", "3", input="yes\n")
    assert proc.returncode == 0, proc.stderr
    assert live(three_versions) == [2]


def test_delete_keep_with_yes_keeps_the_newest(three_versions):
    proc = run_cli("layers", "delete", "house", "--keep", "1", "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "layerpack.layers-delete/1"
    assert doc["deleted"] == [{"region": "us-east-1", "versions": [2, 1]}]
    assert live(three_versions) == [3]
    assert live(three_versions, "eu-west-1") == [1]  # other regions untouched


def test_delete_all_in_several_regions(three_versions):
    proc = run_cli("layers", "delete", "house", "--all", "-y", "--region", "us-east-1,eu-west-1")
    assert proc.returncode == 0, proc.stderr
    assert live(three_versions) == [] and live(three_versions, "eu-west-1") == []


@pytest.mark.parametrize("args,message", [
    ([], "say which versions"),
    (["2", "--all"], "say which versions"),
    (["9"], "no version 9"),
])
def test_delete_with_an_unclear_selection_deletes_nothing(three_versions, args, message):
    proc = run_cli("layers", "delete", "house", *args, "--yes")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert live(three_versions) == [1, 2, 3]


def test_layers_without_credentials_is_one_line(aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    proc = run_cli("layers", "list")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("layerpack: error: no AWS credentials found")
    assert len(proc.stderr.strip().splitlines()) == 1
