"""The script the real-layer judge runs with `node` inside the sandbox (tests/real_layers_judge.py).

Kept here as text (written next to the staged runtime at run time). It requires every package the
layer installed (JUDGE_TARGETS) through Lambda's NODE_PATH, exercises those whose native part loads
lazily, prints one JSON line per package, then the layer files the process mapped (/proc/self/maps).
(No tests here.)
"""

SCRIPT = r'''// Run inside the Lambda-shaped sandbox by the real-layer judge (tests/real_layers_judge.py), not by pytest.
// Requires every package the layer installed (JUDGE_TARGETS) through Lambda's NODE_PATH, exercising
// those whose native part loads lazily, printing one JSON line per package, then the layer files the
// process mapped (/proc/self/maps).
"use strict";
const fs = require("fs");

const EXERCISE = {
  esbuild: (m) => m.transformSync("let a = 1"),  // runs the per-platform esbuild binary
  "better-sqlite3": (m) => new m(":memory:").prepare("select 1 as one").get(),
  "@swc/core": (m) => m.transformSync("let a = 1", {}),
  lightningcss: (m) => m.transform({ filename: "a.css", code: Buffer.from("a{color:red}") }),
};

const MARKS = ["NODE_MODULE_VERSION", "cannot open shared object", "ELF", "version `", "undefined symbol"];

function emit(item) { fs.writeSync(1, JSON.stringify(item) + "\n"); }

for (const name of JSON.parse(process.env.JUDGE_TARGETS)) {
  emit({ start: name });
  try {
    const m = require(name);
    if (EXERCISE[name]) EXERCISE[name](m);
    emit({ target: name, file: "", ok: true, error: "" });
  } catch (err) {
    // the loader's line when there is one (better-sqlite3's NODE_MODULE_VERSION is on the second)
    const lines = String((err && err.message) || err).trim().split("\n");
    const at = Math.max(0, lines.findIndex((l) => MARKS.some((m) => l.includes(m))));
    const text = lines.slice(Math.max(0, at - 1), at + 2).join(" ").replace(/\s+/g, " ").slice(0, 400);
    emit({ target: name, file: "", ok: false, error: `${(err && err.name) || "Error"}: ${text}` });
  }
}
const maps = fs.readFileSync("/proc/self/maps", "utf8").split("\n").map((l) => l.trim().split(/\s+/));
emit({ loaded: [...new Set(maps.filter((f) => f.length >= 6 && f[5].startsWith("/opt/")).map((f) => f[5]))].sort() });
'''
