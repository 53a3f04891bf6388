"""Findings: facts about a tree with a stable code, a severity and a fix.

Codes are stable API (users grep for them, CI pipelines allow-list them), so they are declared once,
next to the code that emits them, with `define()`, and never reused. `catalogue()` imports every
module of the package so the README table and `layerpack codes` always list all of them.

Families: LP1xx dependencies · LP2xx symbol versions · LP3xx architecture · LP4xx layout, permissions,
links · LP5xx size and zip · LP6xx slimming · LP7xx publishing · LP8xx local run · LP9xx vendoring.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Modules that declare codes with define(); catalogue() imports them all.


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()


class Code(NamedTuple):  # a tuple: cheaper to define and to make than a dataclass
    code: str
    severity: Severity
    title: str
    hint: str


_REGISTRY: dict[str, Code] = {}


def define(code: str, severity: Severity, title: str, hint: str) -> Code:
    """Declare a finding code once; a second declaration with other text is a programming error."""
    existing = _REGISTRY.get(code)
    new = Code(code, severity, title, hint)
    if existing is not None and existing != new:
        raise RuntimeError(f"finding code {code} declared twice with different text")
    _REGISTRY[code] = new
    return new


def catalogue() -> list[Code]:
    """Every declared code, sorted, after importing every module of the package (codes are
    declared at import time next to the code that emits them, so nothing can be forgotten)."""
    import importlib
    import pkgutil

    import packer

    for mod in pkgutil.walk_packages(packer.__path__, "packer."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    return sorted(_REGISTRY.values(), key=lambda c: c.code)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    path: str
    message: str
    hint: str
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": str(self.severity),
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }
        if self.data:
            out["data"] = self.data
        return out


def finding(code: Code, path: str, message: str, hint: str | None = None, **data: Any) -> Finding:
    """Make a finding of a declared code; the hint defaults to the code's generic fix."""
    return Finding(code.code, code.severity, path, message, hint or code.hint, dict(data))


def summarise(findings: list[Finding], *, keep: int = 20, above: int = 100) -> list[Finding]:
    """Codes with more than `above` findings keep their first `keep`, followed by one finding of the
    same code and severity that counts the rest (`data["more"]`, `data["examples"]`). A 200,000-entry
    zip of 0600 files printed 200,000 identical lines (40 MB) that no one reads; the verdict, the
    codes and the severities are unchanged."""
    by_code: dict[str, list[Finding]] = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f)
    crowded = {code for code, fs in by_code.items() if len(fs) > above}
    if not crowded:
        return findings
    out: list[Finding] = []
    seen: dict[str, int] = {}
    for f in findings:
        n = seen[f.code] = seen.get(f.code, 0) + 1
        if f.code not in crowded or n <= keep:
            out.append(f)
        elif n == keep + 1:
            rest = by_code[f.code][keep:]
            examples = [r.path for r in rest[:5]]
            out.append(Finding(f.code, f.severity, ".", f"and {len(rest):,} more {f.code} findings like the ones above "
                               f"({', '.join(examples)}, …)", f.hint, {"more": len(rest), "examples": examples}))
    return out
