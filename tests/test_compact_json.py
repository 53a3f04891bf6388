"""Compact --json text is the standard library's, whichever encoder wrote it."""

from __future__ import annotations

import json

import pytest

from packer import render

DOCS = [
    {"schema": "layerpack.analyze/1", "files": [{"path": "/opt/lib/libz.so.1", "needed": ["libc.so.6"], "static": False,
                                                  "interpreter": None, "trailing_bytes": 0, "size": 2 ** 40}]},
    {"path": "/opt/bin/café", "message": "naïve → ✓", "emoji": "\U0001F600"},  # non-ASCII: escaped as json does
    {"path": "/opt/lib/lib\udcffx.so", "n": [1, 2.5, -3]},  # a non-UTF-8 name read with surrogateescape
    {"control": "tab\there\nnul\0del\x7f quote\" backslash\\ slash/"},
    {"big": 2 ** 70},  # past 64 bits: orjson refuses it
    [],
    {},
]


@pytest.mark.parametrize("doc", DOCS)
def test_compact_json_is_the_text_json_dumps_writes_without_spaces(doc) -> None:
    text = render.compact_json(doc)
    assert text == json.dumps(doc, separators=(",", ":"))
    assert text.isascii() and json.loads(text) == doc


def test_compact_json_without_orjson_is_the_same_text(monkeypatch) -> None:
    with_orjson = [render.compact_json(d) for d in DOCS]
    monkeypatch.setattr(render, "_orjson", None)
    assert [render.compact_json(d) for d in DOCS] == with_orjson


def test_orjson_is_what_writes_it_where_it_is_installed() -> None:
    pytest.importorskip("orjson")
    assert render._orjson is not None  # the dependency is installed on the machines CI runs on
