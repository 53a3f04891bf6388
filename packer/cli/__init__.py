"""The `layerpack` command line: a thin shell around the library.

Each command lives in its own module in this package and registers itself on `main` when imported.
Modules are found by reading their `@main.command("name")` lines and imported only when their
command runs: importing them all (boto3, the emulator, the slimmer) cost 0.45 s of start-up for
every command, measured with `python -X importtime -c "import packer.cli"`.
"""

from __future__ import annotations

import re
from pathlib import Path

from packer.cli.base import main

_DECL = re.compile(r'^@main\.(?:command|group)\(\s*"([\w-]+)"', re.M)

for _path in sorted(Path(__file__).parent.glob("*.py")):
    if _path.stem in ("__init__", "base"):
        continue
    for _name in _DECL.findall(_path.read_text(encoding="utf-8")):
        main.lazy[_name] = f"{__name__}.{_path.stem}"

__all__ = ["main"]
