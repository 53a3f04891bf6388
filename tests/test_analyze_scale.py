"""analyze on big trees: each file read once, results independent of how the work is shared out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from packer.analyze import analyze
from tests.trees import make_tree

X86 = Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "x86_64"


def test_hard_linked_copies_are_read_once_and_share_their_header_facts(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"bin/a": X86 / "needs-z", "lib/libatomic.so.1": Path("/lib/x86_64-linux-gnu/libatomic.so.1")})
    for copy in ("b", "c", "d"):
        os.link(tree / "bin/a", tree / "bin" / copy)
    report = analyze(tree)
    infos = {f.rel: f.info for f in report.elf_files}
    assert {"bin/a", "bin/b", "bin/c", "bin/d"} <= set(infos)
    assert infos["bin/a"] is infos["bin/b"] is infos["bin/c"] is infos["bin/d"]
    assert infos["bin/a"] is not infos["lib/libatomic.so.1"]


def test_a_host_library_that_is_also_in_the_tree_is_read_once(tmp_path: Path) -> None:
    # analysing a copy of a system directory: the vendorable host copy is the tree's own inode
    tree = make_tree(tmp_path, {"bin/atomic": X86 / "needs-atomic"})
    host = Path("/lib/x86_64-linux-gnu/libatomic.so.1").resolve()
    try:
        os.link(host, tree / "libatomic-linked.so")
    except OSError:
        pytest.skip("the system library is on another file system than the test's tree")
    report = analyze(tree)
    proc = next(p for p in report.processes if p.root.path.endswith("bin/atomic"))
    host_obj = next(o for o in proc.objects if o.where == "host")
    linked = next(f for f in report.elf_files if f.rel == "libatomic-linked.so")
    assert host_obj.info is linked.info and linked.info.soname == "libatomic.so.1"


@pytest.mark.parametrize("indent", [None, 2])
def test_streamed_json_is_the_same_text_as_one_dumps_of_the_report(tmp_path: Path, indent) -> None:
    tree = make_tree(tmp_path, {"bootstrap": X86 / "needs-z", "bin/atomic": X86 / "needs-atomic",
                                "bin/missing": X86 / "needs-missing", "lib/libz.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1")})
    clean = make_tree(tmp_path, {"data.txt": "no ELF at all"}, name="clean")
    for report in (analyze(tree), analyze(clean)):  # arrays with items, and empty ones
        parts: list[str] = []
        report.write_json(parts.append, indent=indent)
        whole = json.dumps(report.to_json(), indent=indent, separators=(",", ":") if indent is None else None)
        assert "".join(parts) == whole


def test_cached_header_facts_give_the_same_report_and_a_rewritten_file_is_read_again(tmp_path: Path, monkeypatch) -> None:
    from packer.elf import reader

    monkeypatch.setenv("LAYERPACK_CACHE_DIR", str(tmp_path / "cache"))
    tree = make_tree(tmp_path, {"bootstrap": X86 / "needs-atomic", "bin/z": X86 / "needs-z", "bin/v": X86 / "needs-glibc236",
                                "lib/libz.so.1": Path("/lib/x86_64-linux-gnu/libz.so.1")})
    cold = json.dumps(analyze(tree).to_json())
    assert json.dumps(analyze(tree, cache=True).to_json()) == cold  # fills the cache
    reads: list[int] = []
    real = reader.read_elf
    monkeypatch.setattr(reader, "read_elf", lambda src: reads.append(src.size) or real(src))
    assert json.dumps(analyze(tree, cache=True).to_json()) == cold
    assert reads == []  # every ELF header came from the cache (tree files and this machine's libatomic)
    data = (tree / "bin/z").read_bytes()
    (tree / "bin/z").write_bytes(data)  # same bytes, same size: only ctime/mtime tell
    assert json.dumps(analyze(tree, cache=True).to_json()) == cold
    assert reads == [len(data)]
