"""Run inside the Lambda-shaped sandbox by the real-layer judge (tests/real_layers_judge.py), not by pytest.

Imports every extension module of the layer (JUDGE_TARGETS: [module, path] pairs) with only the
layer's directories on sys.path, printing one JSON line per module, then the layer files the
process mapped (/proc/self/maps). An import that fails for an optional pure-Python dependency the
layer does not ship (pytest, hypothesis…), or in the package's own Python logic (scipy's pythran
module imported on its own: "partially initialized module", as on any machine), is a note, not a
failure; what the loader or the import machinery says about native code is a failure, and so is any
error importing a file whose suffix this interpreter does not load (EXTENSION_SUFFIXES: cp311 on 3.12).
"""

import importlib
import importlib.machinery
import json
import os
import sys

# What the dynamic loader or the import machinery says when the layer's native code cannot load here.
LOADER_ERRORS = ("cannot open shared object file", "ELF", "version `", "undefined symbol", "file too short",
                 "does not define module export function", "cannot enable executable stack", "No module named",
                 "cannot dynamically load", "incompatible", "compiled using NumPy", "not a dynamic executable")
TREE_PATHS = ["/opt/python", "/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2]]


def _emit(item):
    sys.stdout.write(json.dumps(item) + "\n")
    sys.stdout.flush()


def _top_level_in_layer(name):
    top = name.split(".")[0]
    for base in TREE_PATHS:
        if os.path.isdir(os.path.join(base, top)) or any(
                f.split(".")[0] == top for f in (os.listdir(base) if os.path.isdir(base) else ())):
            return True
    return False


def _error_line(exc):
    """The line that says what went wrong: the loader's, when a package wraps it (numpy's
    "IMPORTANT: PLEASE READ THIS…" carries the original error further down, or as its cause)."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for item in chain:
        for text in str(item).splitlines():
            if any(mark in text for mark in LOADER_ERRORS):
                return "%s: %s" % (type(item).__name__, text.strip())
    first = (str(exc).strip().splitlines() or [""])[0]
    return "%s: %s" % (type(exc).__name__, first)


def _judge(module, path):
    _emit({"start": module})
    parts = module.split(".")
    try:
        for depth in range(1, len(parts) + 1):  # the packages first, as the code that uses it would
            importlib.import_module(".".join(parts[:depth]))
    except BaseException as exc:  # noqa: BLE001 - a layer's import may raise anything
        base = os.path.basename(path)
        foreign = base[len(module.rsplit(".", 1)[-1]):] not in importlib.machinery.EXTENSION_SUFFIXES
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        if not foreign and missing and not _top_level_in_layer(missing) and not module.startswith(missing):
            _emit({"note": "%s: not imported, needs %s (not in the layer)" % (module, missing)})
            _emit({"target": module, "file": path, "ok": True, "error": ""})
            return
        line = _error_line(exc)
        if not foreign and missing is None and not any(mark in line for mark in LOADER_ERRORS):
            _emit({"note": "%s: not imported, %s (the package's own Python logic, not the layer's shape)"
                   % (module, line)})
            _emit({"target": module, "file": path, "ok": True, "error": ""})
            return
        _emit({"target": module, "file": path, "ok": False, "error": line})
        return
    _emit({"target": module, "file": path, "ok": True, "error": ""})


def main():
    sys.path[:0] = TREE_PATHS
    for module, path in json.loads(os.environ["JUDGE_TARGETS"]):
        _judge(module, path)
    with open("/proc/self/maps") as f:
        loaded = sorted({ln.split()[-1] for ln in f if len(ln.split()) >= 6 and ln.split()[-1].startswith("/opt/")})
    _emit({"loaded": loaded})


if __name__ == "__main__":
    main()
