"""`layerpack analyze` against the real thing, on layers built from PyPI and npm as users build them.

For each case of the corpus (tests/real_layers_corpus.py: pinned pip/npm installs for a runtime and
an architecture, including known-bad layers), the judge (tests/real_layers_judge.py: the runtime's
real CPython or Node.js importing/requiring everything in a Lambda-shaped bubblewrap sandbox, qemu
for arm64, binutils' readelf against the live-Lambda ceilings, Debian 11's ld.so) says whether the
layer works; `layerpack analyze TREE --runtime R --arch A --json`, run as a user runs it, must agree:
exit 1 exactly when the judge says "fails", with an error finding naming the failing file.

Downloads are cached under ~/.cache/layerpack-test/real-layers; without network on a cold cache the
tests fail (SetupError), never skip.
"""

from __future__ import annotations

import pytest

from tests.conftest import require_tool
from tests.real_layers import CASES, SetupError, analyze, judge, names_file

# Cases where analyze disagrees with the judge today (issue 23). Remove an entry when its fix lands:
# the test is a strict xfail, so a fixed case fails the suite until its entry is removed here.
KNOWN_WRONG_TODAY: dict[str, str] = {
    # "case id": "false error/false pass: why", e.g.
    # "node-in-node20-dir@nodejs22.x-x86_64": "false pass: nodejs/node20/node_modules is not on Node 22's path",
}


def _param(case):
    reason = KNOWN_WRONG_TODAY.get(case.id)
    # raises=AssertionError: only the verdict comparison may fail as expected; a failed download or a
    # judge that cannot run still fails the suite
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    for tool in ("bwrap", "readelf", "npm", "node"):
        require_tool(tool)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_analyze_agrees_with_the_judge(case) -> None:
    try:
        verdict = judge(case)
    except SetupError as exc:
        pytest.fail(f"cannot build or judge {case.id}: {exc}")
    result = analyze(case)
    assert result.rc in (0, 1), f"analyze exited {result.rc}: {result.stderr}"
    assert result.word == verdict.word, (
        f"{case.id} ({case.why}): judge says {verdict.word}"
        + (f" — {verdict.file}: {verdict.error}" if not verdict.works else "")
        + f"; analyze says {result.word}: "
        + "; ".join(f"{e.get('code')} {e.get('path')}: {e.get('message', '')[:160]}" for e in result.errors[:5]))
    if not verdict.works:
        files = verdict.file.split()
        assert any(names_file(result.errors, f) for f in files), (
            f"{case.id}: no error finding names {files} ({verdict.error}); errors: "
            + "; ".join(f"{e.get('code')} {e.get('path')}" for e in result.errors[:8]))


def test_the_judge_catches_a_missing_grafted_library(tmp_path) -> None:
    """The judge itself can fail: the same tree with one auditwheel graft removed must fail to import."""
    import shutil

    from tests.real_layers import build_tree
    from tests.real_layers_judge import judge as judge_tree

    tree = tmp_path / "tree"
    shutil.copytree(build_tree("py312-web"), tree, symlinks=True)
    grafts = sorted((tree / "python").glob("*.libs/*.so*"))
    assert grafts, "py312-web has no grafted libraries any more"
    grafts[0].unlink()
    verdict = judge_tree(tree, "python3.12", "x86_64")
    assert not verdict.works
    assert grafts[0].name in verdict.error
