#!/usr/bin/env python3
"""Checks the code's floor plan (docs/development.md, "Layout rules"):

1. no source file over 400 lines of code (its unit tests not counted) unless its first
   comment says why, in a line starting with `//! Long:`;
2. no import cycle between modules of different folders (a `use crate::…` or `super::…` path
   from one module to another, both ways round);
3. every repository path the docs name in backticks (`table/src/retry.rs`) exists.

Prints each breach and exits 1 if there is one.
"""
import os
import re
import sys

LIMIT = 400
CRATES = ["table", "schemas", "writer", "optimizer", "integration-tests", "dev"]


def code_lines(text):
    return len(re.split(r"\n#\[cfg\(test\)\]\nmod tests", text)[0].splitlines())


def module_of(root, path):
    parts = os.path.relpath(path, root)[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def cycles(root):
    modules = {}
    for folder, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                modules[module_of(root, os.path.join(folder, f))] = os.path.join(folder, f)

    def resolve(parts):
        for n in range(len(parts), -1, -1):
            if tuple(parts[:n]) in modules:
                return tuple(parts[:n])
        return None

    edges = {m: set() for m in modules}
    for m, path in modules.items():
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", open(path).read())[0]
        text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
        targets = [p.split("::") for p in re.findall(r"crate::((?:\w+::)*\w+)", text)]
        for group in re.findall(r"use crate::\{([^;]*)\};", text, re.S):
            targets += [[item] for item in re.findall(r"(\w+)(?:::|\s*[,}]|$)", group)]
        targets += [list(m[:-1]) + p.split("::") for p in re.findall(r"(?<![\w:])super::((?:\w+::)*\w+)", text)]
        for parts in targets:
            t = resolve(parts)
            if t is not None and t != m and m[: len(t)] != t:
                edges[m].add(t)

    # Tarjan's strongly connected components.
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len({c[:-1] for c in component}) > 1:
                found.append(sorted("/".join(c) for c in component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def missing_doc_paths():
    tops = ("table/", "schemas/", "writer/", "optimizer/", "integration-tests/", "dev/", "scripts/", "deploy/",
            "docs/", "examples/")
    found = []
    docs = ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir("docs")) if f.endswith(".md")]
    for doc in docs:
        for number, line in enumerate(open(doc), 1):
            for path in re.findall(r"`([A-Za-z0-9_./-]+)`", line):
                if path.startswith(tops) and not os.path.exists(path.rstrip("/")):
                    found.append(f"{doc}:{number}: names {path}, which does not exist")
    return found


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    breaches = []
    for crate in CRATES:
        root = os.path.join(crate, "src")
        for folder, _, files in os.walk(root):
            for f in sorted(files):
                path = os.path.join(folder, f)
                if not f.endswith(".rs"):
                    continue
                text = open(path).read()
                lines = code_lines(text)
                if lines > LIMIT and "//! Long:" not in text[:4000]:
                    breaches.append(f"{path}: {lines} lines of code; split it, or say why in a `//! Long:` line")
        for component in cycles(root):
            breaches.append(f"{crate}: import cycle across folders: {', '.join(component)}")
    breaches += missing_doc_paths()
    for b in breaches:
        print(b)
    sys.exit(1 if breaches else 0)


if __name__ == "__main__":
    main()
