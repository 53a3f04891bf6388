"""The ELF-tools layer: which strip handles which machine, the guarded strip, and what slim says when
no strip can handle a file."""

from __future__ import annotations

import shutil
from pathlib import Path

from packer.slim import SlimOptions, load, plan
from tests.trees import make_tree

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def test_no_strip_finding_names_the_machine_of_the_unstrippable_file_not_the_last_file_seen(tmp_path: Path) -> None:
    # s390x sorts first and has no binutils here; the stripped x86_64 file after it must not lend its detail
    assert shutil.which("s390x-linux-gnu-strip") is None
    src = make_tree(tmp_path, {"a/hello-s390x": FIX / "bin" / "other" / "hello-s390x",
                               "z/stripped": FIX / "bin" / "x86_64" / "hello-noshdr"})
    p = plan(src, load("generic"), SlimOptions())
    (lp600,) = [f for f in p.findings if f.code == "LP600"]
    assert lp600.path == "a/hello-s390x"
    assert lp600.message.endswith("no binutils strip for s390x"), lp600.message
