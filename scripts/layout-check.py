#!/usr/bin/env python3
"""The house rules of issue 20 that no compiler checks: no source file over 1,200 lines,
no function over 150 lines, and no two files of one crate importing each other (an
import circle). Prints each breach and exits 1 if there is any.

A function is measured from its `fn` line to the closing brace at its indentation; test
modules (`#[cfg(test)] mod tests`) count for file length but not for circles."""

import glob
import os
import re
import sys

MAX_FILE_LINES = 1200
MAX_FN_LINES = 150
FN = re.compile(r"^(\s*)(pub(\([^)]*\))? )?(async )?(const )?(unsafe )?fn (\w+)")


def long_functions(path, lines):
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if m and not lines[i].rstrip().endswith(";"):
            indent = m.group(1)
            j = i + 1
            while j < len(lines) and lines[j] != indent + "}":
                j += 1
            if j - i + 1 > MAX_FN_LINES:
                yield f"{path}: fn {m.group(7)} is {j - i + 1} lines (at most {MAX_FN_LINES})"
            i = j
        i += 1


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3]
    if rel in ("lib", "main"):
        return None
    return rel.replace("/mod", "").split("/")[0]


def circles(crate_dir):
    """Pairs of a crate's top-level modules that import each other (outside tests)."""
    src = os.path.join(crate_dir, "src")
    texts = {}
    for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        m = module_of(src, path)
        if m is None:
            continue
        text = open(path).read()
        cut = text.find("#[cfg(test)]\nmod tests")
        texts.setdefault(m, []).append(text if cut < 0 else text[:cut])
    deps = {}
    for m, parts in texts.items():
        used = set()
        for text in parts:
            used.update(re.findall(r"crate::([a-z_][a-z0-9_]*)", text))
            for block in re.findall(r"use crate::\{([^;]*)\}", text, re.S):
                used.update(re.findall(r"(?:^|[,{\s])([a-z_][a-z0-9_]*)(?=::|\s*[,}]|$)", block))
        deps[m] = {u for u in used if u in texts and u != m}
    for a in sorted(deps):
        for b in sorted(deps[a]):
            if a < b and a in deps.get(b, ()):
                yield f"{crate_dir}: {a} and {b} import each other"


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    found = []
    for path in sorted(glob.glob("services/**/*.rs", recursive=True)):
        lines = open(path).read().split("\n")
        if len(lines) - 1 > MAX_FILE_LINES:
            found.append(f"{path}: {len(lines) - 1} lines (at most {MAX_FILE_LINES})")
        found.extend(long_functions(path, lines))
    for crate_dir in sorted(glob.glob("services/*")):
        if os.path.isdir(os.path.join(crate_dir, "src")):
            found.extend(circles(crate_dir))
    for f in found:
        print(f)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
