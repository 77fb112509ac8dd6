#!/usr/bin/env python3
"""Generates src/regfast/live/_agent_ops.py from src/agent/ag_ops.def, the one
table of regfast-agent's operations (numbers, names, write flags, payload
layouts) and protocol versions (AG_PROTO: number, name, what it adds). tests/python/live/test_agent_ops.py runs this and compares, so the
checked-in module can never drift from the C table.

    python tools/gen_agent_ops.py            # rewrite the module
    python tools/gen_agent_ops.py --check    # exit 1 if it is stale
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEF = ROOT / "src" / "agent" / "ag_ops.def"
OUT = ROOT / "src" / "regfast" / "live" / "_agent_ops.py"

_ENTRY = re.compile(r'AG_OP\(\s*(\d+)\s*,\s*([A-Z0-9_]+)\s*,\s*([a-z0-9_]+)\s*,\s*([01])\s*,'
                    r'\s*"([^"]*)"\s*,\s*"([^"]*)"\s*\)', re.S)
_TYPES = {"u8", "u16", "u32", "u64", "i32", "s16", "s8", "b4", "raw", "snap"}
_FIELD = re.compile(r"^([a-z_][a-z0-9_]*):([a-z0-9]+)(?:\[([a-z_][a-z0-9_]*)\])?(?:@(\d+))?$")
# AG_PROTO(number, NAME, "what" "it adds"): adjacent C string literals join
_PROTO = re.compile(r'AG_PROTO\(\s*(\d+)\s*,\s*([A-Z0-9_]+)\s*,\s*((?:"[^"]*"\s*)+)\)', re.S)


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def check_layout(layout: str, where: str, known: set[str] | None = None,
                 versions: set[int] | None = None) -> set[str]:
    """The layout's field names; raises ValueError for anything outside the
    grammar of ag_ops.def. A reply's counts may name request fields (`known`);
    a field's `@V` must name a version of the list (`versions`, when given)."""
    fields: list[str] = []
    names: set[str] = set(known or ())
    # n*(a:u32 b:s16) -> a marker, then the inner fields
    tokens = re.findall(r"[a-z_][a-z0-9_]*\*\(|\)|[^\s()]+", layout)
    depth = 0
    for t in tokens:
        if t.endswith("*("):
            count = t[:-2]
            if count not in names:
                raise ValueError(f"{where}: repeat count {count!r} is not an earlier field")
            depth += 1
            fields.append(t)
            continue
        if t == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{where}: unbalanced ')'")
            fields.append(t)
            continue
        m = _FIELD.match(t)
        if not m or m.group(2) not in _TYPES:
            raise ValueError(f"{where}: bad field {t!r}")
        if m.group(3) and m.group(3) not in names:
            raise ValueError(f"{where}: column length {m.group(3)!r} is not an earlier field")
        if m.group(4) and versions is not None and int(m.group(4)) not in versions:
            raise ValueError(f"{where}: {t!r} names version {m.group(4)}, not in AG_PROTO's list")
        names.add(m.group(1))
        fields.append(t)
    if depth:
        raise ValueError(f"{where}: unbalanced '('")
    return names


def parse_versions(text: str) -> list[tuple[int, str, str]]:
    """The AG_PROTO list: (number, NAME, what it adds), consecutive numbers
    in order (each version is a superset of the one before)."""
    body = _strip_comments(text)
    out = [(int(n), name, " ".join("".join(re.findall(r'"([^"]*)"', what)).split()))
           for n, name, what in _PROTO.findall(body)]
    if len(out) != len(re.findall(r"(?<!#define )AG_PROTO\(", body)):
        raise ValueError("an AG_PROTO entry does not match the expected shape")
    if not out or [v for v, _, _ in out] != list(range(out[0][0], out[0][0] + len(out))):
        raise ValueError("AG_PROTO versions must be consecutive and in order")
    if len({name for _, name, _ in out}) != len(out):
        raise ValueError("duplicate AG_PROTO name")
    return out


def parse(text: str) -> list[tuple[int, str, str, bool, str, str]]:
    ops = []
    body = _strip_comments(text)
    versions = {v for v, _, _ in parse_versions(text)}
    for m in _ENTRY.finditer(body):
        num, const, name, write, req, rep = m.groups()
        check_layout(rep, f"{const} reply", check_layout(req, f"{const} request", None, versions), versions)
        ops.append((int(num), const, name, write == "1", " ".join(req.split()), " ".join(rep.split())))
    if len(ops) != len(re.findall(r"(?<!#define )AG_OP\(", body)):
        raise ValueError("an AG_OP entry does not match the expected shape")
    nums = [o[0] for o in ops]
    if len(set(nums)) != len(nums) or len({o[1] for o in ops}) != len(ops) or len({o[2] for o in ops}) != len(ops):
        raise ValueError("duplicate op number or name in ag_ops.def")
    return sorted(ops)


def hook_shape(req: str) -> tuple[str, str] | None:
    """(handle kind, shape) for requests that start with a key handle:
    what regfast.observe.hooks reads after the handle — t a u32 skipped, s a value
    name, n a new key name, k a subkey, p a file, x another str16 skipped.
    Stops at the first field of another kind."""
    fields = req.split()
    if not fields or fields[0] not in ("handle:u32", "tkey:u32"):
        return None
    shape = ""
    for f in fields[1:]:
        name, _, typ = f.partition(":")
        typ = typ.split("@")[0]
        if typ == "u32":
            shape += "t"
        elif typ == "s16":
            shape += {"value": "s", "new_name": "n", "subkey": "k", "file": "p"}.get(name, "x")
        else:
            break
    return fields[0].split(":")[0], shape


def render(ops: list[tuple[int, str, str, bool, str, str]],
           versions: list[tuple[int, str, str]] | None = None) -> str:
    out = [
        '"""regfast-agent\'s operations: GENERATED from src/agent/ag_ops.def by',
        "tools/gen_agent_ops.py — do not edit (tests/python/live/test_agent_ops.py checks",
        'that this file is what the generator writes)."""',
        "from __future__ import annotations",
        "",
    ]
    if versions:
        out.append("# protocol versions (AG_PROTO): each a superset of the one before")
        out += [f"V_{name} = {num}" for num, name, _ in versions]
        out += [f"VERSION_MIN = {versions[0][0]}", f"VERSION_MAX = {versions[-1][0]}", "",
                "# version -> what it adds", "VERSIONS: dict[int, str] = {"]
        out += [f"    {num}: {what!r}," for num, _, what in versions]
        out += ["}", ""]
    for num, const, *_ in ops:
        out.append(f"OP_{const} = {num}")
    out += ["", "# op -> name (regfast.observe.hooks.OP_NAMES)", "NAMES: dict[int, str] = {"]
    out += [f"    {num}: {name!r}," for num, _c, name, *_ in ops]
    out += ["}", "", "# ops that change the registry (or the agent's token) whatever their arguments",
            "WRITE_OPS: frozenset[int] = frozenset({"]
    out += [f"    {num}," for num, _c, _n, w, *_ in ops if w]
    out += ["})", "", "# op -> request / reply layout (ag_ops.def's grammar)", "REQUEST: dict[int, str] = {"]
    out += [f"    {num}: {req!r}," for num, _c, _n, _w, req, _r in ops]
    out += ["}", "", "REPLY: dict[int, str] = {"]
    out += [f"    {num}: {rep!r}," for num, _c, _n, _w, _q, rep in ops]
    out += ["}", "", "# ops whose request starts with a key handle (agent OPEN_KEY handle):",
            "# what follows it (tools/gen_agent_ops.py hook_shape)", "HANDLE_SHAPES: dict[int, str] = {"]
    tx = []
    for num, _c, _n, _w, req, _r in ops:
        hs = hook_shape(req)
        if hs and hs[0] == "handle":
            out.append(f"    {num}: {hs[1]!r},")
        elif hs:
            tx.append(f"    {num}: {hs[1]!r},")
    out += ["}", "", "# the same for transacted keys (TX_OPEN_KEY tkey)", "TX_HANDLE_SHAPES: dict[int, str] = {"]
    out += tx
    out += ["}", ""]
    return "\n".join(out)


def generate(src: str) -> str:
    """The module for the text of ag_ops.def: its ops and its versions."""
    return render(parse(src), parse_versions(src))


def main(argv: list[str]) -> int:
    text = generate(DEF.read_text(encoding="utf-8"))
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python tools/gen_agent_ops.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
