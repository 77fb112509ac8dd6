"""Exporting a subtree as .reg, JSON or CSV, streamed from one scan().

.reg output follows what ``reg import`` / regedit accept: UTF-16LE with a
BOM, CRLF line ends, ``"name"="text"`` only for clean strings (one NUL at
the end, no other NUL, no line breaks), ``dword:`` for 4-byte DWORDs and
``hex(n):`` for everything else, so every byte round-trips.

Key last-write times are ISO 8601 in UTC (``2016-10-05T09:03:15.348308+00:00``)
in JSON (``last_write``, with the FILETIME as stored in ``last_write_filetime``)
and CSV (``last_write``); a FILETIME past year 9999, which no timestamp holds,
is null / empty there (JSON keeps it in ``last_write_filetime``).
"""
from __future__ import annotations

import csv
import io
import json
from typing import Callable, TextIO, cast

from regfast._native import Hive
from regfast._types import REG_BINARY, REG_DWORD, REG_SZ, filetime_to_datetime, type_name

_REG_HEADER = "Windows Registry Editor Version 5.00\r\n"
_LINE = 80  # regedit wraps hex data at 80 columns with "\" continuations


def _reg_string(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def _clean_string(raw: bytes) -> str | None:
    """The text of a REG_SZ that the quoted form can carry exactly, else None."""
    if len(raw) < 2 or len(raw) % 2 or raw[-2:] != b"\0\0":
        return None
    try:
        text = raw[:-2].decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    if "\0" in text or "\r" in text or "\n" in text:
        return None
    return text


def _reg_hex(prefix: str, raw: bytes) -> str:
    """`prefix` + comma-separated hex bytes, wrapped the way regedit wraps."""
    out, line = [], prefix
    for i, b in enumerate(raw):
        piece = f"{b:02x}" + ("," if i < len(raw) - 1 else "")
        if len(line) + len(piece) > _LINE - 1 and line.strip():
            out.append(line + "\\")
            line = "  "
        line += piece
    out.append(line)
    return "\r\n".join(out)


def reg_value_line(name: str, vtype: int, raw: bytes) -> str:
    """One value of a .reg file (without the trailing CRLF)."""
    lhs = "@" if name == "" else f'"{_reg_string(name)}"'
    if vtype == REG_SZ:
        text = _clean_string(raw)
        if text is not None:
            return f'{lhs}="{_reg_string(text)}"'
    if vtype == REG_DWORD and len(raw) == 4:
        return f"{lhs}=dword:{int.from_bytes(raw, 'little'):08x}"
    kind = "hex" if vtype == REG_BINARY else f"hex({vtype:x})"
    return _reg_hex(f"{lhs}={kind}:", raw)


def iso_time(filetime: int) -> str | None:
    """A FILETIME as ISO 8601 (UTC); None when it is past the year 9999."""
    try:
        when = filetime_to_datetime(filetime)
    except ValueError:              # (older _types raise; newer ones give None)
        return None
    return when.isoformat() if when is not None else None


def _json_data(vtype: int, value: object, raw: bytes) -> object:
    if isinstance(value, bytes):
        return {"hex": raw.hex()}
    return value


def export(hive: Hive, out: TextIO, fmt: str, path: str | None = None, *, prefix: str = "",
           progress: Callable[[int, int], object] | None = None, errors: str = "strict") -> tuple[int, int]:
    """Writes the subtree at `path` to `out` in `fmt` ("reg", "json" or "csv").

    `prefix` is put before key paths (for .reg, the root the file should be
    imported under, e.g. ``HKEY_LOCAL_MACHINE\\SOFTWARE``). Returns the
    numbers of keys and values written. errors="skip" (damaged hives) leaves
    out the values the scan could not read instead of failing.
    """
    if fmt not in ("reg", "json", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (reg, json, csv)")
    table = hive.scan(path, values=True, progress=None, errors=errors)
    bad = (table.value_status != 0).tolist()
    paths = cast("list[str]", table.key_paths())   # live rows only: never None
    names = table.value_names()
    decoded: list = table.decoded_values() if fmt != "reg" else []
    vkey = table.value_key.tolist()
    vtype = table.value_type.tolist()
    last_write = table.key_last_write.tolist()
    first_value = [0] * (table.n_keys + 1)
    for k in vkey:
        first_value[k + 1] += 1
    for i in range(table.n_keys):
        first_value[i + 1] += first_value[i]

    def full(p: str) -> str:
        return "\\".join(x for x in (prefix.rstrip("\\"), p) if x)

    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        # last_write last: an added column must not move the others
        w.writerow(["key", "value", "type", "data", "last_write"])
    elif fmt == "json":
        out.write("[\n")
    else:
        out.write(_REG_HEADER)

    n = table.n_keys
    for k in range(n):
        lo, hi = first_value[k], first_value[k + 1]
        if fmt == "reg":
            out.write(f"\r\n[{full(paths[k])}]\r\n")
            for i in range(lo, hi):
                if bad[i]:
                    continue
                out.write(reg_value_line(names[i], vtype[i], bytes(table.value_data(i))) + "\r\n")
        elif fmt == "json":
            vals = {}
            for i in range(lo, hi):
                if bad[i]:
                    continue
                raw = bytes(table.value_data(i))
                vals[names[i]] = {"type": type_name(vtype[i]), "data": _json_data(vtype[i], decoded[i], raw)}
            rec = {"path": full(paths[k]), "last_write": iso_time(last_write[k]),
                   "last_write_filetime": last_write[k], "values": vals}
            out.write(("  " if k == 0 else ",\n  ") + json.dumps(rec, ensure_ascii=False))
        else:
            when = iso_time(last_write[k]) or ""
            if lo == hi:
                w.writerow([full(paths[k]), "", "", "", when])
            for i in range(lo, hi):
                if bad[i]:
                    continue
                val = decoded[i]
                text = val.hex() if isinstance(val, bytes) else (
                    "\n".join(val) if isinstance(val, list) else str(val))
                w.writerow([full(paths[k]), names[i], type_name(vtype[i]), text, when])
        if progress and (k & 1023) == 0:
            progress(k, n)
    if fmt == "json":
        out.write("\n]\n")
    if progress:
        progress(n, n)
    return table.n_keys, table.n_values - sum(bad)


def export_to_file(hive: Hive, filename: str, fmt: str, path: str | None = None, *, prefix: str = "",
                   progress: Callable[[int, int], object] | None = None,
                   errors: str = "strict") -> tuple[int, int]:
    """export() into a file with the encoding its format needs (.reg: UTF-16LE + BOM)."""
    if fmt == "reg":
        with open(filename, "w", encoding="utf-16-le", newline="") as f:
            f.write("\ufeff")  # the BOM reg import expects; explicit so it is LE on any host
            return export(hive, f, fmt, path, prefix=prefix, progress=progress, errors=errors)
    with open(filename, "w", encoding="utf-8", newline="") as f:
        return export(hive, f, fmt, path, prefix=prefix, progress=progress, errors=errors)


def export_to_string(hive: Hive, fmt: str, path: str | None = None, *, prefix: str = "") -> str:
    buf = io.StringIO(newline="")
    export(hive, buf, fmt, path, prefix=prefix)
    return buf.getvalue()
