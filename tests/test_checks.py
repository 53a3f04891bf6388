"""Layout, permission and link findings (LP4xx) on real directories and zips."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from packer import checks, runtime
from packer.analyze import analyze
from packer.tree import open_tree
from tests.trees import make_tree

FIX = Path(__file__).resolve().parent.parent / "fixtures"
X86 = FIX / "bin" / "x86_64"

AWS_BASH_BOOTSTRAP = """#!/bin/sh
set -euo pipefail
source $LAMBDA_TASK_ROOT/"$(echo $_HANDLER | cut -d. -f1).sh"
while true
do
  HEADERS="$(mktemp)"
  EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  RESPONSE=$($(echo "$_HANDLER" | cut -d. -f2) "$EVENT_DATA")
  curl "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response"  -d "$RESPONSE"
done
"""


def found(root: Path, rt: str = "provided.al2023", kind: str = "auto") -> set[str]:
    with open_tree(root) as t:
        return {f.code for f in checks.layout_findings(t, runtime.load(rt), kind)}


def test_aws_bash_example_passes_on_al2023_and_fails_on_al2_for_curl(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"bootstrap": AWS_BASH_BOOTSTRAP, "function.sh": "handler () { echo ok; }\n"})
    assert found(root, "provided.al2023") == set()
    with open_tree(root) as t:
        fs = checks.layout_findings(t, runtime.load("provided.al2"))
    assert [(f.code, f.data["command"]) for f in fs] == [("LP406", "curl")]


def test_command_shipped_in_the_layers_bin_is_found_on_path(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"bootstrap": AWS_BASH_BOOTSTRAP, "bin/curl": X86.joinpath("hello").read_bytes()})
    assert "LP406" not in found(root, "provided.al2")


def test_no_bootstrap_in_an_explicit_runtime_layer(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"lib/readme.txt": "x"})
    assert "LP401" in found(root, kind="runtime")
    assert found(root) == {"LP423"}  # auto: a library layer, said as info


def test_bootstrap_inside_a_parent_folder(tmp_path: Path) -> None:
    assert "LP402" in found(make_tree(tmp_path, {"myapp/bootstrap": "#!/bin/sh\n"}))


def test_bootstrap_without_exec_bit(tmp_path: Path) -> None:
    assert "LP403" in found(make_tree(tmp_path, {"bootstrap": ("mode", 0o644, "#!/bin/sh\necho\n")}))


def test_bootstrap_that_is_a_directory_or_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "d" / "bootstrap").mkdir(parents=True)
    assert "LP404" in found(tmp_path / "d")
    assert {"LP404", "LP411"} <= found(make_tree(tmp_path, {"bootstrap": ("link", "bin/missing")}))


def test_bootstrap_link_to_a_file_in_the_layer_is_fine(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"bin/app": X86.joinpath("hello").read_bytes(), "bootstrap": ("link", "bin/app")})
    assert found(root) == set()


def test_interpreter_missing_on_the_runtime(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"bootstrap": "#!/usr/bin/python3\nprint('hi')\n"})
    assert "LP405" in found(root, "provided.al2023")
    root2 = make_tree(tmp_path, {"bootstrap": "#!/usr/bin/env python3\nprint('hi')\n"}, "env")
    assert "LP405" in found(root2, "provided.al2023")
    assert "LP405" not in found(root2, "python3.12")  # /var/lang/bin/python3 exists there


def test_text_bootstrap_without_shebang(tmp_path: Path) -> None:
    assert "LP407" in found(make_tree(tmp_path, {"bootstrap": "echo hello\n"}))


def test_crlf_shebang(tmp_path: Path) -> None:
    assert "LP408" in found(make_tree(tmp_path, {"bootstrap": "#!/bin/bash\r\necho hi\r\n"}))


def test_file_not_readable_by_others(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"bootstrap": "#!/bin/sh\n", "data/secret.txt": ("mode", 0o600, "x")})
    assert "LP410" in found(root)


def test_links_dangling_looping_escaping_absolute(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {
        "lib/a": ("link", "b"), "lib/b": ("link", "a"),
        "lib/out": ("link", "../../etc/passwd"),
        "lib/gone": ("link", "nothere.so"),
        "lib/abs": ("link", "/opt/lib/real.so"), "lib/real.so": "x",
        "lib/abs-host": ("link", "/home/me/lib.so"),
    })
    codes = found(root)
    assert {"LP411", "LP412", "LP413", "LP414"} <= codes
    with open_tree(root) as t:
        fs = checks.layout_findings(t, runtime.load("provided.al2023"))
    dangling = {f.path for f in fs if f.code == "LP411"}
    assert dangling == {"lib/gone", "lib/abs-host"}  # /opt/lib/real.so resolves inside the layer


def test_zip_entry_problems(tmp_path: Path) -> None:
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../up.txt", "x")
        zf.writestr("/abs.txt", "x")
        zf.writestr("dup.txt", "1")
        zf.writestr("dup.txt", "2")
        info = zipfile.ZipInfo("longlink")
        info.create_system = 3
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "x" * 5000)
    assert {"LP415", "LP416", "LP417", "LP419"} <= found(z)


def test_special_file_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"bootstrap": "#!/bin/sh\n"})
    os.mkfifo(root / "pipe")
    assert "LP418" in found(root)


def test_lib64_directory_is_flagged(tmp_path: Path) -> None:
    assert "LP420" in found(make_tree(tmp_path, {"lib64/libx.so": "x"}))


def test_python_and_node_layouts(tmp_path: Path) -> None:
    assert "LP421" in found(make_tree(tmp_path, {"requests/__init__.py": "x"}, "py"), "python3.12", "python")
    assert "LP421" not in found(make_tree(tmp_path, {"python/requests/__init__.py": "x"}, "py2"), "python3.12")
    assert "LP422" in found(make_tree(tmp_path, {"node_modules/x/index.js": "x"}, "js"), "nodejs22.x", "node")
    assert "LP422" not in found(make_tree(tmp_path, {"nodejs/node_modules/x/index.js": "x"}, "js2"), "nodejs22.x")


def test_unknown_kind_is_a_usage_error(tmp_path: Path) -> None:
    from packer.errors import UsageError

    with pytest.raises(UsageError):
        found(make_tree(tmp_path, {"x": "y"}), kind="rust")


@pytest.mark.parametrize("script,expected", [
    (AWS_BASH_BOOTSTRAP, {"cut", "mktemp", "curl", "grep", "tr"}),
    ("case \"$1\" in\n  start) jq . x ;;\n  stop|halt) exit 0 ;;\nesac\n", {"jq"}),
    ("f() { echo; }\nf\nX=1 wget -q url\nif [ -f x ]; then awk 1; fi\n", {"wget", "awk"}),
    ("cat <<EOF\nnotacommand here\nEOF\nexec /opt/bin/app\n", {"cat"}),
    ("# comment curl\necho \"$(date)\"  # trailing sed\n", {"date"}),
    ("echo hi >&2\nls -l /nonexistent 2>&1\necho \"a; b | c\"\n((n > 1))\n[[ -f x ]] && wc -l < in > out\n", {"ls", "wc"}),
    ("x=$((1 + 2)); read -r line <&3\nexec 3<>/dev/tcp/h/1\ncat <<< \"$x\" | base64 -d\n", {"cat", "base64"}),
    ("long_command \\\n  --flag\ncommand -v jq >/dev/null || exit 1\n", {"long_command"}),
])
def test_shell_commands_are_read_conservatively(script: str, expected: set[str]) -> None:
    assert checks.shell_commands(script) == expected


def test_analyze_includes_layout_findings(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"bootstrap": ("mode", 0o644, X86.joinpath("hello").read_bytes())})
    r = analyze(root)
    assert "LP403" in {f.code for f in r.findings}
    shutil.rmtree(root)
