"""The style rule "no function over 100 lines", checked on every function in packer/ so it stays true."""

from __future__ import annotations

import ast
from pathlib import Path

PACKER = Path(__file__).resolve().parent.parent / "packer"
LIMIT = 100


def long_functions(root: Path, limit: int = LIMIT) -> list[str]:
    """Every def (nested ones included) whose source spans more than `limit` lines, decorators excluded."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    out.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({length} lines)")
    return out


def test_the_checker_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert [s.split(" ")[1] for s in long_functions(tmp_path)] == ["long"]


def test_no_function_in_packer_is_over_100_lines() -> None:
    assert long_functions(PACKER) == []
