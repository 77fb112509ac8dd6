#!/usr/bin/env python3
"""Checks that no two C files of regfast call each other in a loop.

Each .c file under src/ is compiled to an object (mingw-w64 builds them all,
Windows backends included; the host compiler builds the portable ones a
second time), and `nm` says which global symbols each object defines and
which it uses. File A depends on file B when A uses a symbol B defines
(functions and data alike). A cycle in that graph — A -> B -> ... -> A — is
reported with the symbols on each edge. Calls through the backend method
table are function pointers, not symbol references, so the core calling a
backend that way is (rightly) not an edge.

    python tools/check_c_cycles.py            # exit 1 and print the cycles
    python tools/check_c_cycles.py --graph    # print every edge too

The layers this enforces (docs/ARCHITECTURE.md): core <- backends (hive, nt,
remote) <- agent; within a layer, files form a DAG.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOWS_ONLY = ("src/nt", "src/agent")
PORTABLE = ("src/core", "src/hive", "src/remote")


def sources(dirs: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        out += sorted((ROOT / d).glob("*.c"))
    return out


def compile_all(cc: str, files: list[Path], tmp: Path, extra: list[str]) -> dict[Path, Path]:
    def one(src: Path) -> tuple[Path, Path]:
        obj = tmp / (src.parent.name + "__" + src.stem + ".o")
        cmd = [cc, "-c", "-O0", "-std=gnu11", "-I", str(ROOT / "include"), "-I", str(ROOT / "src"),
               "-I", str(ROOT / "src" / "agent"), *extra, str(src), "-o", str(obj)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
        return src, obj
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as ex:
        return dict(ex.map(one, files))


def symbols(nm: str, obj: Path) -> tuple[set[str], set[str]]:
    out = subprocess.run([nm, "--defined-only", "-g", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    defined = {line.split()[-1] for line in out.splitlines() if line.strip()}
    out = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    used = {line.split()[-1] for line in out.splitlines() if line.strip()}
    return defined, used


def graph(nm: str, objs: dict[Path, Path]) -> dict[str, dict[str, set[str]]]:
    defs: dict[str, str] = {}
    uses: dict[str, set[str]] = {}
    for src, obj in objs.items():
        name = str(src.relative_to(ROOT))
        d, u = symbols(nm, obj)
        for s in d:
            defs[s] = name
        uses[name] = u
    edges: dict[str, dict[str, set[str]]] = {n: {} for n in uses}
    for name, used in uses.items():
        for s in used:
            tgt = defs.get(s)
            if tgt and tgt != name:
                edges[name].setdefault(tgt, set()).add(s)
    return edges


def cycles(edges: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one file (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check(show_graph: bool = False) -> list[str]:
    problems: list[str] = []
    builds = []
    if shutil.which("x86_64-w64-mingw32-gcc"):
        builds.append(("x86_64-w64-mingw32-gcc", "x86_64-w64-mingw32-nm", sources(PORTABLE + WINDOWS_ONLY),
                       ["-D__USE_MINGW_ANSI_STDIO=1"]))
    builds.append((os.environ.get("CC", "cc"), "nm", sources(PORTABLE), []))
    with tempfile.TemporaryDirectory() as t:
        for i, (cc, nm, files, extra) in enumerate(builds):
            tmp = Path(t) / str(i)
            tmp.mkdir()
            edges = graph(nm, compile_all(cc, files, tmp, extra))
            if show_graph:
                print(f"# {cc}")
                for a in sorted(edges):
                    for b, syms in sorted(edges[a].items()):
                        print(f"{a} -> {b}: {', '.join(sorted(syms)[:6])}")
            for comp in cycles(edges):
                lines = [f"call cycle ({cc}) among {', '.join(comp)}:"]
                for a in comp:
                    for b in comp:
                        if b in edges[a]:
                            lines.append(f"  {a} -> {b}: {', '.join(sorted(edges[a][b])[:8])}")
                problems.append("\n".join(lines))
    return problems


def main(argv: list[str]) -> int:
    problems = check("--graph" in argv)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
