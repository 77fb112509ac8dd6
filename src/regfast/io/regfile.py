""".reg text (regedit's export format) -> a tree for :mod:`regfast.io.writer`.

:func:`parse_reg` reads what ``reg export`` / regedit write and what
``regfast export -f reg`` writes: the ``Windows Registry Editor Version
5.00`` header (or ``REGEDIT4``), ``[key]`` sections, ``[-key]`` deletions,
``@`` / ``"name"`` values as ``"text"``, ``dword:``, ``hex:`` and
``hex(n):`` (with ``\\`` line continuations), ``"name"=-`` deletions and
``;`` comments. Every ``hex(n)`` value keeps its bytes exactly; a string
value is REG_SZ with its NUL terminator, as regedit imports it.

Key paths are taken below the hive root: a leading predefined root
(``HKEY_LOCAL_MACHINE``, ``HKLM``, ``HKEY_CURRENT_USER``...) is dropped, and
so is ``prefix`` when given (e.g. ``HKEY_LOCAL_MACHINE\\SOFTWARE`` for a
SOFTWARE hive); ``[]`` or the prefix itself is the root key. Key and value
names merge case-insensitively as the registry compares them (each UTF-16
unit upcased by Windows' table: ``upcase_name``), the first spelling kept.
Lines end at CR LF, LF or CR only, as regedit reads them (a string may hold
U+2028 or a form feed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from regfast.io.writer import Key, Value, upcase_name

__all__ = ["parse_reg", "RegSyntaxError"]

_ROOTS = {
    "hkey_local_machine",
    "hklm",
    "hkey_current_user",
    "hkcu",
    "hkey_users",
    "hku",
    "hkey_classes_root",
    "hkcr",
    "hkey_current_config",
    "hkcc",
    "hkey_performance_data",
}
_ROOTS_UPCASED = {r.upper() for r in _ROOTS}
_HEADERS = {"windows registry editor version 5.00": 5, "regedit4": 4}
REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ = 1, 2, 3, 4, 7


class RegSyntaxError(ValueError):
    """A line of .reg text that cannot be read; ``lineno`` is 1-based."""

    def __init__(self, lineno: int, message: str) -> None:
        super().__init__(f"line {lineno}: {message}")
        self.lineno = lineno


class _Node:
    __slots__ = ("name", "subkeys", "values")

    def __init__(self, name: str) -> None:
        self.name = name
        self.subkeys: dict[str, _Node] = {}  # upcased name -> node
        self.values: dict[str, tuple[str, Value]] = {}  # upcased name -> (name, Value)

    def child(self, name: str) -> _Node:
        n = self.subkeys.get(upcase_name(name))
        if n is None:
            n = self.subkeys[upcase_name(name)] = _Node(name)
        return n

    def to_key(self) -> Key:
        """The writer's Key tree, built bottom-up without recursion (a .reg
        file may hold the 512 levels Windows allows; Python's stack may not)."""
        order, stack = [], [self]
        while stack:  # pre-order; reversed, every child comes before its parent
            node = stack.pop()
            order.append(node)
            stack.extend(node.subkeys.values())
        built: dict[int, Key] = {}
        for node in reversed(order):
            built[id(node)] = Key(
                subkeys={n.name: built.pop(id(n)) for n in node.subkeys.values()},
                values=dict(node.values.values()),
            )
        return built[id(self)]


# str.splitlines() also ends lines at U+2028, U+0085, \v, \f and \x1c-\x1e,
# which regedit keeps inside a line (and a string may hold)
_LINE_END = re.compile("\r\n|\n|\r")


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with continuations joined and comments dropped."""
    buf, start = "", 0
    for i, raw in enumerate(_LINE_END.split(text), 1):
        line = raw.strip() if buf else raw.rstrip()
        if not buf:
            start = i
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            line = line.strip()
        if line.endswith("\\") and not line.startswith("["):
            buf += line[:-1]
            continue
        yield start, buf + line
        buf = ""
    if buf:
        yield start, buf


def _split_path(path: str, prefix: str | None, lineno: int) -> list[str]:
    parts = [p for p in path.split("\\") if p != ""]
    if prefix is not None:
        pre = [p for p in prefix.split("\\") if p]
        if [upcase_name(p) for p in parts[: len(pre)]] != [upcase_name(p) for p in pre]:
            raise RegSyntaxError(lineno, f"key [{path}] is not under the prefix {prefix!r}")
        return parts[len(pre) :]
    if parts and upcase_name(parts[0]) in _ROOTS_UPCASED:  # (as every name here is compared)
        return parts[1:]
    return parts


def _quoted(s: str, pos: int, lineno: int) -> tuple[str, int]:
    """A "..." token at s[pos] with \\\\ and \\" escapes -> (text, index after it)."""
    if pos >= len(s) or s[pos] != '"':
        raise RegSyntaxError(lineno, f"expected '\"' at column {pos + 1}")
    out, i = [], pos + 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise RegSyntaxError(lineno, "unterminated string")


_HEX_BYTE = re.compile("[0-9a-fA-F]{1,2}")


def _hex_bytes(s: str, lineno: int) -> bytes:
    s = s.replace(" ", "").replace("\t", "").rstrip(",")
    if not s:
        return b""
    pieces = s.split(",")
    # one or two hex digits a byte, as regedit writes them: int() alone took
    # "0x1", "+2", "1_0" and non-ASCII digits
    bad = next((h for h in pieces if not _HEX_BYTE.fullmatch(h)), None)
    if bad is not None:
        raise RegSyntaxError(lineno, f"bad hex byte {bad[:10]!r} in {s[:40]!r}")
    return bytes(int(h, 16) for h in pieces)


def _data(s: str, version: int, lineno: int) -> Value | None:
    """The right-hand side of a value line (None: a deletion)."""
    if s == "-":
        return None
    if s.startswith('"'):
        text, end = _quoted(s, 0, lineno)
        if s[end:].strip():
            raise RegSyntaxError(lineno, f"unexpected {s[end:]!r} after the string")
        return Value(REG_SZ, text)
    low = s.lower()
    if low.startswith("dword:"):
        h = s[6:].strip()
        if not re.fullmatch(r"[0-9a-fA-F]{1,8}", h):
            raise RegSyntaxError(lineno, f"bad dword {h!r}")
        return Value(REG_DWORD, int(h, 16))
    m = re.match(r"hex(?:\(([0-9a-fA-F]{1,8})\))?:", low)
    if not m:
        raise RegSyntaxError(lineno, f"unknown value data {s[:40]!r}")
    vtype = int(m.group(1), 16) if m.group(1) else REG_BINARY
    raw = _hex_bytes(s[m.end() :], lineno)
    if version == 4 and vtype in (REG_EXPAND_SZ, REG_MULTI_SZ):
        # REGEDIT4 files hold these strings in the ANSI code page; read as
        # Latin-1 (byte for byte) and stored as the UTF-16LE Windows writes
        raw = raw.decode("latin-1").encode("utf-16-le")
    return Value(vtype, raw)


def parse_reg(text: str, *, prefix: str | None = None) -> Key:
    """Parses .reg text into a :class:`regfast.io.writer.Key` (the hive root).

    Raises
    ------
    RegSyntaxError
        A line that is not .reg syntax (with its line number), or a missing
        header.
    """
    text = text.lstrip("\ufeff")
    root = _Node("")
    current: _Node | None = None
    version = 0
    for lineno, line in _logical_lines(text):
        if not version:
            version = _HEADERS.get(line.strip().lower(), 0)
            if not version:
                raise RegSyntaxError(
                    lineno, "not .reg text: expected 'Windows Registry Editor Version 5.00' or 'REGEDIT4'"
                )
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise RegSyntaxError(lineno, "a key line must end with ']'")
            path = line[1:-1]
            delete = path.startswith("-")
            parts = _split_path(path[1:] if delete else path, prefix, lineno)
            if delete:
                node = root
                for p in parts[:-1]:
                    node = node.subkeys.get(upcase_name(p)) or _Node(p)
                if parts:
                    node.subkeys.pop(upcase_name(parts[-1]), None)
                current = None
                continue
            current = root
            for p in parts:
                current = current.child(p)
            continue
        if current is None:
            raise RegSyntaxError(lineno, "a value line outside a [key] section")
        if line.startswith("@"):
            name, end = "", 1
        else:
            name, end = _quoted(line, 0, lineno)
        rest = line[end:].lstrip()
        if not rest.startswith("="):
            raise RegSyntaxError(lineno, "expected '=' after the value name")
        value = _data(rest[1:].strip(), version, lineno)
        folded = upcase_name(name)
        if value is None:
            current.values.pop(folded, None)
        else:
            current.values[folded] = (current.values.get(folded, (name,))[0], value)
    if not version:
        raise RegSyntaxError(1, "empty .reg text")
    return root.to_key()
